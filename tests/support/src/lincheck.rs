//! A linearizability checker for histories of a key-value store of registers, in the style of
//! Knossos and porcupine: a randomized test records what its clients asked for and what they got
//! back, and [`check`] decides whether some order of those operations, consistent with real
//! time, explains every reply.
//!
//! Every key is a register that starts absent; a [`Kind::Put`] sets it and a [`Kind::Get`] must
//! observe the latest value put before it in that order. Keys are independent of each other
//! (linearizability is compositional), so each key is checked on its own with the Wing–Gong
//! search as improved by Lowe: the operations become a time-ordered list of call and return
//! events; the search linearizes calls one at a time, backtracks when it reaches the return of an
//! operation it has not linearized, and remembers every (set of linearized operations, register
//! value) it has explored so no configuration is explored twice. Two sound prunings keep it
//! close to linear on realistic histories: an indeterminate put is only tried while some get
//! still has to observe its value, and no put may overwrite a value that a get still has to
//! observe when no remaining put could write that value again.
//!
//! A call whose outcome is unknown (it timed out, or the connection broke after sending) is
//! recorded with `completed: None`. Such a put may take effect at any moment after its
//! invocation, or never; such a get says nothing and is ignored. Operations that *definitely*
//! failed (the server answered "not applied") must be removed by the caller before checking.
//!
//! Operations that touch in time (one completes at the very instant another is invoked) are
//! treated as concurrent, so coarse clocks never cause false alarms.
//!
//! The search is exponential in the worst case; each key gets a step budget
//! ([`DEFAULT_MAX_STEPS_PER_KEY`], or [`check_with_limit`]) and the answer is
//! [`CheckError::Inconclusive`] once it is spent, so a check never hangs.
//!
//! ```
//! use floe_test_support::lincheck::{check, CheckError, Operation};
//!
//! let history = vec![
//!     Operation::put(1, "x", "a", 0, Some(10)),
//!     Operation::put(2, "x", "b", 20, Some(30)),
//!     // The put of "b" completed before this get was invoked: "a" is a stale read.
//!     Operation::get(3, "x", Some("a"), 40, Some(50)),
//! ];
//! match check(&history) {
//!     Err(CheckError::Violation { key, explanation }) => {
//!         assert_eq!(key, "x");
//!         assert!(explanation.contains("client 3"), "{explanation}");
//!     }
//!     other => panic!("expected a violation, got {other:?}"),
//! }
//!
//! let summary = check(&history[..2]).expect("two puts are linearizable");
//! assert_eq!(summary.operations, 2);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// The step budget per key used by [`check`]. A step is one iteration of the search (an attempt
/// to linearize a call, or one backtrack); well-behaved histories need a few steps per
/// operation (a 2,000-operation history from 8 clients takes a few thousand), so this only
/// bites on pathological ones. It also bounds the search's cache to as many entries, each about
/// `operations on the key / 8 + 50` bytes.
pub const DEFAULT_MAX_STEPS_PER_KEY: u64 = 1_000_000;

/// What an operation did to its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Set the key to `value`.
    Put {
        /// The value written.
        value: String,
    },
    /// Read the key.
    Get {
        /// The value the reply carried; `None` when the key was absent. Meaningless (and
        /// ignored) when the operation's outcome is unknown.
        observed: Option<String>,
    },
}

/// One call a client made, as recorded by the test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Who issued the call; only used in messages.
    pub client: u64,
    /// The key the call addressed.
    pub key: String,
    /// What the call did, and for a get what it saw.
    pub kind: Kind,
    /// When the call was issued, in nanoseconds since the test started.
    pub invoked: u64,
    /// When the reply arrived (same clock as `invoked`, never earlier); `None` when the outcome
    /// is unknown: a put may then take effect at any moment after `invoked` or never, and a get
    /// carries no information and is ignored.
    pub completed: Option<u64>,
}

impl Operation {
    /// A put of `value` to `key` by `client`; `completed: None` for an unknown outcome.
    pub fn put(
        client: u64,
        key: impl Into<String>,
        value: impl Into<String>,
        invoked: u64,
        completed: Option<u64>,
    ) -> Operation {
        Operation {
            client,
            key: key.into(),
            kind: Kind::Put {
                value: value.into(),
            },
            invoked,
            completed,
        }
    }

    /// A get of `key` by `client` that `observed` a value (`None`: the key was absent);
    /// `completed: None` for an unknown outcome.
    pub fn get(
        client: u64,
        key: impl Into<String>,
        observed: Option<&str>,
        invoked: u64,
        completed: Option<u64>,
    ) -> Operation {
        Operation {
            client,
            key: key.into(),
            kind: Kind::Get {
                observed: observed.map(str::to_string),
            },
            invoked,
            completed,
        }
    }
}

