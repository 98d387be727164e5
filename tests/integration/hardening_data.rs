//! Names that look alike are one name (Unicode NFC), and the data directory's
//! secrets are private to the node's user.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::node::TestNode;
use crate::support::{md5, stage_body};

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn answered(node: &TestNode) {
    let (status, reply) = node.post_admin("ping/logged", json!({}));
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn a_name_not_in_nfc_is_refused_with_its_nfc_spelling() {
    let node = TestNode::start();
    let decomposed = "obs/cafe\u{301}.dat";
    let composed = "obs/caf\u{e9}.dat";
    let body = stage_body(decomposed, 3, &md5(b"abc"), "me");
    let (status, reply) = node.post_admin("upload/stage", body);
    assert_eq!(status, 400, "{reply}");
    let reason = reply["reason"].as_str().unwrap();
    assert!(
        reason.contains("NFC") && reason.contains(composed),
        "{reason}"
    );
    node.upload(composed, b"abc");
    // Batch staging goes through the same rule.
    let batch = json!({"uploads": [stage_body("batch/cafe\u{301}", 3, &md5(b"xyz"), "me")]});
    let (status, reply) = node.post_admin("upload/batch_stage", batch);
    assert_eq!(status, 201, "{reply}");
    let error = reply["uploads"][0]["error"].to_string();
    assert!(error.contains("NFC"), "{reply}");
}

#[test]
fn the_data_directory_and_its_secrets_are_private() {
    let mut node = TestNode::start();
    let data = node.data_dir.clone();
    let check = |data: &Path| {
        assert_eq!(mode(data), 0o750, "data directory");
        for secret in ["quire.redb", "admin-password", "peer-secret.key"] {
            assert_eq!(mode(&data.join(secret)), 0o600, "{secret}");
        }
    };
    check(&data);
    // Files left open by an older version are narrowed at the next start. (A
    // request first: it is answered only once the node handles SIGTERM.)
    answered(&node);
    node.stop();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(data.join("quire.redb"), fs::Permissions::from_mode(0o644)).unwrap();
    node.start_again();
    check(&data);
    // A narrower directory is left as it is.
    answered(&node);
    node.stop();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    node.start_again();
    assert_eq!(mode(&data), 0o700);
}
