//! Slice doc comments as rustdoc.
//!
//! Slice doc comments are Javadoc: a description in HTML-flavoured prose with inline tags
//! (`{@link X}`, `{@link X#op label}`, `{@code …}`), then block tags (`@param`, `@return`,
//! `@throws` or `@exception`, `@see`, `@deprecated`). [`rustdoc`] turns one into Markdown that
//! rustdoc renders without a warning:
//!
//! - a link becomes an intra-doc link when the generator resolves its target to a generated item
//!   (the caller's [`Context::resolve`]), else the reference as code;
//! - HTML elements become Markdown (`<p>` paragraphs, `<b>`/`<em>` emphasis, `<code>` code,
//!   `<ul>`/`<ol>`/`<dl>` lists, `<pre>` a `text` code block, `<a href>` a link); any other `<` is
//!   escaped, so `sequence<T>` in prose stays text;
//! - brackets, stray backticks and backslashes are escaped, a TeX-style quote (`` `name' ``) becomes
//!   code, bare URLs become autolinks, and leading indentation is dropped (in HTML it means
//!   nothing; kept, it would make indented code blocks, which rustdoc runs as doctests), so prose
//!   never becomes a link, an HTML tag or a doctest;
//! - block tags become the sections a Rust user expects: `# Arguments`, `# Returns`, `# Errors`
//!   and `# See also`, with `@deprecated` and `@since` as labelled paragraphs.
//!
//! Markdown the comment itself uses (backticks, emphasis, lists, fenced blocks, which become
//! `text` blocks) keeps its meaning.

/// A generated Rust item that a doc link resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The item's path, valid from the module of the documented item (`super::ice::IdentityPrx`,
    /// `Point::x`).
    pub path: String,
    /// How the link reads when the comment gives no label (`Identity`, `Locator::find_object_by_id`).
    pub text: String,
}

/// A parameter of the documented operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its Slice name, as `@param` names it.
    pub slice: String,
    /// Its Rust name (a method argument, or a field of the results struct when it is `out`).
    pub rust: String,
    /// Whether it is an out-parameter.
    pub out: bool,
}

/// Where a comment goes: how to resolve its links, and the parameters it may document.
pub struct Context<'a> {
    /// Resolves a Javadoc reference (`X`, `A::X`, `X#member`, `#member`, argument lists removed)
    /// to a generated item; `None` leaves the reference as code.
    pub resolve: &'a dyn Fn(&str) -> Option<Target>,
    /// The parameters of the documented operation, in order; empty for other items.
    pub params: &'a [Param],
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// A comment split into its description and its block tags.
struct Comment {
    description: String,
    /// Tag name (without `@`) and body, in order.
    tags: Vec<(String, String)>,
}

/// Splits a comment at its block tags: lines starting with `@name`, outside `<pre>` and fenced
/// blocks.
fn split(raw: &str) -> Comment {
    let mut description = String::new();
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut in_pre = false;
    let mut in_fence = false;
    for line in raw.lines() {
        let trimmed = line.trim_start();
        let tag = (!in_pre && !in_fence)
            .then(|| trimmed.strip_prefix('@'))
            .flatten()
            .filter(|t| t.starts_with(|c: char| c.is_ascii_alphabetic()));
        if let Some(t) = tag {
            let end = t
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(t.len());
            tags.push((t[..end].to_string(), t[end..].trim_start().to_string()));
        } else {
            let body = match tags.last_mut() {
                Some((_, body)) => body,
                None => &mut description,
            };
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(line);
        }
        if is_fence(trimmed).is_some() {
            in_fence = !in_fence;
        } else if !in_fence {
            let lower = trimmed.to_ascii_lowercase();
            let opens = lower.matches("<pre").count();
            let closes = lower.matches("</pre").count();
            if opens > closes {
                in_pre = true;
            } else if closes > opens {
                in_pre = false;
            }
        }
    }
    Comment { description, tags }
}

/// The Markdown (rustdoc) text of a Slice doc comment: its description, then its block tags as
/// sections. Out-parameters documented with `@param` are listed under `# Returns`, next to
/// `return_value`, as the results struct names them.
pub fn rustdoc(raw: &str, cx: &Context) -> String {
    let comment = split(raw);
    let mut blocks: Vec<String> = Vec::new();
    let description = markdown(&comment.description, cx);
    if !description.is_empty() {
        blocks.push(description);
    }
    let mut arguments = Vec::new();
    let mut returns = Vec::new();
    let mut outs = Vec::new();
    let mut errors = Vec::new();
    let mut see = Vec::new();
    let has_outs = cx.params.iter().any(|p| p.out);
    for (tag, body) in &comment.tags {
        match tag.as_str() {
            "param" => {
                let (name, text) = first_word(body);
                if name.is_empty() {
                    continue;
                }
                let text = markdown(text, cx);
                match find_param(cx.params, name) {
                    Some(p) if p.out => outs.push(bullet(&code_span(&p.rust), &text)),
                    Some(p) => arguments.push(bullet(&code_span(&p.rust), &text)),
                    None => arguments.push(bullet(&code_span(name), &text)),
                }
            }
            "return" | "returns" => {
                let text = markdown(body, cx);
                if has_outs {
                    returns.push(bullet(&code_span("return_value"), &text));
                } else if !text.is_empty() {
                    returns.push(text);
                }
            }
            "throws" | "exception" => {
                let (name, text) = reference_and_rest(body);
                let text = markdown(text, cx);
                if name.is_empty() {
                    if !text.is_empty() {
                        errors.push(bullet("", &text));
                    }
                } else {
                    errors.push(bullet(&link_markdown(name, None, cx), &text));
                }
            }
            "see" => {
                let body = body.trim();
                let (name, label) = reference_and_rest(body);
                let item = if name.is_empty() {
                    markdown(body.trim_matches('"'), cx)
                } else {
                    let label = label.trim();
                    link_markdown(name, (!label.is_empty()).then_some(label), cx)
                };
                if !item.is_empty() {
                    see.push(bullet(&item, ""));
                }
            }
            "author" | "version" | "serial" | "serialData" | "serialField" => {}
            other => {
                let mut label: String = other[..1].to_ascii_uppercase();
                label.push_str(&other[1..]);
                blocks.push(labelled(&label, &markdown(body, cx)));
            }
        }
    }
    if has_outs {
        returns.extend(outs);
    } else {
        arguments.extend(outs);
    }
    for (heading, items) in [
        ("Arguments", arguments),
        ("Returns", returns),
        ("Errors", errors),
        ("See also", see),
    ] {
        if items.is_empty() {
            continue;
        }
        let list = items.iter().all(|i| i.starts_with("* "));
        let body = items.join(if list { "\n" } else { "\n\n" });
        blocks.push(format!("# {heading}\n\n{body}"));
    }
    blocks.join("\n\n")
}

