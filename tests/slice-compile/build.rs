//! Compiles every Slice file of the project, the golden file, and every file of ZeroC's installed
//! Slice (`/usr/share/ice/slice`, Debian's zeroc-ice-slice) into `OUT_DIR`, and writes `all.rs`
//! that includes each generated file in a module of its own.

use std::fmt::Write as _;
use std::path::PathBuf;

use floe_slice::corpus::{ice_files, module_name};

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let repo = manifest.join("../..");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let zeroc = PathBuf::from("/usr/share/ice/slice");
    if !zeroc.join("Ice/Identity.ice").is_file() {
        panic!(
            "ZeroC's Slice files are missing from /usr/share/ice/slice: install them with `apt-get install -y zeroc-ice-slice` (scripts/test.sh does)"
        );
    }
    let mut groups: Vec<(&str, PathBuf, Vec<PathBuf>, Vec<PathBuf>)> = Vec::new();
    let mut project = Vec::new();
    ice_files(&repo.join("slice"), &mut project);
    groups.push((
        "project",
        repo.join("slice"),
        project,
        vec![repo.join("slice"), zeroc.clone()],
    ));
    groups.push((
        "golden",
        repo.join("codegen/tests/golden"),
        vec![repo.join("codegen/tests/golden/Everything.ice")],
        vec![],
    ));
    let mut installed = Vec::new();
    ice_files(&zeroc, &mut installed);
    groups.push(("zeroc", zeroc.clone(), installed, vec![zeroc.clone()]));

    let mut all = String::new();
    for (group, root, files, includes) in groups {
        for file in files {
            let name = module_name(group, &file, &root);
            let dir = out.join(&name);
            std::fs::create_dir_all(&dir).expect("create output directory");
            let mut builder = floe_slice::Builder::new().out_dir(&dir);
            for inc in &includes {
                builder = builder.include(inc);
            }
            if let Err(e) = builder.compile(&[&file]) {
                panic!("{} does not compile:\n{e}", file.display());
            }
            let stem = file
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let generated = dir.join(format!("{stem}.rs"));
            let _ = writeln!(
                all,
                "pub mod {name} {{ include!({:?}); }}",
                generated.display().to_string()
            );
        }
    }
    std::fs::write(out.join("all.rs"), all).expect("write all.rs");
    println!("cargo:rerun-if-changed=build.rs");
}
