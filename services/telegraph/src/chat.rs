//! The interactive terminal client (`telegraph chat`).
//!
//! ```text
//! ┌ Users ───────────────────┐┌ bob · online ─────────────────────────────────────┐
//! │▶ ● bob (1)               ││#1 alice: hello bob ✓✓ [read]                      │
//! │    are you there?        ││— 1 message missing —                              │
//! │  ○ carol                 ││#3 bob: are you there?                             │
//! └ ● online ○ offline ──────┘└───────────────────────────────────────────────────┘
//!  alice  online · outbox 0
//! ┌ To bob · Enter sends · Esc quits ───────────────────────────────────────────────┐
//! │hello_                                                                           │
//! └─────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The left pane lists the users (the managers' list, refreshed every 2 s and on presence
//! changes, with anyone this client has a conversation with) with a presence mark, the number of
//! unread messages and a preview of the last one. The right pane shows the conversation with the
//! selected user: `#counter sender: text`, this user's own messages followed by their state (`…
//! [pending]`, `✓ [delivered]`, `✓✓ [read]`); a line `— N messages missing —` where the other
//! side's counters skip; a banner when the contact's keys changed (nothing is sent to them until
//! `telegraph trust`). Below: a status line (name, presence, outbox size, last error) and the
//! input line.
//!
//! Keys: Up/Down or Tab/Shift-Tab select a user; typing edits the input (Left, Right, Home, End,
//! Backspace, Delete, Ctrl-U); Enter sends to the selected user; PageUp/PageDown scroll the
//! conversation; Esc or Ctrl-C quits.
//!
//! A conversation is marked read (its read receipts queued) only once it has been drawn on the
//! screen, scrolled to its end: selecting a user is what reads their messages.
//!
//! The loop sleeps until something happens: a key or a resize (read by a thread that waits on
//! the terminal), a client event, the end of a send or of a refresh, a timer (every second, for
//! the outbox size), SIGTERM or SIGHUP. The terminal is restored when the client returns, on
//! every error path, and by a panic hook before a panic is reported.

use std::collections::VecDeque;
use std::io::{self, Stdout};
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use crate::client::{Client, ClientError, Event};
use crate::slice::telegraph::UserInfo;
use crate::store::{Message, State};

/// How often the users are asked for (besides on presence changes).
const USERS_EVERY: Duration = Duration::from_secs(2);
/// How often the screen is redrawn when nothing happens (the outbox size changes silently).
const TICK: Duration = Duration::from_secs(1);
/// How long the terminal thread waits for input before checking whether it should stop.
const INPUT_WAIT: Duration = Duration::from_millis(100);
/// How long to wait for the terminal thread to end. crossterm 0.28 spins inside `poll` on a
/// terminal that hung up (a read of 0 bytes is retried at once), so the thread may never end:
/// it is then left behind, to end with the process.
const INPUT_STOP: Duration = Duration::from_millis(500);
/// How long to wait before marking a conversation read again after a failure.
const READ_RETRY: Duration = Duration::from_secs(2);
/// Width of the users pane (at most a third of the terminal).
const USERS_WIDTH: u16 = 28;
/// Indentation of a message's continuation lines.
const INDENT: usize = 2;

/// Runs the terminal client until the user quits.
pub async fn run(client: Client) -> Result<(), ClientError> {
    // Subscribe first: nothing that happens from now on is missed.
    let mut events = client.events();
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let mut screen = Screen::enter().map_err(terminal_error)?;
    let input = InputThread::start(notes_tx.clone()).map_err(terminal_error)?;
    let mut app = App::new(client, notes_tx);
    app.load_local();
    let result = app.run(&mut screen, &mut notes, &mut events).await;
    // Stop reading the terminal before handing it back.
    drop(input);
    drop(screen);
    result
}