/// `client 1's put of "v" to "k" [invoked at 0.000000020s, completed at 0.000000030s]`, or
/// `client 3's get of "k" (observed "v") [invoked at 0.000000040s, outcome unknown]`.
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (client, key) = (self.client, &self.key);
        match &self.kind {
            Kind::Put { value } => write!(f, "client {client}'s put of {value:?} to {key:?}")?,
            Kind::Get { observed } => write!(
                f,
                "client {client}'s get of {key:?} (observed {})",
                show(observed.as_deref())
            )?,
        }
        write!(f, " [invoked at {}, ", seconds(self.invoked))?;
        match self.completed {
            Some(t) => write!(f, "completed at {}]", seconds(t)),
            None => write!(f, "outcome unknown]"),
        }
    }
}

/// What a successful check looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Per key, in key order.
    pub keys: BTreeMap<String, KeySummary>,
    /// Operations taken into account: every put, and every get whose outcome is known.
    pub operations: usize,
    /// Gets with an unknown outcome, which carry no information.
    pub ignored: usize,
    /// Search steps used over all keys.
    pub steps: u64,
}

/// What a successful check looked at on one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySummary {
    /// Puts whose reply arrived.
    pub puts: usize,
    /// Puts with an unknown outcome.
    pub indeterminate_puts: usize,
    /// Gets whose reply arrived.
    pub gets: usize,
    /// Gets with an unknown outcome (ignored).
    pub ignored_gets: usize,
    /// Search steps used on this key.
    pub steps: u64,
}

/// Why a history did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The operations on `key` cannot be linearized.
    Violation {
        /// The key whose history is not linearizable.
        key: String,
        /// Which operation could not be linearized, and what the key could hold at that point.
        explanation: String,
    },
    /// The search on `key` spent its step budget without an answer (no violation was found on
    /// any key; a violation elsewhere is reported in preference).
    Inconclusive {
        /// The key whose search gave up.
        key: String,
        /// The steps spent on it.
        steps: u64,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Violation { key, explanation } => {
                write!(
                    f,
                    "the history of key {key:?} is not linearizable: {explanation}"
                )
            }
            CheckError::Inconclusive { key, steps } => write!(
                f,
                "the linearizability check of key {key:?} gave up after {steps} steps \
                 (check_with_limit takes a larger budget)"
            ),
        }
    }
}

impl std::error::Error for CheckError {}

/// Checks that `history` is linearizable, with [`DEFAULT_MAX_STEPS_PER_KEY`] steps per key.
///
/// Operations may be given in any order. Operations that definitely failed must be removed
/// first; those whose outcome is unknown stay, with `completed: None`.
///
/// # Panics
///
/// If an operation completed before it was invoked (a bug in the test's recording).
pub fn check(history: &[Operation]) -> Result<Summary, CheckError> {
    check_with_limit(history, DEFAULT_MAX_STEPS_PER_KEY)
}

/// [`check`] with a budget of `max_steps_per_key` search steps per key; a key whose search needs
/// more gives [`CheckError::Inconclusive`] (unless another key has a violation).
///
/// # Panics
///
/// If an operation completed before it was invoked.
pub fn check_with_limit(
    history: &[Operation],
    max_steps_per_key: u64,
) -> Result<Summary, CheckError> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        if let Some(completed) = op.completed {
            assert!(
                completed >= op.invoked,
                "lincheck: operation #{index} completed before it was invoked: {op}"
            );
        }
        by_key.entry(&op.key).or_default().push(index);
    }
    let mut summary = Summary::default();
    let mut inconclusive = None;
    for (key, indices) in by_key {
        let register = Register::new(key, history, &indices)?;
        let mut stats = register.stats.clone();
        match Search::new(&register).run(max_steps_per_key) {
            Ok(steps) => stats.steps = steps,
            Err(Outcome::Inconclusive(steps)) => {
                inconclusive.get_or_insert(CheckError::Inconclusive {
                    key: key.to_string(),
                    steps,
                });
                stats.steps = steps;
            }
            Err(Outcome::Violation(explanation)) => {
                return Err(CheckError::Violation {
                    key: key.to_string(),
                    explanation,
                });
            }
        }
        summary.operations += stats.puts + stats.indeterminate_puts + stats.gets;
        summary.ignored += stats.ignored_gets;
        summary.steps += stats.steps;
        summary.keys.insert(key.to_string(), stats);
    }
    match inconclusive {
        Some(error) => Err(error),
        None => Ok(summary),
    }
}

/// The interned value "absent".
const ABSENT: u32 = 0;

/// At most this many possible register values are shown in an explanation.
const SHOWN: usize = 4;

/// An operation on one key, values interned.
#[derive(Debug, Clone, Copy)]
struct Op {
    /// Index into the history.
    index: usize,
    action: Action,
    completed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Put(u32),
    Get(u32),
}

