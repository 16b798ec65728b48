//! Parsing and checking of Slice.
//!
//! The parser is recursive descent over the token stream. Slice's rules are order-dependent (a
//! name "changes meaning" only if it was used before being redefined in a scope; a forward
//! declaration must precede a use; a failed definition leaves the names after it resolved in the
//! enclosing scope), so each check runs at the point of the grammar where ZeroC's compilers run it,
//! against the symbol table as it stands at that point. Error recovery follows the same rule as
//! theirs: the innermost list of definitions or members skips to the next `;`, an operation's
//! parameter list skips to its `)`, and syntax errors are not reported again until three tokens
//! have been accepted. That is what makes our accept/reject decisions, and the lines we report
//! errors on, the same as ZeroC's.

use std::collections::HashMap;

use crate::ast::{Ast, Builtin, ConstValue, Mode, Node, NodeId, NodeKind, Type};
use crate::diag::{Severity, Span, codes};
use crate::lexer::{LexError, Tok, Token};

/// A diagnostic before file names are attached.
#[derive(Debug, Clone)]
pub struct RawDiag {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code.
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// Position.
    pub span: Span,
}

/// Unwinds to the nearest construct that recovers from errors.
#[derive(Debug)]
struct Recover;

type PResult<T> = Result<T, Recover>;

const INT32_MAX: i64 = i32::MAX as i64;

/// Parses and checks the token stream.
pub fn parse(tokens: Vec<Token>, lex_errors: Vec<LexError>) -> (Ast, Vec<RawDiag>) {
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        scanned: 0,
        lex_errors,
        ast: Ast::default(),
        stack: vec![None],
        introduced: HashMap::new(),
        diags: Vec::new(),
        err_status: 0,
        seen_definition: HashMap::new(),
        dummies: 0,
        subject: None,
        type_span: Span::default(),
        tag_span: Span::default(),
        optional_span: Span::default(),
        value_span: Span::default(),
        param_span: Span::default(),
    };
    p.lex_errors.sort_by(|a, b| {
        (a.span.file, a.span.line, a.span.column).cmp(&(b.span.file, b.span.line, b.span.column))
    });
    p.lex_errors.reverse();
    p.definitions(true);
    (p.ast, p.diags)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Tokens up to this index have been seen by the scanner.
    scanned: usize,
    /// Lexical errors not yet reported, in reverse order of position.
    lex_errors: Vec<LexError>,
    ast: Ast,
    /// The container stack; `None` is global scope.
    stack: Vec<Option<NodeId>>,
    /// Per container, the names introduced into it (lowercased) and what they meant.
    introduced: HashMap<Option<NodeId>, HashMap<String, NodeId>>,
    diags: Vec<RawDiag>,
    /// Bison's error status: syntax errors are not reported while it is non-zero.
    err_status: u8,
    /// Files in which a definition has been seen (file metadata must come first).
    seen_definition: HashMap<usize, bool>,
    dummies: usize,
    /// The last name consumed: where most errors really are.
    subject: Option<Span>,
    /// Where the last type started.
    type_span: Span,
    /// Where the last `optional(…)` started.
    optional_span: Span,
    /// Where the last tag was written.
    tag_span: Span,
    /// Where the last initializer started.
    value_span: Span,
    /// Where the current parameter started.
    param_span: Span,
}

struct ConstDef {
    /// The kind of value: a builtin, an enumerator, a constant, or nothing.
    value: Option<ValueKind>,
    text: String,
    literal: String,
    resolved: Option<ConstValue>,
}

#[derive(Clone, Copy)]
enum ValueKind {
    Builtin(Builtin),
    Enumerator(NodeId),
    Const(NodeId),
}

impl Parser {
    // ---------------------------------------------------------------- tokens

    fn current(&self) -> Option<NodeId> {
        *self
            .stack
            .last()
            .expect("the container stack always has the global scope")
    }

