//! `checkin/update` follows the status machine, one transaction per request;
//! `checkin/status` reports unknown ids as null.

use serde_json::json;

use super::*;

/// Whether `checkin/update` may move a transfer from `from` to `to`.
fn allowed(from: i64, to: i64) -> bool {
    match from {
        INITIATED => matches!(to, ONGOING | STAGED | FAILED | CANCELLED),
        ONGOING => matches!(to, STAGED | FAILED | CANCELLED),
        STAGED => matches!(to, FAILED | CANCELLED),
        _ => false,
    }
}

/// An incoming transfer brought to `status`; `receive` makes COMPLETED ones.
fn transfer_in(node: &TestNode, status: i64, tag: &str) -> i64 {
    let name = format!("machine/{status}-{tag}.dat");
    let bytes = name.as_bytes();
    if matches!(status, STAGED | COMPLETED) {
        let staged = node.clone_to_staged(&name, bytes, -1);
        let id = destination_id(&staged);
        if status == COMPLETED {
            node.run_task("receive");
            assert_eq!(node.incoming_status(id), COMPLETED);
        }
        return id;
    }
    let staged = node.clone_stage(clone_stage_body(&name, bytes, "site-a", "inst", -1));
    // Bytes in place, so that a transfer moved to STAGED here can be stored later.
    std::fs::write(staging_path(&staged), bytes).unwrap();
    let id = destination_id(&staged);
    let moved = match status {
        ONGOING => node.post_admin("clone/ongoing", ids(&staged)),
        FAILED => node.post_admin(
            "clone/fail",
            json!({"source_transfer_id": -1, "destination_transfer_id": id, "reason": "t"}),
        ),
        CANCELLED => node.post_admin(
            "checkin/update",
            json!({"source_transfer_ids": [], "destination_transfer_ids": [id], "new_status": CANCELLED}),
        ),
        _ => (200, json!(null)),
    };
    assert_eq!(moved.0, 200, "{}", moved.1);
    assert_eq!(node.incoming_status(id), status);
    id
}

#[test]
fn every_transition_is_allowed_or_refused_as_the_status_machine_says() {
    let node = sneakernet_node("site-b", "");
    for from in [INITIATED, ONGOING, STAGED, COMPLETED, FAILED, CANCELLED] {
        for to in [INITIATED, ONGOING, STAGED, COMPLETED, FAILED, CANCELLED] {
            let id = transfer_in(&node, from, &format!("to-{to}"));
            let (status, answer) = node.post_admin(
                "checkin/update",
                json!({"source_transfer_ids": [], "destination_transfer_ids": [id], "new_status": to}),
            );
            assert_eq!(status, 200, "{answer}");
            if allowed(from, to) {
                assert_eq!(
                    answer["modified_destination_transfer_ids"],
                    json!([id]),
                    "{from}->{to}"
                );
                assert_eq!(node.incoming_status(id), to);
            } else {
                assert_eq!(
                    answer["unmodified_destination_transfer_ids"],
                    json!([id]),
                    "{from}->{to}"
                );
                let reason = answer["reasons"][0].as_str().unwrap();
                assert!(reason.starts_with("Transition from"), "{reason}");
                assert_eq!(
                    node.incoming_status(id),
                    from,
                    "a refused change changes nothing"
                );
            }
        }
    }
}

#[test]
fn unknown_ids_are_reported_and_closing_a_transfer_removes_its_staging() {
    let node = sneakernet_node("site-b", "");
    let staged = node.clone_stage(clone_stage_body("gone.dat", b"gone", "site-a", "i", 4));
    std::fs::write(staging_path(&staged), b"gone").unwrap();
    let id = destination_id(&staged);
    let (status, answer) = node.post_admin(
        "checkin/update",
        json!({"source_transfer_ids": [77], "destination_transfer_ids": [id, 78], "new_status": FAILED}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["modified_destination_transfer_ids"], json!([id]));
    assert_eq!(answer["unmodified_destination_transfer_ids"], json!([78]));
    assert_eq!(answer["unmodified_source_transfer_ids"], json!([77]));
    assert_eq!(answer["modified_source_transfer_ids"], json!([]));
    assert_eq!(answer["reasons"].as_array().unwrap().len(), 2, "{answer}");
    assert!(
        !staging_path(&staged).exists(),
        "a failed transfer keeps no staged bytes"
    );

    let (outgoing, incoming) = node.transfer_status(&[77], &[id, 78]);
    assert_eq!(outgoing, json!({"77": null}));
    assert_eq!(incoming, json!({id.to_string(): FAILED, "78": null}));

    let (status, reply) = node.post_admin(
        "checkin/update",
        json!({"source_transfer_ids": [], "destination_transfer_ids": [id], "new_status": 9}),
    );
    assert_eq!(status, 422, "{reply}");
}
