//! Files on the ring: uploads land on exactly R nodes, verified; reads return the exact bytes;
//! two nodes SIGKILLed (the leader among them) lose nothing and R is restored, then rebalanced
//! when they return; a flipped byte is caught by a read and by the scrub; a partitioned
//! minority refuses catalog writes; an upload killed half-way leaves no entry and no leftovers;
//! the same content uploaded twice at once is one song.

mod common;

use std::time::Duration;

use common::{Nodes, eventually, read_all, song_file, upload};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_land_on_r_nodes_are_found_and_read_back_exactly() {
    let nodes = Nodes::start(5, false, &[]);
    nodes.wait_leader(&nodes.all(), WAIT).await;
    let (path, bytes, id) = song_file(
        nodes.tmp.path(),
        "a.wav",
        3.0,
        440.0,
        "Canción del Viento",
        "Beyoncé",
        "Álbum Uno",
    );
    let song = upload(&nodes.catalog(2), &path).await.expect("upload");
    assert_eq!(
        (
            song.id.as_str(),
            song.title.as_str(),
            song.artist.as_str(),
            song.album.as_str()
        ),
        (id.as_str(), "Canción del Viento", "Beyoncé", "Álbum Uno")
    );
    assert_eq!(song.size as usize, bytes.len());
    assert!(
        (2900..=3100).contains(&song.duration_ms),
        "duration {}",
        song.duration_ms
    );

    // Exactly R = 3 nodes hold it, each verified, once the background copies are done.
    eventually(WAIT, "three verified replicas", || async {
        nodes.holders(&id).len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(nodes.holders(&id).len(), 3, "more than R copies");
    let status = nodes.catalog(4).status().await.expect("status");
    let f = status
        .files
        .iter()
        .find(|f| f.id == id)
        .expect("the file in the status");
    assert_eq!(f.placement.len(), 3);
    let mut verified = f.verified.clone();
    verified.sort();
    let mut placement = f.placement.clone();
    placement.sort();
    assert_eq!(verified, placement, "the placement holds it, verified");

    // Search by title, artist and album, from any node, case- and accent-insensitive.
    for (node, q) in [(1, "cancion viento"), (3, "BEYONCE"), (5, "album uno")] {
        let r = nodes.catalog(node).search(q, 0, 10).await.expect("search");
        assert_eq!(r.total, 1, "{q} on node {node}");
        assert_eq!(r.songs[0].id, id);
    }
    assert_eq!(
        nodes
            .catalog(1)
            .search("nothing like it", 0, 10)
            .await
            .unwrap()
            .total,
        0
    );

    // Ranged reads return the exact bytes, from a node that holds it and from one that does not.
    let holder = nodes.holders(&id)[0];
    let other = nodes
        .all()
        .into_iter()
        .find(|n| !nodes.holders(&id).contains(n))
        .unwrap();
    for node in [holder, other] {
        let part = nodes
            .catalog(node)
            .read(&id, 1000, 5000)
            .await
            .expect("ranged read");
        assert_eq!(part, bytes[1000..6000], "node {node}");
        assert_eq!(
            read_all(&nodes.catalog(node), &id).await.unwrap(),
            bytes,
            "node {node}"
        );
    }
    // The largest read the interface allows fits Ice's default message size, from a holder and
    // through a node that must fetch it; a larger one is refused.
    let (big, big_bytes, big_id) = song_file(
        nodes.tmp.path(),
        "big.wav",
        40.0,
        330.0,
        "Big",
        "Band",
        "LP",
    );
    upload(&nodes.catalog(1), &big).await.expect("upload");
    let max = dispotify::storage::MAX_TRANSFER;
    eventually(WAIT, "three replicas", || async {
        nodes.holders(&big_id).len() == 3
    })
    .await;
    let outsider = nodes
        .all()
        .into_iter()
        .find(|n| !nodes.holders(&big_id).contains(n))
        .unwrap();
    for node in [nodes.holders(&big_id)[0], outsider] {
        assert_eq!(
            nodes
                .catalog(node)
                .read(&big_id, 7, max as i32)
                .await
                .expect("largest read"),
            big_bytes[7..7 + max],
            "node {node}"
        );
    }
    assert!(
        format!(
            "{:?}",
            nodes
                .catalog(outsider)
                .read(&big_id, 0, max as i32 + 1)
                .await
        )
        .contains("InvalidArgument")
    );

    // Bad input: an unknown id, a malformed one, a bad chunk.
    assert!(format!("{:?}", nodes.catalog(1).info(&"0".repeat(64)).await).contains("NotFound"));
    assert!(
        format!("{:?}", nodes.catalog(1).read("../etc", 0, 10).await).contains("InvalidArgument")
    );
    let state = nodes
        .catalog(1)
        .begin_upload("", "x.wav", 10, &"a".repeat(64))
        .await
        .unwrap();
    assert!(
        format!(
            "{:?}",
            nodes
                .catalog(1)
                .put_chunk(&state.upload, 0, b"0123456789", &"b".repeat(64))
                .await
        )
        .contains("ChecksumMismatch")
    );
    assert!(
        format!(
            "{:?}",
            nodes
                .catalog(1)
                .put_chunk(
                    &state.upload,
                    5,
                    b"0123",
                    &dispotify::node::content_id(b"0123")
                )
                .await
        )
        .contains("InvalidArgument")
    );
    assert!(
        format!(
            "{:?}",
            nodes
                .catalog(1)
                .put_chunk(
                    &state.upload,
                    0,
                    b"0123456789ab",
                    &dispotify::node::content_id(b"0123456789ab")
                )
                .await
        )
        .contains("InvalidArgument")
    );
    nodes
        .catalog(1)
        .put_chunk(
            &state.upload,
            0,
            b"0123456789",
            &dispotify::node::content_id(b"0123456789"),
        )
        .await
        .unwrap();
    assert!(
        format!(
            "{:?}",
            nodes
                .catalog(1)
                .finish_upload(&state.upload, &Default::default())
                .await
        )
        .contains("ChecksumMismatch")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_killed_lose_nothing_r_is_restored_and_rebalanced_on_return() {
    let mut nodes = Nodes::start(5, false, &[]);
    let leader = nodes.wait_leader(&nodes.all(), WAIT).await;
    let mut songs = Vec::new();
    for i in 0..6 {
        let (path, bytes, id) = song_file(
            nodes.tmp.path(),
            &format!("s{i}.wav"),
            1.0,
            300.0 + 50.0 * i as f32,
            &format!("Song {i}"),
            "Band",
            "LP",
        );
        upload(&nodes.catalog(1 + (i % 5)), &path)
            .await
            .expect("upload");
        songs.push((id, bytes));
    }
    for (id, _) in &songs {
        eventually(WAIT, "three replicas", || async {
            nodes.holders(id).len() == 3
        })
        .await;
    }
    // Kill the leader and another node.
    let second = nodes.all().into_iter().find(|n| *n != leader).unwrap();
    nodes.kill(leader);
    nodes.kill(second);
    let survivors: Vec<u64> = nodes
        .all()
        .into_iter()
        .filter(|n| *n != leader && *n != second)
        .collect();
    nodes.wait_leader(&survivors, WAIT).await;
    for (id, bytes) in &songs {
        assert_eq!(
            &read_all(&nodes.catalog(survivors[0]), id)
                .await
                .expect("readable with two nodes down"),
            bytes
        );
    }
    // Uploads continue.
    let (path, bytes, new_id) = song_file(
        nodes.tmp.path(),
        "late.wav",
        1.0,
        900.0,
        "Late",
        "Band",
        "LP",
    );
    upload(&nodes.catalog(survivors[1]), &path)
        .await
        .expect("upload with two nodes down");
    songs.push((new_id, bytes));
    // After the grace period the dead nodes are marked down and R is restored on the survivors.
    for (id, _) in &songs {
        eventually(WAIT, "R restored on the survivors", || async {
            survivors
                .iter()
                .filter(|n| nodes.holders(id).contains(n))
                .count()
                == 3
        })
        .await;
    }
    // They return: they resync, and once rebalancing ends no file has more than R copies.
    nodes.start_node(leader);
    nodes.start_node(second);
    for (id, _) in &songs {
        eventually(WAIT, "back to exactly R copies", || async {
            let status = nodes.catalog(survivors[0]).status().await;
            status.is_ok_and(|s| s.nodes.iter().all(|n| n.up)) && nodes.holders(id).len() == 3
        })
        .await;
    }
    let status = nodes.catalog(leader).status().await.expect("status");
    for f in &status.files {
        let mut v = f.verified.clone();
        v.sort();
        let mut p = f.placement.clone();
        p.sort();
        assert_eq!(v, p, "{} is where the ring says", f.id);
    }
    for (id, bytes) in &songs {
        assert_eq!(&read_all(&nodes.catalog(leader), id).await.unwrap(), bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_served_around_and_repaired_and_the_scrub_finds_one() {
    let nodes = Nodes::start(3, false, &[("Dispotify.ScrubInterval", "700")]);
    nodes.wait_leader(&nodes.all(), WAIT).await;
    let (path, bytes, id) = song_file(nodes.tmp.path(), "a.wav", 2.0, 440.0, "T", "A", "B");
    upload(&nodes.catalog(1), &path).await.expect("upload");
    eventually(WAIT, "three replicas", || async {
        nodes.holders(&id).len() == 3
    })
    .await;

    // A read through the node with the bad copy serves a good one and repairs it.
    let file = nodes.dir(2).join("files").join(&id);
    let mut on_disk = std::fs::read(&file).unwrap();
    on_disk[100] ^= 0xff;
    std::fs::write(&file, &on_disk).unwrap();
    assert_eq!(read_all(&nodes.catalog(2), &id).await.expect("read"), bytes);
    eventually(WAIT, "the bad copy repaired", || async {
        std::fs::read(&file).is_ok_and(|b| b == bytes)
    })
    .await;

    // The scrub finds one without any read.
    let file = nodes.dir(3).join("files").join(&id);
    let mut on_disk = std::fs::read(&file).unwrap();
    let last = on_disk.len() - 1;
    on_disk[last] ^= 0x01;
    std::fs::write(&file, &on_disk).unwrap();
    eventually(WAIT, "the scrub repaired it", || async {
        std::fs::read(&file).is_ok_and(|b| b == bytes)
    })
    .await;
    let log = std::fs::read_to_string(nodes.log(3)).unwrap();
    assert!(
        log.contains("corrupt replica found at rest"),
        "{}",
        nodes.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_catalog_writes_and_catches_up() {
    let nodes = Nodes::start(
        5,
        true,
        &[
            ("Dispotify.GracePeriod", "60000"),
            ("Dispotify.Raft.RequestTimeout", "1500"),
        ],
    );
    nodes.wait_leader(&nodes.all(), WAIT).await;
    let (minority, majority) = ([1u64, 2], [3u64, 4, 5]);
    nodes.mesh.as_ref().unwrap().partition(&minority, &majority);
    nodes.wait_leader(&majority, WAIT).await;
    let (path, _, id) = song_file(nodes.tmp.path(), "m.wav", 1.0, 500.0, "Minority", "X", "Y");
    for n in minority {
        let r = upload(&nodes.catalog(n), &path).await;
        assert!(
            r.as_ref().is_err_and(|e| e.contains("Unavailable")),
            "node {n} of the minority: {r:?}"
        );
    }
    let (path2, _, id2) = song_file(nodes.tmp.path(), "j.wav", 1.0, 600.0, "Majority", "X", "Y");
    upload(&nodes.catalog(4), &path2)
        .await
        .expect("the majority takes uploads");
    nodes.mesh.as_ref().unwrap().heal_all();
    for n in minority {
        eventually(WAIT, "the minority catches up", || async {
            nodes.catalog(n).info(&id2).await.is_ok()
        })
        .await;
        assert!(
            format!("{:?}", nodes.catalog(n).info(&id).await).contains("NotFound"),
            "a refused upload is in the catalog"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_killed_half_way_leaves_no_entry_and_no_leftovers() {
    let mut nodes = Nodes::start(3, false, &[]);
    nodes.wait_leader(&nodes.all(), WAIT).await;
    let (_, bytes, id) = song_file(nodes.tmp.path(), "k.wav", 8.0, 440.0, "Killed", "X", "Y");
    let c = nodes.catalog(1);
    let state = c
        .begin_upload("", "k.wav", bytes.len() as i64, &id)
        .await
        .expect("begin");
    let half = &bytes[..bytes.len() / 2];
    c.put_chunk(&state.upload, 0, half, &dispotify::node::content_id(half))
        .await
        .expect("half");
    nodes.kill(1);
    assert!(
        nodes.dir(1).join("uploads").read_dir().unwrap().count() > 0,
        "the half upload is on disk"
    );
    nodes.start_node(1);
    nodes.wait_leader(&nodes.all(), WAIT).await;
    for n in nodes.all() {
        assert!(
            format!("{:?}", nodes.catalog(n).info(&id).await).contains("NotFound"),
            "node {n} has an entry without a quorum"
        );
    }
    eventually(WAIT, "leftovers collected", || async {
        nodes
            .dir(1)
            .join("uploads")
            .read_dir()
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    })
    .await;
    assert!(nodes.holders(&id).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_and_a_joining_node_takes_only_its_new_ranges() {
    let mut nodes = Nodes::start(3, false, &[]);
    nodes.wait_leader(&nodes.all(), WAIT).await;
    // Half an upload, then the client starts again: the node says where to go on from.
    let (path, bytes, id) = song_file(nodes.tmp.path(), "r.wav", 6.0, 440.0, "Resumed", "X", "Y");
    let c = nodes.catalog(2);
    let state = c
        .begin_upload("", "r.wav", bytes.len() as i64, &id)
        .await
        .expect("begin");
    let half = &bytes[..bytes.len() / 2];
    c.put_chunk(&state.upload, 0, half, &dispotify::node::content_id(half))
        .await
        .expect("half");
    let again = c
        .begin_upload("", "r.wav", bytes.len() as i64, &id)
        .await
        .expect("begin again");
    assert_eq!(
        (again.upload.as_str(), again.received),
        (state.upload.as_str(), half.len() as i64)
    );
    let song = upload(&c, &path).await.expect("the rest");
    assert_eq!(song.id, id);

    // More songs, then a fourth node joins: it takes only the replicas its ring arcs give it,
    // the others drop exactly those, and every file ends with R copies where the ring says.
    let mut ids = vec![id];
    for i in 0..8 {
        let (p, _, id) = song_file(
            nodes.tmp.path(),
            &format!("j{i}.wav"),
            0.5,
            200.0 + 37.0 * i as f32,
            &format!("J{i}"),
            "X",
            "Y",
        );
        upload(&nodes.catalog(1), &p).await.expect("upload");
        ids.push(id);
    }
    for id in &ids {
        eventually(WAIT, "three replicas", || async {
            nodes.holders(id).len() == 3
        })
        .await;
    }
    let before: Vec<Vec<u64>> = ids.iter().map(|id| nodes.holders(id)).collect();
    nodes.join_node(4);
    eventually(WAIT, "node 4 a voter", || async {
        nodes
            .catalog(1)
            .status()
            .await
            .is_ok_and(|s| s.nodes.len() == 4 && s.nodes.iter().all(|n| n.up))
    })
    .await;
    let status = nodes.catalog(1).status().await.unwrap();
    for (id, old) in ids.iter().zip(&before) {
        let placement: Vec<u64> = status
            .files
            .iter()
            .find(|f| &f.id == id)
            .unwrap()
            .placement
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        // Only node 4 is new in a placement.
        for n in &placement {
            assert!(
                old.contains(n) || *n == 4,
                "{id}: {n} was given a replica it did not have"
            );
        }
        let mut want = placement.clone();
        want.sort();
        eventually(WAIT, "exactly the new placement", || async {
            nodes.holders(id) == want
        })
        .await;
    }
    assert!(
        ids.iter().any(|id| nodes.holders(id).contains(&4)),
        "node 4 took no range"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_uploaded_twice_at_once_is_one_song() {
    let nodes = Nodes::start(3, false, &[]);
    nodes.wait_leader(&nodes.all(), WAIT).await;
    let (path, _, id) = song_file(nodes.tmp.path(), "d.wav", 2.0, 440.0, "Twice", "X", "Y");
    let copy = nodes.tmp.path().join("other-name.wav");
    std::fs::copy(&path, &copy).unwrap();
    let (c1, c2) = (nodes.catalog(1), nodes.catalog(2));
    let (a, b) = tokio::join!(upload(&c1, &path), upload(&c2, &copy));
    assert_eq!(a.expect("first").id, id);
    assert_eq!(b.expect("second").id, id);
    let r = nodes.catalog(3).search("twice", 0, 10).await.unwrap();
    assert_eq!(r.total, 1, "one catalog entry");
    eventually(WAIT, "three replicas", || async {
        nodes.holders(&id).len() == 3
    })
    .await;
}
