//! Slice doc comments become rustdoc: links resolve to the generated items wherever they are
//! (another module, an inherited operation, a base exception's member), and whatever a comment
//! holds, rustdoc renders the result without a warning.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

mod common;

use floe_slice::doc::{Context, Param, Target, rustdoc};

fn generate(slice: &str) -> String {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let file = dir.path().join("Docs.ice");
    std::fs::write(&file, slice).expect("write Docs.ice");
    common::generate_valid(&file)
}

#[test]
fn links_resolve_to_generated_items() {
    let code = generate(
        r#"
module A
{
    /** The base. */
    exception Base { int code; }

    /** Derived, whose {@link #code} comes from {@link Base}. */
    exception Derived extends Base { string why; }

    interface Root { void ping(); }

    /** Forward-declared, defined in no file. */
    interface Remote;

    module Inner
    {
        /**
         * Pings through {@link Leaf#ping} (inherited), {@link A::Root}, {@link ::A::Remote}
         * and {@link root} (spelled in the wrong case).
         *
         * @throws A::Derived Never.
         */
        interface Leaf extends Root
        {
            /**
             * See {@link #ping}, {@link Derived#why} and {@link Missing#member}.
             * @param type A Rust keyword.
             */
            void call(int type) throws Derived;
        }
    }
}
"#,
    );
    for expected in [
        "/// Derived, whose [`code`](Derived::code) comes from [`Base`].",
        "/// Pings through [`Leaf::ping`](LeafPrx::ping) (inherited), \
         [`A::Root`](super::RootPrx), [`A::Remote`](super::RemotePrx)",
        "/// and [`root`](super::RootPrx) (spelled in the wrong case).",
        "/// * [`A::Derived`](super::Derived) - Never.",
        "/// See [`ping`](LeafPrx::ping), [`Derived::why`](super::Derived::why) and \
         `Missing::member`.",
        "/// * `r#type` - A Rust keyword.",
    ] {
        assert!(
            code.contains(expected),
            "generated code lacks\n{expected}\n\n{code}"
        );
    }
}

/// Pieces of comments, ZeroC's habits and Markdown's, combined at random below.
const PIECES: &[&str] = &[
    "Text ",
    "more words, ",
    "\n",
    "\n\n",
    "\n    indented ",
    "{@link Point}",
    "{@link Point#x}",
    "{@link #x}",
    "{@link Registry}",
    "{@link Registry#getSessionTimeout}",
    "{@link Registry the registry}",
    "{@link Nested::Inner}",
    "{@link Unknown#op(int, string)}",
    "{@link ",
    "{@code a<b>[c]}",
    "}",
    "<p>",
    "<p class=\"Note\">",
    "</p>",
    "<b>",
    "</b>",
    "<em>",
    "</em>",
    "<code>",
    "</code>",
    "<pre>\n  x &lt; 1\n</pre>",
    "<pre>",
    "</pre>",
    "<ul>",
    "<ol>",
    "<li>",
    "</li>",
    "</ul>",
    "</ol>",
    "<dl><dt>term</dt><dd>definition</dd></dl>",
    "<dt>",
    "<dd>",
    "<a href=\"https://zeroc.com\">",
    "</a>",
    "<br>",
    "<T>",
    "sequence<string>",
    "<",
    ">",
    "&lt;",
    "&amp;",
    "&",
    "`",
    "``",
    "```",
    "\n```\nlet x = 1;\n```\n",
    "`name'",
    "'",
    "[",
    "]",
    "[x]",
    "[x](y)",
    "\\",
    "#",
    "*",
    "_",
    "- ",
    "1. ",
    "> ",
    "|",
    "https://doc.zeroc.com/ice/3.7).",
    "http://",
    "<https://zeroc.com>",
    "<!-- hidden -->",
    "é",
    "\n@param a The a.",
    "\n@param count How many.",
    "\n@return The result.",
    "\n@throws NotFound If missing.",
    "\n@exception Other",
    "\n@see Registry#getSessionTimeout",
    "\n@see \"a string\"",
    "\n@deprecated Use {@link Point}.",
    "\n@since 3.7",
];

/// The items the links above resolve to, as a generator would name them.
const ITEMS: &str = "\
/// A point.
pub struct Point {
    /// Across.
    pub x: i32,
}
/// A proxy.
pub struct RegistryPrx;
impl RegistryPrx {
    /// A method.
    pub fn get_session_timeout(&self) {}
}
/// An error.
pub struct NotFound;
/// A module.
pub mod nested {
    /// An item.
    pub struct Inner;
}
";

fn resolve(reference: &str) -> Option<Target> {
    let (path, text) = match reference {
        "Point" => ("Point", "Point"),
        "Point#x" => ("Point::x", "Point::x"),
        "#x" => ("Point::x", "x"),
        "Registry" => ("RegistryPrx", "Registry"),
        "Registry#getSessionTimeout" => (
            "RegistryPrx::get_session_timeout",
            "Registry::get_session_timeout",
        ),
        "NotFound" => ("NotFound", "NotFound"),
        "Nested::Inner" => ("nested::Inner", "Nested::Inner"),
        _ => return None,
    };
    Some(Target {
        path: path.into(),
        text: text.into(),
    })
}

/// Where `rustdoc` is: `RUSTDOC`, else next to the cargo running the tests, else on the path.
fn rustdoc_binary() -> PathBuf {
    if let Some(r) = std::env::var_os("RUSTDOC") {
        return r.into();
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        let sibling = PathBuf::from(cargo).with_file_name("rustdoc");
        if sibling.is_file() {
            return sibling;
        }
    }
    "rustdoc".into()
}

/// Renders 400 comments made of random [`PIECES`] with `rustdoc`, every lint denied. The
/// sequence is fixed; `FLOE_DOC_SEED=n` picks another one, for longer searches by hand.
#[test]
fn random_comments_render_without_rustdoc_warnings() {
    let params = [
        Param {
            slice: "a".into(),
            rust: "a".into(),
            out: false,
        },
        Param {
            slice: "count".into(),
            rust: "count".into(),
            out: true,
        },
    ];
    let cx = Context {
        resolve: &resolve,
        params: &params,
    };
    let mut lib = String::from(
        "//! Random doc comments converted by floe_slice::doc.\n\
         #![deny(warnings, rustdoc::all)]\n\n",
    );
    lib.push_str(ITEMS);
    let seed: u64 = std::env::var("FLOE_DOC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut state: u64 = 0x853c_49e6_748f_ea9b ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for i in 0..400 {
        let mut raw = String::new();
        for _ in 0..(3 + state % 20) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            raw.push_str(PIECES[(state >> 33) as usize % PIECES.len()]);
        }
        let markdown = rustdoc(&raw, &cx);
        let _ = writeln!(lib, "\n// From {raw:?}");
        for line in markdown.lines() {
            let _ = writeln!(lib, "#[doc = {:?}]", format!(" {line}"));
        }
        let _ = writeln!(lib, "pub struct Item{i};");
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("doc-comments");
    std::fs::create_dir_all(&work).expect("create the work directory");
    let file = work.join("lib.rs");
    std::fs::write(&file, &lib).expect("write lib.rs");
    let binary = rustdoc_binary();
    let output = Command::new(&binary)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "--crate-name",
            "doc_comments",
        ])
        .arg("-o")
        .arg(work.join("doc"))
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rustdoc warns about converted comments (seed {seed}, {}):\n{}",
        file.display(),
        stderr.lines().take(200).collect::<Vec<_>>().join("\n")
    );
}