/// The operations on one key that the search considers.
#[derive(Debug)]
struct Register<'h> {
    history: &'h [Operation],
    ops: Vec<Op>,
    /// Interned values; `values[ABSENT]` is `None`.
    values: Vec<Option<&'h str>>,
    stats: KeySummary,
}

impl<'h> Register<'h> {
    /// Interns the values of the operations `indices` of `history` (all on `key`), drops gets
    /// with unknown outcomes and indeterminate puts whose value nobody observed (they may as well
    /// never have taken effect), and rejects a get that observed a value nobody wrote.
    fn new(key: &str, history: &'h [Operation], indices: &[usize]) -> Result<Self, CheckError> {
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut values = vec![None];
        let mut stats = KeySummary::default();
        for &index in indices {
            if let Kind::Put { value } = &history[index].kind {
                ids.entry(value.as_str()).or_insert_with(|| {
                    values.push(Some(value.as_str()));
                    (values.len() - 1) as u32
                });
            }
        }
        let mut observed = vec![false; values.len()];
        let mut ops = Vec::with_capacity(indices.len());
        for &index in indices {
            let op = &history[index];
            let completed = op.completed.is_some();
            match &op.kind {
                Kind::Put { value } => {
                    if completed {
                        stats.puts += 1;
                    } else {
                        stats.indeterminate_puts += 1;
                    }
                    ops.push(Op {
                        index,
                        action: Action::Put(ids[value.as_str()]),
                        completed,
                    });
                }
                Kind::Get { .. } if !completed => stats.ignored_gets += 1,
                Kind::Get { observed: seen } => {
                    stats.gets += 1;
                    let id = match seen.as_deref() {
                        None => ABSENT,
                        Some(value) => *ids.get(value).ok_or_else(|| CheckError::Violation {
                            key: key.to_string(),
                            explanation: format!(
                                "{op} cannot be linearized: no put ever wrote {value:?} to {key:?}"
                            ),
                        })?,
                    };
                    observed[id as usize] = true;
                    ops.push(Op {
                        index,
                        action: Action::Get(id),
                        completed,
                    });
                }
            }
        }
        ops.retain(|op| match op.action {
            Action::Put(v) => op.completed || observed[v as usize],
            Action::Get(_) => true,
        });
        Ok(Register {
            history,
            ops,
            values,
            stats,
        })
    }

    fn value(&self, id: u32) -> Option<&'h str> {
        self.values[id as usize]
    }

    fn operation(&self, op: usize) -> &'h Operation {
        &self.history[self.ops[op].index]
    }
}

/// Why a search ended without success.
#[derive(Debug)]
enum Outcome {
    Violation(String),
    Inconclusive(u64),
}

/// A call or return event in the time-ordered entry list.
#[derive(Debug, Clone, Copy)]
struct Entry {
    op: usize,
    call: bool,
}

/// The furthest return event the search reached without having linearized its operation, and
/// the configurations it reached it in.
#[derive(Debug, Default)]
struct Frontier {
    position: usize,
    /// Most operations linearized when there.
    depth: usize,
    /// (register value, linearized set) for distinct values, at most [`SHOWN`].
    seen: Vec<(u32, Vec<u64>)>,
}

/// The Wing–Gong–Lowe search over one key.
#[derive(Debug)]
struct Search<'r, 'h> {
    register: &'r Register<'h>,
    /// Entry list positions: 0 is the head sentinel, `entries.len() - 1` the tail sentinel.
    entries: Vec<Entry>,
    prev: Vec<usize>,
    next: Vec<usize>,
    /// Position of each operation's return entry, if it completed.
    return_of: Vec<Option<usize>>,
    /// Per value: completed gets that observed it and are not linearized yet.
    unread: Vec<u32>,
    /// Per value: puts that write it and are not linearized yet.
    writers: Vec<u32>,
    /// Completed operations not linearized yet; the search succeeds when none is left.
    remaining: usize,
    /// The linearized set as a bitset, followed by one word holding the register value: the
    /// cache key of the current configuration.
    config: Vec<u64>,
    cache: HashSet<Box<[u64]>, BuildHasherDefault<WordHasher>>,
    frontier: Frontier,
}

