//! ZeroC's C++ side of the interop tests: `tests/cpp/server.cpp` built with `slice2cpp` and `g++`
//! against Debian's `libzeroc-ice-dev` (C++11 mapping, `-lIce++11`), once per content: the
//! executable is cached under the target directory, keyed by a hash of its sources and of the
//! tools' versions, so later runs start it at once.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

const INSTALL: &str = "apt-get install -y g++ zeroc-ice-compilers libzeroc-ice-dev \
                       (scripts/test.sh installs them)";

fn tool_version(tool: &str, arg: &str, package: &str) -> String {
    match Command::new(tool).arg(arg).output() {
        Ok(out) if out.status.success() => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            text
        }
        Ok(out) => panic!(
            "`{tool} {arg}` failed ({}): reinstall the Debian package {package}; {INSTALL}",
            out.status
        ),
        Err(e) => {
            panic!("{tool} cannot be run ({e}): install the Debian package {package}; {INSTALL}")
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    vec![
        tests.join("cpp/server.cpp"),
        tests.join("cpp/ServerOnly.ice"),
        tests.join("slice/Types.ice"),
        tests.join("slice/Test.ice"),
    ]
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}; {INSTALL}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the server into `dir`.
fn build(dir: &Path) {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let slice_dir = tests.join("slice");
    run(
        Command::new("slice2cpp")
            .arg("-I")
            .arg(&slice_dir)
            .arg("--output-dir")
            .arg(dir)
            .arg(slice_dir.join("Test.ice"))
            .arg(slice_dir.join("Types.ice"))
            .arg(tests.join("cpp/ServerOnly.ice")),
        "slice2cpp",
    );
    // One compiler run for the four translation units, unoptimised: the server only has to be
    // correct, and this keeps the first build of a clean target directory short.
    run(
        Command::new("g++")
            .args(["-std=c++11", "-O0", "-DICE_CPP11_MAPPING", "-pthread", "-w"])
            .arg("-I")
            .arg(dir)
            .arg(tests.join("cpp/server.cpp"))
            .arg(dir.join("Test.cpp"))
            .arg(dir.join("Types.cpp"))
            .arg(dir.join("ServerOnly.cpp"))
            .arg("-o")
            .arg(dir.join("server"))
            .args(["-lIce++11", "-lpthread"]),
        "g++ (is libzeroc-ice-dev installed?)",
    );
}

/// The path of the built server, building it first when no cached build matches the sources.
pub fn server_binary() -> PathBuf {
    static BUILT: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.as_ref() {
        return path.clone();
    }
    let mut hasher = DefaultHasher::new();
    tool_version("g++", "--version", "g++").hash(&mut hasher);
    tool_version("slice2cpp", "--version", "zeroc-ice-compilers").hash(&mut hasher);
    assert!(
        Path::new("/usr/include/Ice/Ice.h").exists(),
        "/usr/include/Ice/Ice.h is missing: install the Debian package libzeroc-ice-dev; {INSTALL}"
    );
    for src in sources() {
        let text =
            std::fs::read(&src).unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
        text.hash(&mut hasher);
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zeroc-cpp-server");
    let dir = root.join(format!("{:016x}", hasher.finish()));
    let exe = dir.join("server");
    if !exe.exists() {
        // Built aside and renamed into place, so that a build interrupted half-way (or another
        // test binary building at the same time) never leaves a broken cache entry.
        let tmp = root.join(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", tmp.display()));
        build(&tmp);
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another process renamed its build first; use that one.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        assert!(exe.exists(), "{} was not built", exe.display());
    }
    *built = Some(exe.clone());
    exe
}

/// A running C++ server; killed on drop.
pub struct CppServer {
    pub child: Child,
    /// The proxy of `hello` (a `::FloeTest::Hello` with an `admin` facet).
    pub hello: String,
    /// The proxy of `types` (a `::FloeTypes::Types`).
    pub types: String,
}

impl Drop for CppServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds (when needed) and starts the C++ server, waiting until it prints its proxies.
pub fn start_cpp_server() -> CppServer {
    let exe = server_binary();
    let mut child = Command::new(&exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut next = |prefix: &str| -> String {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the C++ server exited before printing {prefix}"))
            .expect("read the C++ server's output");
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("the C++ server said {line:?}, expected {prefix}..."))
            .to_string()
    };
    let hello = next("PROXY ");
    let types = next("TYPES ");
    CppServer {
        child,
        hello,
        types,
    }
}
