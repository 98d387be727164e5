//! `clone/batch_stage`: a batch is staged whole on one store or not at all, its
//! refusals follow the reference's priority (425 > 409 > 406 > 400) and name the
//! source transfers that caused them, and staged batches go through the same
//! ongoing, staged and `recieve_clone` steps as single clones.

use serde_json::json;

use super::*;

/// One file of a batch request.
fn item(name: &str, bytes: &[u8], source_transfer_id: i64) -> Value {
    json!({
        "upload_size": bytes.len(),
        "upload_checksum": md5(bytes),
        "upload_name": name.rsplit('/').next().unwrap(),
        "destination_location": name,
        "uploader": "ignored: the caller is the uploader",
        "source_transfer_id": source_transfer_id,
    })
}

fn batch(items: Vec<Value>) -> Value {
    let total: u64 = items
        .iter()
        .map(|i| i["upload_size"].as_u64().unwrap())
        .sum();
    json!({"uploads": items, "source": "site-a", "total_size": total})
}

/// Every live incoming transfer the admin can see, by searching nothing but
/// the ids a batch could have created (1..=ids).
fn live_transfers(node: &TestNode, ids: i64) -> Vec<(i64, Value)> {
    let all: Vec<i64> = (1..=ids).collect();
    let (_, incoming) = node.transfer_status(&[], &all);
    all.into_iter()
        .map(|id| (id, incoming[id.to_string()].clone()))
        .filter(|(_, status)| *status == INITIATED || *status == ONGOING || *status == STAGED)
        .collect()
}

#[test]
fn a_batch_is_staged_on_one_store_and_received_like_single_clones() {
    let node = sneakernet_node("site-b", "");
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                format!("obs/b{i}.dat"),
                format!("batch bytes {i}").into_bytes(),
            )
        })
        .collect();
    let items = files
        .iter()
        .enumerate()
        .map(|(i, (name, bytes))| item(name, bytes, 40 + i as i64))
        .collect();
    let (status, staged) = node.post_admin("clone/batch_stage", batch(items));
    assert_eq!(status, 201, "{staged}");
    assert_eq!(staged["store_name"], "main", "the drive is not ingestable");
    assert!(staged["available_bytes_on_store"].as_u64().unwrap() > 0);
    let providers = staged["async_transfer_providers"].as_object().unwrap();
    assert_eq!(
        providers.keys().collect::<Vec<_>>(),
        ["local"],
        "a Librarian parses only its own providers: {staged}"
    );
    assert!(providers["local"]["hostnames"].is_array());
    let uploads = staged["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 3);
    for (i, (upload, (name, bytes))) in uploads.iter().zip(&files).enumerate() {
        assert_eq!(upload["source_transfer_id"], 40 + i as i64);
        assert_eq!(upload["destination_location"], name.as_str());
        let id = destination_id(upload);
        assert_eq!(node.incoming_status(id), INITIATED);
        fs::write(staging_path(upload), bytes).unwrap();
        for route in ["clone/ongoing", "clone/staged"] {
            let (status, reply) = node.post_admin(route, ids(upload));
            assert_eq!(status, 200, "{route}: {reply}");
        }
    }
    let report = node.run_task("receive");
    assert_eq!(report["items_done"], 3, "{report}");
    for (upload, (name, bytes)) in uploads.iter().zip(&files) {
        assert_eq!(node.incoming_status(destination_id(upload)), COMPLETED);
        let record = node.file_record(name);
        assert_eq!(record["source"], "site-a", "the batch's source");
        assert_eq!(record["uploader"], "admin", "the calling account");
        assert_eq!(fs::read(node.store_root().join(name)).unwrap(), *bytes);
    }
}

#[test]
fn one_file_already_here_refuses_the_whole_batch_and_stages_nothing() {
    let node = sneakernet_node("site-b", "");
    node.upload("have.dat", b"have");
    let staging = node.store_root().join(".quire-staging");
    let entries = || -> Vec<_> {
        let mut found: Vec<_> = fs::read_dir(&staging)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        found.sort();
        found
    };
    // The upload's emptied staging directory may wait there for the next one.
    let before = entries();
    let items = vec![
        item("new-1.dat", b"one", 1),
        item("have.dat", b"have", 2),
        item("new-2.dat", b"two", 3),
    ];
    let (status, refused) = node.post_admin("clone/batch_stage", batch(items));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["reason"], "File already exists on librarian.");
    assert_eq!(refused["source_transfer_ids"], json!([2]));
    assert_eq!(refused["destination_transfer_ids"], json!([-1]));
    assert!(refused["suggested_remedy"].is_string());
    assert!(
        live_transfers(&node, 20).is_empty(),
        "no transfer of the refused batch is left live"
    );
    assert_eq!(entries(), before, "the refused batch left no staging");
}