impl<'r, 'h> Search<'r, 'h> {
    fn new(register: &'r Register<'h>) -> Self {
        let ops = &register.ops;
        let history = register.history;
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            let operation = &history[op.index];
            // Calls sort before returns at the same instant: touching operations overlap.
            events.push((operation.invoked, false, i));
            if let Some(t) = operation.completed {
                events.push((t, true, i));
            }
        }
        events.sort_unstable();
        let mut entries = Vec::with_capacity(events.len() + 2);
        entries.push(Entry {
            op: usize::MAX,
            call: false,
        });
        let mut return_of = vec![None; ops.len()];
        for &(_, is_return, op) in &events {
            if is_return {
                return_of[op] = Some(entries.len());
            }
            entries.push(Entry {
                op,
                call: !is_return,
            });
        }
        entries.push(Entry {
            op: usize::MAX,
            call: false,
        });
        let n = entries.len();
        let prev = (0..n).map(|p| p.saturating_sub(1)).collect();
        let next = (0..n).map(|p| (p + 1).min(n - 1)).collect();
        let mut unread = vec![0; register.values.len()];
        let mut writers = vec![0; register.values.len()];
        let mut remaining = 0;
        for op in ops {
            match op.action {
                Action::Put(v) => writers[v as usize] += 1,
                Action::Get(v) => unread[v as usize] += 1,
            }
            remaining += usize::from(op.completed);
        }
        Search {
            register,
            entries,
            prev,
            next,
            return_of,
            unread,
            writers,
            remaining,
            config: vec![0; ops.len().div_ceil(64) + 1],
            cache: HashSet::default(),
            frontier: Frontier::default(),
        }
    }

    /// Runs the search; the steps used on success.
    fn run(mut self, max_steps: u64) -> Result<u64, Outcome> {
        let head = 0;
        let tail = self.entries.len() - 1;
        let state_word = self.config.len() - 1;
        let mut state = ABSENT;
        // (call entry, register value before the call) of each linearized operation.
        let mut stack: Vec<(usize, u32)> = Vec::new();
        let mut steps = 0;
        let mut cur = self.next[head];
        loop {
            if self.remaining == 0 {
                return Ok(steps);
            }
            if steps >= max_steps {
                return Err(Outcome::Inconclusive(steps));
            }
            steps += 1;
            let entry = self.entries[cur];
            if entry.call {
                if let Some(after) = self.apply(entry.op, state) {
                    self.flip(entry.op);
                    self.config[state_word] = u64::from(after);
                    if !self.cache.contains(&self.config[..]) {
                        self.cache.insert(self.config.clone().into_boxed_slice());
                        stack.push((cur, state));
                        state = after;
                        self.lift(cur);
                        self.account(entry.op, true);
                        cur = self.next[head];
                        continue;
                    }
                    self.flip(entry.op);
                }
                cur = self.next[cur];
            } else {
                // The return of an operation not linearized yet (the tail cannot be reached
                // while a completed operation remains, since its return lies before the tail).
                if cur != tail {
                    self.record(cur, state, stack.len());
                }
                let Some((call, before)) = stack.pop() else {
                    return Err(Outcome::Violation(self.explain()));
                };
                let op = self.entries[call].op;
                self.account(op, false);
                self.unlift(call);
                self.flip(op);
                state = before;
                cur = self.next[call];
            }
        }
    }

    /// The register value after linearizing `op` on `state`, or `None` if it cannot be
    /// linearized there (or need not be).
    fn apply(&self, op: usize, state: u32) -> Option<u32> {
        let op = &self.register.ops[op];
        match op.action {
            Action::Get(seen) => (seen == state).then_some(state),
            Action::Put(value) => {
                // An indeterminate put whose value nobody still has to read may as well never
                // take effect: its value would be overwritten before anyone looked.
                if !op.completed && self.unread[value as usize] == 0 {
                    return None;
                }
                // Overwriting a value that a get still has to observe, when no put left can
                // write it again, can only lead to a dead end.
                let s = state as usize;
                if value != state && self.unread[s] > 0 && self.writers[s] == 0 {
                    return None;
                }
                Some(value)
            }
        }
    }

    /// Updates the counters when `op` is linearized (`done`) or un-linearized.
    fn account(&mut self, op: usize, done: bool) {
        let op = self.register.ops[op];
        let counter = match op.action {
            Action::Put(v) => &mut self.writers[v as usize],
            Action::Get(v) => &mut self.unread[v as usize],
        };
        if done {
            *counter -= 1;
            self.remaining -= usize::from(op.completed);
        } else {
            *counter += 1;
            self.remaining += usize::from(op.completed);
        }
    }

    fn flip(&mut self, op: usize) {
        self.config[op / 64] ^= 1 << (op % 64);
    }

    /// Removes the call entry at `call` and its return entry from the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(ret) = self.return_of[self.entries[call].op] {
            self.unlink(ret);
        }
    }

    /// Undoes [`Search::lift`] (in reverse order, as the links require).
    fn unlift(&mut self, call: usize) {
        if let Some(ret) = self.return_of[self.entries[call].op] {
            self.relink(ret);
        }
        self.relink(call);
    }

    fn unlink(&mut self, p: usize) {
        let (prev, next) = (self.prev[p], self.next[p]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, p: usize) {
        let (prev, next) = (self.prev[p], self.next[p]);
        self.next[prev] = p;
        self.prev[next] = p;
    }

    fn record(&mut self, position: usize, state: u32, depth: usize) {
        let frontier = &mut self.frontier;
        if position > frontier.position {
            *frontier = Frontier {
                position,
                depth,
                seen: Vec::new(),
            };
        }
        if position == frontier.position {
            frontier.depth = frontier.depth.max(depth);
            if frontier.seen.len() < SHOWN && frontier.seen.iter().all(|&(s, _)| s != state) {
                let linearized = self.config[..self.config.len() - 1].to_vec();
                frontier.seen.push((state, linearized));
            }
        }
    }

    /// Describes the furthest point the search reached.
    fn explain(&self) -> String {
        let register = self.register;
        let frontier = &self.frontier;
        if frontier.position == 0 {
            // Not reached: the search only fails at the return of some operation.
            return "no order of the operations is consistent".to_string();
        }
        let op = self.entries[frontier.position].op;
        let operation = register.operation(op);
        let total = register.ops.len();
        let depth = frontier.depth;
        let mut text = format!(
            "{operation} cannot be linearized: at most {depth} of the {total} operations on \
             the key can be ordered consistently before it must have taken effect, "
        );
        let mut states: Vec<&(u32, Vec<u64>)> = frontier.seen.iter().collect();
        if let Action::Get(seen) = register.ops[op].action {
            states.retain(|&&(s, _)| s != seen);
        }
        if states.is_empty() {
            text.push_str("and every way of continuing from there fails later");
        } else {
            let held: Vec<String> = states
                .iter()
                .map(|(s, linearized)| self.describe_value(*s, linearized))
                .collect();
            text.push_str("and then the key holds ");
            text.push_str(&held.join("; or "));
        }
        if let Action::Get(seen) = register.ops[op].action {
            text.push_str(". ");
            text.push_str(&self.writers_of(seen));
        }
        text
    }

    /// `"v" (written by put …), which must stay until get … observes it, …`.
    fn describe_value(&self, value: u32, linearized: &[u64]) -> String {
        let register = self.register;
        let mut text = show(register.value(value));
        if value == ABSENT {
            text.push_str(" (nothing has been put yet)");
        } else {
            let writers: Vec<String> = self
                .puts_of(value)
                .filter(|&i| is_set(linearized, i))
                .take(2)
                .map(|i| register.operation(i).to_string())
                .collect();
            text.push_str(&format!(" (written by {})", writers.join(" or ")));
        }
        let pending_writers = self.puts_of(value).any(|i| !is_set(linearized, i));
        let readers: Vec<usize> = (0..register.ops.len())
            .filter(|&i| {
                register.ops[i].action == Action::Get(value)
                    && register.ops[i].completed
                    && !is_set(linearized, i)
            })
            .collect();
        if !readers.is_empty() && !pending_writers {
            let shown: Vec<String> = readers
                .iter()
                .take(2)
                .map(|&i| register.operation(i).to_string())
                .collect();
            let more = match readers.len() {
                0..=2 => String::new(),
                n => format!(" and {} other gets", n - 2),
            };
            text.push_str(&format!(
                ", which no put can overwrite yet because {}{more} still {} to observe it \
                 and no remaining put writes it",
                shown.join(" and "),
                if readers.len() == 1 { "has" } else { "have" },
            ));
        }
        text
    }

    /// `"v" is written by put …` for an observed value.
    fn writers_of(&self, value: u32) -> String {
        let register = self.register;
        let shown = show(register.value(value));
        if value == ABSENT {
            return format!("{shown} is only possible before the first put takes effect");
        }
        let writers: Vec<String> = self
            .puts_of(value)
            .take(3)
            .map(|i| register.operation(i).to_string())
            .collect();
        format!("{shown} is written only by {}", writers.join(" and "))
    }

    fn puts_of(&self, value: u32) -> impl Iterator<Item = usize> + '_ {
        let ops = &self.register.ops;
        (0..ops.len()).filter(move |&i| ops[i].action == Action::Put(value))
    }
}