/// The Markdown of what `@param name` says, for a field holding that out-parameter.
pub fn param(raw: &str, name: &str, cx: &Context) -> Option<String> {
    split(raw)
        .tags
        .iter()
        .filter(|(tag, _)| tag == "param")
        .find_map(|(_, body)| {
            let (n, text) = first_word(body);
            (n == name).then(|| markdown(text, cx))
        })
        .filter(|t| !t.is_empty())
}

/// The Markdown of what `@return` says, for a field holding the return value.
pub fn returns(raw: &str, cx: &Context) -> Option<String> {
    split(raw)
        .tags
        .iter()
        .find(|(tag, _)| tag == "return" || tag == "returns")
        .map(|(_, body)| markdown(body, cx))
        .filter(|t| !t.is_empty())
}

fn find_param<'p>(params: &'p [Param], name: &str) -> Option<&'p Param> {
    params
        .iter()
        .find(|p| p.slice == name)
        .or_else(|| params.iter().find(|p| p.slice.eq_ignore_ascii_case(name)))
}

/// The first whitespace-separated word of `s`, and the rest.
fn first_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// A Javadoc reference at the start of `s` (which may hold an argument list with spaces, as in
/// `X#op(int, string)`), and the rest; an empty reference when `s` does not start with one.
fn reference_and_rest(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let mut depth = 0usize;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() && depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let reference = &s[..end];
    let name = strip_arguments(reference);
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '#' | '.' | '\\'))
        && name.chars().any(char::is_alphanumeric)
        && !name.ends_with('.');
    if valid {
        (reference, s[end..].trim_start())
    } else {
        ("", s)
    }
}

/// Whether Markdown starts with a block that must start a line of its own: a code block or a
/// list.
fn starts_block(text: &str) -> bool {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    is_fence(text).is_some()
        || text.starts_with(['-', '*', '+']) && text[1..].starts_with([' ', '\n'])
        || text == "-"
        || digits > 0 && text[digits..].starts_with(['.', ')'])
}

/// A paragraph opening with a bold label: `**Deprecated:** text`.
fn labelled(label: &str, text: &str) -> String {
    if text.is_empty() {
        format!("**{label}.**")
    } else if starts_block(text) {
        format!("**{label}:**\n\n{text}")
    } else {
        format!("**{label}:** {text}")
    }
}

/// A list item: `* head - text`, continuation lines indented under it.
fn bullet(head: &str, text: &str) -> String {
    let body = match (head.is_empty(), text.is_empty()) {
        (true, _) => text.to_string(),
        (false, true) => head.to_string(),
        (false, false) if starts_block(text) => format!("{head}:\n\n{text}"),
        (false, false) => format!("{head} - {text}"),
    };
    let mut out = String::from("* ");
    for (i, line) in body.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str("  ");
            }
        }
        out.push_str(line);
    }
    out
}

/// A Markdown code span holding `content` literally.
fn code_span(content: &str) -> String {
    let content = content.split_whitespace().collect::<Vec<_>>().join(" ");
    if content.is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if content.starts_with('`') || content.ends_with('`') {
        format!("{fence} {content} {fence}")
    } else {
        format!("{fence}{content}{fence}")
    }
}

