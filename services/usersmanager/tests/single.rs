//! One instance, driven by ZeroC's Python client (stubs from `slice2py`): every operation and
//! every exception path; the embedded broker and the `cluster` command; bad configurations fail
//! clearly.

mod common;

use std::process::Command;

use common::*;

#[test]
fn python_client_exercises_every_operation_and_exception() {
    require_python_ice();
    let icebox = LiteBroker::start();
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

    let icebox = LiteBroker::start();
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

    let (code, err) = start_failing(&format!(
        "IceStorm.TopicManager.Proxy={}\nUsersManager.ClusterKey=short\nUsersManager.DataDir=data\n",
        icebox.topic_manager
    ));
    assert_ne!(code, Some(0));
    assert!(
        err.contains("UsersManager.ClusterKey") && err.contains("at least 16"),
        "weak cluster key: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_proxy_an_instance_embeds_icestorm_lite_and_others_can_join_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let a = Instance::start(
        dir.path(),
        "a",
        None,
        &format!("IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p {port}\n"),
    );
    let b = Instance::start(
        dir.path(),
        "b",
        Some(&format!("IceStorm/TopicManager:tcp -h 127.0.0.1 -p {port}")),
        "",
    );
    assert!(
        a.log_text().contains("embedded broker started"),
        "{}",
        a.log_text()
    );
    let communicator = client();
    let (ma, mb) = (manager_of(&communicator, &a), manager_of(&communicator, &b));
    let s = ma
        .create_user("solo", "pw")
        .await
        .expect("create")
        .expect("session");
    let via_b = mb
        .login("solo", "pw")
        .await
        .expect("login through B")
        .expect("session");
    assert!(
        via_b
            .to_string()
            .ends_with(&a.manager[a.manager.find(':').expect(":")..])
    );
    assert!(mb.verify_session(Some(s)).await.expect("verify through B"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_command_runs_a_broker_and_n_instances() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_usersmanager"))
        .args(["cluster", "--instances", "3", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start usersmanager cluster");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let proxies: Vec<String> = (0..3)
        .map(|_| {
            rx.recv_timeout(std::time::Duration::from_secs(30))
                .expect("the cluster printed fewer than 3 proxies")
        })
        .collect();
    for i in 1..=3 {
        assert!(dir.path().join(format!("data/instance-{i}")).is_dir());
    }
    let communicator = client();
    let steps = usersmanager::cluster::demo(&communicator, &proxies)
        .await
        .expect("the walkthrough");
    assert_eq!(steps.len(), 5, "{steps:?}");
    let _ = child.kill();
    let _ = child.wait();
}
