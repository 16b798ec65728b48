//! One instance on ZeroC's IceStorm, driven by ZeroC's Python client (stubs from `slice2py`):
//! every operation and every exception path; bad configurations fail clearly.

mod common;

use std::process::Command;

use common::*;

#[test]
fn python_client_exercises_every_operation_and_exception() {
    require_python_ice();
    let icebox = IceBox::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let instance = Instance::start(
        dir.path(),
        "a",
        Some(&icebox.topic_manager),
        "UsersManager.SessionLifetime=2000\n",
    );
    let stubs = dir.path().join("stubs");
    python_stubs(&stubs);
    let out = Command::new(PYTHON)
        .arg(python_program("client.py"))
        .arg(&stubs)
        .arg(&instance.manager)
        .arg("2000")
        .arg(QUERY_TIMEOUT_MS.to_string())
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().last() == Some("OK"),
        "Python client failed:\n{stdout}\n{}\ninstance log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        instance.log_text()
    );
    // Every request and query is traced.
    let log = instance.log_text();
    for needle in [
        "createUser: user stored",
        "login: local user",
        "login refused",
        "verifySession",
        "removeUser: user removed",
        "refresh refused: session expired",
    ] {
        assert!(
            log.contains(needle),
            "no `{needle}` in the instance's log:\n{log}"
        );
    }
    assert!(!log.contains("secret-1"), "a password reached the log");
}

#[test]
fn bad_configurations_fail_with_a_clear_error() {
    // Nothing listens on this port.
    let port = free_port();
    let (code, err) = start_failing(&format!(
        "IceStorm.TopicManager.Proxy=IceStorm/TopicManager:tcp -h 127.0.0.1 -p {port}\n\
         UsersManager.DataDir=data\n"
    ));
    assert_ne!(code, Some(0));
    assert!(
        err.contains("IceStorm broker") && err.contains(&port.to_string()),
        "unreachable broker: {err}"
    );

    let icebox = IceBox::start();
    let (code, err) = start_failing(&format!(
        "IceStorm.TopicManager.Proxy={}\nusersmanageradapter.Endpoints=tcp -h 127.0.0.1 -p 99999\n\
         UsersManager.DataDir=data\n",
        icebox.topic_manager
    ));
    assert_ne!(code, Some(0));
    assert!(
        err.contains("usersmanageradapter.Endpoints"),
        "bad endpoint: {err}"
    );

    let file = tempfile::NamedTempFile::new().expect("temp file");
    let (code, err) = start_failing(&format!(
        "IceStorm.TopicManager.Proxy={}\nUsersManager.DataDir={}/sub\n",
        icebox.topic_manager,
        file.path().display()
    ));
    assert_ne!(code, Some(0));
    assert!(err.contains("data directory"), "unwritable data dir: {err}");

    let (code, err) = start_failing(&format!(
        "IceStorm.TopicManager.Proxy={}\nUsersManager.QueryTimeout=soon\nUsersManager.DataDir=data\n",
        icebox.topic_manager
    ));
    assert_ne!(code, Some(0));
    assert!(
        err.contains("UsersManager.QueryTimeout"),
        "bad number: {err}"
    );
}