/// Whether Markdown holds a link (an unescaped `[`, or `<` of an autolink).
fn has_link(markdown: &str) -> bool {
    let mut escaped = false;
    for c in markdown.chars() {
        match c {
            '\\' => escaped = !escaped,
            '[' | '<' if !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

/// Escapes text so that Markdown shows it as it is; the slashes of `://` are escaped too, so
/// that a URL in it is not a bare URL.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = None;
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '/' if matches!(prev, Some(':' | '/')) => out.push_str("\\/"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// How an unresolved reference reads: `X#op(int)` as `X::op`, `#op` as `op`.
fn reference_text(reference: &str) -> String {
    let reference = strip_arguments(reference);
    match reference.split_once('#') {
        Some(("", member)) => member.to_string(),
        Some((ty, member)) => format!("{ty}::{member}"),
        None => reference.to_string(),
    }
}

/// A reference without a trailing argument list: `X#op(int, string)` as `X#op`.
fn strip_arguments(reference: &str) -> &str {
    match reference.find('(') {
        Some(i) => reference[..i].trim_end(),
        None => reference.trim_end(),
    }
}

/// A link to `reference` (reading `label` if given) as Markdown.
fn link_markdown(reference: &str, label: Option<&str>, cx: &Context) -> String {
    let reference = strip_arguments(reference.trim());
    if reference.is_empty() {
        return label.map(|l| markdown(l, cx)).unwrap_or_default();
    }
    let target = (cx.resolve)(reference).or_else(|| {
        // Java-style `Ice.Identity`, should a comment use it.
        let scoped = reference.replace('.', "::");
        (scoped != reference)
            .then(|| (cx.resolve)(&scoped))
            .flatten()
    });
    // A label is inline text: its Markdown on one line, or, when that holds blocks (which have
    // no place in a link), its plain text.
    let label = label.map(|l| {
        let md = markdown(l, cx);
        let one_line = if md.contains("\n\n") || md.contains("```") {
            escape_text(&plain_text(l))
        } else {
            md
        };
        one_line.split_whitespace().collect::<Vec<_>>().join(" ")
    });
    match (target, label) {
        // A label that holds links of its own reads as it is, unlinked.
        (_, Some(label)) if has_link(&label) => label,
        (t, Some(label)) => link_with_label(t, label),

        // The link text is the path itself: an explicit target would be redundant.
        (Some(t), None) if t.text == t.path => format!("[{}]", code_span(&t.text)),
        (Some(t), None) => format!("[{}]({})", code_span(&t.text), t.path),
        (None, None) => code_span(&reference_text(reference)),
    }
}

/// A link reading `label` (Markdown of one paragraph) to `target`, or the label alone.
fn link_with_label(target: Option<Target>, label: String) -> String {
    match target {
        Some(t) if label == t.path => format!("[{label}]"),
        Some(t) => format!("[{label}]({})", t.path),
        None => label,
    }
}

/// Converts HTML-flavoured Javadoc prose (without block tags) to Markdown.
fn markdown(text: &str, cx: &Context) -> String {
    let mut w = Writer::new(cx);
    let mut rest = text;
    let mut line_start = true;
    while !rest.is_empty() {
        if line_start {
            let trimmed = rest.trim_start_matches([' ', '\t', '\r']);
            if trimmed.is_empty() {
                break;
            }
            if let Some(after) = trimmed.strip_prefix('\n') {
                w.blank_line();
                rest = after;
                continue;
            }
            if let Some(fence) = is_fence(trimmed) {
                rest = w.fenced_block(trimmed, fence);
                continue;
            }
            rest = trimmed;
            line_start = false;
            w.newline();
        }
        let c = rest.chars().next().unwrap_or(' ');
        let used = match c {
            '\n' => {
                line_start = true;
                1
            }
            '{' if rest.starts_with("{@") => w.inline_tag(rest),
            '<' => w.html(rest),
            '`' => w.backticks(rest),
            '&' => w.entity(rest),
            'h' | 'H' => w.url(rest),
            '[' | ']' | '\\' => {
                w.prose(&format!("\\{c}"));
                1
            }
            '#' | '>' | '=' if w.at_line_start() => {
                w.prose(&format!("\\{c}"));
                1
            }
            _ => {
                w.prose(&rest[..c.len_utf8()]);
                c.len_utf8()
            }
        };
        rest = match rest.get(used.max(1)..) {
            Some(r) => r,
            None => &rest[c.len_utf8().min(rest.len())..],
        };
    }
    w.finish()
}

/// The fence of a fenced code block opening at the start of `line` (three or more backticks or
/// tildes).
fn is_fence(line: &str) -> Option<&str> {
    for ch in ['`', '~'] {
        let n = line.chars().take_while(|&c| c == ch).count();
        if n >= 3 {
            return Some(&line[..n]);
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    None,
    Line,
    Paragraph,
}

#[derive(Debug)]
struct List {
    ordered: bool,
    next: u32,
    /// Indentation of its markers.
    indent: usize,
    /// Width of its markers (`- `, `1. `).
    width: usize,
    /// Whether an item is open.
    in_item: bool,
    /// Whether the open item holds a `<dt>` awaiting its `<dd>`.
    after_term: bool,
}

/// Markdown output with the state of the HTML being converted.
struct Writer<'c, 'a> {
    cx: &'c Context<'a>,
    out: String,
    pending: Break,
    lists: Vec<List>,
    /// Open emphasis markers (`**`, `*`), innermost last.
    emphasis: Vec<&'static str>,
    /// Emphasis opened but not written yet: written before the next visible text.
    deferred: Vec<&'static str>,
    /// Whether the next text starts a Markdown line (or a list item's content).
    line_start: bool,
    /// Whether the output ends with a link in the shortcut form (`` [`Point`] ``).
    after_label: bool,
    /// Whether the output ends with a list marker: what follows starts on its line, as a list
    /// item that starts with a blank line is empty in Markdown.
    fresh_item: bool,
}

impl<'c, 'a> Writer<'c, 'a> {
    fn new(cx: &'c Context<'a>) -> Self {
        Writer {
            cx,
            out: String::new(),
            pending: Break::None,
            lists: Vec::new(),
            emphasis: Vec::new(),
            deferred: Vec::new(),
            line_start: true,
            after_label: false,
            fresh_item: false,
        }
    }

    /// Indentation of continuation lines: the content of the open list item.
    fn indent(&self) -> usize {
        match self.lists.last() {
            Some(l) if l.in_item => l.indent + l.width,
            Some(l) => l.indent,
            None => 0,
        }
    }

    fn request(&mut self, b: Break) {
        if !self.out.is_empty() {
            self.pending = self.pending.max(b);
        }
    }

    fn flush(&mut self) {
        let b = std::mem::replace(&mut self.pending, Break::None);
        if b == Break::None || self.out.is_empty() || self.fresh_item {
            return;
        }
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        self.out.push('\n');
        if b == Break::Paragraph {
            self.out.push('\n');
        }
        let indent = self.indent();
        self.out.extend(std::iter::repeat_n(' ', indent));
        self.line_start = true;
    }

    fn at_line_start(&self) -> bool {
        self.line_start || self.pending != Break::None || self.out.is_empty()
    }

    /// Writes Markdown that is already escaped, keeping it apart from what precedes it where
    /// Markdown would join them: two code spans into one, a link and a following `[` into a
    /// reference link, `(` into an inline link, `:` into a link definition, `!` and a link into
    /// an image.
    fn prose(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        let blank = s.trim().is_empty();
        if blank && (self.at_line_start() || self.out.ends_with(' ')) {
            return;
        }
        self.flush();
        if !blank {
            for marker in std::mem::take(&mut self.deferred) {
                self.out.push_str(marker);
                self.emphasis.push(marker);
            }
            self.line_start = false;
        }
        let first = s.chars().next();
        let last = self.out.chars().next_back();
        match (last, first) {
            (Some('`'), Some('`')) | (Some(']'), Some('[')) => self.out.push(' '),
            (Some('!'), Some('[')) if !escaped_at_end(&self.out) => {
                self.out.pop();
                self.out.push_str("\\!");
            }
            (Some(']'), Some('(' | ':')) if self.after_label => self.out.push('\\'),
            _ => {}
        }
        self.out.push_str(s);
        self.after_label = !blank && s.starts_with('[') && s.ends_with(']');
        self.fresh_item = false;
    }

    fn newline(&mut self) {
        self.request(Break::Line);
    }

    fn blank_line(&mut self) {
        match self.lists.last() {
            Some(l) if !l.in_item => {}
            _ => self.paragraph(),
        }
    }

    fn paragraph(&mut self) {
        self.close_emphasis();
        self.request(Break::Paragraph);
    }

    fn close_emphasis(&mut self) {
        self.deferred.clear();
        while let Some(marker) = self.emphasis.pop() {
            while self.out.ends_with(' ') {
                self.out.pop();
            }
            self.out.push_str(marker);
        }
    }

    fn open_emphasis(&mut self, marker: &'static str) {
        if !self.emphasis.contains(&marker) && !self.deferred.contains(&marker) {
            self.deferred.push(marker);
        }
    }

    fn close_marker(&mut self, marker: &'static str) {
        if let Some(i) = self.deferred.iter().position(|m| *m == marker) {
            self.deferred.remove(i);
            return;
        }
        if let Some(i) = self.emphasis.iter().rposition(|m| *m == marker) {
            let trailing = self.out.len() - self.out.trim_end_matches(' ').len();
            self.out.truncate(self.out.len() - trailing);
            // Inner markers close first, as Markdown nests them.
            for m in self.emphasis.drain(i..).rev() {
                self.out.push_str(m);
            }
            if trailing > 0 {
                self.out.push(' ');
            }
        }
    }

    fn open_list(&mut self, ordered: bool) {
        let nested = self.lists.last().is_some_and(|l| l.in_item);
        self.close_emphasis();
        if nested {
            self.request(Break::Line);
        } else {
            self.request(Break::Paragraph);
        }
        let indent = self.indent();
        self.lists.push(List {
            ordered,
            next: 1,
            indent,
            width: 2,
            in_item: false,
            after_term: false,
        });
    }

    fn close_list(&mut self) {
        self.fresh_item = false;
        self.close_emphasis();
        self.lists.pop();
        self.request(Break::Paragraph);
    }

    fn item(&mut self) {
        if self.lists.is_empty() {
            self.open_list(false);
        }
        self.close_emphasis();
        let first = self.lists.last().is_some_and(|l| l.next == 1 && !l.in_item);
        if let Some(l) = self.lists.last_mut() {
            l.in_item = false;
            l.after_term = false;
        }
        if self.fresh_item {
            // In an item still empty, a nested list starts on the item's line (`- - x`); a
            // blank line would leave the item empty and its content outside.
            self.pending = if first { Break::None } else { Break::Line };
        } else if !first && !self.out.is_empty() {
            // Items of one list stay together, whatever break their source asked for.
            self.pending = Break::Line;
        } else {
            self.request(Break::Line);
        }
        self.fresh_item = false;
        self.flush();
        let Some(l) = self.lists.last_mut() else {
            return;
        };
        let marker = if l.ordered {
            format!("{}. ", l.next)
        } else {
            "- ".to_string()
        };
        l.next += 1;
        l.width = marker.len();
        l.in_item = true;
        self.out.push_str(&marker);
        self.line_start = true;
        self.fresh_item = true;
    }

    fn end_item(&mut self) {
        self.fresh_item = false;
        self.close_emphasis();
        if let Some(l) = self.lists.last_mut() {
            l.in_item = false;
        }
        self.request(Break::Line);
    }

    /// A code block holding `lines` literally, tagged `text` so rustdoc never runs it.
    fn code_block(&mut self, lines: &[&str]) {
        let start = lines.iter().position(|l| !l.trim().is_empty());
        let end = lines.iter().rposition(|l| !l.trim().is_empty());
        let (Some(start), Some(end)) = (start, end) else {
            return;
        };
        let lines = &lines[start..=end];
        let dedent = lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let longest = lines
            .iter()
            .filter_map(|l| is_fence(l.trim_start()))
            .map(|f| f.len())
            .max()
            .unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        self.paragraph();
        self.flush();
        let indent = " ".repeat(self.indent());
        self.out.push_str(&fence);
        self.out.push_str("text");
        for line in lines {
            self.out.push('\n');
            if !line.trim().is_empty() {
                self.out.push_str(&indent);
                self.out
                    .push_str(line.get(dedent..).unwrap_or(line).trim_end());
            }
        }
        self.out.push('\n');
        self.out.push_str(&indent);
        self.out.push_str(&fence);
        self.line_start = false;
        self.fresh_item = false;
        self.request(Break::Paragraph);
    }

    /// A fenced block of the comment's own Markdown, from its opening fence in `text`; returns
    /// what follows it.
    fn fenced_block<'t>(&mut self, text: &'t str, fence: &str) -> &'t str {
        let mut lines = Vec::new();
        let mut rest = match text.find('\n') {
            Some(i) => &text[i + 1..],
            None => "",
        };
        while !rest.is_empty() {
            let (line, after) = match rest.find('\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            rest = after;
            let t = line.trim_start();
            if t.starts_with(fence) && t[fence.len()..].trim().is_empty() {
                break;
            }
            lines.push(line);
        }
        self.code_block(&lines);
        rest
    }

    /// `{@tag …}` at the start of `s`; returns the bytes used.
    fn inline_tag(&mut self, s: &str) -> usize {
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            self.prose("{");
            return 1;
        };
        let inner = &s[2..end];
        let name_end = inner
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(inner.len());
        let (name, arg) = (&inner[..name_end], inner[name_end..].trim());
        match name {
            "link" | "linkplain" | "value" => {
                let (reference, label) = reference_and_rest(arg);
                let label = label.trim();
                let md = if reference.is_empty() {
                    escape_text(arg)
                } else {
                    link_markdown(reference, (!label.is_empty()).then_some(label), self.cx)
                };
                self.prose(&md);
            }
            "code" => {
                let span = code_span(arg);
                self.prose(&span);
            }
            "docRoot" | "inheritDoc" => {}
            _ => {
                let text = escape_text(arg);
                self.prose(&text);
            }
        }
        end + 1
    }

    /// `<…>` at the start of `s`: an HTML tag converted, a comment dropped, an autolink kept, or
    /// a plain `<`; returns the bytes used.
    fn html(&mut self, s: &str) -> usize {
        if let Some(body) = s.strip_prefix("<!--") {
            return match body.find("-->") {
                Some(i) => 4 + i + 3,
                None => {
                    self.prose("&lt;");
                    1
                }
            };
        }
        if let Some(len) = autolink(s) {
            self.prose(&s[..len]);
            return len;
        }
        let Some(tag) = Tag::parse(s) else {
            self.prose("&lt;");
            return 1;
        };
        let mut used = tag.len;
        match (tag.name.as_str(), tag.closing) {
            ("p", false) => {
                if self.lists.last().is_some_and(|l| !l.in_item) {
                    return used;
                }
                self.paragraph();
                let class = tag.attr("class").unwrap_or_default().to_ascii_lowercase();
                for label in ["Note", "Warning", "Deprecated", "Important", "Caution"] {
                    if class == label.to_ascii_lowercase() {
                        self.prose(&format!("**{label}:** "));
                    }
                }
            }
            ("p", true) | ("br", _) | ("hr", _) | ("blockquote", _) | ("div", _) => {
                if self.lists.last().is_none_or(|l| l.in_item) {
                    self.paragraph();
                }
            }
            ("table" | "tr" | "thead" | "tbody" | "tfoot" | "caption" | "center", _) => {
                self.paragraph()
            }
            ("td" | "th", _) => self.prose(" "),
            ("b" | "strong", false) => self.open_emphasis("**"),
            ("b" | "strong", true) => self.close_marker("**"),
            ("i" | "em" | "cite" | "var" | "dfn", false) => self.open_emphasis("*"),
            ("i" | "em" | "cite" | "var" | "dfn", true) => self.close_marker("*"),
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", false) => {
                self.paragraph();
                self.open_emphasis("**");
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", true) => {
                self.close_marker("**");
                self.paragraph();
            }
            ("code" | "tt" | "kbd" | "samp", false) => {
                let (content, len) = element_content(&s[used..], &tag.name);
                let span = code_span(&plain_text(content));
                self.prose(&span);
                used += len;
            }
            ("pre", false) => {
                let (content, len) = element_content(&s[used..], "pre");
                let text = decode_entities(&strip_tags(content));
                let lines: Vec<&str> = text.lines().collect();
                self.code_block(&lines);
                used += len;
            }
            ("a", false) => {
                let (content, len) = element_content(&s[used..], "a");
                let text = plain_text(content);
                let text = text.trim();
                match tag.attr("href").filter(|h| is_url(h)) {
                    Some(href) if text.is_empty() => self.prose(&format!("<{href}>")),
                    Some(href) => self.prose(&format!("[{}]({href})", escape_text(text))),
                    None => self.prose(&escape_text(text)),
                }
                used += len;
            }
            ("ul", false) | ("dl", false) => self.open_list(false),
            ("ol", false) => self.open_list(true),
            ("ul" | "ol" | "dl", true) => self.close_list(),
            ("li", false) | ("dt", false) => {
                self.item();
                if tag.name == "dt" {
                    if let Some(l) = self.lists.last_mut() {
                        l.after_term = true;
                    }
                }
            }
            ("dd", false) => {
                if self.lists.last().is_some_and(|l| l.in_item && l.after_term) {
                    self.pending = Break::None;
                    self.fresh_item = false;
                    self.close_emphasis();
                    self.out.push_str(": ");
                    if let Some(l) = self.lists.last_mut() {
                        l.after_term = false;
                    }
                } else {
                    self.item();
                }
            }
            ("li" | "dd", true) => self.end_item(),
            _ => {} // Other elements (`span`, `sup`, `img`, …) are dropped, their text kept.
        }
        used
    }

    /// Backticks at the start of `s`: a code span for a TeX-style quote (`` `name' ``, as ZeroC's
    /// comments quote names), a code span when closed in the same paragraph, else escaped;
    /// returns the bytes used.
    fn backticks(&mut self, s: &str) -> usize {
        let n = s.chars().take_while(|&c| c == '`').count();
        if n == 1 {
            if let Some(len) = tex_quote(s) {
                self.prose(&code_span(&s[1..len - 1]));
                return len;
            }
        }
        let fence = &s[..n];
        let paragraph_end = paragraph_end(s);
        let mut search = n;
        while let Some(i) = s.get(search..paragraph_end).and_then(|r| r.find(fence)) {
            let at = search + i;
            let run = s[at..].chars().take_while(|&c| c == '`').count();
            if run == n {
                let content = s[n..at].replace('\n', " ");
                self.prose(&format!("{fence}{content}{fence}"));
                return at + n;
            }
            search = at + run;
        }
        self.prose(&"\\`".repeat(n));
        n
    }

    /// `&` at the start of `s`: an entity kept as it is, or a plain `&`.
    fn entity(&mut self, s: &str) -> usize {
        match entity_len(s) {
            Some(len) => {
                self.prose(&s[..len]);
                len
            }
            None => {
                self.prose("&amp;");
                1
            }
        }
    }

    /// A bare URL at the start of `s` as an autolink, or the `h` that starts `s`.
    fn url(&mut self, s: &str) -> usize {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            self.prose(&s[..1]);
            return 1;
        }
        // Characters that no URL holds unescaped end it.
        let mut end = s
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(
                        c,
                        '<' | '>' | '"' | '`' | '{' | '}' | '[' | ']' | '\\' | '|' | '^'
                    )
            })
            .unwrap_or(s.len());
        loop {
            let url = &s[..end];
            let unbalanced =
                url.ends_with(')') && url.matches('(').count() < url.matches(')').count();
            if url.ends_with(['.', ',', ';', ':', '!', '?', '\'']) || unbalanced {
                end -= 1;
            } else {
                break;
            }
        }
        let url = &s[..end];
        if url.len() <= "https://".len() {
            self.prose(&s[..1]);
            return 1;
        }
        self.prose(&format!("<{url}>"));
        end
    }

    fn finish(mut self) -> String {
        self.close_emphasis();
        let mut out = String::with_capacity(self.out.len());
        for line in self.out.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.trim().to_string()
    }
}