fn is_set(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

/// `"v"`, or `absent`.
fn show(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "absent".to_string(),
    }
}

/// Nanoseconds as `1.000000200s`.
fn seconds(ns: u64) -> String {
    format!("{}.{:09}s", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// A fast hasher for the cache's word slices (multiply–rotate per word, then a final mix so the
/// low bits the table indexes by depend on every word).
#[derive(Debug, Default)]
struct WordHasher(u64);

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn put(client: u64, value: &str, invoked: u64, completed: u64) -> Operation {
        Operation::put(client, "x", value, invoked, Some(completed))
    }

    fn put_unknown(client: u64, value: &str, invoked: u64) -> Operation {
        Operation::put(client, "x", value, invoked, None)
    }

    fn get(client: u64, observed: Option<&str>, invoked: u64, completed: u64) -> Operation {
        Operation::get(client, "x", observed, invoked, Some(completed))
    }

    /// The explanation of a violation on key "x"; fails the test otherwise.
    fn violation(history: &[Operation]) -> String {
        match check(history) {
            Err(CheckError::Violation { key, explanation }) => {
                assert_eq!(key, "x");
                explanation
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn sequential_history_passes() {
        let history = vec![
            get(1, None, 0, 5),
            put(1, "a", 10, 20),
            get(2, Some("a"), 30, 40),
            put(2, "b", 50, 60),
            get(1, Some("b"), 70, 80),
            Operation::get(3, "y", None, 0, Some(100)),
        ];
        let summary = check(&history).unwrap();
        assert_eq!(summary.operations, 6);
        assert_eq!(summary.ignored, 0);
        assert_eq!(summary.keys.len(), 2);
        let x = &summary.keys["x"];
        assert_eq!((x.puts, x.gets, x.indeterminate_puts), (2, 3, 0));
        assert!(summary.steps > 0);
    }

    #[test]
    fn overlapping_put_and_get_pass_with_either_outcome() {
        for seen in [None, Some("a")] {
            let history = vec![put(1, "a", 0, 10), get(2, seen, 5, 15)];
            check(&history).unwrap_or_else(|e| panic!("observing {seen:?}: {e}"));
        }
        // Two concurrent puts may take effect in either order.
        for last in ["a", "b"] {
            let history = vec![
                put(1, "a", 0, 100),
                put(2, "b", 0, 100),
                get(3, Some(last), 200, 210),
                get(3, Some(last), 220, 230),
            ];
            check(&history).unwrap_or_else(|e| panic!("last {last}: {e}"));
        }
    }

    #[test]
    fn touching_operations_count_as_concurrent() {
        check(&[put(1, "a", 0, 10), get(2, None, 10, 20)]).unwrap();
    }

    #[test]
    fn operations_display_for_messages() {
        let put = Operation::put(1, "k", "v", 20, Some(1_500_000_030));
        assert_eq!(
            put.to_string(),
            "client 1's put of \"v\" to \"k\" [invoked at 0.000000020s, completed at 1.500000030s]"
        );
        let get = Operation::get(3, "k", None, 40, None);
        assert_eq!(
            get.to_string(),
            "client 3's get of \"k\" (observed absent) [invoked at 0.000000040s, outcome unknown]"
        );
    }

    #[test]
    fn stale_read_fails_naming_the_get() {
        let history = vec![
            put(1, "a", 0, 10),
            put(2, "b", 20, 30),
            get(3, Some("a"), 40, 50),
        ];
        let explanation = violation(&history);
        assert!(
            explanation.contains(&history[2].to_string()),
            "{explanation}"
        );
        // Order of the input does not matter.
        let reversed: Vec<Operation> = history.iter().rev().cloned().collect();
        assert!(violation(&reversed).contains(&history[2].to_string()));
    }

    #[test]
    fn stale_read_among_other_gets_names_the_possible_values() {
        let history = vec![
            put(1, "a", 0, 10),
            get(2, Some("a"), 12, 14),
            put(1, "b", 20, 30),
            get(2, Some("b"), 32, 34),
            get(3, Some("a"), 40, 50),
        ];
        let explanation = violation(&history);
        assert!(explanation.contains("client 3"), "{explanation}");
        assert!(explanation.contains("\"b\""), "{explanation}");
    }

    #[test]
    fn read_of_a_value_never_written_fails() {
        let history = vec![put(1, "a", 0, 10), get(2, Some("ghost"), 20, 30)];
        let explanation = violation(&history);
        assert!(explanation.contains("\"ghost\""), "{explanation}");
        assert!(explanation.contains("client 2"), "{explanation}");
    }

    #[test]
    fn read_of_absent_after_a_put_completed_fails() {
        let history = vec![put(1, "a", 0, 10), get(2, None, 20, 30)];
        let explanation = violation(&history);
        assert!(
            explanation.contains(&history[1].to_string()),
            "{explanation}"
        );
    }

    #[test]
    fn indeterminate_put_observed_later_passes() {
        let history = vec![
            put(1, "a", 0, 10),
            put_unknown(2, "b", 20),
            get(3, Some("a"), 30, 40),
            get(3, Some("b"), 1_000, 1_010),
            get(1, Some("b"), 1_020, 1_030),
            put(1, "c", 1_040, 1_050),
            get(3, Some("c"), 1_060, 1_070),
        ];
        let summary = check(&history).unwrap();
        assert_eq!(summary.keys["x"].indeterminate_puts, 1);
    }

    #[test]
    fn indeterminate_put_takes_effect_at_most_once() {
        let history = vec![
            put(1, "a", 0, 10),
            put_unknown(2, "b", 20),
            get(3, Some("b"), 30, 40),
            put(1, "c", 50, 60),
            get(3, Some("b"), 70, 80),
        ];
        let explanation = violation(&history);
        assert!(explanation.contains("client 3"), "{explanation}");
    }

    #[test]
    fn indeterminate_put_never_observed_passes() {
        let history = vec![
            put(1, "a", 0, 10),
            put_unknown(2, "b", 20),
            get(3, Some("a"), 30, 40),
            get(3, Some("a"), 1_000_000, 1_000_010),
        ];
        check(&history).unwrap();
    }

    #[test]
    fn get_with_unknown_outcome_is_ignored() {
        let history = vec![
            put(1, "a", 0, 10),
            Operation::get(2, "x", Some("nonsense"), 20, None),
        ];
        let summary = check(&history).unwrap();
        assert_eq!(summary.ignored, 1);
        assert_eq!(summary.operations, 1);
    }

    #[test]
    fn get_observing_a_put_invoked_after_it_completed_fails() {
        let history = vec![get(1, Some("v"), 0, 10), put(2, "v", 20, 30)];
        let explanation = violation(&history);
        assert!(
            explanation.contains(&history[0].to_string()),
            "{explanation}"
        );
        assert!(
            explanation.contains(&history[1].to_string()),
            "{explanation}"
        );
    }

    #[test]
    fn violation_names_its_key() {
        let history = vec![
            Operation::put(1, "a", "1", 0, Some(10)),
            Operation::get(2, "a", Some("1"), 20, Some(30)),
            Operation::get(2, "b", Some("1"), 20, Some(30)),
        ];
        match check(&history) {
            Err(CheckError::Violation { key, .. }) => assert_eq!(key, "b"),
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    #[should_panic(expected = "completed before it was invoked")]
    fn completion_before_invocation_panics() {
        let _ = check(&[put(1, "a", 10, 5)]);
    }

    /// A hard instance: `n` concurrent puts and `n` concurrent gets, each get seeing one of the
    /// puts, then two reads that no order allows. Exponentially many orders must be refuted.
    fn hard_history(n: usize) -> Vec<Operation> {
        let mut history = Vec::new();
        for i in 0..n {
            let value = i.to_string();
            history.push(put(i as u64, &value, 0, 100));
            history.push(get(100 + i as u64, Some(&value), 0, 100));
        }
        history.push(get(1_000, Some("0"), 200, 300));
        history.push(get(1_000, Some("1"), 400, 500));
        history
    }

    #[test]
    fn hard_history_is_inconclusive_with_a_tiny_budget() {
        match check_with_limit(&hard_history(16), 1_000) {
            Err(CheckError::Inconclusive { key, steps }) => {
                assert_eq!(key, "x");
                assert_eq!(steps, 1_000);
            }
            other => panic!("expected inconclusive, got {other:?}"),
        }
        // A small instance of the same shape is decided.
        violation(&hard_history(5));
    }

    /// xorshift64: a deterministic generator for the randomized tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A linearizable history: `clients` clients each issue operations one after another on an
    /// atomic store of `keys` registers; each takes effect at a random instant within its call,
    /// about 10% of the puts have an unknown outcome (taking effect, possibly long after, or
    /// never), and a few gets have an unknown outcome.
    fn random_history(seed: u64, clients: u64, total: u64, keys: u64) -> Vec<Operation> {
        let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut history = Vec::new();
        let mut effects: Vec<(u64, usize)> = Vec::new();
        for client in 0..clients {
            // Distinct clients never share an instant, so the effects' order is well defined.
            let stamp = |t: u64| t * 16 + client;
            let mut t = rng.below(100);
            for _ in 0..total / clients {
                let invoked = t + rng.below(50);
                let duration = 1 + rng.below(300);
                let effect = stamp(invoked + rng.below(duration));
                let key = format!("k{}", rng.below(keys));
                let index = history.len();
                if rng.below(2) == 0 {
                    let value = format!("v{index}");
                    if rng.below(10) == 0 {
                        history.push(Operation::put(client, key, value, stamp(invoked), None));
                        if rng.below(2) == 0 {
                            effects.push((stamp(invoked + rng.below(3_000)), index));
                        }
                    } else {
                        let completed = Some(stamp(invoked + duration));
                        history.push(Operation::put(
                            client,
                            key,
                            value,
                            stamp(invoked),
                            completed,
                        ));
                        effects.push((effect, index));
                    }
                } else if rng.below(30) == 0 {
                    history.push(Operation::get(
                        client,
                        key,
                        Some("junk"),
                        stamp(invoked),
                        None,
                    ));
                } else {
                    let completed = Some(stamp(invoked + duration));
                    history.push(Operation::get(client, key, None, stamp(invoked), completed));
                    effects.push((effect, index));
                }
                t = invoked + duration;
            }
        }
        effects.sort_unstable();
        let mut store: HashMap<String, String> = HashMap::new();
        for (_, index) in effects {
            let op = &mut history[index];
            match &mut op.kind {
                Kind::Put { value } => {
                    store.insert(op.key.clone(), value.clone());
                }
                Kind::Get { observed } => *observed = store.get(&op.key).cloned(),
            }
        }
        history
    }

    /// Makes one get in the second half of `history` read a value that was definitely
    /// overwritten before it was invoked; returns its index.
    fn make_stale(history: &mut [Operation]) -> usize {
        let completed_put = |op: &Operation| match (&op.kind, op.completed) {
            (Kind::Put { value }, Some(done)) => Some((value.clone(), op.invoked, done)),
            _ => None,
        };
        for g in history.len() / 2..history.len() {
            let (Kind::Get { .. }, Some(_)) = (&history[g].kind, history[g].completed) else {
                continue;
            };
            let key = &history[g].key;
            let puts: Vec<(String, u64, u64)> = history
                .iter()
                .filter(|op| &op.key == key)
                .filter_map(completed_put)
                .collect();
            let older = puts.iter().find(|(_, _, done1)| {
                puts.iter()
                    .any(|(_, invoked2, done2)| done1 < invoked2 && *done2 < history[g].invoked)
            });
            if let Some((value, _, _)) = older {
                history[g].kind = Kind::Get {
                    observed: Some(value.clone()),
                };
                return g;
            }
        }
        panic!("no get to make stale");
    }

    /// Whether `history` (one key) is linearizable, by trying every order: the reference for
    /// [`agrees_with_brute_force_on_small_histories`].
    fn brute_force(history: &[Operation]) -> bool {
        fn extend(ops: &[&Operation], used: &mut Vec<bool>, state: Option<&str>) -> bool {
            let done = |i: usize| used[i] || ops[i].completed.is_none();
            if (0..ops.len()).all(done) {
                return true;
            }
            for o in 0..ops.len() {
                // `o` may come next unless an unplaced operation completed before it started.
                let blocked = (0..ops.len())
                    .any(|p| !used[p] && ops[p].completed.is_some_and(|c| c < ops[o].invoked));
                if used[o] || blocked {
                    continue;
                }
                let after = match &ops[o].kind {
                    Kind::Put { value } => Some(value.as_str()),
                    Kind::Get { observed } if observed.as_deref() == state => state,
                    Kind::Get { .. } => continue,
                };
                used[o] = true;
                let found = extend(ops, used, after);
                used[o] = false;
                if found {
                    return true;
                }
            }
            false
        }
        let ops: Vec<&Operation> = history
            .iter()
            .filter(|op| op.completed.is_some() || matches!(op.kind, Kind::Put { .. }))
            .collect();
        extend(&ops, &mut vec![false; ops.len()], None)
    }

    #[test]
    fn agrees_with_brute_force_on_small_histories() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let values = ["a", "b", "c"];
        let (mut passed, mut failed) = (0, 0);
        for round in 0..4_000 {
            let n = 1 + rng.below(7);
            let history: Vec<Operation> = (0..n)
                .map(|client| {
                    let invoked = rng.below(20);
                    let completed = (rng.below(5) != 0).then(|| invoked + rng.below(10));
                    let value = values[rng.below(3) as usize];
                    if rng.below(2) == 0 {
                        Operation::put(client, "x", value, invoked, completed)
                    } else {
                        let seen = (rng.below(4) != 0).then_some(value);
                        Operation::get(client, "x", seen, invoked, completed)
                    }
                })
                .collect();
            let expected = brute_force(&history);
            match check(&history) {
                Ok(_) if expected => passed += 1,
                Err(CheckError::Violation { .. }) if !expected => failed += 1,
                other => panic!(
                    "round {round}: brute force says {expected}, check says {other:?} for {history:#?}"
                ),
            }
        }
        assert!(
            passed > 500 && failed > 500,
            "{passed} passed, {failed} failed"
        );
    }

    #[test]
    fn random_linearizable_histories_pass_and_a_stale_read_fails() {
        for seed in 1..=4 {
            let mut history = random_history(seed, 8, 2_000, 10);
            let start = Instant::now();
            let summary = check(&history).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let elapsed = start.elapsed();
            eprintln!(
                "seed {seed}: {} operations, {} ignored, {} steps, {elapsed:?}",
                summary.operations, summary.ignored, summary.steps
            );
            assert_eq!(summary.operations + summary.ignored, 2_000);
            assert_eq!(summary.keys.len(), 10);
            let indeterminate: usize = summary.keys.values().map(|k| k.indeterminate_puts).sum();
            assert!(
                indeterminate > 50,
                "only {indeterminate} indeterminate puts"
            );
            assert!(elapsed.as_secs() < 10, "seed {seed}: took {elapsed:?}");

            let stale = make_stale(&mut history);
            let start = Instant::now();
            match check(&history) {
                Err(CheckError::Violation { key, explanation }) => {
                    eprintln!("seed {seed}: {:?}: {explanation}", start.elapsed());
                    assert_eq!(key, history[stale].key);
                    assert!(
                        explanation.contains(&history[stale].to_string()),
                        "seed {seed}: {explanation}"
                    );
                }
                other => panic!("seed {seed}: expected a violation, got {other:?}"),
            }
        }
    }
}
