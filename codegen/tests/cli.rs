//! `slice2rs` run as a real process: usage, compiling to an output directory with include
//! directories, preprocessor flags, dependencies, JSON diagnostics and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn slice2rs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slice2rs"))
        .args(args)
        .output()
        .expect("run slice2rs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn write(path: &Path, contents: &str) -> PathBuf {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, contents).unwrap();
    path.to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn generated_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

/// A project with an include directory: `inc/Base.ice` and `main.ice`, which includes it
/// with angle brackets (so it is found only through `-I`).
fn project() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let inc = tmp.path().join("inc");
    write(
        &inc.join("Base.ice"),
        "#pragma once\nmodule Base\n{\n    struct Point\n    {\n        int x;\n        int y;\n    }\n}\n",
    );
    let main = write(
        &tmp.path().join("main.ice"),
        "#include <Base.ice>\n\nmodule App\n{\n    interface Canvas\n    {\n        void draw(Base::Point p);\n    }\n}\n",
    );
    (tmp, inc, main)
}

#[test]
fn help_lists_the_flags_of_slice2py() {
    let out = slice2rs(&["--help"]);
    assert!(out.status.success(), "{}", describe(&out));
    let help = text(&out.stdout);
    for flag in [
        "-I",
        "-D",
        "-U",
        "-E",
        "--output-dir",
        "--depend",
        "--diagnostic-format",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn compiles_users_manager_into_the_output_directory() {
    let out_dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let slice_dir = root.join("slice");
    let file = slice_dir.join("UsersManager.ice");
    let out = slice2rs(&[
        "-I",
        slice_dir.to_str().unwrap(),
        "--output-dir",
        out_dir.path().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let files = generated_files(out_dir.path());
    let rust: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert!(
        !rust.is_empty(),
        "no .rs file written; found {files:?}\n{}",
        describe(&out)
    );
    let all: String = rust
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for name in [
        "SessionExpired",
        "InvalidUser",
        "Unauthorized",
        "ManagerQueryResponse",
    ] {
        assert!(all.contains(name), "generated code never mentions {name}");
    }
    assert!(
        all.contains("createUser"),
        "generated code lacks the wire name of operation createUser"
    );
}

#[test]
fn include_directories_are_searched() {
    let (tmp, inc, main) = project();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out_s = out_dir.to_str().unwrap();

    let separate = slice2rs(&[
        "-I",
        inc.to_str().unwrap(),
        "--output-dir",
        out_s,
        main.to_str().unwrap(),
    ]);
    assert!(
        separate.status.success(),
        "-I DIR:\n{}",
        describe(&separate)
    );

    let joined = format!("-I{}", inc.display());
    let attached = slice2rs(&[&joined, "--output-dir", out_s, main.to_str().unwrap()]);
    assert!(attached.status.success(), "-IDIR:\n{}", describe(&attached));

    let without = slice2rs(&["--output-dir", out_s, main.to_str().unwrap()]);
    assert_eq!(
        without.status.code(),
        Some(1),
        "without -I the include cannot be found:\n{}",
        describe(&without)
    );
}

#[test]
fn an_error_exits_1_and_names_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = write(
        &tmp.path().join("Bad.ice"),
        "module M\n{\n    struct S\n    {\n        Missing m;\n    }\n}\n",
    );
    let out = slice2rs(&[
        "--output-dir",
        tmp.path().to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("error[E"),
        "no `error[E…]` in the output:\n{all}"
    );
    assert!(
        all.contains("Bad.ice:5:9"),
        "the error does not point at Bad.ice:5:9:\n{all}"
    );
    let written: Vec<PathBuf> = generated_files(tmp.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert!(
        written.is_empty(),
        "code was generated despite the error: {written:?}"
    );
}

#[test]
fn warnings_alone_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        &tmp.path().join("Warn.ice"),
        "module M\n{\n    sequence<int> Ints;\n    dictionary<Ints, string> BySequence;\n}\n",
    );
    let out = slice2rs(&[
        "--output-dir",
        tmp.path().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn a_missing_input_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("DoesNotExist.ice");
    let out = slice2rs(&[
        "--output-dir",
        tmp.path().to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}

#[test]
fn json_diagnostics_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = write(
        &tmp.path().join("Twice.ice"),
        "module M\n{\n    struct S\n    {\n        int a;\n        Nope b;\n        Nada c;\n    }\n}\n",
    );
    let out = slice2rs(&[
        "--diagnostic-format",
        "json",
        "--output-dir",
        tmp.path().to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let both = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    let objects: Vec<serde_json::Value> = both
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        objects.len() >= 2,
        "expected both errors as JSON lines:\n{}",
        describe(&out)
    );
    for o in &objects {
        for key in ["severity", "code", "message", "file", "line", "column"] {
            assert!(o.get(key).is_some(), "JSON diagnostic without {key:?}: {o}");
        }
    }
    let errors: Vec<(u64, u64)> = objects
        .iter()
        .filter(|o| o["severity"] == "error")
        .map(|o| (o["line"].as_u64().unwrap(), o["column"].as_u64().unwrap()))
        .collect();
    assert!(errors.contains(&(6, 9)), "no error at 6:9 in {errors:?}");
    assert!(errors.contains(&(7, 9)), "no error at 7:9 in {errors:?}");
    assert!(
        objects
            .iter()
            .all(|o| o["file"].as_str().is_some_and(|f| f.ends_with("Twice.ice"))),
        "diagnostics should name Twice.ice: {objects:?}"
    );
}

#[test]
fn preprocess_only_honours_defines() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        &tmp.path().join("Cond.ice"),
        "#ifdef FLOE_FLAG\nmodule WhenDefined\n{\n}\n#else\nmodule WhenUndefined\n{\n}\n#endif\n",
    );
    let f = file.to_str().unwrap();

    let defined = slice2rs(&["-DFLOE_FLAG", "-E", f]);
    assert!(defined.status.success(), "{}", describe(&defined));
    let stdout = text(&defined.stdout);
    assert!(
        stdout.contains("WhenDefined") && !stdout.contains("WhenUndefined"),
        "{stdout}"
    );

    let plain = slice2rs(&["-E", f]);
    assert!(plain.status.success(), "{}", describe(&plain));
    let stdout = text(&plain.stdout);
    assert!(
        stdout.contains("WhenUndefined") && !stdout.contains("WhenDefined"),
        "{stdout}"
    );

    let undefined = slice2rs(&["-DFLOE_FLAG", "-UFLOE_FLAG", "-E", f]);
    assert!(undefined.status.success(), "{}", describe(&undefined));
    let stdout = text(&undefined.stdout);
    assert!(
        stdout.contains("WhenUndefined") && !stdout.contains("WhenDefined"),
        "-D then -U:\n{stdout}"
    );

    // Like slice2py (mcpp), -U wins over -D whatever their order.
    let undefined_first = slice2rs(&["-UFLOE_FLAG", "-DFLOE_FLAG", "-E", f]);
    assert!(
        undefined_first.status.success(),
        "{}",
        describe(&undefined_first)
    );
    let stdout = text(&undefined_first.stdout);
    assert!(
        stdout.contains("WhenUndefined") && !stdout.contains("WhenDefined"),
        "-U then -D:\n{stdout}"
    );
}

#[test]
fn depend_lists_the_included_files() {
    let (_tmp, inc, main) = project();
    let out = slice2rs(&[
        "-I",
        inc.to_str().unwrap(),
        "--depend",
        main.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("main.ice"),
        "--depend omits the input:\n{stdout}"
    );
    assert!(
        stdout.contains("Base.ice"),
        "--depend omits the included file:\n{stdout}"
    );
}

/// Nested module definitions `depth` deep, one struct at the bottom.
fn nested_modules(depth: usize) -> String {
    let mut text = String::new();
    for i in 0..depth {
        text.push_str(&format!("module M{i}\n{{\n"));
    }
    text.push_str("struct S\n{\n    int a;\n}\n");
    for _ in 0..depth {
        text.push_str("}\n");
    }
    text
}

#[test]
fn deep_nesting_is_accepted_like_slice2py_does() {
    // slice2py (a bison parser) accepts modules nested a thousand deep; a recursive-descent parser
    // must not overflow its stack on them. Run as a process so that a crash fails only this test.
    // slice2py is asked for --depend, which parses and checks everything but skips generating
    // a thousand nested Python packages (tens of seconds of directory creation).
    let tmp = tempfile::tempdir().unwrap();
    let file = write(&tmp.path().join("Deep.ice"), &nested_modules(1000));
    let py = Command::new("slice2py")
        .arg("--depend")
        .arg(&file)
        .output()
        .expect("run slice2py (install zeroc-ice-compilers)");
    assert!(
        py.status.success(),
        "slice2py rejects the input:\n{}",
        describe(&py)
    );

    let out = slice2rs(&["--depend", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "slice2rs fails where slice2py succeeds (no status code means it was killed by a signal, \
         e.g. a stack overflow):\n{}",
        describe(&out)
    );
}

#[test]
fn deep_nesting_generates_code_without_crashing() {
    // slice2py also generates code for modules nested 600 deep (slowly: one Python package
    // directory per module), so slice2rs must too. slice2py's verdict comes from --depend.
    let tmp = tempfile::tempdir().unwrap();
    let file = write(&tmp.path().join("Deep.ice"), &nested_modules(600));
    let py = Command::new("slice2py")
        .arg("--depend")
        .arg(&file)
        .output()
        .expect("run slice2py (install zeroc-ice-compilers)");
    assert!(
        py.status.success(),
        "slice2py rejects the input:\n{}",
        describe(&py)
    );

    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = slice2rs(&[
        "--output-dir",
        out_dir.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "slice2rs cannot generate code for what slice2py accepts (no status code means it was \
         killed by a signal, e.g. a stack overflow):\n{}",
        describe(&out)
    );
}

#[test]
fn include_directories_are_searched_in_order() {
    // Two directories hold a Base.ice each; main.ice needs the one defining module First. Like
    // slice2py, the first -I directory that has the file wins, so only one order compiles.
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let second = tmp.path().join("second");
    write(
        &first.join("Base.ice"),
        "#pragma once\nmodule First\n{\n    struct B\n    {\n        int a;\n    }\n}\n",
    );
    write(
        &second.join("Base.ice"),
        "#pragma once\nmodule Second\n{\n    struct B\n    {\n        int a;\n    }\n}\n",
    );
    let main = write(
        &tmp.path().join("main.ice"),
        "#include <Base.ice>\nmodule App\n{\n    struct S\n    {\n        First::B b;\n    }\n}\n",
    );
    let mut verdicts = Vec::new();
    for (dirs, label) in [
        ([&first, &second], "first, second"),
        ([&second, &first], "second, first"),
    ] {
        let args: Vec<String> = dirs.iter().map(|d| format!("-I{}", d.display())).collect();
        let py = Command::new("slice2py")
            .args(&args)
            .arg("--depend")
            .arg(&main)
            .output()
            .expect("run slice2py (install zeroc-ice-compilers)");
        let mut rs_args: Vec<&str> = args.iter().map(String::as_str).collect();
        rs_args.push("--depend");
        rs_args.push(main.to_str().unwrap());
        let rs = slice2rs(&rs_args);
        assert_eq!(
            rs.status.success(),
            py.status.success(),
            "-I {label}: slice2py {}, slice2rs {}\n--- slice2py\n{}\n--- slice2rs\n{}",
            if py.status.success() {
                "accepts"
            } else {
                "rejects"
            },
            if rs.status.success() {
                "accepts"
            } else {
                "rejects"
            },
            describe(&py),
            describe(&rs)
        );
        verdicts.push(py.status.success());
    }
    assert_ne!(
        verdicts[0], verdicts[1],
        "the fixture should make the order of -I matter to slice2py"
    );
}

#[test]
fn json_warnings_have_severity_warning_and_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        &tmp.path().join("Deprecated.ice"),
        "module M\n{\n    sequence<int> Ints;\n    dictionary<Ints, string> BySequence;\n}\n",
    );
    let out = slice2rs(&[
        "--diagnostic-format",
        "json",
        "--output-dir",
        tmp.path().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let both = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    let warnings: Vec<serde_json::Value> = both
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|o: &serde_json::Value| o["severity"] == "warning")
        .collect();
    assert!(
        warnings.iter().any(|o| o["line"] == 4),
        "expected a JSON warning on line 4 (sequence as dictionary key):\n{}",
        describe(&out)
    );
}

#[test]
fn several_input_files_in_one_run() {
    // Like slice2py, several files may be given at once; one bad file makes the run fail.
    let tmp = tempfile::tempdir().unwrap();
    let a = write(
        &tmp.path().join("A.ice"),
        "module A\n{\n    struct S\n    {\n        int x;\n    }\n}\n",
    );
    let b = write(
        &tmp.path().join("B.ice"),
        "module B\n{\n    struct T\n    {\n        long y;\n    }\n}\n",
    );
    let bad = write(
        &tmp.path().join("Bad.ice"),
        "module C\n{\n    struct U\n    {\n        Nope z;\n    }\n}\n",
    );
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let o = out_dir.to_str().unwrap();

    let good = slice2rs(&["--output-dir", o, a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(good.status.success(), "{}", describe(&good));
    let names: Vec<String> = generated_files(&out_dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for stem in ["A", "B"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(stem) && n.ends_with(".rs")),
            "no generated file for {stem}.ice in {names:?}"
        );
    }

    let mixed = slice2rs(&[
        "--output-dir",
        o,
        a.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(mixed.status.code(), Some(1), "{}", describe(&mixed));
}
