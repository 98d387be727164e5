//! `clone/stage`, `clone/ongoing`, `clone/staged` and `clone/fail`: transitions,
//! refusals with their bodies, levels and ownership.

use serde_json::json;

use super::*;
use crate::support::READAPPEND;

#[test]
fn a_clone_goes_initiated_ongoing_staged_and_refuses_other_orders() {
    let node = sneakernet_node("site-b", "");
    let staged = node.clone_stage(clone_stage_body("obs/a.dat", b"aaa", "site-a", "inst", 17));
    assert_eq!(staged["source_transfer_id"], 17);
    assert_eq!(staged["upload_name"], "a.dat");
    assert_eq!(staged["destination_location"], "obs/a.dat");
    assert_eq!(staged["store_name"], "main", "the drive is not ingestable");
    assert!(staged["transfer_providers"]["local"]["hostnames"].is_array());
    assert!(staging_path(&staged).parent().unwrap().is_dir());
    let id = destination_id(&staged);
    assert_eq!(node.incoming_status(id), INITIATED);

    let (status, refused) = node.post_admin("clone/staged", ids(&staged));
    assert_eq!(status, 406, "STAGED needs ONGOING first: {refused}");
    assert!(
        refused["reason"].as_str().unwrap().contains("ONGOING"),
        "{refused}"
    );
    assert_eq!(refused["source_transfer_id"], 17);
    assert_eq!(refused["destination_transfer_id"], id);
    assert!(refused["suggested_remedy"].is_string());

    let (status, answer) = node.post_admin("clone/ongoing", ids(&staged));
    assert_eq!((status, &answer), (200, &ids(&staged)));
    assert_eq!(node.incoming_status(id), ONGOING);
    let (status, refused) = node.post_admin("clone/ongoing", ids(&staged));
    assert_eq!(status, 406, "{refused}");
    assert!(
        refused["reason"].as_str().unwrap().contains("INITIATED"),
        "{refused}"
    );

    let (status, answer) = node.post_admin("clone/staged", ids(&staged));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["destination_transfer_id"], id);
    assert_eq!(node.incoming_status(id), STAGED);

    let unknown = json!({"source_transfer_id": 1, "destination_transfer_id": 999});
    let (status, refused) = node.post_admin("clone/ongoing", unknown.clone());
    assert_eq!(status, 404, "{refused}");
    assert_eq!(refused["reason"], "Could not find transfer.");
    let (status, _) = node.post_admin("clone/staged", unknown);
    assert_eq!(status, 404);
}

#[test]
fn stage_refusals_carry_a_json_document_in_detail() {
    let node = sneakernet_node("site-b", "");
    let (status, reply) = node.post_admin(
        "clone/stage",
        json!({"upload_size": -1, "upload_checksum": "md5:::00", "upload_name": "n",
               "destination_location": "n", "uploader": "u", "source": "s",
               "source_transfer_id": 3}),
    );
    assert_eq!(status, 400, "{reply}");
    let inner = stage_refusal(&reply);
    assert_eq!(inner["reason"], "Upload size must be positive.");
    assert_eq!(inner["source_transfer_id"], 3);
    assert_eq!(inner["destination_transfer_id"], -1);

    let mut huge = clone_stage_body("huge", b"x", "u", "s", 4);
    huge["upload_size"] = json!(1u64 << 50);
    let (status, reply) = node.post_admin("clone/stage", huge);
    assert_eq!(status, 413, "{reply}");
    assert!(
        stage_refusal(&reply)["reason"]
            .as_str()
            .unwrap()
            .starts_with("No stores available for upload.")
    );

    node.upload("have.dat", b"have");
    let (status, reply) = node.post_admin(
        "clone/stage",
        clone_stage_body("have.dat", b"have", "u", "s", 5),
    );
    assert_eq!(status, 409, "{reply}");
    let inner = stage_refusal(&reply);
    assert!(
        inner["reason"]
            .as_str()
            .unwrap()
            .contains("already exists on librarian"),
        "the reference client matches this text: {inner}"
    );
}

