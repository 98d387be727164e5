//! The SneakerNet path and the clone routes it uses: `clone/*`, `checkin/*`,
//! `admin/stores/manifest`, `quire manifest get|ingest`, the `recieve_clone` task
//! and its callbacks, and a round trip between two quire nodes.

mod batch_stage;
mod checkin;
mod clone_routes;
mod ingest_cli;
mod manifest;
mod receive;
mod round_trip;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::md5;

/// Transfer statuses on the wire.
pub const INITIATED: i64 = 0;
pub const ONGOING: i64 = 1;
pub const STAGED: i64 = 2;
pub const COMPLETED: i64 = 3;
pub const FAILED: i64 = 4;
pub const CANCELLED: i64 = 5;

/// A node called `name` with an ingestable store `main`, a non-ingestable drive
/// store `drive`, and a `receive` task (recieve_clone) that runs only at start-up
/// and on demand.
pub fn sneakernet_node(name: &str, receive_settings: &str) -> TestNode {
    TestNode::with_config(&format!(
        "name = \"{name}\"\n\
         [[stores]]\n\
         name = \"main\"\n\
         path = \"store\"\n\
         [[stores]]\n\
         name = \"drive\"\n\
         path = \"drive\"\n\
         ingestable = false\n\
         [[tasks.recieve_clone]]\n\
         task_name = \"receive\"\n\
         every = \"1h\"\n\
         {receive_settings}\n"
    ))
}

/// The body of `clone/stage` for `bytes` (md5 checksum).
pub fn clone_stage_body(
    name: &str,
    bytes: &[u8],
    uploader: &str,
    source: &str,
    source_transfer_id: i64,
) -> Value {
    json!({
        "upload_size": bytes.len(),
        "upload_checksum": md5(bytes),
        "upload_name": name.rsplit('/').next().unwrap(),
        "destination_location": name,
        "uploader": uploader,
        "source": source,
        "source_transfer_id": source_transfer_id,
    })
}

/// The inner document of a `clone/stage` refusal (`{"detail": "<json>"}`).
pub fn stage_refusal(reply: &Value) -> Value {
    let detail = reply["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("a detail string: {reply}"));
    serde_json::from_str(detail).expect("the detail is a JSON document")
}

/// The two ids of a clone, as `clone/ongoing` and `clone/staged` take them.
pub fn ids(staged: &Value) -> Value {
    json!({
        "source_transfer_id": staged["source_transfer_id"],
        "destination_transfer_id": staged["destination_transfer_id"],
    })
}

/// The destination transfer id of a `clone/stage` answer.
pub fn destination_id(staged: &Value) -> i64 {
    staged["destination_transfer_id"]
        .as_i64()
        .expect("destination_transfer_id")
}

impl TestNode {
    /// `clone/stage` as admin, which must succeed.
    pub fn clone_stage(&self, body: Value) -> Value {
        let (status, staged) = self.post_admin("clone/stage", body);
        assert_eq!(status, 201, "clone/stage: {staged}");
        staged
    }

    /// Stages a clone of `bytes` as admin, copies them into staging and marks the
    /// transfer ONGOING then STAGED; returns the stage answer.
    pub fn clone_to_staged(&self, name: &str, bytes: &[u8], source_transfer_id: i64) -> Value {
        let staged = self.clone_stage(clone_stage_body(
            name,
            bytes,
            "site-a",
            "instrument",
            source_transfer_id,
        ));
        fs::write(staging_path(&staged), bytes).expect("writing staged bytes");
        for route in ["clone/ongoing", "clone/staged"] {
            let (status, reply) = self.post_admin(route, ids(&staged));
            assert_eq!(status, 200, "{route}: {reply}");
        }
        staged
    }

    /// The statuses `checkin/status` reports to the admin: (outgoing, incoming).
    pub fn transfer_status(&self, outgoing: &[i64], incoming: &[i64]) -> (Value, Value) {
        let (status, reply) = self.post_admin(
            "checkin/status",
            json!({"source_transfer_ids": outgoing, "destination_transfer_ids": incoming}),
        );
        assert_eq!(status, 200, "checkin/status: {reply}");
        (
            reply["source_transfer_status"].clone(),
            reply["destination_transfer_status"].clone(),
        )
    }

    /// The status of incoming transfer `id`, as the admin sees it.
    pub fn incoming_status(&self, id: i64) -> Value {
        self.transfer_status(&[], &[id]).1[id.to_string()].clone()
    }

    /// The status of outgoing transfer `id`, as the admin sees it.
    pub fn outgoing_status(&self, id: i64) -> Value {
        self.transfer_status(&[id], &[]).0[id.to_string()].clone()
    }

    /// Runs the task `name` now and returns its report.
    pub fn run_task(&self, name: &str) -> Value {
        let (status, reply) =
            self.post_admin("admin/tasks/run", json!({"task_name": name, "wait": true}));
        assert_eq!(status, 200, "admin/tasks/run {name}: {reply}");
        reply["report"].clone()
    }

    /// Root of the `drive` store of a `sneakernet_node`.
    pub fn drive_root(&self) -> PathBuf {
        self.data_dir.join("drive")
    }

    /// Puts `bytes` on the drive store as `name` and registers it there.
    pub fn put_on_drive(&self, name: &str, bytes: &[u8]) {
        let path = self.drive_root().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        let (status, reply) = self.post_admin(
            "admin/add_file",
            json!({
                "name": name,
                "create_time": "2026-01-02T03:04:05.000006",
                "size": bytes.len(),
                "checksum": md5(bytes),
                "uploader": "pipeline",
                "source": "instrument",
                "path": path.to_string_lossy(),
                "store_name": "drive",
            }),
        );
        assert_eq!(status, 200, "admin/add_file {name}: {reply}");
        assert_eq!(reply["success"], true, "{reply}");
    }

    /// Registers `peer` (another node) as a librarian called `name`, logging in there
    /// as `user:password`.
    pub fn add_peer(&self, name: &str, peer_base: &str, user: &str, password: &str) {
        let (host, port) = peer_base.rsplit_once(':').expect("http://host:port");
        let (status, reply) = self.post_admin(
            "admin/librarians/add",
            json!({
                "librarian_name": name,
                "url": host,
                "port": port.parse::<u16>().unwrap(),
                "authenticator": format!("{user}:{password}"),
                "check_connection": false,
            }),
        );
        assert_eq!(status, 200, "admin/librarians/add {name}: {reply}");
        assert_eq!(reply["success"], true, "{reply}");
    }
}

/// Where a stage answer says the bytes go.
pub fn staging_path(staged: &Value) -> &Path {
    Path::new(
        staged["staging_location"]
            .as_str()
            .expect("staging_location"),
    )
}

/// The stdout of a CLI run that must succeed.
pub fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "quire failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
