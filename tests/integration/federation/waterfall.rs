//! A waterfall of three quire nodes, A -> B -> C on loopback: B both receives
//! and sends. B is killed with SIGKILL at two points in the middle (with bytes
//! staged from A but not yet reported, and with a batch to C queued) and
//! restarted; every file still reaches C exactly once.

use super::*;

/// One round of every task of the waterfall, upstream first.
fn waterfall_round(a: &TestNode, b: &TestNode, c: &TestNode) {
    send_round(a, b);
    send_round(b, c);
}

#[test]
fn a_waterfall_of_three_nodes_converges_through_sigkills_of_the_middle_one() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let mut b = site(
        "site-b",
        &format!(
            "send_retry_backoff = \"0s\"\n{}",
            sender_tasks("site-c", "")
        ),
    );
    let c = site("site-c", "");
    connect(&a, "site-a", &b, "site-b");
    connect(&b, "site-b", &c, "site-c");
    let mut files = upload_files(&a, "obs/night1", 6, 30_000);
    files.extend(upload_files(&a, "obs/night1/large", 1, 3 << 20));

    // A's bytes are in B's staging, not yet reported: B dies.
    a.run_task("send");
    a.run_task("consume");
    b.kill();
    b.start_again_at_same_address();
    waterfall_round(&a, &b, &c);
    // More files; B queues a batch for C, then dies before moving it.
    files.extend(upload_files(&a, "obs/night2", 5, 10_000));
    send_round(&a, &b);
    b.run_task("send");
    b.kill();
    b.start_again_at_same_address();
    for _ in 0..3 {
        waterfall_round(&a, &b, &c);
    }

    for (name, bytes) in &files {
        assert_eq!(&stored_bytes(&c, name), bytes, "{name} at C");
        let at_c = c.file_record(name);
        assert_eq!(at_c["instances"].as_array().unwrap().len(), 1, "{at_c}");
        assert_eq!(at_c["source"], "site-b", "{at_c}");
        assert_eq!(
            remote_copies(&a, name),
            vec!["site-b".to_string()],
            "{name} at A"
        );
        assert_eq!(
            remote_copies(&b, name),
            vec!["site-c".to_string()],
            "{name} at B"
        );
    }
    for (node, peer) in [(&a, "site-b"), (&b, "site-c")] {
        let summary = transfers_json(node, &[]);
        let counts = summary["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["librarian_name"] == peer)
            .expect("the downstream peer");
        assert_eq!(counts["completed"]["files"], files.len(), "{summary}");
        for state in ["queued", "in_flight", "staged"] {
            assert_eq!(counts[state]["files"], 0, "{state}: {summary}");
        }
    }
}