fn terminal_error(e: io::Error) -> ClientError {
    ClientError::Invalid(format!("terminal: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The terminal

/// Whether a [`Screen`] has the terminal (raw mode, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Set when the panic hook gave the terminal back while a [`Screen`] had it (a task of the
/// client panicked): the loop takes it again.
static DISTURBED: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// Gives the terminal back: cooked mode, the main screen, a visible cursor.
fn leave_terminal() {
    let _ = disable_raw_mode();
    let _ = crossterm::execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// Chains a hook that gives the terminal back before the panic is reported, so that the report
/// can be read (on the main screen, in cooked mode).
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.swap(false, Ordering::SeqCst) {
                leave_terminal();
                DISTURBED.store(true, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// The terminal in raw mode on the alternate screen; given back when dropped (also when
/// unwinding).
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter() -> io::Result<Screen> {
        install_panic_hook();
        DISTURBED.store(false, Ordering::SeqCst);
        Self::take()?;
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                if ACTIVE.swap(false, Ordering::SeqCst) {
                    leave_terminal();
                }
                Err(e)
            }
        }
    }

    /// Raw mode and the alternate screen (given back on failure).
    fn take() -> io::Result<()> {
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        if let Err(e) = crossterm::execute!(io::stdout(), EnterAlternateScreen) {
            if ACTIVE.swap(false, Ordering::SeqCst) {
                leave_terminal();
            }
            return Err(e);
        }
        Ok(())
    }

    /// Takes the terminal again after the panic hook gave it back, and repaints everything.
    fn retake_if_disturbed(&mut self) -> io::Result<()> {
        if DISTURBED.swap(false, Ordering::SeqCst) {
            Self::take()?;
            self.terminal.clear()?;
        }
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if ACTIVE.swap(false, Ordering::SeqCst) {
            leave_terminal();
        }
    }
}

/// A thread that waits for terminal input (crossterm's blocking `poll`, with a timeout so that
/// it notices when to stop) and passes it on; stopped when dropped.
struct InputThread {
    stop: Arc<AtomicBool>,
    /// Disconnected when the thread ends.
    ended: std::sync::mpsc::Receiver<()>,
}

impl InputThread {
    fn start(notes: mpsc::UnboundedSender<Note>) -> io::Result<InputThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let (alive, ended) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("telegraph-chat-input".into())
            .spawn(move || {
                let _alive = alive;
                while !stopping.load(Ordering::SeqCst) {
                    let event = match crossterm::event::poll(INPUT_WAIT) {
                        Ok(false) => continue,
                        Ok(true) => crossterm::event::read(),
                        Err(e) => Err(e),
                    };
                    let note = match event {
                        Ok(e) => Note::Terminal(e),
                        Err(e) => Note::TerminalFailed(e.to_string()),
                    };
                    let failed = matches!(note, Note::TerminalFailed(_));
                    if notes.send(note).is_err() || failed {
                        break;
                    }
                }
            })?;
        Ok(InputThread { stop, ended })
    }
}

impl Drop for InputThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Returns when the thread ends (the sender is dropped) or after the time limit.
        let _ = self.ended.recv_timeout(INPUT_STOP);
    }
}

// ---------------------------------------------------------------------------------------------
// The state

/// What the terminal thread and the client's tasks tell the loop.
enum Note {
    /// A key, a resize.
    Terminal(TermEvent),
    /// The terminal can no longer be read.
    TerminalFailed(String),
    /// The users, as the managers gave them.
    Users(Result<Vec<UserInfo>, String>),
    /// A send ended.
    Sent {
        peer: String,
        text: String,
        result: Result<Message, ClientError>,
    },
}

/// A user of the left pane.
struct Row {
    name: String,
    online: bool,
    unread: usize,
    /// The last unread message.
    preview: Option<String>,
    /// The contact's keys changed and are not trusted yet.
    keys_changed: bool,
}

/// A line of the conversation.
enum Item {
    Message(Message),
    /// This many of the other side's messages are missing here (its counters skip).
    Gap(i64),
}

