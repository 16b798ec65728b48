//! Our `slice/IceStorm/IceStorm.ice` declares what ZeroC's `IceStorm.ice` declares: the Python
//! code `slice2py` generates from each has the same type definitions (type ids, members,
//! exceptions) and the same operations (names, modes as declared and as sent, parameters,
//! results, exceptions).

use std::path::Path;
use std::process::Command;

const ZEROC_SLICE: &str = "/usr/share/ice/slice";

fn definitions(include: &Path, file: &Path, out: &Path) -> Vec<String> {
    let status = Command::new("slice2py")
        .arg(format!("-I{}", include.display()))
        .arg("--output-dir")
        .arg(out)
        .arg(file)
        .status()
        .expect("slice2py is missing: install the Debian package zeroc-ice-compilers");
    assert!(status.success(), "slice2py failed on {}", file.display());
    let generated = [
        out.join("IceStorm_ice.py"),
        out.join("IceStorm/IceStorm_ice.py"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("slice2py wrote IceStorm_ice.py");
    let text = std::fs::read_to_string(generated).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| {
            l.contains("IcePy.define")
                || l.contains("IcePy.Operation(")
                || l.starts_with("_ice_id =")
                || l.starts_with("return (")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn icestorm_ice_matches_zerocs_declarations() {
    let zeroc = Path::new(ZEROC_SLICE).join("IceStorm/IceStorm.ice");
    assert!(
        zeroc.exists(),
        "{} is missing: install the Debian package zeroc-ice-slice",
        zeroc.display()
    );
    let ours_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../slice");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("zeroc"), tmp.path().join("ours"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let theirs = definitions(Path::new(ZEROC_SLICE), &zeroc, &a);
    let ours = definitions(&ours_dir, &ours_dir.join("IceStorm/IceStorm.ice"), &b);
    assert!(
        theirs
            .iter()
            .filter(|l| l.contains("IcePy.Operation("))
            .count()
            >= 15,
        "expected every Topic, TopicManager and Finder operation in ZeroC's file: {theirs:#?}"
    );
    let only_theirs: Vec<&String> = theirs.iter().filter(|l| !ours.contains(l)).collect();
    let only_ours: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
    assert!(
        only_theirs.is_empty() && only_ours.is_empty(),
        "declarations differ\nonly in ZeroC's IceStorm.ice:\n{only_theirs:#?}\nonly in ours:\n{only_ours:#?}"
    );
    assert_eq!(ours, theirs, "same declarations, in the same order");
}