#[test]
fn staging_a_file_again_fails_an_initiated_transfer_and_waits_for_an_ongoing_one() {
    let node = sneakernet_node("site-b", "");
    let body = clone_stage_body("again.dat", b"again", "site-a", "inst", 8);
    let first = node.clone_stage(body.clone());
    let first_id = destination_id(&first);
    std::fs::write(staging_path(&first), b"again").unwrap();

    let (status, reply) = node.post_admin("clone/stage", body.clone());
    assert_eq!(status, 406, "{reply}");
    let inner = stage_refusal(&reply);
    assert_eq!(inner["reason"], "Transfer was already initiated or staged.");
    assert_eq!(inner["destination_transfer_id"], first_id);
    assert_eq!(node.incoming_status(first_id), FAILED);
    assert!(
        !staging_path(&first).exists(),
        "the failed transfer's staging is removed"
    );

    let second = node.clone_stage(body.clone());
    let second_id = destination_id(&second);
    assert_ne!(second_id, first_id);
    let (status, _) = node.post_admin("clone/ongoing", ids(&second));
    assert_eq!(status, 200);
    let (status, reply) = node.post_admin("clone/stage", body);
    assert_eq!(status, 425, "{reply}");
    let inner = stage_refusal(&reply);
    assert_eq!(inner["reason"], "Transfer is ongoing.");
    assert_eq!(inner["destination_transfer_id"], second_id);
    assert_eq!(
        node.incoming_status(second_id),
        ONGOING,
        "an ongoing copy is left alone"
    );
}

#[test]
fn levels_are_checked_and_only_the_owner_may_move_a_transfer() {
    let node = sneakernet_node("site-b", "");
    node.create_user("site-a", "pw-a", READAPPEND);
    node.create_user("stranger", "pw-s", READAPPEND);
    node.create_user("watcher", "pw-w", 2);
    node.create_user("reader", "pw-r", 1);

    let (status, reply) = node.post(
        "clone/stage",
        clone_stage_body("lv.dat", b"lv", "site-a", "inst", 1),
        "watcher",
        "pw-w",
    );
    assert_eq!(status, 401, "CALLBACK may not stage: {reply}");
    let detail = reply["detail"].as_str().unwrap();
    assert!(
        detail
            .starts_with("The account 'watcher' has level callback; this route needs readappend."),
        "{detail}"
    );
    let (status, _) = node.post(
        "checkin/status",
        json!({"source_transfer_ids": [], "destination_transfer_ids": []}),
        "reader",
        "pw-r",
    );
    assert_eq!(status, 401, "READONLY may not check in");

    // The manifest ingest form: the sending librarian is the uploader.
    let (status, staged) = node.post(
        "clone/stage",
        clone_stage_body("own.dat", b"own", "site-a", "inst", 2),
        "site-a",
        "pw-a",
    );
    assert_eq!(status, 201, "{staged}");
    let id = destination_id(&staged);

    let (status, refused) = node.post("clone/ongoing", ids(&staged), "stranger", "pw-s");
    assert_eq!(
        status, 404,
        "another account's transfer looks absent: {refused}"
    );
    let fail = json!({"source_transfer_id": 2, "destination_transfer_id": id, "reason": "x"});
    let (status, refused) = node.post("clone/fail", fail.clone(), "stranger", "pw-s");
    assert_eq!(status, 404, "{refused}");
    assert_eq!(
        refused["reason"],
        format!("Could not find transfer with ID {id}.")
    );
    let status_request = json!({"source_transfer_ids": [], "destination_transfer_ids": [id]});
    let (_, seen) = node.post("checkin/status", status_request.clone(), "stranger", "pw-s");
    assert_eq!(
        seen["destination_transfer_status"][id.to_string()],
        json!(null)
    );
    let update = json!({"source_transfer_ids": [], "destination_transfer_ids": [id], "new_status": CANCELLED});
    let (status, answer) = node.post("checkin/update", update, "stranger", "pw-s");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["unmodified_destination_transfer_ids"], json!([id]));
    assert_eq!(
        answer["reasons"],
        json!(["You are not authorized to modify the transfer."])
    );

    let (status, _) = node.post("clone/ongoing", ids(&staged), "site-a", "pw-a");
    assert_eq!(status, 200, "the uploader's account owns it");
    let (_, seen) = node.post("checkin/status", status_request, "site-a", "pw-a");
    assert_eq!(seen["destination_transfer_status"][id.to_string()], ONGOING);
    let (status, answer) = node.post("clone/fail", fail, "site-a", "pw-a");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(node.incoming_status(id), FAILED);
    assert!(
        !staging_path(&staged).parent().unwrap().exists(),
        "staging removed"
    );
}