#[test]
fn refusals_follow_the_reference_priority_and_fail_restarted_transfers() {
    let node = sneakernet_node("site-b", "");
    node.upload("have.dat", b"have");
    // An ongoing clone, and an initiated one, of two files.
    let ongoing = node.clone_stage(clone_stage_body("busy.dat", b"busy", "site-a", "i", 7));
    assert_eq!(node.post_admin("clone/ongoing", ids(&ongoing)).0, 200);
    let initiated = node.clone_stage(clone_stage_body("again.dat", b"again", "site-a", "i", 8));

    let everything = || {
        batch(vec![
            item("bad/../name", b"x", 1),
            item("again.dat", b"again", 2),
            item("have.dat", b"have", 3),
            item("busy.dat", b"busy", 4),
        ])
    };
    let (status, refused) = node.post_admin("clone/batch_stage", everything());
    assert_eq!(status, 425, "an ongoing copy comes first: {refused}");
    assert_eq!(refused["reason"], "Transfer is ongoing.");
    assert_eq!(refused["source_transfer_ids"], json!([4]));
    assert_eq!(
        node.incoming_status(destination_id(&initiated)),
        INITIATED,
        "a 425 changes nothing"
    );

    let mut without_busy = everything();
    without_busy["uploads"].as_array_mut().unwrap().pop();
    let (status, refused) = node.post_admin("clone/batch_stage", without_busy.clone());
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["source_transfer_ids"], json!([3]));

    without_busy["uploads"].as_array_mut().unwrap().pop();
    let (status, refused) = node.post_admin("clone/batch_stage", without_busy.clone());
    assert_eq!(status, 406, "{refused}");
    assert_eq!(
        refused["reason"],
        "Transfer was already initiated or staged."
    );
    assert_eq!(refused["source_transfer_ids"], json!([2]));
    assert_eq!(
        node.incoming_status(destination_id(&initiated)),
        FAILED,
        "the earlier transfer is failed, as for a single clone"
    );
    assert!(!staging_path(&initiated).exists());

    let (status, refused) = node.post_admin("clone/batch_stage", without_busy);
    assert_eq!(status, 400, "only the bad name is left: {refused}");
    assert_eq!(refused["source_transfer_ids"], json!([1]));
    assert!(
        refused["reason"].as_str().unwrap().contains("bad/../name"),
        "{refused}"
    );
    assert_eq!(node.incoming_status(destination_id(&ongoing)), ONGOING);
}

#[test]
fn names_that_collide_within_a_batch_and_batches_too_large_are_refused() {
    let node = sneakernet_node("site-b", "");
    let twice = batch(vec![item("d/x.dat", b"1", 1), item("d/x.dat", b"2", 2)]);
    let (status, refused) = node.post_admin("clone/batch_stage", twice);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["source_transfer_ids"], json!([2]));
    assert!(
        refused["reason"].as_str().unwrap().contains("twice"),
        "{refused}"
    );

    let nested = batch(vec![item("d/x", b"1", 1), item("d/x/y.dat", b"2", 2)]);
    let (status, refused) = node.post_admin("clone/batch_stage", nested);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["source_transfer_ids"], json!([2]));

    let mut huge = batch(vec![item("big.dat", b"b", 5)]);
    huge["total_size"] = json!(1u64 << 50);
    let (status, refused) = node.post_admin("clone/batch_stage", huge);
    assert_eq!(status, 413, "the store must fit total_size: {refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .starts_with("No stores available for upload."),
        "{refused}"
    );
    assert_eq!(refused["source_transfer_ids"], json!([5]));
    assert!(live_transfers(&node, 10).is_empty());
}

#[test]
fn batch_stage_needs_readappend() {
    let node = sneakernet_node("site-b", "");
    node.create_user("reader", "pw-r", 1);
    let (status, _) = node.post(
        "clone/batch_stage",
        batch(vec![item("r.dat", b"r", 1)]),
        "reader",
        "pw-r",
    );
    assert_eq!(status, 401);
}

#[test]
fn a_file_too_large_for_the_node_refuses_the_batch_with_413_not_400() {
    let node = TestNode::with_config("maximal_upload_size_bytes = 10\n");
    let items = vec![
        item("small.dat", b"small", 1),
        item("big.dat", b"far too big here", 2),
    ];
    let (status, refused) = node.post_admin("clone/batch_stage", batch(items));
    assert_eq!(status, 413, "{refused}");
    assert!(live_transfers(&node, 10).is_empty());
}
