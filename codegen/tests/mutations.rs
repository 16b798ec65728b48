//! Mutation testing of the accept/reject decision: small random edits (drop, repeat, replace
//! or swap one token) of valid Slice files, each given to `slice2py` and to our compiler. Most
//! mutants are rejected by both; the test fails on every mutant the two decide differently.
//! The generator is seeded, so a given tree always produces the same mutants.
//!
//! Sources: the `ok_*` inputs of `tests/diff/`, Ice's installed Slice files, and ZeroC's source
//! corpus (`FLOE_ICE_SOURCE`) except files that test `__SLICE2…__` macros: those select text per
//! compiler, so `slice2py` and `slice2rs` may rightly decide a mutant of them differently.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// How many mutants one run checks, unless `FLOE_MUTANTS` says otherwise.
const MUTANTS: usize = 800;
/// Fixed seed: the same sources always give the same mutants. `FLOE_MUTATION_SEED` (decimal or
/// `0x` hexadecimal) picks another set, for longer searches by hand.
const SEED: u64 = 0x5eed_f10e;
/// How many mutants of directive lines one run checks, unless `FLOE_MUTANTS` says otherwise.
const DIRECTIVE_MUTANTS: usize = 400;

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        }
        Err(_) => default,
    }
}

/// splitmix64: small, good enough, and needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Replacement tokens: keywords, punctuation and literals of every kind.
const WORDS: &[&str] = &[
    "int",
    "long",
    "string",
    "module",
    "struct",
    "class",
    "interface",
    "exception",
    "optional(1)",
    "out",
    "local",
    "extends",
    "implements",
    "sequence<int>",
    "dictionary<int,int>",
    "Object",
    "Value",
    "LocalObject",
    "*",
    ",",
    ";",
    "{",
    "}",
    "(",
    ")",
    "<",
    ">",
    "=",
    "0",
    "-1",
    "1.5",
    "\"s\"",
    "::",
    "idempotent",
    "throws",
    "enum",
    "const",
    "[\"amd\"]",
    "[[\"x\"]]",
    "\\int",
    "A",
    "a",
    "#",
    "void",
    "true",
];

/// Which tokens a mutant may edit.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// Any token outside comments.
    Anywhere,
    /// Only tokens of preprocessor directive lines, where the two compilers' preprocessors meet.
    Directives,
}

/// For each token, whether it sits on a line whose first token is `#`.
fn on_directive_lines(toks: &[(Kind, String)]) -> Vec<bool> {
    let mut out = Vec::with_capacity(toks.len());
    let mut at_line_start = true;
    let mut directive = false;
    for (kind, text) in toks {
        if *kind == Kind::Other && at_line_start {
            directive = text.starts_with('#');
            at_line_start = false;
        }
        out.push(directive);
        if *kind != Kind::Other && text.contains('\n') {
            at_line_start = true;
            directive = false;
        }
    }
    out
}

/// One mutant of `text`, and a description of the edit.
fn mutate(text: &str, scope: Scope, rng: &mut Rng) -> Option<(String, String)> {
    let mut toks = tokens(text);
    let directive = on_directive_lines(&toks);
    let candidates: Vec<usize> = toks
        .iter()
        .enumerate()
        .filter(|(i, (k, _))| *k == Kind::Other && (scope == Scope::Anywhere || directive[*i]))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let line_of = |toks: &[(Kind, String)], i: usize| {
        1 + toks[..i]
            .iter()
            .map(|(_, t)| t.matches('\n').count())
            .sum::<usize>()
    };
    let i = candidates[rng.below(candidates.len())];
    let line = line_of(&toks, i);
    let old = toks[i].1.clone();
    let what = match rng.below(4) {
        0 => {
            toks[i].1.clear();
            format!("line {line}: removed `{old}`")
        }
        1 => {
            toks[i].1 = format!("{old} {old}");
            format!("line {line}: repeated `{old}`")
        }
        2 => {
            let new = WORDS[rng.below(WORDS.len())];
            toks[i].1 = new.to_string();
            format!("line {line}: replaced `{old}` with `{new}`")
        }
        _ => {
            let j = candidates[rng.below(candidates.len())];
            let other = toks[j].1.clone();
            toks.swap(i, j);
            format!(
                "line {line}: swapped `{old}` with `{other}` (line {})",
                line_of(&toks, j)
            )
        }
    };
    let text: String = toks.into_iter().map(|(_, t)| t).collect();
    let now = text.lines().nth(line - 1).unwrap_or("").trim();
    let what = format!("{what}; line {line} now reads `{now}`");
    Some((text, what))
}