/// The length of a TeX-style quote at the start of `s`: a backtick, a word without spaces,
/// backticks or quotes, and a closing `'` that no letter or backtick follows.
fn tex_quote(s: &str) -> Option<usize> {
    let body = s.strip_prefix('`')?;
    let end = body.find(|c: char| c.is_whitespace() || c == '`' || c == '\'')?;
    let after = &body[end..];
    let closes = after.starts_with('\'')
        && !after[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '`');
    (end > 0 && closes).then_some(1 + end + 1)
}

/// Whether the last character of `s` is escaped by an odd run of backslashes before it.
fn escaped_at_end(s: &str) -> bool {
    let mut chars = s.chars().rev();
    chars.next();
    chars.take_while(|&c| c == '\\').count() % 2 == 1
}

/// Where the paragraph that `s` starts in ends (a blank line, or the end of `s`).
fn paragraph_end(s: &str) -> usize {
    let mut offset = 0;
    for line in s.split_inclusive('\n') {
        if offset > 0 && line.trim().is_empty() {
            return offset;
        }
        offset += line.len();
    }
    s.len()
}

/// The length of an autolink (`<https://…>`) at the start of `s`.
fn autolink(s: &str) -> Option<usize> {
    let end = s.find('>')?;
    let inner = &s[1..end];
    (is_url(inner) && !inner.contains(char::is_whitespace) && !inner.contains('<'))
        .then_some(end + 1)
}

