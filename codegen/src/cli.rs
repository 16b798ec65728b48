//! The command line of `slice2rs`, mirroring `slice2py`'s flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::Options;

const USAGE: &str = "Usage: slice2rs [options] file...

Options:
-h, --help               Show this message.
-v, --version            Display the Floe version.
-DNAME                   Define NAME as 1.
-DNAME=DEF               Define NAME as DEF.
-UNAME                   Remove any definition for NAME.
-IDIR                    Put DIR in the include file search path.
-E                       Print preprocessor output on stdout.
--output-dir DIR         Create files in the directory DIR.
--depend                 Generate Makefile dependencies.
--checksum               Generate checksums for Slice definitions (floe::slice_checksums()).
--diagnostic-format FMT  Print diagnostics as `human' (default) or `json' (one object per line).
";

struct Args {
    options: Options,
    files: Vec<PathBuf>,
    output_dir: Option<PathBuf>,
    preprocess_only: bool,
    depend: bool,
    json: bool,
    checksum: bool,
}

fn parse_args(args: Vec<String>) -> Result<Option<Args>, String> {
    let mut out = Args {
        options: Options::default(),
        files: Vec::new(),
        output_dir: None,
        preprocess_only: false,
        depend: false,
        json: false,
        checksum: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str, rest: &str| -> Result<String, String> {
            if rest.is_empty() {
                it.next()
                    .ok_or_else(|| format!("argument for {flag} is missing"))
            } else {
                Ok(rest.trim_start_matches('=').to_string())
            }
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-v" | "--version" => {
                println!("{}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-E" => out.preprocess_only = true,
            "--depend" => out.depend = true,
            "--checksum" => out.checksum = true,
            a if a.starts_with("--output-dir") => {
                out.output_dir = Some(PathBuf::from(value(
                    "--output-dir",
                    &a["--output-dir".len()..],
                )?))
            }
            a if a.starts_with("--diagnostic-format") => {
                match value("--diagnostic-format", &a["--diagnostic-format".len()..])?.as_str() {
                    "json" => out.json = true,
                    "human" => out.json = false,
                    other => return Err(format!("unknown diagnostic format `{other}'")),
                }
            }
            a if a.starts_with("-I") => out
                .options
                .include_dirs
                .push(PathBuf::from(value("-I", &a[2..])?)),
            a if a.starts_with("-D") => {
                let def = value("-D", &a[2..])?;
                match def.split_once('=') {
                    Some((n, v)) => out
                        .options
                        .defines
                        .push((n.to_string(), Some(v.to_string()))),
                    None => out.options.defines.push((def, None)),
                }
            }
            a if a.starts_with("-U") => out.options.undefines.push(value("-U", &a[2..])?),
            a if a.starts_with('-') && a.len() > 1 => return Err(format!("unknown option `{a}'")),
            _ => out.files.push(PathBuf::from(arg)),
        }
    }
    Ok(Some(out))
}

/// Runs `slice2rs` with the given arguments (program name excluded).
pub fn main(args: Vec<String>) -> ExitCode {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("slice2rs: error: {e}");
            eprint!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if args.files.is_empty() {
        eprintln!("slice2rs: error: no input file");
        eprint!("{USAGE}");
        return ExitCode::FAILURE;
    }
    if let Some(dir) = &args.output_dir {
        if !dir.is_dir() {
            eprintln!(
                "slice2rs: error: argument for --output-dir does not exist or is not a directory"
            );
            return ExitCode::FAILURE;
        }
    }
    let mut failed = false;
    for file in &args.files {
        if args.preprocess_only {
            let pre = crate::preprocess::preprocess(
                file,
                &args.options.include_dirs,
                &args.options.defines,
                &args.options.undefines,
            );
            let mut stdout = std::io::stdout().lock();
            for seg in &pre.segments {
                let header = format!(
                    "#line {} \"{}\"\n",
                    seg.first_line,
                    pre.files[seg.file].display()
                );
                let _ = std::io::Write::write_all(&mut stdout, header.as_bytes());
                let _ = std::io::Write::write_all(
                    &mut stdout,
                    &crate::preprocess::encode_raw(&seg.text),
                );
            }
            failed |= report(&pre.diagnostics, args.json);
            continue;
        }
        let checked = crate::check(file, &args.options);
        failed |= report(&checked.diagnostics, args.json);
        if checked.has_errors() {
            continue;
        }
        if args.depend {
            let target = output_path(file, args.output_dir.as_deref());
            let deps: Vec<String> = checked
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            println!("{}: {}", target.display(), deps.join(" \\\n "));
            continue;
        }
        match crate::generate::generate(&checked, file) {
            Ok(mut code) => {
                if args.checksum {
                    code.push_str(&crate::checksum::rust_items(&checked.ast));
                }
                let target = output_path(file, args.output_dir.as_deref());
                if let Err(e) = std::fs::write(&target, code) {
                    eprintln!("slice2rs: error: cannot write `{}`: {e}", target.display());
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("slice2rs: error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn output_path(file: &Path, dir: Option<&Path>) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.unwrap_or(Path::new(".")).join(format!("{stem}.rs"))
}

fn report(diags: &[crate::Diagnostic], json: bool) -> bool {
    let mut errors = 0;
    for d in diags {
        if d.is_error() {
            errors += 1;
        }
        if json {
            eprintln!("{}", d.to_json());
        } else {
            eprint!("{}", d.render());
        }
    }
    if errors > 0 && !json {
        eprintln!("{errors} error{} found", if errors == 1 { "" } else { "s" });
    }
    errors > 0
}