    /// Looks at the next token, running the scanner's checks the first time it is seen.
    fn peek(&mut self) -> &Token {
        while self.scanned <= self.pos && self.scanned < self.toks.len() {
            let idx = self.scanned;
            self.scanned += 1;
            self.scan_checks(idx);
        }
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_tok(&mut self) -> Tok {
        self.peek().tok.clone()
    }

    fn bump(&mut self) -> Token {
        self.peek();
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        if matches!(
            t.tok,
            Tok::Ident(_) | Tok::Scoped(_) | Tok::IdentOp(_) | Tok::KeywordOp(_) | Tok::Keyword(_)
        ) {
            self.subject = Some(t.span.clone());
        }
        if self.err_status > 0 {
            self.err_status -= 1;
        }
        t
    }

    fn is_punct(&mut self, c: char) -> bool {
        self.peek().tok == Tok::Punct(c)
    }

    /// The scanner's position: the last token it has read.
    fn scan_span(&self) -> Span {
        let idx = self.scanned.saturating_sub(1).min(self.toks.len() - 1);
        self.toks[idx].span.clone()
    }

    fn scan_checks(&mut self, idx: usize) {
        let span = self.toks[idx].span.clone();
        // Lexical errors at or before this token.
        while let Some(e) = self.lex_errors.last() {
            if (e.span.file, e.span.line, e.span.column) <= (span.file, span.line, span.column)
                || matches!(self.toks[idx].tok, Tok::Eof)
            {
                let e = self.lex_errors.pop().expect("checked");
                let code = if e.warning {
                    codes::WARNING
                } else {
                    codes::LEXICAL
                };
                self.push(
                    if e.warning {
                        Severity::Warning
                    } else {
                        Severity::Error
                    },
                    code,
                    e.message,
                    e.span,
                );
            } else {
                break;
            }
        }
        let tok = self.toks[idx].clone();
        match &tok.tok {
            Tok::Ident(name) | Tok::Scoped(name) | Tok::IdentOp(name) => {
                self.check_identifier(name, &span);
            }
            Tok::Illegal(c) => {
                let bytes = c.to_string();
                let shown: String = bytes
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_graphic() {
                            (b as char).to_string()
                        } else {
                            format!("\\{b:o}")
                        }
                    })
                    .collect();
                self.push(
                    Severity::Error,
                    codes::LEXICAL,
                    format!("illegal input character: '{shown}'"),
                    span,
                );
            }
            _ => {}
        }
    }

    fn check_identifier(&mut self, id: &str, span: &Span) {
        let name = id.rsplit("::").next().unwrap_or(id);
        for suffix in ["Helper", "Holder", "Prx", "Ptr"] {
            if name.ends_with(suffix) {
                self.push(
                    Severity::Error,
                    codes::IDENTIFIER,
                    format!("illegal identifier `{name}': `{suffix}' suffix is reserved"),
                    span.clone(),
                );
            }
        }
        let top_level = span.file == 0;
        if name.starts_with('_') {
            self.push(
                Severity::Error,
                codes::IDENTIFIER,
                format!("illegal leading underscore in identifier `{name}'"),
                span.clone(),
            );
        } else if name.ends_with('_') {
            self.push(
                Severity::Error,
                codes::IDENTIFIER,
                format!("illegal trailing underscore in identifier `{name}'"),
                span.clone(),
            );
        } else if name.contains("__") {
            self.push(
                Severity::Error,
                codes::IDENTIFIER,
                format!("illegal double underscore in identifier `{name}'"),
                span.clone(),
            );
        } else if name.contains('_')
            && top_level
            && !self.ast.has_file_metadata(span.file, "underscore")
        {
            self.push(
                Severity::Error,
                codes::IDENTIFIER,
                format!("illegal underscore in identifier `{name}'"),
                span.clone(),
            );
        }
        if top_level
            && name.len() > 2
            && name.is_char_boundary(3)
            && name[..3].eq_ignore_ascii_case("ice")
            && !self.ast.has_file_metadata(span.file, "ice-prefix")
        {
            self.push(
                Severity::Error,
                codes::IDENTIFIER,
                format!(
                    "illegal identifier `{name}': `{}' prefix is reserved",
                    &name[..3]
                ),
                span.clone(),
            );
        }
    }

    // ---------------------------------------------------------------- diagnostics

    fn push(&mut self, severity: Severity, code: &'static str, message: String, span: Span) {
        self.diags.push(RawDiag {
            severity,
            code,
            message,
            span,
        });
    }

    /// Where an error is reported: on the line ZeroC reports it on (the scanner's position), at
    /// the column of the name it concerns when that name is on the same line.
    fn error_span(&self) -> Span {
        let scan = self.scan_span();
        match &self.subject {
            Some(s) if s.file == scan.file && s.line == scan.line => s.clone(),
            _ => scan,
        }
    }

    /// An error at a given position.
    fn error_at(&mut self, code: &'static str, message: impl Into<String>, span: Span) {
        self.push(Severity::Error, code, message.into(), span);
    }

    /// An error at the last initializer or literal.
    fn error_at_value(&mut self, code: &'static str, message: impl Into<String>) {
        let at = self.value_span.clone();
        self.error_at(code, message, at);
    }

    /// The position of the next token.
    fn next_span(&mut self) -> Span {
        self.peek().span.clone()
    }

    /// An error at the scanner's current position, as ZeroC reports it.
    fn error(&mut self, code: &'static str, message: impl Into<String>) {
        let span = self.error_span();
        self.push(Severity::Error, code, message.into(), span);
    }

    fn warning(&mut self, code: &'static str, message: impl Into<String>) {
        let span = self.error_span();
        self.push(Severity::Warning, code, message.into(), span);
    }

    /// A syntax error at the next token.
    fn syntax_error<T>(&mut self) -> PResult<T> {
        self.peek();
        if self.err_status == 0 {
            let tok = self.peek().clone();
            let what = describe(&tok.tok);
            self.push(
                Severity::Error,
                codes::SYNTAX,
                format!("syntax error: unexpected {what}"),
                tok.span,
            );
        }
        self.err_status = 3;
        Err(Recover)
    }

    /// Bison's `YYERROR`: recover without a message.
    fn yyerror<T>(&mut self) -> PResult<T> {
        self.err_status = 3;
        Err(Recover)
    }

    fn expect_punct(&mut self, c: char) -> PResult<()> {
        if self.is_punct(c) {
            self.bump();
            Ok(())
        } else {
            self.syntax_error()
        }
    }

    /// Discards tokens up to and including `c`. Returns false at the end of the input.
    fn skip_past(&mut self, c: char) -> bool {
        loop {
            match self.peek_tok() {
                Tok::Eof => return false,
                Tok::Punct(p) if p == c => {
                    self.bump();
                    return true;
                }
                _ => {
                    self.pos += 1;
                }
            }
        }
    }

    fn dummy_name(&mut self) -> String {
        self.dummies += 1;
        format!("\u{1}dummy{}", self.dummies)
    }

    // ---------------------------------------------------------------- node creation

    fn new_node(&mut self, kind: NodeKind, name: &str, local: bool) -> Node {
        let span = self.scan_span();
        Node {
            kind,
            name: name.to_string(),
            scoped: String::new(),
            container: None,
            contents: Vec::new(),
            top_level: span.file == 0,
            span,
            doc: None,
            metadata: Vec::new(),
            local,
            dummy: name.starts_with('\u{1}'),
        }
    }

    fn add_node(
        &mut self,
        container: Option<NodeId>,
        kind: NodeKind,
        name: &str,
        local: bool,
    ) -> NodeId {
        let node = self.new_node(kind, name, local);
        self.ast.add(container, node)
    }

    fn scoped_in(&self, container: Option<NodeId>, name: &str) -> String {
        format!("{}{}", self.ast.this_scope(container), name)
    }

    fn matches(&self, container: Option<NodeId>, name: &str) -> Vec<NodeId> {
        self.ast.find_contents(&self.scoped_in(container, name))
    }

    fn is_module(&self, id: Option<NodeId>) -> bool {
        id.is_some_and(|i| matches!(self.ast.node(i).kind, NodeKind::Module))
    }

    fn name_is_legal(
        &mut self,
        container: Option<NodeId>,
        new_name: &str,
        construct: &str,
    ) -> bool {
        let mut module = container.filter(|c| self.is_module(Some(*c)));
        let mut immediate = true;
        while let Some(m) = module {
            let mname = self.ast.node(m).name.clone();
            let lower = new_name.to_lowercase();
            let problem = if new_name == mname {
                Some((
                    codes::REDEFINITION,
                    if immediate {
                        format!(
                            "{construct} name `{new_name}' must differ from the name of its immediately enclosing module"
                        )
                    } else {
                        format!(
                            "{construct} name `{new_name}' must differ from the name of enclosing module `{mname}'"
                        )
                    },
                ))
            } else if lower == mname.to_lowercase() {
                Some((
                    codes::CASE,
                    if immediate {
                        format!(
                            "{construct} name `{lower}' cannot differ only in capitalization from its immediately enclosing module name `{mname}'"
                        )
                    } else {
                        format!(
                            "{construct} name `{lower}' cannot differ only in capitalization from enclosing module `{mname}'"
                        )
                    },
                ))
            } else {
                None
            };
            if let Some((code, message)) = problem {
                self.error(code, message);
                return false;
            }
            immediate = false;
            module = self
                .ast
                .node(m)
                .container
                .filter(|c| self.is_module(Some(*c)));
        }
        true
    }

    fn check_for_global_def(
        &mut self,
        container: Option<NodeId>,
        name: &str,
        construct: &str,
    ) -> bool {
        if container.is_none() && construct != "module" {
            let n = if "aeiou".contains(&construct[..1]) {
                "n"
            } else {
                ""
            };
            self.error(
                codes::PLACEMENT,
                format!("`{name}': a{n} {construct} can be defined only at module scope"),
            );
            return false;
        }
        true
    }

    fn check_interface_and_local(
        &mut self,
        name: &str,
        defined: bool,
        intf: bool,
        intf_other: bool,
        local: bool,
        local_other: bool,
    ) -> bool {
        let how = if defined { "defined" } else { "declared" };
        let msg = if !intf && intf_other {
            Some((
                codes::FORWARD,
                format!("class `{name}' was {how} as interface"),
            ))
        } else if intf && !intf_other {
            Some((
                codes::FORWARD,
                format!("interface `{name}' was {how} as class"),
            ))
        } else if !local && local_other {
            Some((
                codes::FORWARD,
                format!("non-local `{name}' was {how} local"),
            ))
        } else if local && !local_other {
            Some((
                codes::FORWARD,
                format!("local `{name}' was {how} non-local"),
            ))
        } else {
            None
        };
        match msg {
            Some((code, m)) => {
                self.error(code, m);
                false
            }
            None => true,
        }
    }

    fn create_module(&mut self, name: &str) -> Option<NodeId> {
        let cont = self.current();
        let mut matches = self.matches(cont, name);
        matches.dedup();
        for m in matches.clone() {
            let front = matches[0];
            let differs = self.ast.node(front).name != name;
            if matches!(self.ast.node(m).kind, NodeKind::Module) {
                if differs {
                    let prev = self.ast.node(m).name.clone();
                    self.error(
                        codes::CASE,
                        format!("module `{name}' is capitalized inconsistently with its previous name: `{prev}'"),
                    );
                    return None;
                }
            } else if !differs {
                let kind = self.ast.kind_of(front);
                let prev = self.ast.node(front).name.clone();
                self.error(
                    codes::REDEFINITION,
                    format!("redefinition of {kind} `{prev}' as module"),
                );
                return None;
            } else {
                let kind = self.ast.kind_of(front);
                let prev = self.ast.node(front).name.clone();
                self.error(
                    codes::CASE,
                    format!(
                        "module `{name}' differs only in capitalization from {kind} name `{prev}'"
                    ),
                );
                return None;
            }
        }
        if !self.name_is_legal(cont, name, "module") {
            return None;
        }
        Some(self.add_node(cont, NodeKind::Module, name, false))
    }

    fn create_class_def(
        &mut self,
        name: &str,
        id: i32,
        intf: bool,
        bases: Vec<NodeId>,
        local: bool,
    ) -> Option<NodeId> {
        let cont = self.current();
        let matches = self.matches(cont, name);
        for &m in &matches {
            if let NodeKind::ClassDecl { interface, .. } = self.ast.node(m).kind {
                let other_local = self.ast.node(m).local;
                if self.check_interface_and_local(name, false, intf, interface, local, other_local)
                {
                    continue;
                }
                return None;
            }
            let front = matches[0];
            let differs = self.ast.node(front).name != name;
            let what = if intf { "interface" } else { "class" };
            if matches!(self.ast.node(m).kind, NodeKind::ClassDef { .. }) {
                if differs {
                    let prev = self.ast.node(m).name.clone();
                    self.error(
                        codes::CASE,
                        format!("{what} definition `{name}' is capitalized inconsistently with its previous name: `{prev}'"),
                    );
                } else {
                    self.error(
                        codes::REDEFINITION,
                        format!("redefinition of {what} `{name}'"),
                    );
                }
            } else if differs {
                let kind = self.ast.kind_of(front);
                let prev = self.ast.node(front).name.clone();
                self.error(
                    codes::CASE,
                    format!(" definition `{name}' differs only in capitalization from {kind} name `{prev}'"),
                );
            } else {
                let kind = self.ast.kind_of(front);
                let prev = self.ast.node(front).name.clone();
                self.error(
                    codes::REDEFINITION,
                    format!("redefinition of {kind} `{prev}' as {what}"),
                );
            }
            return None;
        }
        let what = if intf { "interface" } else { "class" };
        if !self.name_is_legal(cont, name, what) {
            return None;
        }
        if !self.check_for_global_def(cont, name, what) {
            return None;
        }
        self.check_bases_are_legal(name, intf, local, &bases);
        if id >= 0 {
            let scoped = self.scoped_in(cont, name);
            self.ast.compact_ids.insert(id, scoped);
        }
        let def = self.add_node(
            cont,
            NodeKind::ClassDef {
                interface: intf,
                compact_id: id,
                bases,
                declaration: None,
            },
            name,
            local,
        );
        for &m in &matches {
            if let NodeKind::ClassDecl { definition, .. } = &mut self.ast.node_mut(m).kind {
                *definition = Some(def);
            }
        }
        let decl = self.create_class_decl(name, intf, local);
        if let NodeKind::ClassDef { declaration, .. } = &mut self.ast.node_mut(def).kind {
            *declaration = decl;
        }
        if let Some(d) = decl {
            if let NodeKind::ClassDecl { definition, .. } = &mut self.ast.node_mut(d).kind {
                *definition = Some(def);
            }
        }
        Some(def)
    }

    fn create_class_decl(&mut self, name: &str, intf: bool, local: bool) -> Option<NodeId> {
        let cont = self.current();
        let mut def = None;
        let matches = self.matches(cont, name);
        for &m in &matches {
            match self.ast.node(m).kind.clone() {
                NodeKind::ClassDef { interface, .. } => {
                    let other_local = self.ast.node(m).local;
                    if self.check_interface_and_local(
                        name,
                        true,
                        intf,
                        interface,
                        local,
                        other_local,
                    ) {
                        def = Some(m);
                        continue;
                    }
                    return None;
                }
                NodeKind::ClassDecl { interface, .. } => {
                    let other_local = self.ast.node(m).local;
                    if self.check_interface_and_local(
                        name,
                        false,
                        intf,
                        interface,
                        local,
                        other_local,
                    ) {
                        continue;
                    }
                    return None;
                }
                _ => {}
            }
            let front = matches[0];
            let differs = self.ast.node(front).name != name;
            if differs {
                let kind = self.ast.kind_of(front);
                let prev = self.ast.node(front).name.clone();
                self.error(
                    codes::CASE,
                    format!("class declaration `{name}' differs only in capitalization from {kind} name `{prev}'"),
                );
            } else {
                let what = if intf { "interface" } else { "class" };
                self.error(
                    codes::REDEFINITION,
                    format!("declaration of already defined `{name}' as {what}"),
                );
                return None;
            }
        }
        let what = if intf { "interface" } else { "class" };
        if !self.name_is_legal(cont, name, what) {
            return None;
        }
        if !self.check_for_global_def(cont, name, what) {
            return None;
        }
        for &c in self.ast.contents(cont) {
            if self.ast.node(c).name == name
                && matches!(self.ast.node(c).kind, NodeKind::ClassDecl { .. })
            {
                return Some(c);
            }
        }
        let decl = self.add_node(
            cont,
            NodeKind::ClassDecl {
                interface: intf,
                definition: def,
            },
            name,
            local,
        );
        Some(decl)
    }

    fn check_bases_are_legal(&mut self, name: &str, intf: bool, local: bool, bases: &[NodeId]) {
        for &b in bases {
            let blocal = self.ast.node(b).local;
            if local != blocal {
                let bname = self.ast.node(b).name.clone();
                let bkind = if self.ast.is_interface(b) {
                    "interface"
                } else {
                    "class"
                };
                self.error(
                    codes::LOCAL,
                    format!(
                        "{} {} `{name}' cannot have {} base {bkind} `{bname}'",
                        if local { "local" } else { "non-local" },
                        if intf { "interface" } else { "class" },
                        if blocal { "local" } else { "non-local" }
                    ),
                );
            }
        }
        if bases.len() > 1 {
            let mut partitions: Vec<Vec<NodeId>> = Vec::new();
            for &b in bases {
                partitions.push(Vec::new());
                let last = partitions.len() - 1;
                self.add_partition(&mut partitions, last, b);
            }
            let names: Vec<Vec<String>> = partitions
                .iter()
                .map(|p| {
                    p.iter()
                        .flat_map(|c| self.ast.operations(*c))
                        .map(|op| self.ast.node(op).name.clone())
                        .collect()
                })
                .collect();
            let mut reported: Vec<String> = Vec::new();
            for i in 0..names.len() {
                for j in i + 1..names.len() {
                    for s1 in &names[i] {
                        for s2 in &names[j] {
                            if s1 == s2 && !reported.contains(s1) {
                                self.error(
                                    codes::INHERITANCE,
                                    format!("ambiguous multiple inheritance: `{name}' inherits operation `{s1}' from two or more unrelated base interfaces"),
                                );
                                reported.push(s1.clone());
                            } else if s1 != s2
                                && s1.to_lowercase() == s2.to_lowercase()
                                && !reported.contains(s1)
                                && !reported.contains(s2)
                            {
                                self.error(
                                    codes::INHERITANCE,
                                    format!("ambiguous multiple inheritance: `{name}' inherits operations `{s1}' and `{s2}', which differ only in capitalization, from unrelated base interfaces"),
                                );
                                reported.push(s1.clone());
                                reported.push(s2.clone());
                            }
                        }
                    }
                }
            }
        }
    }

    fn add_partition(&self, gpl: &mut Vec<Vec<NodeId>>, tail: usize, base: NodeId) {
        if gpl.iter().any(|p| p.contains(&base)) {
            return;
        }
        gpl[tail].push(base);
        let bases = self.ast.bases(base).to_vec();
        if let Some(&first) = bases.first() {
            self.add_partition(gpl, tail, first);
        }
        for &other in bases.iter().skip(1) {
            gpl.push(Vec::new());
            let last = gpl.len() - 1;
            self.add_partition(gpl, last, other);
        }
    }

    /// The checks common to exception, struct, sequence, dictionary, enum and constant creation.
    /// Returns false when the name is taken.
    fn check_simple_redefinition(&mut self, name: &str, construct: &str, msg_kind: &str) -> bool {
        let cont = self.current();
        let matches = self.matches(cont, name);
        if let Some(&front) = matches.first() {
            let prev = self.ast.node(front).name.clone();
            let kind = self.ast.kind_of(front);
            if prev == name {
                self.error(
                    codes::REDEFINITION,
                    format!("redefinition of {kind} `{prev}' as {construct}"),
                );
            } else {
                self.error(
                    codes::CASE,
                    format!(
                        "{msg_kind} `{name}' differs only in capitalization from {kind} `{prev}'"
                    ),
                );
            }
            return false;
        }
        true
    }

    fn create_exception(
        &mut self,
        name: &str,
        base: Option<NodeId>,
        local: bool,
        real: bool,
    ) -> Option<NodeId> {
        if !self.check_simple_redefinition(name, "exception", "exception") {
            return None;
        }
        let cont = self.current();
        self.name_is_legal(cont, name, "exception");
        if real {
            self.check_for_global_def(cont, name, "exception");
        }
        if let Some(b) = base {
            if !local && self.ast.node(b).local {
                let bname = self.ast.node(b).name.clone();
                self.error(
                    codes::LOCAL,
                    format!(
                        "non-local exception `{name}' cannot have local base exception `{bname}'"
                    ),
                );
            }
        }
        Some(self.add_node(cont, NodeKind::Exception { base }, name, local))
    }

    fn create_struct(&mut self, name: &str, local: bool, real: bool) -> Option<NodeId> {
        if !self.check_simple_redefinition(name, "struct", "struct") {
            return None;
        }
        let cont = self.current();
        self.name_is_legal(cont, name, "structure");
        if real {
            self.check_for_global_def(cont, name, "structure");
        }
        Some(self.add_node(cont, NodeKind::Struct, name, local))
    }

    fn check_deprecated_type(&mut self, ty: Type) {
        match ty {
            Type::Named(id) => {
                if let NodeKind::ClassDecl {
                    interface: true, ..
                } = self.ast.node(id).kind
                {
                    if !self.ast.node(id).local {
                        self.warning(codes::DEPRECATED, "interface by value is deprecated");
                    }
                }
            }
            Type::Proxy(id) => {
                if !self.ast.is_interface(id) {
                    self.warning(codes::DEPRECATED, "proxy for a class is deprecated");
                }
            }
            Type::Builtin(_) => {}
        }
    }

    fn legal_key_type(&self, ty: Type, contains_sequence: &mut bool) -> bool {
        match ty {
            Type::Builtin(b) => matches!(
                b,
                Builtin::Byte
                    | Builtin::Bool
                    | Builtin::Short
                    | Builtin::Int
                    | Builtin::Long
                    | Builtin::String
            ),
            Type::Proxy(_) => false,
            Type::Named(id) => match &self.ast.node(id).kind {
                NodeKind::Enum { .. } => true,
                NodeKind::Sequence { element, .. } => {
                    *contains_sequence = true;
                    self.legal_key_type(*element, contains_sequence)
                }
                NodeKind::Struct => {
                    self.ast
                        .data_members(id)
                        .into_iter()
                        .all(|m| match self.ast.node(m).kind {
                            NodeKind::DataMember { ty, .. } => {
                                self.legal_key_type(ty, contains_sequence)
                            }
                            _ => true,
                        })
                }
                _ => false,
            },
        }
    }

    // ---------------------------------------------------------------- lookups

    fn lookup_contained(
        &mut self,
        container: Option<NodeId>,
        scoped: &str,
        print: bool,
    ) -> Vec<NodeId> {
        let sc: String = scoped.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(rest) = sc.strip_prefix("::") {
            return self.lookup_contained(None, rest, print);
        }
        let matches = self.ast.find_contents(&self.scoped_in(container, &sc));
        let mut results = Vec::new();
        for m in matches {
            if matches!(self.ast.node(m).kind, NodeKind::ClassDef { .. }) {
                continue;
            }
            results.push(m);
            let want = self.scoped_in(container, &sc);
            if print && self.ast.node(m).scoped != want {
                let kind = self.ast.kind_of(m);
                let prev = self.ast.node(m).scoped.clone();
                self.error(
                    codes::CASE,
                    format!("{kind} name `{scoped}' is capitalized inconsistently with its previous name: `{prev}'"),
                );
            }
        }
        if results.is_empty() {
            match container {
                None => {
                    if print {
                        self.error(codes::UNDEFINED, format!("`{sc}' is not defined"));
                    }
                    Vec::new()
                }
                Some(c) => {
                    let parent = self.ast.node(c).container;
                    self.lookup_contained(parent, &sc, print)
                }
            }
        } else {
            results
        }
    }

    /// Slice's `lookupType`: the builtin names come first, so an escaped `\\int` is still `int`.
    fn lookup_type(&mut self, container: Option<NodeId>, scoped: &str) -> Vec<Type> {
        let sc: String = scoped.chars().filter(|c| !c.is_whitespace()).collect();
        let builtin = match sc.as_str() {
            "byte" => Some(Builtin::Byte),
            "bool" => Some(Builtin::Bool),
            "short" => Some(Builtin::Short),
            "int" => Some(Builtin::Int),
            "long" => Some(Builtin::Long),
            "float" => Some(Builtin::Float),
            "double" => Some(Builtin::Double),
            "string" => Some(Builtin::String),
            "Object" => Some(Builtin::Object),
            "Object*" => Some(Builtin::ObjectProxy),
            "LocalObject" => Some(Builtin::LocalObject),
            "Value" => Some(Builtin::Value),
            _ => None,
        };
        if let Some(b) = builtin {
            return vec![Type::Builtin(b)];
        }
        self.lookup_type_no_builtin(container, scoped, true, false)
    }

    fn lookup_type_no_builtin(
        &mut self,
        container: Option<NodeId>,
        scoped: &str,
        print: bool,
        ignore_undefined: bool,
    ) -> Vec<Type> {
        let sc: String = scoped.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(rest) = sc.strip_prefix("::") {
            return self.lookup_type_no_builtin(None, rest, print, false);
        }
        let mut results = Vec::new();
        let mut type_error = false;
        let mut errors = Vec::new();
        let want = self.scoped_in(container, &sc);
        let matches = self.ast.find_contents(&want);
        for m in matches.clone() {
            if matches!(self.ast.node(m).kind, NodeKind::ClassDef { .. }) {
                continue;
            }
            let front = matches[0];
            if print && self.ast.node(front).scoped != want {
                let kind = self.ast.kind_of(m);
                let prev = self.ast.node(front).scoped.clone();
                errors.push(format!(
                    "{kind} name `{scoped}' is capitalized inconsistently with its previous name: `{prev}'"
                ));
            }
            if matches!(self.ast.node(m).kind, NodeKind::Exception { .. }) {
                if print {
                    self.error(
                        codes::WRONG_KIND,
                        format!("`{sc}' is an exception, which cannot be used as a type"),
                    );
                }
                return Vec::new();
            }
            if !self.ast.is_type(m) {
                type_error = true;
                if print {
                    errors.push(format!("`{sc}' is not a type"));
                }
                break;
            }
            results.push(Type::Named(m));
        }
        if results.is_empty() {
            match container {
                Some(c) => {
                    let parent = self.ast.node(c).container;
                    results = self.lookup_type_no_builtin(
                        parent,
                        &sc,
                        print,
                        type_error || ignore_undefined,
                    );
                }
                None => {
                    if !type_error {
                        if print && !ignore_undefined {
                            self.error(codes::UNDEFINED, format!("`{sc}' is not defined"));
                        }
                        return Vec::new();
                    }
                }
            }
        }
        if print && (!type_error || results.is_empty()) {
            for e in errors {
                let code = if e.contains("not a type") {
                    codes::WRONG_KIND
                } else {
                    codes::CASE
                };
                self.error(code, e);
            }
        }
        results
    }

    fn lookup_exception(&mut self, container: Option<NodeId>, scoped: &str) -> Option<NodeId> {
        let found = self.lookup_contained(container, scoped, true);
        if found.is_empty() {
            return None;
        }
        for &f in &found {
            if !matches!(self.ast.node(f).kind, NodeKind::Exception { .. }) {
                self.error(codes::WRONG_KIND, format!("`{scoped}' is not an exception"));
                return None;
            }
        }
        found.first().copied()
    }

    /// Enumerators reachable without their enumeration's scope (deprecated Slice usage).
    fn unscoped_enumerators(
        &mut self,
        container: Option<NodeId>,
        scoped: &str,
    ) -> Vec<Option<NodeId>> {
        let mut result = Vec::new();
        match scoped.rfind(':') {
            None => {
                let mut cont = container;
                loop {
                    let enums: Vec<NodeId> = self
                        .ast
                        .contents(cont)
                        .iter()
                        .copied()
                        .filter(|c| matches!(self.ast.node(*c).kind, NodeKind::Enum { .. }))
                        .collect();
                    for e in enums {
                        let cl = self.lookup_contained(Some(e), scoped, false);
                        if let Some(&f) = cl.first() {
                            result.push(Some(f).filter(|f| {
                                matches!(self.ast.node(*f).kind, NodeKind::Enumerator { .. })
                            }));
                        }
                    }
                    match cont {
                        Some(c) if result.is_empty() => cont = self.ast.node(c).container,
                        _ => break,
                    }
                }
            }
            Some(last_colon) => {
                let scope = &scoped[..scoped.rfind("::").unwrap_or(0)];
                let cl = self.lookup_contained(container, scope, false);
                if let Some(&c) = cl.first() {
                    let name = &scoped[last_colon + 1..];
                    let enums: Vec<NodeId> = self
                        .ast
                        .node(c)
                        .contents
                        .iter()
                        .copied()
                        .filter(|x| matches!(self.ast.node(*x).kind, NodeKind::Enum { .. }))
                        .collect();
                    for e in enums {
                        let cl2 = self.lookup_contained(Some(e), name, false);
                        if let Some(&f) = cl2.first() {
                            result.push(Some(f).filter(|f| {
                                matches!(self.ast.node(*f).kind, NodeKind::Enumerator { .. })
                            }));
                        }
                    }
                }
            }
        }
        result
    }

    fn check_introduced(
        &mut self,
        container: Option<NodeId>,
        scoped: &str,
        named: Option<NodeId>,
    ) -> bool {
        if scoped.starts_with(':') {
            return true;
        }
        let first = scoped.split("::").next().unwrap_or(scoped).to_string();
        let named = match named {
            None => {
                let cl = self.lookup_contained(container, &first, false);
                match cl.first() {
                    None => return true,
                    Some(&f) => f,
                }
            }
            Some(n) => {
                let depth = scoped.matches("::").count();
                let mut c = None;
                for i in 0..depth {
                    c = if i == 0 {
                        self.ast.node(n).container
                    } else {
                        c.and_then(|x| self.ast.node(x).container)
                    };
                }
                if depth > 0 { c.unwrap_or(n) } else { n }
            }
        };
        let key = first.to_lowercase();
        let map = self.introduced.entry(container).or_default();
        match map.get(&key).copied() {
            None => {
                map.insert(key, named);
                true
            }
            Some(prev) if self.ast.node(prev).scoped == self.ast.node(named).scoped => true,
            Some(prev) => {
                let is_param =
                    |p: &Parser, id: NodeId| matches!(p.ast.node(id).kind, NodeKind::Param { .. });
                let is_member = |p: &Parser, id: NodeId| {
                    matches!(p.ast.node(id).kind, NodeKind::DataMember { .. })
                };
                if is_param(self, prev) != is_param(self, named) {
                    return true;
                }
                if is_member(self, prev) != is_member(self, named) {
                    return true;
                }
                self.error(
                    codes::CHANGED_MEANING,
                    format!("`{first}' has changed meaning"),
                );
                false
            }
        }
    }

    // ---------------------------------------------------------------- grammar: definitions

    /// `definitions`, at global scope or in a module body (until `}`).
    fn definitions(&mut self, global: bool) {
        loop {
            match self.peek_tok() {
                Tok::Eof => return,
                Tok::Punct('}') if !global => return,
                _ => {}
            }
            let result = self.one_definition();
            if result.is_err() {
                if !self.skip_past(';') {
                    // End of input while recovering: the parse stops here.
                    self.pos = self.toks.len() - 1;
                    return;
                }
                self.err_status = 0;
            }
        }
    }

    fn one_definition(&mut self) -> PResult<()> {
        if matches!(self.peek_tok(), Tok::GlobalMetaOpen) {
            let span = self.peek().span.clone();
            let md = self.global_metadata()?;
            if self
                .seen_definition
                .get(&span.file)
                .copied()
                .unwrap_or(false)
            {
                self.error_at(
                    codes::PLACEMENT,
                    "file metadata must appear before any definitions",
                    span.clone(),
                );
            } else {
                self.ast
                    .file_metadata
                    .entry(span.file)
                    .or_default()
                    .extend(md);
            }
            return Ok(());
        }
        // A doc comment may come before the metadata or after it, next to the definition.
        let doc_before = self.peek().doc.clone();
        let metadata = self.metadata()?;
        let doc = self.peek().doc.clone().or(doc_before);
        let defined = self.definition()?;
        if let Some(id) = defined {
            let node = self.ast.node_mut(id);
            if !metadata.is_empty() {
                node.metadata = metadata;
            }
            if node.doc.is_none() {
                node.doc = doc;
            }
        }
        Ok(())
    }

    fn string_list(&mut self) -> PResult<Vec<String>> {
        let mut list = Vec::new();
        loop {
            let mut s = match self.peek_tok() {
                Tok::Str(v, _) => {
                    self.bump();
                    v
                }
                _ => return self.syntax_error(),
            };
            while let Tok::Str(v, _) = self.peek_tok() {
                self.bump();
                s.push_str(&v);
            }
            list.push(s);
            if self.is_punct(',') {
                self.bump();
            } else {
                return Ok(list);
            }
        }
    }

    fn global_metadata(&mut self) -> PResult<Vec<String>> {
        self.bump();
        let list = self.string_list()?;
        if !matches!(self.peek_tok(), Tok::GlobalMetaClose) {
            return self.syntax_error();
        }
        self.bump();
        Ok(list)
    }

    fn metadata(&mut self) -> PResult<Vec<String>> {
        if !matches!(self.peek_tok(), Tok::MetaOpen) {
            return Ok(Vec::new());
        }
        self.bump();
        let list = self.string_list()?;
        if !matches!(self.peek_tok(), Tok::MetaClose) {
            return self.syntax_error();
        }
        self.bump();
        Ok(list)
    }

    fn opt_semicolon(&mut self) {
        if self.is_punct(';') {
            self.bump();
        }
    }

    /// After a definition that needs `;`: either it is there, or the given error is reported.
    fn required_semicolon(&mut self, missing: &str) {
        if self.is_punct(';') {
            self.bump();
        } else {
            let at = self.next_span();
            self.error_at(codes::SYNTAX, missing.to_string(), at);
        }
    }

    fn definition(&mut self) -> PResult<Option<NodeId>> {
        let tok = self.peek_tok();
        let local = matches!(tok, Tok::Keyword("local"));
        if local {
            self.bump();
        }
        match self.peek_tok() {
            Tok::Keyword("module") if !local => {
                let m = self.module_def()?;
                self.opt_semicolon();
                Ok(m)
            }
            Tok::Keyword("class") => self.class_def_or_decl(local),
            Tok::Keyword("interface") => self.interface_def_or_decl(local),
            Tok::Keyword("exception") => self.exception_def_or_decl(local),
            Tok::Keyword("struct") => self.struct_def_or_decl(local),
            Tok::Keyword("sequence") => {
                let s = self.sequence_def(local)?;
                self.required_semicolon("`;' missing after sequence definition");
                Ok(s)
            }
            Tok::Keyword("dictionary") => {
                let d = self.dictionary_def(local)?;
                self.required_semicolon("`;' missing after dictionary definition");
                Ok(d)
            }
            Tok::Keyword("enum") => {
                let e = self.enum_def(local)?;
                self.opt_semicolon();
                Ok(e)
            }
            Tok::Keyword("const") if !local => {
                let c = self.const_def()?;
                self.required_semicolon("`;' missing after const definition");
                Ok(c)
            }
            _ => self.syntax_error(),
        }
    }

    fn module_def(&mut self) -> PResult<Option<NodeId>> {
        self.bump();
        let name = match self.peek_tok() {
            Tok::Ident(n) => {
                self.bump();
                n
            }
            _ => return self.syntax_error(),
        };
        let file = self.scan_span().file;
        self.seen_definition.insert(file, true);
        let cont = self.current();
        let module = self.create_module(&name);
        if let Some(m) = module {
            self.check_introduced(cont, &name, Some(m));
            self.stack.push(Some(m));
        }
        self.expect_punct('{')?;
        self.definitions(false);
        self.expect_punct('}')?;
        if module.is_some() {
            self.stack.pop();
        }
        Ok(module)
    }

    /// `exception_id` / `struct_id` / `class_name` / `interface_id` / `enum_id`: an identifier,
    /// or a keyword (an error, parsing goes on).
    fn definition_name(&mut self, what: &str) -> PResult<String> {
        match self.peek_tok() {
            Tok::Ident(n) => {
                self.bump();
                Ok(n)
            }
            Tok::Keyword(k) => {
                self.bump();
                self.error(
                    codes::KEYWORD,
                    format!("keyword `{k}' cannot be used as {what} name"),
                );
                Ok(k.to_string())
            }
            _ => self.syntax_error(),
        }
    }

    fn exception_def_or_decl(&mut self, local: bool) -> PResult<Option<NodeId>> {
        self.bump();
        let name = self.definition_name("exception")?;
        match self.peek_tok() {
            Tok::Punct('{') | Tok::Keyword("extends") => {}
            _ => {
                self.error(codes::FORWARD, "exceptions cannot be forward declared");
                self.required_semicolon("`;' missing after exception forward declaration");
                return Ok(None);
            }
        }
        let cont = self.current();
        let mut base = None;
        if matches!(self.peek_tok(), Tok::Keyword("extends")) {
            self.bump();
            let scoped = self.scoped_name()?;
            base = self.lookup_exception(cont, &scoped);
            self.check_introduced(cont, &scoped, None);
        }
        let ex = self.create_exception(&name, base, local, true);
        if let Some(e) = ex {
            self.check_introduced(cont, &name, Some(e));
            self.stack.push(Some(e));
        }
        self.expect_punct('{')?;
        self.exports(Exports::Exception)?;
        self.expect_punct('}')?;
        if ex.is_some() {
            self.stack.pop();
        }
        self.opt_semicolon();
        Ok(ex)
    }

    fn struct_def_or_decl(&mut self, local: bool) -> PResult<Option<NodeId>> {
        self.bump();
        let name = self.definition_name("struct")?;
        match self.peek_tok() {
            Tok::Punct('{') => {}
            _ => {
                self.error(codes::FORWARD, "structs cannot be forward declared");
                self.required_semicolon("`;' missing after struct forward declaration");
                return Ok(None);
            }
        }
        let cont = self.current();
        let st = match self.create_struct(&name, local, true) {
            Some(s) => {
                self.check_introduced(cont, &name, Some(s));
                s
            }
            None => {
                let dummy = self.dummy_name();
                let s = self
                    .create_struct(&dummy, local, true)
                    .expect("dummy names are unique");
                self.ast.node_mut(s).dummy = true;
                s
            }
        };
        self.stack.push(Some(st));
        self.expect_punct('{')?;
        self.exports(Exports::Struct)?;
        self.expect_punct('}')?;
        self.stack.pop();
        if self.ast.data_members(st).is_empty() {
            let n = self.ast.node(st).name.clone();
            self.error(
                codes::STRUCT,
                format!("struct `{n}' must have at least one member"),
            );
        }
        self.opt_semicolon();
        Ok(Some(st).filter(|s| !self.ast.node(*s).dummy))
    }

    fn class_def_or_decl(&mut self, local: bool) -> PResult<Option<NodeId>> {
        self.bump();
        // class_id: `class Name(id)` or `class Name`.
        let (name, id) = match self.peek_tok() {
            Tok::IdentOp(n) => {
                self.bump();
                let id = self.compact_id()?;
                self.expect_punct(')')?;
                (n, id)
            }
            _ => {
                let n = self.definition_name("class")?;
                // A declaration?
                match self.peek_tok() {
                    Tok::Punct('{') | Tok::Keyword("extends") | Tok::Keyword("implements") => {}
                    _ => {
                        let decl = self.create_class_decl(&n, false, local);
                        self.required_semicolon("`;' missing after class forward declaration");
                        return Ok(decl);
                    }
                }
                (n, -1)
            }
        };
        let cont = self.current();
        let mut base = None;
        if matches!(self.peek_tok(), Tok::Keyword("extends")) {
            self.bump();
            let base_span = self.next_span();
            let scoped = self.scoped_name()?;
            self.peek();
            // Errors about the base point at its name.
            let before = self.diags.len();
            let types = self.lookup_type(cont, &scoped);
            for d in &mut self.diags[before..] {
                d.span = base_span.clone();
            }
            if let Some(&t) = types.first() {
                let decl = match t {
                    Type::Named(d)
                        if matches!(
                            self.ast.node(d).kind,
                            NodeKind::ClassDecl {
                                interface: false,
                                ..
                            }
                        ) =>
                    {
                        Some(d)
                    }
                    _ => None,
                };
                match decl {
                    None => self.error_at(
                        codes::WRONG_KIND,
                        format!("`{scoped}' is not a class"),
                        base_span.clone(),
                    ),
                    Some(d) => match self.ast.class_def(d) {
                        None => self.error(
                            codes::FORWARD,
                            format!("`{scoped}' has been declared but not defined"),
                        ),
                        Some(def) => {
                            self.check_introduced(cont, &scoped, None);
                            base = Some(def);
                        }
                    },
                }
            }
        }
        let mut bases = Vec::new();
        if matches!(self.peek_tok(), Tok::Keyword("implements")) {
            self.bump();
            bases = self.interface_list()?;
        }
        self.peek();
        if let Some(b) = base {
            bases.insert(0, b);
        }
        let implements_interfaces = bases.iter().any(|b| self.ast.is_interface(*b));
        let cl = self.create_class_def(&name, id, false, bases, local);
        if let Some(c) = cl {
            if implements_interfaces && !local {
                self.warning(
                    codes::DEPRECATED,
                    "classes implementing interfaces are deprecated",
                );
            }
            self.check_introduced(cont, &name, Some(c));
            self.stack.push(Some(c));
        }
        self.expect_punct('{')?;
        self.exports(Exports::Class)?;
        self.expect_punct('}')?;
        if cl.is_some() {
            self.stack.pop();
        }
        self.opt_semicolon();
        Ok(cl)
    }

    /// The compact id of `class Name(id)`.
    fn compact_id(&mut self) -> PResult<i32> {
        self.value_span = self.next_span();
        let (value, scoped_name) = match self.peek_tok() {
            Tok::Int(v, _) => {
                self.bump();
                (v.unwrap_or(i64::MAX), None)
            }
            Tok::Ident(s) | Tok::Scoped(s) => {
                self.bump();
                (0, Some(s))
            }
            _ => return self.syntax_error(),
        };
        let id = match scoped_name {
            None => {
                if value < 0 {
                    self.error_at_value(
                        codes::CONSTANT,
                        "invalid compact id for class: id must be a positive integer",
                    );
                } else if value > INT32_MAX {
                    self.error_at_value(
                        codes::CONSTANT,
                        "invalid compact id for class: value is out of range",
                    );
                } else if let Some(t) = self.ast.compact_ids.get(&(value as i32)).cloned() {
                    self.error_at_value(
                        codes::REDEFINITION,
                        format!("invalid compact id for class: already assigned to class `{t}'"),
                    );
                }
                value as i32
            }
            Some(scoped) => {
                let v = self.tag_from_name(&scoped, "compact id for class is out of range")?;
                if v < 0 {
                    self.error_at_value(
                        codes::CONSTANT,
                        "invalid compact id for class: id must be a positive integer",
                    );
                } else if let Some(t) = self.ast.compact_ids.get(&v).cloned() {
                    self.error_at_value(
                        codes::REDEFINITION,
                        format!("invalid compact id for class: already assigned to class `{t}'"),
                    );
                }
                v
            }
        };
        Ok(id)
    }

    /// Resolves a tag or compact id given by a constant or an enumerator's name.
    fn tag_from_name(&mut self, scoped: &str, out_of_range: &str) -> PResult<i32> {
        let cont = self.current();
        let mut cl = self.lookup_contained(cont, scoped, false);
        if cl.is_empty() {
            let enumerators = self.unscoped_enumerators(cont, scoped);
            if enumerators.len() == 1 {
                if let Some(e) = enumerators[0] {
                    cl.push(e);
                    let s = self.ast.node(e).scoped.clone();
                    self.warning(
                        codes::DEPRECATED,
                        format!("referencing enumerator `{s}' without its enumeration's scope is deprecated"),
                    );
                }
            } else if enumerators.len() > 1 {
                let names: Vec<String> = enumerators
                    .iter()
                    .flatten()
                    .map(|e| format!("`{}'", self.ast.node(*e).scoped))
                    .collect();
                self.error(
                    codes::UNDEFINED,
                    format!(
                        "enumerator `{scoped}' could designate {}",
                        names.join(" or")
                    ),
                );
            } else {
                self.error(codes::UNDEFINED, format!("`{scoped}' is not defined"));
            }
        }
        let Some(&found) = cl.first() else {
            return self.yyerror();
        };
        self.check_introduced(cont, scoped, None);
        let mut value: i64 = -1;
        match &self.ast.node(found).kind {
            NodeKind::Const {
                ty: Type::Builtin(b),
                value: v,
                ..
            } if b.is_integral() => {
                let l = match v {
                    ConstValue::Int(i) => *i,
                    _ => 0,
                };
                if !(0..=INT32_MAX).contains(&l) {
                    self.error(codes::TAG, out_of_range.to_string());
                }
                value = l as i32 as i64;
            }
            NodeKind::Enumerator { value: v } => value = *v,
            _ => {}
        }
        Ok(value as i32)
    }

    fn interface_def_or_decl(&mut self, local: bool) -> PResult<Option<NodeId>> {
        self.bump();
        let name = self.definition_name("interface")?;
        let cont = self.current();
        match self.peek_tok() {
            Tok::Punct('{') | Tok::Keyword("extends") => {}
            _ => {
                let decl = self.create_class_decl(&name, true, local);
                self.check_introduced(cont, &name, decl);
                self.required_semicolon("`;' missing after interface forward declaration");
                return Ok(decl);
            }
        }
        let mut bases = Vec::new();
        if matches!(self.peek_tok(), Tok::Keyword("extends")) {
            self.bump();
            bases = self.interface_list()?;
        }
        self.peek();
        let cl = self.create_class_def(&name, -1, true, bases, local);
        if let Some(c) = cl {
            self.check_introduced(cont, &name, Some(c));
            self.stack.push(Some(c));
        }
        self.expect_punct('{')?;
        self.exports(Exports::Interface)?;
        self.expect_punct('}')?;
        if cl.is_some() {
            self.stack.pop();
        }
        self.opt_semicolon();
        Ok(cl)
    }

    /// `interface_list`: resolved right to left, as the grammar's right recursion does.
    fn interface_list(&mut self) -> PResult<Vec<NodeId>> {
        let mut names = Vec::new();
        loop {
            match self.peek_tok() {
                Tok::Keyword("Object") => {
                    self.bump();
                    self.error(codes::INHERITANCE, "illegal inheritance from type Object");
                    // The grammar stops the list here.
                    names.push(None);
                    break;
                }
                Tok::Keyword("Value") => {
                    self.bump();
                    self.error(codes::INHERITANCE, "illegal inheritance from type Value");
                    names.push(None);
                    break;
                }
                _ => {}
            }
            let scoped = self.scoped_name()?;
            names.push(Some(scoped));
            if self.is_punct(',') {
                self.bump();
            } else {
                break;
            }
        }
        let cont = self.current();
        let mut result = Vec::new();
        for scoped in names.into_iter().rev().flatten() {
            let types = self.lookup_type(cont, &scoped);
            if let Some(&t) = types.first() {
                let decl = match t {
                    Type::Named(d)
                        if matches!(
                            self.ast.node(d).kind,
                            NodeKind::ClassDecl {
                                interface: true,
                                ..
                            }
                        ) =>
                    {
                        Some(d)
                    }
                    _ => None,
                };
                match decl {
                    None => {
                        self.error(codes::WRONG_KIND, format!("`{scoped}' is not an interface"))
                    }
                    Some(d) => match self.ast.class_def(d) {
                        None => self.error(
                            codes::FORWARD,
                            format!("`{scoped}' has been declared but not defined"),
                        ),
                        Some(def) => {
                            self.check_introduced(cont, &scoped, None);
                            result.insert(0, def);
                        }
                    },
                }
            }
        }
        Ok(result)
    }

    fn scoped_name(&mut self) -> PResult<String> {
        match self.peek_tok() {
            Tok::Ident(n) | Tok::Scoped(n) => {
                self.bump();
                Ok(n)
            }
            _ => self.syntax_error(),
        }
    }

    // ---------------------------------------------------------------- members and operations

    fn exports(&mut self, kind: Exports) -> PResult<()> {
        loop {
            match self.peek_tok() {
                Tok::Punct('}') | Tok::Eof => return Ok(()),
                _ => {}
            }
            let result = (|| -> PResult<()> {
                let doc_before = self.peek().doc.clone();
                let metadata = self.metadata()?;
                let doc = self.peek().doc.clone().or(doc_before);
                let item = match kind {
                    Exports::Interface => self.operation()?,
                    Exports::Class => {
                        if self.starts_operation() {
                            self.operation()?
                        } else {
                            self.data_member()?
                        }
                    }
                    Exports::Exception => self.data_member()?,
                    Exports::Struct => self.struct_data_member()?,
                };
                if let Some(id) = item {
                    let node = self.ast.node_mut(id);
                    if !metadata.is_empty() {
                        node.metadata = metadata;
                    }
                    if node.doc.is_none() {
                        node.doc = doc;
                    }
                }
                if self.is_punct(';') {
                    self.bump();
                } else if self.is_punct('}') {
                    {
                        let at = self.next_span();
                        self.error_at(codes::SYNTAX, "`;' missing after definition", at)
                    };
                } else {
                    return self.syntax_error();
                }
                Ok(())
            })();
            if result.is_err() && !self.skip_past(';') {
                return Err(Recover);
            }
        }
    }

    /// Whether the next tokens start an operation rather than a data member.
    fn starts_operation(&mut self) -> bool {
        let save = self.pos;
        let mut i = save;
        let toks = &self.toks;
        let at = |i: usize| &toks[i.min(toks.len() - 1)].tok;
        if matches!(at(i), Tok::Keyword("idempotent") | Tok::Keyword("void")) {
            return true;
        }
        if matches!(at(i), Tok::OptionalOp) {
            // optional(tag) type name( … is an operation with an optional return.
            while !matches!(at(i), Tok::Punct(')') | Tok::Eof) {
                i += 1;
            }
            i += 1;
        } else if matches!(at(i), Tok::Keyword("optional")) {
            i += 1;
        }
        // A type: keyword or name, possibly followed by `*`.
        i += 1;
        if matches!(at(i), Tok::Punct('*')) {
            i += 1;
        }
        matches!(at(i), Tok::IdentOp(_) | Tok::KeywordOp(_))
    }

    /// `optional(tag)`, or `optional` without a tag (an error).
    fn optional(&mut self) -> PResult<(bool, i32)> {
        self.optional_span = self.next_span();
        self.tag_span = self.optional_span.clone();
        match self.peek_tok() {
            Tok::Keyword("optional") => {
                self.bump();
                self.error(codes::TAG, "missing tag for optional");
                Ok((false, -1))
            }
            Tok::OptionalOp => {
                self.bump();
                self.tag_span = self.next_span();
                match self.peek_tok() {
                    Tok::Punct(')') => {
                        self.bump();
                        self.error(codes::TAG, "missing tag for optional");
                        Ok((false, -1))
                    }
                    Tok::Int(v, _) => {
                        self.bump();
                        self.expect_punct(')')?;
                        let v = v.unwrap_or(i64::MAX);
                        if !(0..=INT32_MAX).contains(&v) {
                            let at = self.tag_span.clone();
                            self.error_at(codes::TAG, "tag for optional is out of range", at);
                            Ok((false, -1))
                        } else {
                            Ok((true, v as i32))
                        }
                    }
                    Tok::Ident(s) | Tok::Scoped(s) => {
                        self.bump();
                        self.expect_punct(')')?;
                        let tag = self.tag_from_name(&s, "tag for optional is out of range")?;
                        if tag < 0 {
                            self.error(codes::TAG, format!("invalid tag `{s}' for optional"));
                        }
                        Ok((tag >= 0, tag))
                    }
                    _ => self.syntax_error(),
                }
            }
            _ => Ok((false, -1)),
        }
    }

    fn is_optional_start(&mut self) -> bool {
        matches!(self.peek_tok(), Tok::OptionalOp | Tok::Keyword("optional"))
    }

    /// `type`: a builtin, or a name resolved in the current scope (YYERROR when unknown).
    fn parse_type(&mut self) -> PResult<Type> {
        let tok = self.peek_tok();
        self.type_span = self.next_span();
        let builtin = match tok {
            Tok::Keyword("byte") => Some(Builtin::Byte),
            Tok::Keyword("bool") => Some(Builtin::Bool),
            Tok::Keyword("short") => Some(Builtin::Short),
            Tok::Keyword("int") => Some(Builtin::Int),
            Tok::Keyword("long") => Some(Builtin::Long),
            Tok::Keyword("float") => Some(Builtin::Float),
            Tok::Keyword("double") => Some(Builtin::Double),
            Tok::Keyword("string") => Some(Builtin::String),
            Tok::Keyword("LocalObject") => Some(Builtin::LocalObject),
            Tok::Keyword("Value") => Some(Builtin::Value),
            Tok::Keyword("Object") => {
                self.bump();
                if self.is_punct('*') {
                    self.bump();
                    return Ok(Type::Builtin(Builtin::ObjectProxy));
                }
                return Ok(Type::Builtin(Builtin::Object));
            }
            _ => None,
        };
        if let Some(b) = builtin {
            self.bump();
            return Ok(Type::Builtin(b));
        }
        let scoped = match tok {
            Tok::Ident(n) | Tok::Scoped(n) => {
                self.bump();
                n
            }
            _ => return self.syntax_error(),
        };
        let cont = self.current();
        let proxy = self.is_punct('*');
        if proxy {
            self.bump();
        }
        let types = self.lookup_type(cont, &scoped);
        let Some(&first) = types.first() else {
            return self.yyerror();
        };
        if !proxy {
            self.check_introduced(cont, &scoped, None);
            return Ok(first);
        }
        let mut result = None;
        for t in types {
            let decl = match t {
                Type::Named(d) if matches!(self.ast.node(d).kind, NodeKind::ClassDecl { .. }) => d,
                _ => {
                    self.error(
                        codes::WRONG_KIND,
                        format!("`{scoped}' must be class or interface"),
                    );
                    return self.yyerror();
                }
            };
            self.check_introduced(cont, &scoped, None);
            if self.ast.node(decl).local {
                let kind = self.ast.kind_of(decl);
                let n = self.ast.node(decl).name.clone();
                self.error(
                    codes::LOCAL,
                    format!("cannot create proxy for {kind} `{n}'"),
                );
            }
            if result.is_none() {
                result = Some(Type::Proxy(decl));
            }
        }
        Ok(result.expect("types is not empty"))
    }

    fn const_initializer(&mut self) -> PResult<ConstDef> {
        self.value_span = self.next_span();
        match self.peek_tok() {
            Tok::Int(v, lit) => {
                self.bump();
                let v = v.unwrap_or(0);
                Ok(ConstDef {
                    value: Some(ValueKind::Builtin(Builtin::Long)),
                    text: v.to_string(),
                    literal: lit,
                    resolved: Some(ConstValue::Int(v)),
                })
            }
            Tok::Float(v, lit) => {
                self.bump();
                Ok(ConstDef {
                    value: Some(ValueKind::Builtin(Builtin::Double)),
                    text: v.to_string(),
                    literal: lit.clone(),
                    resolved: Some(ConstValue::Float(v, lit)),
                })
            }
            Tok::Str(v, lit) => {
                self.bump();
                Ok(ConstDef {
                    value: Some(ValueKind::Builtin(Builtin::String)),
                    text: v.clone(),
                    literal: lit,
                    resolved: Some(ConstValue::Str(v)),
                })
            }
            Tok::Keyword(k @ ("true" | "false")) => {
                self.bump();
                Ok(ConstDef {
                    value: Some(ValueKind::Builtin(Builtin::Bool)),
                    text: k.to_string(),
                    literal: k.to_string(),
                    resolved: Some(ConstValue::Bool(k == "true")),
                })
            }
            Tok::Ident(s) | Tok::Scoped(s) => {
                self.bump();
                self.peek();
                let cont = self.current();
                let cl = self.lookup_contained(cont, &s, false);
                let Some(&found) = cl.first() else {
                    return Ok(ConstDef {
                        value: None,
                        text: s.clone(),
                        literal: s,
                        resolved: None,
                    });
                };
                match self.ast.node(found).kind.clone() {
                    NodeKind::Enumerator { .. } => {
                        self.check_introduced(cont, &s, Some(found));
                        Ok(ConstDef {
                            value: Some(ValueKind::Enumerator(found)),
                            text: s.clone(),
                            literal: s,
                            resolved: Some(ConstValue::Enumerator(found)),
                        })
                    }
                    NodeKind::Const { value, literal, .. } => {
                        self.check_introduced(cont, &s, Some(found));
                        let text = match &value {
                            ConstValue::Int(i) => i.to_string(),
                            ConstValue::Bool(b) => b.to_string(),
                            ConstValue::Str(v) => v.clone(),
                            ConstValue::Float(_, l) => l.clone(),
                            ConstValue::Enumerator(e) => self.ast.node(*e).name.clone(),
                        };
                        let _ = literal;
                        Ok(ConstDef {
                            value: Some(ValueKind::Const(found)),
                            text: text.clone(),
                            literal: text,
                            resolved: Some(value),
                        })
                    }
                    _ => {
                        let kind = self.ast.kind_of(found);
                        let n = if "aeiou".contains(&kind[..1]) {
                            "n"
                        } else {
                            ""
                        };
                        self.error(
                            codes::CONSTANT,
                            format!("illegal initializer: `{s}' is a{n} {kind}"),
                        );
                        Ok(ConstDef {
                            value: None,
                            text: String::new(),
                            literal: String::new(),
                            resolved: None,
                        })
                    }
                }
            }
            _ => self.syntax_error(),
        }
    }

    /// Slice's `validateConstant`. May resolve an enumerator given without its scope.
    fn validate_constant(
        &mut self,
        name: &str,
        ty: Type,
        value: &mut ConstDef,
        is_const: bool,
    ) -> bool {
        let desc = if is_const { "constant" } else { "data member" };
        let enum_id = match ty {
            Type::Named(id) if matches!(self.ast.node(id).kind, NodeKind::Enum { .. }) => Some(id),
            _ => None,
        };
        let builtin = match ty {
            Type::Builtin(b) => Some(b),
            _ => None,
        };
        if let Some(b) = builtin {
            if matches!(
                b,
                Builtin::Object | Builtin::ObjectProxy | Builtin::LocalObject | Builtin::Value
            ) {
                if is_const {
                    {
                        let at = self.type_span.clone();
                        self.error_at(
                            codes::CONSTANT,
                            format!("constant `{name}' has illegal type: `{}'", b.name()),
                            at,
                        )
                    };
                } else {
                    {
                        let at = self.value_span.clone();
                        self.error_at(
                            codes::CONSTANT,
                            format!(
                                "default value not allowed for data member `{name}' of type `{}'",
                                b.name()
                            ),
                            at,
                        )
                    };
                }
                return false;
            }
        } else if enum_id.is_none() {
            if is_const {
                {
                    let at = self.type_span.clone();
                    self.error_at(
                        codes::CONSTANT,
                        format!("constant `{name}' has illegal type"),
                        at,
                    )
                };
            } else {
                {
                    let at = self.value_span.clone();
                    self.error_at(
                        codes::CONSTANT,
                        format!("default value not allowed for data member `{name}'"),
                        at,
                    )
                };
            }
            return false;
        }
        if let Some(b) = builtin {
            let lt = match value.value {
                Some(ValueKind::Const(c)) => match self.ast.node(c).kind {
                    NodeKind::Const {
                        ty: Type::Builtin(t),
                        ..
                    } => Some(t),
                    _ => None,
                },
                Some(ValueKind::Builtin(t)) => Some(t),
                _ => None,
            };
            let Some(lt) = lt else {
                let code = if value.value.is_none() && !value.text.is_empty() {
                    codes::UNDEFINED
                } else {
                    codes::CONSTANT
                };
                {
                    let at = self.value_span.clone();
                    self.error_at(
                    code,
                    format!(
                        "type of initializer is incompatible with the type `{}' of {desc} `{name}'",
                        b.name()
                    ), at)
                };
                return false;
            };
            let ok = match b {
                Builtin::Bool => lt == Builtin::Bool,
                Builtin::Byte | Builtin::Short | Builtin::Int | Builtin::Long => lt.is_integral(),
                Builtin::Float | Builtin::Double => {
                    lt.is_integral() || matches!(lt, Builtin::Float | Builtin::Double)
                }
                Builtin::String => lt == Builtin::String,
                _ => false,
            };
            if !ok {
                {
                    let at = self.value_span.clone();
                    self.error_at(
                    codes::CONSTANT,
                    format!(
                        "initializer of type `{}' is incompatible with the type `{}' of {desc} `{name}'",
                        lt.name(),
                        b.name()
                    ), at)
                };
                return false;
            }
            let range = match b {
                Builtin::Byte => Some((0i64, 255i64, "byte")),
                Builtin::Short => Some((i16::MIN as i64, i16::MAX as i64, "short")),
                Builtin::Int => Some((i32::MIN as i64, i32::MAX as i64, "int")),
                _ => None,
            };
            if let Some((lo, hi, tname)) = range {
                let l = match &value.resolved {
                    Some(ConstValue::Int(i)) => *i,
                    _ => value.text.parse().unwrap_or(0),
                };
                if l < lo || l > hi {
                    {
                        let at = self.value_span.clone();
                        self.error_at(
                        codes::CONSTANT,
                        format!(
                            "initializer `{}' for {desc} `{name}' out of range for type {tname}",
                            value.text
                        ), at)
                    };
                    return false;
                }
            }
            // A float initialised from an integer keeps the number.
            if matches!(b, Builtin::Float | Builtin::Double) {
                if let Some(ConstValue::Int(i)) = value.resolved {
                    value.resolved = Some(ConstValue::Float(i as f64, i.to_string()));
                }
            }
        }
        if let Some(e) = enum_id {
            match value.value {
                Some(ValueKind::Const(c)) => {
                    let cty = match self.ast.node(c).kind {
                        NodeKind::Const { ty, .. } => Some(ty),
                        _ => None,
                    };
                    if cty != Some(Type::Named(e)) {
                        {
                            let at = self.value_span.clone();
                            self.error_at(
                            codes::CONSTANT,
                            format!("type of initializer is incompatible with the type of {desc} `{name}'"), at)
                        };
                        return false;
                    }
                }
                Some(ValueKind::Enumerator(en)) => {
                    if !self.ast.enumerators(e).contains(&en) {
                        let es = self.ast.node(e).scoped.clone();
                        {
                            let at = self.value_span.clone();
                            self.error_at(
                                codes::CONSTANT,
                                format!(
                                    "enumerator `{}' is not defined in enumeration `{es}'",
                                    value.text
                                ),
                                at,
                            )
                        };
                        return false;
                    }
                }
                Some(ValueKind::Builtin(_)) => {
                    {
                        let at = self.value_span.clone();
                        self.error_at(
                        codes::CONSTANT,
                        format!(
                            "type of initializer is incompatible with the type of {desc} `{name}'"
                        ), at)
                    };
                    return false;
                }
                None => {
                    let text = value.text.clone();
                    let ename = self.ast.node(e).name.clone();
                    let new_val = match text.rfind(':') {
                        Some(lc) if lc + 1 < text.len() => {
                            format!("{}{}::{}", &text[..lc + 1], ename, &text[lc + 1..])
                        }
                        _ => text.clone(),
                    };
                    let cl = self.lookup_contained(Some(e), &new_val, false);
                    let Some(&found) = cl.first() else {
                        let es = self.ast.node(e).scoped.clone();
                        {
                            let at = self.value_span.clone();
                            self.error_at(
                                codes::CONSTANT,
                                format!("`{text}' does not designate an enumerator of `{es}'"),
                                at,
                            )
                        };
                        return false;
                    };
                    if matches!(self.ast.node(found).kind, NodeKind::Enumerator { .. }) {
                        value.value = Some(ValueKind::Enumerator(found));
                        value.resolved = Some(ConstValue::Enumerator(found));
                        if text.contains(':') {
                            let n = self.ast.node(found).name.clone();
                            self.warning(
                                codes::DEPRECATED,
                                format!("referencing enumerator `{n}' in its enumeration's enclosing scope is deprecated"),
                            );
                        }
                    } else {
                        {
                            let at = self.value_span.clone();
                            self.error_at(
                            codes::CONSTANT,
                            format!("type of initializer is incompatible with the type of {desc} `{name}'"), at)
                        };
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Creates a data member in the current class, exception or struct, with Slice's checks.
    fn create_data_member(
        &mut self,
        name: &str,
        ty: Type,
        optional: bool,
        tag: i32,
        default: Option<ConstDef>,
    ) -> Option<NodeId> {
        let cont = self.current()?;
        let owner_kind = self.ast.node(cont).kind.clone();
        let (is_class, is_struct) = match owner_kind {
            NodeKind::ClassDef { .. } => (true, false),
            NodeKind::Struct => (false, true),
            NodeKind::Exception { .. } => (false, false),
            _ => return None,
        };
        let matches = self.matches(Some(cont), name);
        if let Some(&front) = matches.first() {
            let prev = self.ast.node(front).name.clone();
            let kind = self.ast.kind_of(front);
            if prev != name {
                let msg = if is_class {
                    format!(
                        "data member `{name}' differs only in capitalization from {kind} `{prev}'"
                    )
                } else if is_struct {
                    format!("member `{name}' differs only in capitalization from member `{prev}'")
                } else {
                    format!(
                        "exception member `{name}' differs only in capitalization from exception member `{prev}'"
                    )
                };
                self.error(codes::CASE, msg);
            } else {
                let msg = if is_class {
                    format!("redefinition of {kind} `{prev}' as data member `{name}'")
                } else if is_struct {
                    format!("redefinition of struct member `{name}'")
                } else {
                    format!("redefinition of exception member `{name}'")
                };
                self.error(codes::REDEFINITION, msg);
                return None;
            }
        }
        if is_class {
            if !self.check_inherited_clash(cont, "data member", name) {
                return None;
            }
        } else if !is_struct {
            for base in self.ast.exception_bases(cont) {
                for q in self.ast.data_members(base) {
                    let qname = self.ast.node(q).name.clone();
                    if qname == name {
                        self.error(
                            codes::INHERITANCE,
                            format!(
                                "exception member `{name}' is already defined in a base exception"
                            ),
                        );
                        return None;
                    }
                    if qname.to_lowercase() == name.to_lowercase() {
                        self.error(
                            codes::CASE,
                            format!("exception member `{name}' differs only in capitalization from exception member `{qname}', which is defined in a base exception"),
                        );
                    }
                }
            }
        }
        if is_struct && ty == Type::Named(cont) {
            let n = self.ast.node(cont).name.clone();
            let at = self.type_span.clone();
            self.error_at(
                codes::STRUCT,
                format!("struct `{n}' cannot contain itself"),
                at,
            );
            return None;
        }
        if !self.ast.node(cont).local && self.ast.type_is_local(ty) {
            let kind = self.ast.kind_of(cont);
            let n = self.ast.node(cont).name.clone();
            {
                let at = self.type_span.clone();
                self.error_at(
                    codes::LOCAL,
                    format!("non-local {kind}`{n}' cannot contain local member `{name}'"),
                    at,
                );
            }
        }
        let mut resolved_default = None;
        if let Some(mut d) = default {
            let is_enum = matches!(ty, Type::Named(id) if matches!(self.ast.node(id).kind, NodeKind::Enum { .. }));
            if (d.value.is_some() || (is_enum && !d.text.is_empty()))
                && self.validate_constant(name, ty, &mut d, false)
            {
                resolved_default = d.resolved;
            }
        }
        if optional {
            for m in self.ast.data_members(cont) {
                if let NodeKind::DataMember {
                    optional: true,
                    tag: t,
                    ..
                } = self.ast.node(m).kind
                {
                    if t == tag {
                        {
                            let at = self.tag_span.clone();
                            self.error_at(
                                codes::TAG,
                                format!("tag for optional data member `{name}' is already in use"),
                                at,
                            )
                        };
                        break;
                    }
                }
            }
        }
        self.check_deprecated_type(ty);
        Some(self.add_node(
            Some(cont),
            NodeKind::DataMember {
                ty,
                optional,
                tag,
                default: resolved_default,
            },
            name,
            false,
        ))
    }

    /// `data_member` of classes and exceptions.
    fn data_member(&mut self) -> PResult<Option<NodeId>> {
        let (optional, tag) = if self.is_optional_start() {
            self.optional()?
        } else {
            (false, -1)
        };
        let ty = self.parse_type()?;
        let cont = self.current();
        match self.peek_tok() {
            Tok::Ident(name) => {
                self.bump();
                self.peek();
                let default = if self.is_punct('=') {
                    self.bump();
                    Some(self.const_initializer()?)
                } else {
                    None
                };
                let dm = self.create_data_member(&name, ty, optional, tag, default);
                self.check_introduced(cont, &name, dm);
                Ok(dm)
            }
            Tok::Keyword(k) => {
                self.bump();
                let dm = self.create_data_member(k, ty, false, 0, None);
                self.error(
                    codes::KEYWORD,
                    format!("keyword `{k}' cannot be used as data member name"),
                );
                Ok(dm)
            }
            _ => {
                let name = self.dummy_name();
                let dm = self.create_data_member(&name, ty, false, 0, None);
                {
                    let at = self.next_span();
                    self.error_at(codes::SYNTAX, "missing data member name", at)
                };
                if let Some(d) = dm {
                    self.ast.node_mut(d).dummy = true;
                }
                Ok(None)
            }
        }
    }

    fn struct_data_member(&mut self) -> PResult<Option<NodeId>> {
        let had_optional = self.is_optional_start();
        if had_optional {
            self.optional()?;
        }
        let ty = self.parse_type()?;
        let cont = self.current();
        match self.peek_tok() {
            Tok::Ident(name) => {
                self.bump();
                self.peek();
                let default = if self.is_punct('=') {
                    self.bump();
                    Some(self.const_initializer()?)
                } else {
                    None
                };
                if had_optional {
                    let dm = self.create_data_member(&name, ty, false, 0, None);
                    let at = self.optional_span.clone();
                    self.error_at(
                        codes::STRUCT,
                        "optional data members not supported in struct",
                        at,
                    );
                    return Ok(dm);
                }
                let dm = self.create_data_member(&name, ty, false, -1, default);
                self.check_introduced(cont, &name, dm);
                Ok(dm)
            }
            Tok::Keyword(k) if !had_optional => {
                self.bump();
                let dm = self.create_data_member(k, ty, false, 0, None);
                self.error(
                    codes::KEYWORD,
                    format!("keyword `{k}' cannot be used as data member name"),
                );
                Ok(dm)
            }
            _ if !had_optional => {
                let name = self.dummy_name();
                let dm = self.create_data_member(&name, ty, false, 0, None);
                if let Some(d) = dm {
                    self.ast.node_mut(d).dummy = true;
                }
                {
                    let at = self.next_span();
                    self.error_at(codes::SYNTAX, "missing data member name", at)
                };
                Ok(None)
            }
            _ => self.syntax_error(),
        }
    }

    /// Slice's check that a new operation or data member of a class or interface does not clash
    /// with one inherited from a base. Returns false when the name is taken outright.
    fn check_inherited_clash(&mut self, cl: NodeId, what: &str, name: &str) -> bool {
        for base in self.ast.bases(cl).to_vec() {
            let mut inherited = self.ast.all_operations(base);
            inherited.extend(self.ast.all_data_members(base));
            for q in inherited {
                let qname = self.ast.node(q).name.clone();
                let qkind = self.ast.kind_of(q);
                if qname == name {
                    let n = article(qkind);
                    self.error(
                        codes::INHERITANCE,
                        format!("{what} `{name}' is already defined as {n} {qkind} in a base interface or class"),
                    );
                    return false;
                }
                if qname.to_lowercase() == name.to_lowercase() {
                    self.error(
                        codes::CASE,
                        format!("{what} `{name}' differs only in capitalization from {qkind} `{qname}', which is defined in a base interface or class"),
                    );
                }
            }
        }
        true
    }

    fn create_operation(
        &mut self,
        name: &str,
        ret: Option<Type>,
        ret_optional: bool,
        ret_tag: i32,
        mode: Mode,
    ) -> Option<NodeId> {
        let cl = self.current()?;
        if !matches!(self.ast.node(cl).kind, NodeKind::ClassDef { .. }) {
            return None;
        }
        let matches = self.matches(Some(cl), name);
        if let Some(&front) = matches.first() {
            let prev = self.ast.node(front).name.clone();
            let kind = self.ast.kind_of(front);
            if prev != name {
                self.error(
                    codes::CASE,
                    format!(
                        "operation `{name}' differs only in capitalization from {kind} `{prev}'"
                    ),
                );
            }
            self.error(
                codes::REDEFINITION,
                format!("redefinition of {kind} `{prev}' as operation `{name}'"),
            );
            return None;
        }
        let cl_name = self.ast.node(cl).name.clone();
        let intf = self.ast.is_interface(cl);
        let what = if intf { "interface" } else { "class" };
        if name == cl_name {
            self.error(
                codes::REDEFINITION,
                format!("{what} name `{name}' cannot be used as operation name"),
            );
            return None;
        }
        if name.to_lowercase() == cl_name.to_lowercase() {
            self.error(
                codes::CASE,
                format!("operation `{name}' differs only in capitalization from enclosing {what} name `{cl_name}'"),
            );
        }
        if !self.check_inherited_clash(cl, "operation", name) {
            return None;
        }
        let local = self.ast.node(cl).local;
        if !local && ret.is_some_and(|t| self.ast.type_is_local(t)) {
            let kind = self.ast.kind_of(cl);
            self.error(
                codes::LOCAL,
                format!("non-local {kind} `{cl_name}' cannot have operation `{name}' with local return type"),
            );
        }
        let has_ops = !self.ast.operations(cl).is_empty();
        if !intf && !local && !has_ops {
            self.warning(codes::DEPRECATED, "classes with operations are deprecated");
        }
        Some(self.add_node(
            Some(cl),
            NodeKind::Operation {
                ret,
                ret_optional,
                ret_tag,
                mode,
                throws: Vec::new(),
            },
            name,
            local,
        ))
    }

    fn operation(&mut self) -> PResult<Option<NodeId>> {
        let mode = if matches!(self.peek_tok(), Tok::Keyword("idempotent")) {
            self.bump();
            Mode::Idempotent
        } else {
            Mode::Normal
        };
        // return_type
        let (ret, ret_optional, ret_tag) = if matches!(self.peek_tok(), Tok::Keyword("void")) {
            self.bump();
            (None, false, -1)
        } else if self.is_optional_start() {
            let (opt, tag) = self.optional()?;
            let t = self.parse_type()?;
            (Some(t), opt, tag)
        } else {
            (Some(self.parse_type()?), false, -1)
        };
        let (name, keyword) = match self.peek_tok() {
            Tok::IdentOp(n) => {
                self.bump();
                (n, false)
            }
            Tok::KeywordOp(n) => {
                self.bump();
                (n, true)
            }
            _ => return self.syntax_error(),
        };
        let cl = self.current();
        let op = self.create_operation(&name, ret, ret_optional, ret_tag, mode);
        if let Some(o) = op {
            if keyword {
                self.error(
                    codes::KEYWORD,
                    format!("keyword `{name}' cannot be used as operation name"),
                );
            } else {
                self.check_introduced(cl, &name, Some(o));
            }
            self.stack.push(Some(o));
        }
        // parameters ')'
        let params = self.parameters();
        match params {
            Ok(()) if self.is_punct(')') => {
                self.bump();
                if op.is_some() {
                    self.stack.pop();
                }
            }
            other => {
                if other.is_ok() {
                    // Not `)`: a syntax error, recovered at the `)`.
                    let _: PResult<()> = self.syntax_error();
                }
                if !self.skip_past(')') {
                    return Err(Recover);
                }
                if op.is_some() {
                    self.stack.pop();
                }
                self.err_status = 0;
            }
        }
        // throws
        let mut throws = Vec::new();
        if matches!(self.peek_tok(), Tok::Keyword("throws")) {
            self.bump();
            throws = self.exception_list()?;
        }
        if let Some(o) = op {
            self.set_exception_list(o, throws);
        }
        Ok(op)
    }

    fn exception_list(&mut self) -> PResult<Vec<NodeId>> {
        let mut names = Vec::new();
        loop {
            match self.peek_tok() {
                Tok::Ident(n) | Tok::Scoped(n) => {
                    self.bump();
                    names.push(Ok(n));
                }
                Tok::Keyword(k) => {
                    self.bump();
                    names.push(Err(k.to_string()));
                }
                _ => return self.syntax_error(),
            }
            if self.is_punct(',') {
                self.bump();
            } else {
                self.peek();
                break;
            }
        }
        let cont = self.current();
        let mut list = Vec::new();
        for n in names.into_iter().rev() {
            match n {
                Ok(scoped) => {
                    let ex = match self.lookup_exception(cont, &scoped) {
                        Some(e) => e,
                        None => {
                            let d = self.dummy_name();
                            let e =
                                self.add_node(cont, NodeKind::Exception { base: None }, &d, false);
                            self.ast.node_mut(e).dummy = true;
                            e
                        }
                    };
                    self.check_introduced(cont, &scoped, Some(ex));
                    list.insert(0, ex);
                }
                Err(k) => {
                    self.error(
                        codes::KEYWORD,
                        format!("keyword `{k}' cannot be used as exception name"),
                    );
                    let d = self.dummy_name();
                    let e = self.add_node(cont, NodeKind::Exception { base: None }, &d, false);
                    self.ast.node_mut(e).dummy = true;
                    list.insert(0, e);
                }
            }
        }
        Ok(list)
    }

    fn set_exception_list(&mut self, op: NodeId, throws: Vec<NodeId>) {
        let mut sorted = throws.clone();
        sorted.sort_by(|a, b| self.ast.node(*a).scoped.cmp(&self.ast.node(*b).scoped));
        let mut duplicates: Vec<NodeId> = Vec::new();
        for w in sorted.windows(2) {
            let same = self.ast.node(w[0]).scoped == self.ast.node(w[1]).scoped;
            if same
                && !duplicates
                    .iter()
                    .any(|d| self.ast.node(*d).scoped == self.ast.node(w[0]).scoped)
            {
                duplicates.push(w[0]);
            }
        }
        if !duplicates.is_empty() {
            let name = self.ast.node(op).name.clone();
            let names: Vec<String> = duplicates
                .iter()
                .map(|d| format!("`{}'", self.ast.node(*d).name))
                .collect();
            let (a, s) = if duplicates.len() == 1 {
                ("a ", "")
            } else {
                ("", "s")
            };
            self.error(
                codes::OPERATION,
                format!(
                    "operation `{name}' has a throws clause with {a}duplicate exception{s}: {}",
                    names.join(", ")
                ),
            );
        }
        let cl = self
            .ast
            .node(op)
            .container
            .expect("operations are in classes");
        if !self.ast.node(cl).local {
            for &e in &throws {
                if self.ast.node(e).local {
                    let kind = self.ast.kind_of(cl);
                    let cn = self.ast.node(cl).name.clone();
                    let on = self.ast.node(op).name.clone();
                    let en = self.ast.node(e).name.clone();
                    self.error(
                        codes::LOCAL,
                        format!("non-local {kind} `{cn}' cannot have operation `{on}' throwing local exception `{en}'"),
                    );
                }
            }
        }
        if let NodeKind::Operation { throws: t, .. } = &mut self.ast.node_mut(op).kind {
            *t = throws;
        }
    }

    fn parameters(&mut self) -> PResult<()> {
        if self.is_punct(')') {
            return Ok(());
        }
        // The grammar's parameter list may be empty before a comma: `f(, int a)` is read as an
        // empty list, then `, int a`.
        if self.is_punct(',') {
            self.bump();
        }
        loop {
            self.param_span = self.next_span();
            let out = if matches!(self.peek_tok(), Tok::Keyword("out")) {
                self.bump();
                true
            } else {
                false
            };
            let metadata = self.metadata()?;
            let (optional, tag) = if self.is_optional_start() {
                self.optional()?
            } else {
                (false, -1)
            };
            let ty = self.parse_type()?;
            let cont = self.current();
            let is_op =
                cont.is_some_and(|c| matches!(self.ast.node(c).kind, NodeKind::Operation { .. }));
            match self.peek_tok() {
                Tok::Ident(name) => {
                    self.bump();
                    if is_op {
                        let pd = self.create_param(&name, ty, out, optional, tag);
                        self.check_introduced(cont, &name, pd);
                        if let Some(p) = pd {
                            if !metadata.is_empty() {
                                self.ast.node_mut(p).metadata = metadata;
                            }
                        }
                    }
                }
                Tok::Keyword(k) if !optional => {
                    self.bump();
                    if is_op {
                        self.create_param(k, ty, out, false, 0);
                        self.error(
                            codes::KEYWORD,
                            format!("keyword `{k}' cannot be used as parameter name"),
                        );
                    }
                }
                Tok::Punct(',') | Tok::Punct(')') if !optional => {
                    if is_op {
                        let d = self.dummy_name();
                        if let Some(p) = self.create_param(&d, ty, out, false, 0) {
                            self.ast.node_mut(p).dummy = true;
                        }
                        {
                            let at = self.next_span();
                            self.error_at(codes::SYNTAX, "missing parameter name", at)
                        };
                    }
                }
                _ => return self.syntax_error(),
            }
            if self.is_punct(',') {
                self.bump();
            } else {
                return Ok(());
            }
        }
    }

    fn create_param(
        &mut self,
        name: &str,
        ty: Type,
        out: bool,
        optional: bool,
        tag: i32,
    ) -> Option<NodeId> {
        let op = self.current()?;
        let matches = self.matches(Some(op), name);
        if let Some(&front) = matches.first() {
            let prev = self.ast.node(front).name.clone();
            if prev != name {
                self.error(
                    codes::CASE,
                    format!(
                        "parameter `{name}' differs only in capitalization from parameter `{prev}'"
                    ),
                );
            } else {
                self.error(
                    codes::REDEFINITION,
                    format!("redefinition of parameter `{name}'"),
                );
                return None;
            }
        }
        let params = self.ast.params(op);
        if let Some(&last) = params.last() {
            if let NodeKind::Param { out: true, .. } = self.ast.node(last).kind {
                if !out {
                    {
                        let at = self.param_span.clone();
                        self.error_at(
                            codes::OPERATION,
                            format!("`{name}': in parameters cannot follow out parameters"),
                            at,
                        );
                    }
                }
            }
        }
        let cl = self
            .ast
            .node(op)
            .container
            .expect("operations are in classes");
        if self.ast.type_is_local(ty) && !self.ast.node(cl).local {
            let kind = self.ast.kind_of(cl);
            let cn = self.ast.node(cl).name.clone();
            let on = self.ast.node(op).name.clone();
            self.error(
                codes::LOCAL,
                format!("non-local {kind} `{cn}' cannot have local parameter `{name}' in operation `{on}'"),
            );
        }
        self.check_deprecated_type(ty);
        if optional {
            let (ret_optional, ret_tag) = match self.ast.node(op).kind {
                NodeKind::Operation {
                    ret_optional,
                    ret_tag,
                    ..
                } => (ret_optional, ret_tag),
                _ => (false, -1),
            };
            let in_use = (ret_optional && ret_tag == tag)
                || params.iter().any(|p| {
                    matches!(self.ast.node(*p).kind, NodeKind::Param { optional: true, tag: t, .. } if t == tag)
                });
            if in_use {
                {
                    let at = self.tag_span.clone();
                    self.error_at(
                        codes::TAG,
                        format!("tag for optional parameter `{name}' is already in use"),
                        at,
                    )
                };
            }
        }
        Some(self.add_node(
            Some(op),
            NodeKind::Param {
                ty,
                out,
                optional,
                tag,
            },
            name,
            false,
        ))
    }

    // ---------------------------------------------------------------- sequences, dictionaries, enums, constants

    /// The name ending a sequence or dictionary definition: an identifier, or a keyword (which is
    /// an error reported by the caller after the definition is created, as slice2py orders it).
    fn name_or_keyword(&mut self) -> PResult<(String, bool)> {
        match self.peek_tok() {
            Tok::Ident(n) => {
                self.bump();
                Ok((n, false))
            }
            Tok::Keyword(k) => {
                self.bump();
                Ok((k.to_string(), true))
            }
            _ => self.syntax_error(),
        }
    }

    fn sequence_def(&mut self, local: bool) -> PResult<Option<NodeId>> {
        self.bump();
        self.expect_punct('<')?;
        let metadata = self.metadata()?;
        let ty = self.parse_type()?;
        self.expect_punct('>')?;
        let (name, keyword) = self.name_or_keyword()?;
        self.peek();
        let seq = self.create_sequence(&name, ty, metadata, local);
        if keyword {
            self.error(
                codes::KEYWORD,
                format!("keyword `{name}' cannot be used as sequence name"),
            );
        }
        Ok(seq)
    }

    fn create_sequence(
        &mut self,
        name: &str,
        ty: Type,
        metadata: Vec<String>,
        local: bool,
    ) -> Option<NodeId> {
        if !self.check_simple_redefinition(name, "sequence", "sequence") {
            return None;
        }
        let cont = self.current();
        self.name_is_legal(cont, name, "sequence");
        self.check_for_global_def(cont, name, "sequence");
        if !local && self.ast.type_is_local(ty) {
            self.error(
                codes::LOCAL,
                format!("non-local sequence `{name}' cannot have local element type"),
            );
        }
        self.check_deprecated_type(ty);
        Some(self.add_node(
            cont,
            NodeKind::Sequence {
                element: ty,
                element_metadata: metadata,
            },
            name,
            local,
        ))
    }

    fn dictionary_def(&mut self, local: bool) -> PResult<Option<NodeId>> {
        self.bump();
        self.expect_punct('<')?;
        self.metadata()?;
        let key_span = self.next_span();
        let key = self.parse_type()?;
        self.expect_punct(',')?;
        self.metadata()?;
        let value = self.parse_type()?;
        self.expect_punct('>')?;
        let (name, keyword) = self.name_or_keyword()?;
        self.peek();
        let d = self.create_dictionary(&name, key, value, local, key_span);
        if keyword {
            self.error(
                codes::KEYWORD,
                format!("keyword `{name}' cannot be used as dictionary name"),
            );
        }
        Ok(d)
    }

    fn create_dictionary(
        &mut self,
        name: &str,
        key: Type,
        value: Type,
        local: bool,
        key_span: Span,
    ) -> Option<NodeId> {
        if !self.check_simple_redefinition(name, "dictionary", "dictionary") {
            return None;
        }
        let cont = self.current();
        self.name_is_legal(cont, name, "dictionary");
        self.check_for_global_def(cont, name, "dictionary");
        let mut contains_sequence = false;
        if !self.legal_key_type(key, &mut contains_sequence) {
            self.error_at(
                codes::DICTIONARY_KEY,
                format!("dictionary `{name}' uses an illegal key type"),
                key_span,
            );
            return None;
        }
        if contains_sequence {
            self.warning(
                codes::DEPRECATED,
                "use of sequences in dictionary keys has been deprecated",
            );
        }
        if !local {
            if self.ast.type_is_local(key) {
                self.error(
                    codes::LOCAL,
                    format!("non-local dictionary `{name}' cannot have local key type"),
                );
            }
            if self.ast.type_is_local(value) {
                self.error(
                    codes::LOCAL,
                    format!("non-local dictionary `{name}' cannot have local value type"),
                );
            }
        }
        self.check_deprecated_type(value);
        Some(self.add_node(cont, NodeKind::Dictionary { key, value }, name, local))
    }

    fn create_enum(&mut self, name: &str, local: bool, real: bool) -> Option<NodeId> {
        if real && !self.check_simple_redefinition(name, "enumeration", "enumeration") {
            return None;
        }
        let cont = self.current();
        if real {
            self.name_is_legal(cont, name, "enumeration");
            self.check_for_global_def(cont, name, "enumeration");
        }
        let id = self.add_node(
            cont,
            NodeKind::Enum {
                explicit_value: false,
                min_value: INT32_MAX,
                max_value: 0,
                last_value: -1,
            },
            name,
            local,
        );
        Some(id)
    }

    fn enum_def(&mut self, local: bool) -> PResult<Option<NodeId>> {
        self.bump();
        let cont = self.current();
        let (en, real) = if self.is_punct('{') {
            self.error(codes::SYNTAX, "missing enumeration name");
            let d = self.dummy_name();
            let e = self
                .create_enum(&d, local, false)
                .expect("dummy enums are always created");
            self.ast.node_mut(e).dummy = true;
            (e, false)
        } else {
            let name = self.definition_name("enumeration")?;
            match self.create_enum(&name, local, true) {
                Some(e) => {
                    self.check_introduced(cont, &name, Some(e));
                    (e, true)
                }
                None => {
                    let d = self.dummy_name();
                    let e = self
                        .create_enum(&d, local, false)
                        .expect("dummy enums are always created");
                    self.ast.node_mut(e).dummy = true;
                    (e, false)
                }
            }
        };
        self.stack.push(Some(en));
        self.expect_punct('{')?;
        let count = self.enumerator_list()?;
        self.expect_punct('}')?;
        if real && count == 0 {
            let n = self.ast.node(en).name.clone();
            self.error(
                codes::ENUM,
                format!("enum `{n}' must have at least one enumerator"),
            );
        }
        self.stack.pop();
        Ok(Some(en).filter(|e| !self.ast.node(*e).dummy))
    }

    /// Parses enumerators; returns how many were created.
    fn enumerator_list(&mut self) -> PResult<usize> {
        let mut count = 0;
        loop {
            match self.peek_tok() {
                Tok::Ident(name) => {
                    let doc = self.peek().doc.clone();
                    self.bump();
                    if self.is_punct('=') {
                        self.bump();
                        self.value_span = self.next_span();
                        let value = match self.peek_tok() {
                            Tok::Int(v, _) => {
                                self.bump();
                                Some(v.unwrap_or(i64::MAX))
                            }
                            Tok::Ident(s) | Tok::Scoped(s) => {
                                self.bump();
                                self.peek();
                                self.enumerator_initializer(&s)
                            }
                            _ => return self.syntax_error(),
                        };
                        if let Some(v) = value {
                            if !(0..=INT32_MAX).contains(&v) {
                                {
                                    let at = self.value_span.clone();
                                    self.error_at(
                                        codes::ENUM,
                                        format!("value for enumerator `{name}' is out of range"),
                                        at,
                                    );
                                }
                            } else if self.create_enumerator(&name, Some(v), doc) {
                                count += 1;
                            }
                        }
                    } else {
                        self.peek();
                        if self.create_enumerator(&name, None, doc) {
                            count += 1;
                        }
                    }
                }
                Tok::Keyword(k) => {
                    self.bump();
                    self.error(
                        codes::KEYWORD,
                        format!("keyword `{k}' cannot be used as enumerator"),
                    );
                }
                _ => {}
            }
            if self.is_punct(',') {
                self.bump();
            } else {
                return Ok(count);
            }
        }
    }

    fn enumerator_initializer(&mut self, scoped: &str) -> Option<i64> {
        let cont = self.current();
        let cl = self.lookup_contained(cont, scoped, true);
        let mut result = None;
        if let Some(&c) = cl.first() {
            if let NodeKind::Const { ty, value, .. } = self.ast.node(c).kind.clone() {
                self.check_introduced(cont, scoped, Some(c));
                if let (Type::Builtin(b), ConstValue::Int(v)) = (ty, value) {
                    if b.is_integral() {
                        result = Some(v);
                    }
                }
            }
        }
        if result.is_none() {
            self.error(
                codes::ENUM,
                format!("illegal initializer: `{scoped}' is not an integer constant"),
            );
        }
        result
    }

    /// Creates an enumerator (Slice's `validateEnumerator` and `newEnumerator`).
    fn create_enumerator(
        &mut self,
        name: &str,
        explicit: Option<i64>,
        doc: Option<String>,
    ) -> bool {
        let Some(en) = self.current() else {
            return false;
        };
        let matches = self.matches(Some(en), name);
        if let Some(&front) = matches.first() {
            let prev = self.ast.node(front).name.clone();
            if prev == name {
                self.error(
                    codes::REDEFINITION,
                    format!("redefinition of enumerator `{name}'"),
                );
            } else {
                self.error(
                    codes::CASE,
                    format!("enumerator `{name}' differs only in capitalization from `{prev}'"),
                );
            }
        }
        self.name_is_legal(Some(en), name, "enumerator");
        let (mut explicit_value, mut min_value, mut max_value, mut last_value) =
            match self.ast.node(en).kind {
                NodeKind::Enum {
                    explicit_value,
                    min_value,
                    max_value,
                    last_value,
                } => (explicit_value, min_value, max_value, last_value),
                _ => return false,
            };
        match explicit {
            Some(v) => {
                explicit_value = true;
                last_value = v;
                if last_value < 0 {
                    self.error(
                        codes::ENUM,
                        format!("value for enumerator `{name}' is out of range"),
                    );
                }
            }
            None => {
                if last_value == INT32_MAX {
                    self.error(
                        codes::ENUM,
                        format!("value for enumerator `{name}' is out of range"),
                    );
                } else {
                    last_value += 1;
                }
            }
        }
        let mut check_duplicates = true;
        if last_value > max_value {
            max_value = last_value;
            check_duplicates = false;
        }
        if last_value < min_value {
            min_value = last_value;
            check_duplicates = false;
        }
        if check_duplicates {
            for e in self.ast.enumerators(en) {
                if let NodeKind::Enumerator { value } = self.ast.node(e).kind {
                    if value == last_value {
                        let other = self.ast.node(e).name.clone();
                        self.error(
                            codes::ENUM,
                            format!(
                                "enumerator `{name}' has the same value as enumerator `{other}'"
                            ),
                        );
                    }
                }
            }
        }
        if let NodeKind::Enum {
            explicit_value: ev,
            min_value: mi,
            max_value: ma,
            last_value: lv,
        } = &mut self.ast.node_mut(en).kind
        {
            *ev = explicit_value;
            *mi = min_value;
            *ma = max_value;
            *lv = last_value;
        }
        let id = self.add_node(
            Some(en),
            NodeKind::Enumerator { value: last_value },
            name,
            false,
        );
        self.ast.node_mut(id).doc = doc;
        true
    }

    fn const_def(&mut self) -> PResult<Option<NodeId>> {
        self.bump();
        self.metadata()?;
        let ty = self.parse_type()?;
        let name = match self.peek_tok() {
            Tok::Ident(n) => {
                self.bump();
                Some(n)
            }
            Tok::Punct('=') => None,
            _ => return self.syntax_error(),
        };
        self.expect_punct('=')?;
        let mut value = self.const_initializer()?;
        self.peek();
        let (name, real) = match name {
            Some(n) => (n, true),
            None => {
                self.error(codes::SYNTAX, "missing constant name");
                (self.dummy_name(), false)
            }
        };
        if !self.check_simple_redefinition(&name, "constant", "constant") {
            return Ok(None);
        }
        let cont = self.current();
        self.name_is_legal(cont, &name, "constant");
        if real {
            self.check_for_global_def(cont, &name, "constant");
            if !self.validate_constant(&name, ty, &mut value, true) {
                return Ok(None);
            }
        }
        let resolved = value.resolved.clone().unwrap_or(ConstValue::Int(0));
        let id = self.add_node(
            cont,
            NodeKind::Const {
                ty,
                value: resolved,
                literal: value.literal,
            },
            &name,
            false,
        );
        if !real {
            self.ast.node_mut(id).dummy = true;
        }
        Ok(Some(id))
    }
}

#[derive(Clone, Copy)]
enum Exports {
    Interface,
    Class,
    Exception,
    Struct,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(n) | Tok::Scoped(n) => format!("identifier `{n}'"),
        Tok::IdentOp(n) => format!("`{n}('"),
        Tok::KeywordOp(n) => format!("`{n}('"),
        Tok::OptionalOp => "`optional('".into(),
        Tok::Keyword(k) => format!("keyword `{k}'"),
        Tok::Int(_, l) | Tok::Float(_, l) => format!("number `{l}'"),
        Tok::Str(_, l) => format!("string {l}"),
        Tok::MetaOpen => "`['".into(),
        Tok::MetaClose => "`]'".into(),
        Tok::GlobalMetaOpen => "`[['".into(),
        Tok::GlobalMetaClose => "`]]'".into(),
        Tok::Punct(c) => format!("`{c}'"),
        Tok::Illegal(c) => format!("character `{c}'"),
        Tok::Eof => "end of file".into(),
    }
}

/// "a" or "an", as Slice's messages choose it.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