#[test]
fn tokens_round_trip() {
    let text = "// c\nmodule \\M { /* x */ struct S { string s = \"a\\\"b\"; double d = 1.5e3; }; M::S t; };\n";
    let toks = tokens(text);
    assert_eq!(
        toks.iter().map(|(_, t)| t.as_str()).collect::<String>(),
        text
    );
    assert!(
        toks.iter()
            .any(|(k, t)| *k == Kind::Other && t == "\"a\\\"b\"")
    );
    assert!(toks.iter().any(|(k, t)| *k == Kind::Other && t == "\\M"));
    assert!(toks.iter().any(|(k, t)| *k == Kind::Other && t == "::"));
    assert!(toks.iter().any(|(k, _)| *k == Kind::Comment));
}

fn sources() -> Vec<PathBuf> {
    let diff = crate_dir().join("tests").join("diff");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&diff)
        .expect("read tests/diff")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "ice")
                && p.file_name().unwrap().to_string_lossy().starts_with("ok_")
        })
        .collect();
    files.extend(files_with_extension(&ice_slice_dir(), "ice"));
    files.extend(
        files_with_extension(&ice_source(), "ice")
            .into_iter()
            .filter(|p| {
                std::fs::read(p)
                    .map(|b| !String::from_utf8_lossy(&b).contains("__SLICE2"))
                    .unwrap_or(false)
            }),
    );
    files.sort();
    files
}

struct Mutant {
    dir: tempfile::TempDir,
    file: PathBuf,
    source: PathBuf,
    what: String,
}

#[test]
fn mutants_get_the_verdicts_of_slice2py() {
    check_mutants(Scope::Anywhere, MUTANTS, SEED);
}

/// Directive lines are few, so edits anywhere seldom reach them; these mutants edit nothing else.
#[test]
fn directive_mutants_get_the_verdicts_of_slice2py() {
    check_mutants(Scope::Directives, DIRECTIVE_MUTANTS, SEED ^ 0xd1ec);
}

fn check_mutants(scope: Scope, default_count: usize, default_seed: u64) {
    let sources = sources();
    assert!(
        sources.len() > 50,
        "too few sources to mutate: {}",
        sources.len()
    );
    let texts: Vec<String> = sources
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();

    let seed = setting("FLOE_MUTATION_SEED", default_seed);
    let count = setting("FLOE_MUTANTS", default_count as u64) as usize;
    let mut rng = Rng(seed);
    let mut mutants = Vec::new();
    while mutants.len() < count {
        let k = rng.below(sources.len());
        let Some((text, what)) = mutate(&texts[k], scope, &mut rng) else {
            continue;
        };
        // The mutant keeps its source's name, so a file that includes itself still does.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(sources[k].file_name().unwrap());
        std::fs::write(&file, text).unwrap();
        mutants.push(Mutant {
            dir,
            file,
            source: sources[k].clone(),
            what,
        });
    }

    let includes = |m: &Mutant| -> Vec<PathBuf> {
        vec![
            PathBuf::from(ICE_SLICE_DIR),
            m.source.parent().unwrap().to_path_buf(),
            m.dir.path().to_path_buf(),
        ]
    };
    let results = par_map(&mutants, |m| {
        let inc = includes(m);
        (slice2py(&m.file, &inc), our_verdict(&m.file, &inc))
    });

    let mut failures = Vec::new();
    let accepted = results.iter().filter(|(t, _)| t.accepted).count();
    for (m, (theirs, ours)) in mutants.iter().zip(&results) {
        if theirs.accepted != ours.accepted {
            failures.push(format!(
                "  mutant of {}: {}\n    slice2py {}:\n{}\n    slice2rs {}:\n{}",
                shown_source(&m.source),
                m.what,
                if theirs.accepted {
                    "accepts"
                } else {
                    "rejects"
                },
                indent(&theirs.report),
                if ours.accepted { "accepts" } else { "rejects" },
                indent(&ours.report),
            ));
        }
    }
    let report = format!(
        "\nmutants vs slice2py (seed {seed:#x}): {} mutants, {accepted} accepted by slice2py\n  passed {:>6}\n  failed {:>6}\n{}",
        mutants.len(),
        mutants.len() - failures.len(),
        failures.len(),
        failures.join("\n")
    );
    assert!(failures.is_empty(), "{report}");
    println!("{report}");
}

fn shown_source(p: &Path) -> String {
    let diff = crate_dir().join("tests").join("diff");
    if let Ok(r) = p.strip_prefix(&diff) {
        return format!("tests/diff/{}", r.display());
    }
    if let Ok(r) = p.strip_prefix(ice_source()) {
        return format!("$FLOE_ICE_SOURCE/{}", r.display());
    }
    p.display().to_string()
}