struct App {
    client: Client,
    notes: mpsc::UnboundedSender<Note>,
    /// Sends, one at a time in the order they were typed (counters follow that order).
    sends: mpsc::UnboundedSender<(String, String)>,
    rows: Vec<Row>,
    list: ListState,
    selected: Option<String>,
    conversation: Vec<Item>,
    /// Lines scrolled up from the end of the conversation.
    scroll: usize,
    /// Height of the conversation as last drawn (0: not on screen).
    shown_height: u16,
    input: Vec<char>,
    /// Position in `input`, in characters.
    cursor: usize,
    /// This user's presence, as the managers last said.
    online: bool,
    outbox: usize,
    sending: usize,
    refreshing: bool,
    error: Option<String>,
    managers_error: Option<String>,
    read_not_before: Instant,
    quit: bool,
}

impl App {
    fn new(client: Client, notes: mpsc::UnboundedSender<Note>) -> App {
        let (sends, mut queue) = mpsc::unbounded_channel::<(String, String)>();
        let (sender, done) = (client.clone(), notes.clone());
        tokio::spawn(async move {
            while let Some((peer, text)) = queue.recv().await {
                let result = sender.send(&peer, &text).await;
                if done.send(Note::Sent { peer, text, result }).is_err() {
                    break;
                }
            }
        });
        let outbox = client.outbox_len();
        App {
            client,
            notes,
            sends,
            rows: Vec::new(),
            list: ListState::default(),
            selected: None,
            conversation: Vec::new(),
            scroll: 0,
            shown_height: 0,
            input: Vec::new(),
            cursor: 0,
            online: false,
            outbox,
            sending: 0,
            refreshing: false,
            error: None,
            managers_error: None,
            read_not_before: Instant::now(),
            quit: false,
        }
    }

    fn me(&self) -> &str {
        self.client.name()
    }