fn is_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    ["http://", "https://", "mailto:", "ftp://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
}

/// The length of an HTML entity (`&lt;`, `&#62;`, `&#x3e;`) at the start of `s`.
fn entity_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('&')?;
    let end = body.find(';')?;
    let name = &body[..end];
    let valid = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        !hex.is_empty() && hex.len() <= 6 && hex.chars().all(|c| c.is_ascii_hexdigit())
    } else if let Some(dec) = name.strip_prefix('#') {
        !dec.is_empty() && dec.len() <= 7 && dec.chars().all(|c| c.is_ascii_digit())
    } else {
        !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric())
    };
    valid.then_some(end + 2)
}

/// Text with HTML entities decoded (for code, which shows everything literally).
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = entity_len(rest).and_then(|len| {
            let name = &rest[1..len - 1];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, len))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text with HTML tags removed (comments too); a `<` that starts no tag stays.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(body) = rest.strip_prefix("<!--") {
            if let Some(j) = body.find("-->") {
                rest = &body[j + 3..];
                continue;
            }
        }
        match Tag::parse(rest) {
            Some(tag) => rest = &rest[tag.len..],
            None => {
                out.push('<');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The literal text of HTML content, for code: tags removed, entities decoded, inline tags
/// replaced by their text.
fn plain_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("{@") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match rest.find('}') {
            Some(end) => {
                let inner = &rest[2..end];
                let name_end = inner
                    .find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(inner.len());
                let arg = inner[name_end..].trim();
                if matches!(&inner[..name_end], "link" | "linkplain" | "value") {
                    let (reference, label) = reference_and_rest(arg);
                    if label.trim().is_empty() && !reference.is_empty() {
                        out.push_str(&reference_text(reference));
                    } else {
                        out.push_str(label.trim());
                    }
                } else {
                    out.push_str(arg);
                }
                rest = &rest[end + 1..];
            }
            None => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    decode_entities(&strip_tags(&out))
}

/// The content of an element whose start tag precedes `s`, up to its end tag (or, when it is
/// never closed, the end of the paragraph); returns the content and the bytes used, end tag
/// included.
fn element_content<'s>(s: &'s str, name: &str) -> (&'s str, usize) {
    let lower = s.to_ascii_lowercase();
    let close = format!("</{name}");
    let mut from = 0;
    while let Some(i) = lower[from..].find(&close) {
        let at = from + i;
        if let Some(tag) = Tag::parse(&s[at..]) {
            if tag.closing && tag.name == name {
                return (&s[..at], at + tag.len);
            }
        }
        from = at + close.len();
    }
    let end = if name == "pre" {
        s.len()
    } else {
        paragraph_end(s)
    };
    (&s[..end], end)
}

/// An HTML tag: `<name attrs>`, `</name>` or `<name/>`, for the names of HTML elements only.
struct Tag<'s> {
    name: String,
    closing: bool,
    attrs: &'s str,
    len: usize,
}