    /// The row of `name`, added (in name order, read from the store) if missing.
    fn row(&mut self, name: &str) -> &mut Row {
        let index = match self.rows.binary_search_by(|r| r.name.as_str().cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                self.rows.insert(
                    i,
                    Row {
                        name: name.to_string(),
                        online: false,
                        unread: 0,
                        preview: None,
                        keys_changed: false,
                    },
                );
                self.read_unread(i);
                self.read_keys(i);
                i
            }
        };
        &mut self.rows[index]
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.rows
            .binary_search_by(|r| r.name.as_str().cmp(name))
            .ok()
    }

    /// Counts the unread messages of row `index` (and keeps the last one).
    fn read_unread(&mut self, index: usize) {
        match self.client.store().conversation(&self.rows[index].name) {
            Ok(messages) => {
                let row = &mut self.rows[index];
                row.preview = None;
                row.unread = 0;
                for m in messages
                    .into_iter()
                    .filter(|m| !m.outgoing && m.state == State::Unread)
                {
                    row.unread += 1;
                    row.preview = Some(m.text);
                }
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Whether the keys of row `index` changed since they were pinned.
    fn read_keys(&mut self, index: usize) {
        match self.client.store().contact(&self.rows[index].name) {
            Ok(c) => self.rows[index].keys_changed = c.is_some_and(|c| c.changed_to.is_some()),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Counts the unread messages of `name` again (adding its row if missing).
    fn unread_changed(&mut self, name: &str) {
        match self.index(name) {
            Some(i) => self.read_unread(i),
            None => {
                self.row(name);
            }
        }
    }

    /// What this client knows without the managers: its conversations.
    fn load_local(&mut self) {
        match self.client.store().peers() {
            Ok(peers) => {
                for p in peers {
                    self.row(&p);
                }
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn reload_conversation(&mut self) {
        let Some(peer) = self.selected.clone() else {
            self.conversation.clear();
            return;
        };
        match self.client.store().conversation(&peer) {
            Ok(messages) => self.conversation = items(messages),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Asks the managers for the users (unless a request is under way).
    fn refresh_users(&mut self) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let (client, notes) = (self.client.clone(), self.notes.clone());
        tokio::spawn(async move {
            let users = client.users().await.map_err(|e| e.to_string());
            let _ = notes.send(Note::Users(users));
        });
    }

    fn on_note(&mut self, note: Note) -> Result<(), ClientError> {
        match note {
            Note::Terminal(TermEvent::Key(key)) => self.on_key(key),
            Note::Terminal(_) => {}
            Note::TerminalFailed(e) => return Err(ClientError::Invalid(format!("terminal: {e}"))),
            Note::Users(Ok(users)) => {
                self.refreshing = false;
                self.managers_error = None;
                let me = self.me().to_string();
                self.online = users.iter().any(|u| u.name == me && u.online);
                for u in users.iter().filter(|u| u.name != me) {
                    self.row(&u.name).online = u.online;
                }
                // Keys can change without an event reaching this loop (a lookup made while this
                // loop lagged, or by an earlier run).
                for i in 0..self.rows.len() {
                    self.read_keys(i);
                }
            }
            Note::Users(Err(e)) => {
                self.refreshing = false;
                self.online = false;
                self.managers_error = Some(e);
            }
            Note::Sent { peer, text, result } => {
                self.sending = self.sending.saturating_sub(1);
                self.outbox = self.client.outbox_len();
                match result {
                    Ok(m) => {
                        self.error = None;
                        if self.selected.as_deref() == Some(&m.peer) {
                            self.reload_conversation();
                        }
                    }
                    Err(e) => {
                        if matches!(e, ClientError::KeyChanged(_)) {
                            self.row(&peer).keys_changed = true;
                        }
                        self.error = Some(format!("not sent to {peer}: {e}"));
                        // Give the text back to be sent again, unless something else is typed.
                        if self.input.is_empty() && self.selected.as_deref() == Some(&peer) {
                            self.input = text.chars().collect();
                            self.cursor = self.input.len();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn on_event(&mut self, event: Result<Event, RecvError>) {
        match event {
            Ok(Event::Received(m)) => {
                self.unread_changed(&m.peer);
                if self.selected.as_deref() == Some(&m.peer) {
                    self.reload_conversation();
                }
                self.outbox = self.client.outbox_len();
            }
            Ok(Event::Updated(m)) => {
                if self.selected.as_deref() == Some(&m.peer) {
                    self.reload_conversation();
                }
                self.outbox = self.client.outbox_len();
            }
            Ok(Event::Presence(u)) => {
                if u.name != self.me() {
                    self.row(&u.name).online = u.online;
                }
                self.refresh_users();
            }
            Ok(Event::KeyChanged(name)) => {
                self.row(&name).keys_changed = true;
            }
            Err(RecvError::Lagged(_)) => {
                // Events were missed: read everything again.
                for i in 0..self.rows.len() {
                    self.read_unread(i);
                    self.read_keys(i);
                }
                self.reload_conversation();
                self.refresh_users();
            }
            Err(RecvError::Closed) => {}
        }
    }

    fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => self.quit = true,
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                self.cursor = 0;
            }
            KeyCode::Up => self.move_selection(-1, false),
            KeyCode::Down => self.move_selection(1, false),
            KeyCode::BackTab => self.move_selection(-1, true),
            KeyCode::Tab => self.move_selection(1, true),
            KeyCode::PageUp => {
                self.scroll = self
                    .scroll
                    .saturating_add(usize::from(self.shown_height.saturating_sub(1).max(1)))
            }
            KeyCode::PageDown => {
                self.scroll = self
                    .scroll
                    .saturating_sub(usize::from(self.shown_height.saturating_sub(1).max(1)))
            }
            KeyCode::Enter => self.send(),
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.input.len()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.input.len(),
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.input.remove(self.cursor);
            }
            KeyCode::Delete if self.cursor < self.input.len() => {
                self.input.remove(self.cursor);
            }
            KeyCode::Char(c)
                if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) && !c.is_control() =>
            {
                self.input.insert(self.cursor, c);
                self.cursor += 1;
            }
            _ => {}
        }
    }

    fn move_selection(&mut self, delta: isize, wrap: bool) {
        let n = self.rows.len();
        if n == 0 {
            return;
        }
        let current = self
            .selected
            .as_ref()
            .and_then(|s| self.rows.iter().position(|r| &r.name == s));
        let next = match current {
            None if delta > 0 => 0,
            None => n - 1,
            Some(i) if wrap => (i as isize + delta).rem_euclid(n as isize) as usize,
            Some(i) => (i as isize + delta).clamp(0, n as isize - 1) as usize,
        };
        if current != Some(next) {
            self.selected = Some(self.rows[next].name.clone());
            self.scroll = 0;
            self.shown_height = 0;
            self.reload_conversation();
        }
    }

    fn send(&mut self) {
        let Some(peer) = self.selected.clone() else {
            self.error = Some("select a user first (Up/Down)".into());
            return;
        };
        let text: String = self.input.iter().collect();
        if text.trim().is_empty() {
            return;
        }
        if self.sends.send((peer, text)).is_ok() {
            self.input.clear();
            self.cursor = 0;
            self.scroll = 0;
            self.sending += 1;
        }
    }

    /// The selected user, if their conversation is on screen, scrolled to its end, with unread
    /// messages.
    fn to_read(&self) -> Option<String> {
        let peer = self.selected.as_ref()?;
        if self.shown_height == 0 || self.scroll > 0 || Instant::now() < self.read_not_before {
            return None;
        }
        self.rows
            .iter()
            .any(|r| &r.name == peer && r.unread > 0)
            .then(|| peer.clone())
    }

    async fn mark_read(&mut self, peer: &str) {
        match self.client.mark_read(peer).await {
            Ok(n) => {
                if n == 0 {
                    // Nothing was unread after all: do not try again at once.
                    self.read_not_before = Instant::now() + READ_RETRY;
                }
                self.unread_changed(peer);
                self.reload_conversation();
                self.outbox = self.client.outbox_len();
            }
            Err(e) => {
                self.error = Some(format!("cannot mark {peer}'s messages read: {e}"));
                self.read_not_before = Instant::now() + READ_RETRY;
            }
        }
    }

    async fn run(
        &mut self,
        screen: &mut Screen,
        notes: &mut mpsc::UnboundedReceiver<Note>,
        events: &mut broadcast::Receiver<Event>,
    ) -> Result<(), ClientError> {
        let mut users_timer = tokio::time::interval(USERS_EVERY);
        users_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut terminate = signal(SignalKind::terminate()).ok();
        let mut hangup = signal(SignalKind::hangup()).ok();
        let mut events_open = true;
        // Every wake-up redraws: a key, a client event, a note from a task, a timer.
        loop {
            if self.quit {
                return Ok(());
            }
            screen.retake_if_disturbed().map_err(terminal_error)?;
            screen
                .terminal
                .draw(|f| self.draw(f))
                .map_err(terminal_error)?;
            // Only what was just drawn is read.
            if let Some(peer) = self.to_read() {
                self.mark_read(&peer).await;
                continue;
            }
            tokio::select! {
                note = notes.recv() => match note {
                    Some(note) => self.on_note(note)?,
                    None => return Ok(()),
                },
                event = events.recv(), if events_open => {
                    events_open = !matches!(event, Err(RecvError::Closed));
                    self.on_event(event);
                }
                _ = users_timer.tick() => self.refresh_users(),
                _ = tick.tick() => self.outbox = self.client.outbox_len(),
                _ = received(&mut terminate) => self.quit = true,
                _ = received(&mut hangup) => self.quit = true,
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Drawing

    fn draw(&mut self, f: &mut Frame) {
        let [main, status, input] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(3),
        ])
        .areas(f.area());
        let [left, right] = Layout::horizontal([
            Constraint::Length(USERS_WIDTH.min(main.width / 3)),
            Constraint::Min(1),
        ])
        .areas(main);
        self.draw_users(f, left);
        self.draw_conversation(f, right);
        self.draw_status(f, status);
        self.draw_input(f, input);
    }

    fn draw_users(&mut self, f: &mut Frame, area: Rect) {
        let items: Vec<ListItem> = self
            .rows
            .iter()
            .map(|r| {
                let mark = if r.online {
                    Span::styled("●", Style::new().fg(Color::Green))
                } else {
                    Span::styled("○", Style::new().fg(Color::DarkGray))
                };
                let mut line = vec![mark, Span::raw(" "), Span::raw(r.name.clone())];
                if r.unread > 0 {
                    line.push(Span::styled(
                        format!(" ({})", r.unread),
                        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                    ));
                }
                if r.keys_changed {
                    line.push(Span::styled(
                        " ⚠ keys",
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    ));
                }
                let mut text = Text::from(Line::from(line));
                if let Some(p) = &r.preview {
                    let preview = one_line(p);
                    text.push_line(Line::styled(
                        format!("  {preview}"),
                        Style::new().fg(Color::DarkGray),
                    ));
                }
                ListItem::new(text)
            })
            .collect();
        let selected = self
            .selected
            .as_ref()
            .and_then(|s| self.rows.iter().position(|r| &r.name == s));
        self.list.select(selected);
        let list = List::new(items)
            .block(
                Block::bordered()
                    .title(" Users ")
                    .title_bottom(" ● online ○ offline "),
            )
            .highlight_symbol("▶ ")
            .highlight_style(Style::new().add_modifier(Modifier::BOLD));
        f.render_stateful_widget(list, area, &mut self.list);
    }

    fn draw_conversation(&mut self, f: &mut Frame, area: Rect) {
        let Some(peer) = self.selected.clone() else {
            let hint = if self.rows.is_empty() {
                "No other users yet."
            } else {
                "Select a user with Up/Down (or Tab)."
            };
            f.render_widget(
                Paragraph::new(hint).block(Block::bordered().title(" Conversation ")),
                area,
            );
            self.shown_height = 0;
            return;
        };
        let row = self.rows.iter().find(|r| r.name == peer);
        let online = row.is_some_and(|r| r.online);
        let keys_changed = row.is_some_and(|r| r.keys_changed);
        let block = Block::bordered().title(Line::from(vec![
            Span::raw(format!(" {peer} · ")),
            if online {
                Span::styled("online", Style::new().fg(Color::Green))
            } else {
                Span::styled("offline", Style::new().fg(Color::DarkGray))
            },
            Span::raw(if self.scroll > 0 {
                " · PageDown to return to the end "
            } else {
                " "
            }),
        ]));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let width = usize::from(inner.width);
        let mut top = inner;
        if keys_changed {
            let mut cells = Vec::new();
            push_text(
                &mut cells,
                &format!(
                    "⚠ {peer}'s keys changed: nothing is sent to or accepted from {peer} until you check the new keys with them and \
                     accept them (quit, run `telegraph trust {peer}`, start again)."
                ),
                Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
            );
            let banner = wrap(&cells, width);
            let height = (banner.len() as u16).min(inner.height);
            f.render_widget(Paragraph::new(banner), Rect { height, ..inner });
            top = Rect {
                y: inner.y + height,
                height: inner.height - height,
                ..inner
            };
        }
        let height = usize::from(top.height);
        // The last `height + scroll` lines, wrapping only what may show.
        let want = height.saturating_add(self.scroll);
        let mut lines: VecDeque<Line<'static>> = VecDeque::new();
        let me = self.me().to_string();
        for item in self.conversation.iter().rev() {
            if lines.len() >= want {
                break;
            }
            for line in wrap(&item_cells(item, &me), width).into_iter().rev() {
                lines.push_front(line);
            }
        }
        self.scroll = self.scroll.min(lines.len().saturating_sub(height));
        let end = lines.len() - self.scroll;
        let start = end.saturating_sub(height);
        let shown: Vec<Line<'static>> = lines.drain(start..end).collect();
        f.render_widget(Paragraph::new(shown), top);
        self.shown_height = top.height;
    }

    fn draw_status(&self, f: &mut Frame, area: Rect) {
        let mut spans = vec![
            Span::styled(
                format!(" {} ", self.me()),
                Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            ),
            Span::raw(" "),
        ];
        spans.push(if self.online {
            Span::styled("online", Style::new().fg(Color::Green))
        } else {
            Span::styled("offline", Style::new().fg(Color::Red))
        });
        spans.push(Span::raw(format!(" · outbox {}", self.outbox)));
        if self.sending > 0 {
            spans.push(Span::raw(format!(" · sending {}", self.sending)));
        }
        let error = self.error.as_ref().or(self.managers_error.as_ref());
        if let Some(e) = error {
            let e = one_line(e);
            spans.push(Span::styled(
                format!(" · error: {e}"),
                Style::new().fg(Color::Red),
            ));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_input(&self, f: &mut Frame, area: Rect) {
        let title = match &self.selected {
            Some(p) => format!(" To {p} · Enter sends · Esc quits "),
            None => " Select a user with Up/Down · Esc quits ".to_string(),
        };
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        // Scroll sideways so that the cursor shows.
        let widths: Vec<usize> = self.input.iter().map(|c| char_width(*c)).collect();
        let room = usize::from(inner.width);
        let mut before: usize = widths[..self.cursor].iter().sum();
        let mut skip = 0;
        while before >= room && skip < self.cursor {
            before -= widths[skip];
            skip += 1;
        }
        let text: String = self.input[skip..].iter().collect();
        f.render_widget(Paragraph::new(text).block(block), area);
        if inner.width > 0 && inner.height > 0 {
            f.set_cursor_position(Position::new(inner.x + before as u16, inner.y));
        }
    }
}

/// Completes when the signal arrives (never without a handler).
async fn received(signal: &mut Option<Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// The conversation's lines: a gap before an incoming message whose counter skips.
fn items(messages: Vec<Message>) -> Vec<Item> {
    let mut out = Vec::with_capacity(messages.len());
    let mut last = 0i64;
    for m in messages {
        if !m.outgoing {
            let missing = m.counter.saturating_sub(last).saturating_sub(1);
            if missing > 0 {
                out.push(Item::Gap(missing));
            }
            last = last.max(m.counter);
        }
        out.push(Item::Message(m));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Text

/// A character and its style, for wrapping.
type Cell = (char, Style);

/// Characters that reorder text on screen (Unicode bidirectional controls): never drawn as they
/// are, so that a message cannot disguise itself.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` on one line, safe to draw: control and bidirectional characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || is_bidi_control(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Appends `text`, keeping newlines, turning tabs into spaces and other control characters
/// (which the terminal would obey) into U+FFFD.
fn push_text(cells: &mut Vec<Cell>, text: &str, style: Style) {
    for c in text.chars() {
        let c = match c {
            '\n' => '\n',
            '\t' => ' ',
            c if c.is_control() || is_bidi_control(c) => '\u{fffd}',
            c => c,
        };
        cells.push((c, style));
    }
}

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut buf)).width()
}

fn item_cells(item: &Item, me: &str) -> Vec<Cell> {
    let mut cells = Vec::new();
    match item {
        Item::Gap(n) => {
            let text = format!("— {n} message{} missing —", if *n == 1 { "" } else { "s" });
            push_text(
                &mut cells,
                &text,
                Style::new()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::ITALIC),
            );
        }
        Item::Message(m) => {
            let (sender, color) = if m.outgoing {
                (me, Color::Cyan)
            } else {
                (m.peer.as_str(), Color::Magenta)
            };
            push_text(
                &mut cells,
                &format!("#{} ", m.counter),
                Style::new().fg(Color::DarkGray),
            );
            push_text(
                &mut cells,
                sender,
                Style::new().fg(color).add_modifier(Modifier::BOLD),
            );
            push_text(&mut cells, ": ", Style::new());
            push_text(&mut cells, &m.text, Style::new());
            if m.outgoing {
                let (mark, word, style) = match m.state {
                    State::Pending => ("…", "pending", Style::new().fg(Color::Yellow)),
                    State::Delivered => ("✓", "delivered", Style::new().fg(Color::Gray)),
                    State::Read | State::Unread => ("✓✓", "read", Style::new().fg(Color::Green)),
                };
                push_text(&mut cells, &format!(" {mark}"), style);
                push_text(
                    &mut cells,
                    &format!(" [{word}]"),
                    Style::new().fg(Color::DarkGray),
                );
            }
        }
    }
    cells
}

/// Breaks `cells` into lines of at most `width` columns: at newlines, after the last space that
/// fits, inside a word longer than a line; continuation lines are indented.
fn wrap(cells: &[Cell], width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for paragraph in cells.split(|(c, _)| *c == '\n') {
        let mut rest = paragraph;
        let mut indent = 0;
        loop {
            let room = width.saturating_sub(indent).max(1);
            let (mut used, mut end, mut space) = (0, 0, None);
            while end < rest.len() {
                let w = char_width(rest[end].0);
                if used + w > room {
                    break;
                }
                used += w;
                if rest[end].0 == ' ' {
                    space = Some(end);
                }
                end += 1;
            }
            if end < rest.len() {
                match space {
                    Some(s) if s > 0 => end = s + 1,
                    _ => end = end.max(1),
                }
            }
            lines.push(styled_line(indent, &rest[..end]));
            rest = &rest[end..];
            indent = INDENT.min(width.saturating_sub(1));
            if rest.is_empty() {
                break;
            }
        }
    }
    lines
}

fn styled_line(indent: usize, cells: &[Cell]) -> Line<'static> {
    let mut spans = Vec::new();
    if indent > 0 {
        spans.push(Span::raw(" ".repeat(indent)));
    }
    let mut text = String::new();
    let mut style = None;
    for (c, s) in cells {
        if style != Some(*s) {
            if let Some(previous) = style {
                spans.push(Span::styled(std::mem::take(&mut text), previous));
            }
            style = Some(*s);
        }
        text.push(*c);
    }
    if let Some(s) = style {
        spans.push(Span::styled(text, s));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn cells(text: &str) -> Vec<Cell> {
        let mut c = Vec::new();
        push_text(&mut c, text, Style::new());
        c
    }

    fn message(outgoing: bool, counter: i64, state: State) -> Message {
        Message {
            id: format!("{counter:032x}"),
            peer: "bob".into(),
            outgoing,
            counter,
            sent_at: counter,
            stored_at: counter,
            text: "hi".into(),
            state,
        }
    }

    #[test]
    fn wraps_at_spaces_newlines_and_long_words() {
        assert_eq!(
            plain(&wrap(&cells("hello big world"), 10)),
            ["hello big ", "  world"]
        );
        assert_eq!(plain(&wrap(&cells("a\nb"), 10)), ["a", "b"]);
        assert_eq!(
            plain(&wrap(&cells("abcdefghij"), 4)),
            ["abcd", "  ef", "  gh", "  ij"]
        );
        assert_eq!(plain(&wrap(&cells(""), 4)), [""]);
        // Wide characters take two columns.
        assert_eq!(plain(&wrap(&cells("日本語"), 4)), ["日本", "  語"]);
    }

    #[test]
    fn control_characters_are_not_drawn() {
        let text: String = cells("a\u{1b}[2Jb\tc\u{202e}d")
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(text, "a\u{fffd}[2Jb c\u{fffd}d");
    }

    #[test]
    fn gaps_are_counted_on_incoming_messages() {
        let list = items(vec![
            message(false, 1, State::Read),
            message(true, 1, State::Read),
            message(false, 4, State::Unread),
            message(true, 2, State::Pending),
            message(false, 5, State::Unread),
        ]);
        let lines: Vec<String> = list
            .iter()
            .flat_map(|i| plain(&wrap(&item_cells(i, "alice"), 80)))
            .collect();
        assert_eq!(
            lines,
            [
                "#1 bob: hi",
                "#1 alice: hi ✓✓ [read]",
                "— 2 messages missing —",
                "#4 bob: hi",
                "#2 alice: hi … [pending]",
                "#5 bob: hi"
            ]
        );
        let first = items(vec![message(false, 2, State::Unread)]);
        assert!(matches!(first[0], Item::Gap(1)));
        assert_eq!(
            plain(&wrap(&item_cells(&first[0], "alice"), 80)),
            ["— 1 message missing —"]
        );
    }
}