/// HTML elements a doc comment may use. A `<` followed by any other name is text (`<T>`).
const HTML_ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "big",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
];

impl<'s> Tag<'s> {
    fn parse(s: &'s str) -> Option<Tag<'s>> {
        let body = s.strip_prefix('<')?;
        let (closing, body) = match body.strip_prefix('/') {
            Some(b) => (true, b),
            None => (false, body),
        };
        let name_len = body
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(body.len());
        let name = body[..name_len].to_ascii_lowercase();
        if !HTML_ELEMENTS.contains(&name.as_str()) {
            return None;
        }
        let after = &body[name_len..];
        if !after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            return None;
        }
        // The end of the tag: the first `>` outside quotes.
        let mut quote = None;
        for (i, c) in after.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '<') => return None,
                (None, '>') => {
                    let attrs = after[..i].trim().trim_end_matches('/').trim();
                    if closing && !attrs.is_empty() {
                        return None;
                    }
                    let len = 1 + usize::from(closing) + name_len + i + 1;
                    return Some(Tag {
                        name,
                        closing,
                        attrs,
                        len,
                    });
                }
                _ => {}
            }
        }
        None
    }

    /// The value of an attribute, quoted or not.
    fn attr(&self, name: &str) -> Option<&'s str> {
        let mut rest = self.attrs;
        while !rest.is_empty() {
            rest = rest.trim_start();
            let key_end = rest
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(rest.len());
            let key = &rest[..key_end];
            rest = rest[key_end..].trim_start();
            let Some(value_part) = rest.strip_prefix('=') else {
                if key.is_empty() {
                    return None;
                }
                continue;
            };
            let value_part = value_part.trim_start();
            let (value, after) = match value_part.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &value_part[1..];
                    match inner.find(q) {
                        Some(end) => (&inner[..end], &inner[end + 1..]),
                        None => (inner, ""),
                    }
                }
                _ => {
                    let end = value_part
                        .find(char::is_whitespace)
                        .unwrap_or(value_part.len());
                    (&value_part[..end], &value_part[end..])
                }
            };
            if key.eq_ignore_ascii_case(name) {
                return Some(value);
            }
            rest = after;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(reference: &str) -> Option<Target> {
        let t = |path: &str, text: &str| {
            Some(Target {
                path: path.into(),
                text: text.into(),
            })
        };
        match reference {
            "Point" => t("Point", "Point"),
            "Registry" => t("super::ice_grid::RegistryPrx", "Registry"),
            "#shutdown" => t("CommunicatorPrx::shutdown", "shutdown"),
            "Registry#getSessionTimeout" => t(
                "super::ice_grid::RegistryPrx::get_session_timeout",
                "Registry::get_session_timeout",
            ),
            "NotFound" => t("NotFound", "NotFound"),
            _ => None,
        }
    }

    fn convert(raw: &str) -> String {
        let params = [
            Param {
                slice: "userId".into(),
                rust: "user_id".into(),
                out: false,
            },
            Param {
                slice: "count".into(),
                rust: "count".into(),
                out: true,
            },
        ];
        rustdoc(
            raw,
            &Context {
                resolve: &resolve,
                params: &params,
            },
        )
    }

    fn prose(raw: &str) -> String {
        rustdoc(
            raw,
            &Context {
                resolve: &resolve,
                params: &[],
            },
        )
    }

    #[test]
    fn links_resolve_to_items_or_stay_code() {
        assert_eq!(
            prose("Calls {@link #shutdown} via the {@link Registry}."),
            "Calls [`shutdown`](CommunicatorPrx::shutdown) via the \
             [`Registry`](super::ice_grid::RegistryPrx)."
        );
        assert_eq!(prose("A {@link Point}."), "A [`Point`].");
        assert_eq!(
            prose("See {@link Registry the registry}."),
            "See [the registry](super::ice_grid::RegistryPrx)."
        );
        assert_eq!(
            prose("Unknown {@link ObjectAdapter#destroy(int, bool)} and {@link #close}."),
            "Unknown `ObjectAdapter::destroy` and `close`."
        );
        assert_eq!(prose("Broken {@link Foo"), "Broken {@link Foo");
    }

    #[test]
    fn block_tags_become_sections() {
        let raw = "Finds a user.\n\n\
                   @param userId The user's id, as\n    the registry knows it.\n\
                   @param count Set to the number of matches.\n\
                   @return The first match.\n\
                   @throws NotFound Raised if there is no such user.\n\
                   @exception Unknown When the moon is full.\n\
                   @see Registry#getSessionTimeout\n\
                   @see #close";
        assert_eq!(
            convert(raw),
            "Finds a user.\n\n\
             # Arguments\n\n\
             * `user_id` - The user's id, as\n  the registry knows it.\n\n\
             # Returns\n\n\
             * `return_value` - The first match.\n\
             * `count` - Set to the number of matches.\n\n\
             # Errors\n\n\
             * [`NotFound`] - Raised if there is no such user.\n\
             * `Unknown` - When the moon is full.\n\n\
             # See also\n\n\
             * [`Registry::get_session_timeout`](super::ice_grid::RegistryPrx::get_session_timeout)\n\
             * `close`"
        );
        assert_eq!(
            prose("Pings.\n@return The time.\n@deprecated Use {@link Point}."),
            "Pings.\n\n**Deprecated:** Use [`Point`].\n\n# Returns\n\nThe time."
        );
        assert_eq!(
            param(
                raw,
                "count",
                &Context {
                    resolve: &resolve,
                    params: &[]
                }
            )
            .as_deref(),
            Some("Set to the number of matches.")
        );
        assert_eq!(
            returns(
                raw,
                &Context {
                    resolve: &resolve,
                    params: &[]
                }
            )
            .as_deref(),
            Some("The first match.")
        );
    }

    #[test]
    fn html_becomes_markdown() {
        assert_eq!(
            prose(
                "Destroys it.\n<p class=\"Note\">The <code>ServiceManager</code> owns it, \
                 <b>always</b>.\n<p>Really <em>always</em>."
            ),
            "Destroys it.\n\n**Note:** The `ServiceManager` owns it, **always**.\n\n\
             Really *always*."
        );
        assert_eq!(
            prose(
                "The order:\n\n<ol>\n\n<li>First, the\ntype.</li>\n\n<li>Then the \
                 <em>default</em>.\n</li>\n\n</ol>\nDone."
            ),
            "The order:\n\n1. First, the\n   type.\n2. Then the *default*.\n\nDone."
        );
        assert_eq!(
            prose(
                "Kinds:\n<dl>\n<dt><code>None</code> (default)</dt>\n<dd>No context.</dd>\n\
                 <dt><code>Shared</code></dt>\n<dd>One context.</dd>\n</dl>"
            ),
            "Kinds:\n\n- `None` (default): No context.\n- `Shared`: One context."
        );
        assert_eq!(
            prose("Like this:\n<pre>\n    if (a &lt; b)\n        run();\n</pre>\nand that."),
            "Like this:\n\n```text\nif (a < b)\n    run();\n```\n\nand that."
        );
        assert_eq!(
            prose("<ul><li>one <ul><li>nested</li></ul></li><li>two</li></ul>"),
            "- one\n  - nested\n- two"
        );
        assert_eq!(
            prose("See <a href=\"https://zeroc.com/ice\">the manual</a>."),
            "See [the manual](https://zeroc.com/ice)."
        );
    }

    #[test]
    fn prose_never_becomes_links_html_or_doctests() {
        assert_eq!(
            prose("A sequence<string> or map<K, V> of [optional] items; a < b > c."),
            "A sequence&lt;string> or map&lt;K, V> of \\[optional\\] items; a &lt; b > c."
        );
        assert_eq!(
            prose("Unclosed <b>bold and <unknown> tag"),
            "Unclosed **bold and &lt;unknown> tag**"
        );
        assert_eq!(
            prose("The identity `Ice/LocatorFinder'. It's `code` and a stray ` tick."),
            "The identity `Ice/LocatorFinder`. It's `code` and a stray \\` tick."
        );
        assert_eq!(
            prose("Read https://doc.zeroc.com/ice/3.7. Or <https://example.com>."),
            "Read <https://doc.zeroc.com/ice/3.7>. Or <https://example.com>."
        );
        assert_eq!(
            prose("Intro.\n\n        indented(code);\n# not a heading\n> not a quote"),
            "Intro.\n\nindented(code);\n\\# not a heading\n\\> not a quote"
        );
        assert_eq!(
            prose("Example:\n```\nlet x = [1];\n```\nC:\\dir\\file & more"),
            "Example:\n\n```text\nlet x = [1];\n```\n\nC:\\\\dir\\\\file &amp; more"
        );
        assert_eq!(
            prose("Keeps `a[0] <b>` in code and &lt;entities&gt;."),
            "Keeps `a[0] <b>` in code and &lt;entities&gt;."
        );
    }

    #[test]
    fn bad_input_never_panics() {
        for raw in [
            "",
            "@",
            "@param",
            "@throws",
            "@see",
            "{@",
            "{@}",
            "{@link}",
            "<",
            "</",
            "<p",
            "<a href=",
            "<code>",
            "<pre>",
            "</ul></li>",
            "`",
            "```",
            "&",
            "&#;",
            "&#x110000;",
            "<!--",
            "héllo <é>",
            "{@link é#ü}",
            "http://",
            "<ol><li><dd></dl>",
            "<b><i></b></i>",
            "@param\n@return\n",
        ] {
            let _ = convert(raw);
            let _ = prose(raw);
        }
    }

    #[test]
    fn random_fragments_never_panic() {
        const PIECES: &[&str] = &[
            "{@link ",
            "{@link Point}",
            "{@code x}",
            "}",
            "{",
            "@param ",
            "@return ",
            "@see ",
            "@throws ",
            "\n",
            "\n\n",
            "    ",
            "<p>",
            "<p class=\"Note\">",
            "</p>",
            "<b>",
            "</b>",
            "<em>",
            "</em>",
            "<code>",
            "</code>",
            "<pre>",
            "</pre>",
            "<ul>",
            "<ol>",
            "<li>",
            "</li>",
            "</ul>",
            "</ol>",
            "<dl>",
            "<dt>",
            "<dd>",
            "</dl>",
            "<a href=\"https://x.org\">",
            "</a>",
            "<T>",
            "<",
            ">",
            "&lt;",
            "&",
            "&#",
            ";",
            "`",
            "``",
            "```",
            "'",
            "[",
            "]",
            "\\",
            "#",
            "https://zeroc.com/x).",
            "é",
            "日本",
            "word",
            " ",
            "*",
            "-",
            "1. ",
            "<!--",
            "-->",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut raw = String::new();
            for _ in 0..(state % 24) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                raw.push_str(PIECES[(state >> 33) as usize % PIECES.len()]);
            }
            state = state.wrapping_add(0x9e37_79b9);
            let _ = convert(&raw);
        }
    }
}
