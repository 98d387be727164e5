//! Shared steps of the tests: checksums, accounts, and the upload protocol (stage,
//! copy with the local or network provider, commit) driven against a `TestNode`.

use std::fs;
use std::path::Path;

use quire::checksum::hash_bytes;
use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::{Reply, TestNode};

/// Protocol levels.
pub const READONLY: i64 = 1;
pub const READAPPEND: i64 = 3;
pub const ADMIN: i64 = 100;

/// `<alg>:::<hex>` of `bytes`.
pub fn checksum(algorithm: Algorithm, bytes: &[u8]) -> String {
    hash_bytes(algorithm, bytes).to_string()
}

/// `md5:::<hex>` of `bytes`.
pub fn md5(bytes: &[u8]) -> String {
    checksum(Algorithm::Md5, bytes)
}

/// The directory rule: hash each file, sort the hex digests, hash their
/// concatenation with the same algorithm.
pub fn directory_checksum(algorithm: Algorithm, contents: &[&[u8]]) -> String {
    let mut hexes: Vec<String> = contents
        .iter()
        .map(|bytes| hash_bytes(algorithm, bytes).hex())
        .collect();
    hexes.sort();
    checksum(algorithm, hexes.concat().as_bytes())
}

/// The body of `upload/stage`.
pub fn stage_body(name: &str, size: i64, checksum: &str, uploader: &str) -> Value {
    json!({
        "upload_size": size,
        "upload_checksum": checksum,
        "upload_name": name,
        "destination_location": name,
        "uploader": uploader,
    })
}

/// The body of `upload/commit`, built from the answer of `upload/stage`.
pub fn commit_body(staged: &Value, provider: &str, deletion_policy: &str, uploader: &str) -> Value {
    json!({
        "store_name": staged["store_name"],
        "staging_name": staged["staging_name"],
        "staging_location": staged["staging_location"],
        "upload_name": staged["upload_name"],
        "destination_location": staged["destination_location"],
        "transfer_provider_name": provider,
        "transfer_provider": {"hostnames": staged["transfer_providers"][provider]["hostnames"]},
        "meta_mode": "infer",
        "deletion_policy": deletion_policy,
        "uploader": uploader,
        "null_obsid": false,
        "transfer_id": staged["transfer_id"],
    })
}

/// Where the local provider puts the bytes.
pub fn staging_location(staged: &Value) -> &Path {
    Path::new(
        staged["staging_location"]
            .as_str()
            .expect("staging_location"),
    )
}

/// The local provider: write `bytes` to the staged upload's location.
pub fn copy_local(staged: &Value, bytes: &[u8]) {
    fs::write(staging_location(staged), bytes).expect("writing the staged file");
}

/// The local provider for a directory: create the tree under the staging location.
pub fn copy_local_tree(staged: &Value, files: &[(&str, &[u8])]) {
    let root = staging_location(staged);
    for (relative, bytes) in files {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("creating directories");
        fs::write(path, bytes).expect("writing a staged file");
    }
}

impl TestNode {
    /// Creates an account (as admin) and checks it was created.
    pub fn create_user(&self, username: &str, password: &str, permission: i64) {
        let body = json!({"username": username, "password": password, "permission": permission});
        let (status, reply) = self.post_admin("users/create", body);
        assert_eq!(status, 201, "users/create {username}: {reply}");
    }

    /// `upload/stage` as `user`.
    pub fn stage_as(
        &self,
        name: &str,
        bytes: &[u8],
        uploader: &str,
        auth: (&str, &str),
    ) -> (u16, Value) {
        let body = stage_body(name, bytes.len() as i64, &md5(bytes), uploader);
        self.post("upload/stage", body, auth.0, auth.1)
    }

    /// `upload/stage` as admin, which must succeed.
    pub fn stage(&self, name: &str, bytes: &[u8]) -> Value {
        let (status, staged) = self.stage_as(name, bytes, "test-uploader", self.admin());
        assert_eq!(status, 201, "upload/stage {name}: {staged}");
        staged
    }

    /// `upload/commit` of a local-provider upload.
    pub fn commit_as(
        &self,
        staged: &Value,
        deletion_policy: &str,
        auth: (&str, &str),
    ) -> (u16, Value) {
        let body = commit_body(staged, "local", deletion_policy, "test-uploader");
        self.post("upload/commit", body, auth.0, auth.1)
    }

    /// `upload/commit` as admin.
    pub fn commit(&self, staged: &Value) -> (u16, Value) {
        self.commit_as(staged, "0", self.admin())
    }

    /// A complete local-provider upload as admin; returns the stage answer.
    pub fn upload(&self, name: &str, bytes: &[u8]) -> Value {
        self.upload_as(name, bytes, "test-uploader", self.admin())
    }

    /// A complete local-provider upload with the given uploader and account.
    pub fn upload_as(&self, name: &str, bytes: &[u8], uploader: &str, auth: (&str, &str)) -> Value {
        let (status, staged) = self.stage_as(name, bytes, uploader, auth);
        assert_eq!(status, 201, "upload/stage {name}: {staged}");
        copy_local(&staged, bytes);
        let body = commit_body(&staged, "local", "0", uploader);
        let (status, reply) = self.post("upload/commit", body, auth.0, auth.1);
        assert_eq!(status, 200, "upload/commit {name}: {reply}");
        staged
    }

    /// `search/file` by name as admin.
    pub fn search_name(&self, name: &str) -> (u16, Value) {
        self.post_admin("search/file", json!({"name": name}))
    }

    /// The single `search/file` result for `name`, which must exist.
    pub fn file_record(&self, name: &str) -> Value {
        let (status, found) = self.search_name(name);
        assert_eq!(status, 200, "search/file {name}: {found}");
        assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
        found[0].clone()
    }

    /// `PUT upload/stream/{id}?offset=N[&path=P]` with `bytes` as the body.
    pub fn put_stream(
        &self,
        transfer_id: u64,
        offset: u64,
        path: Option<&str>,
        bytes: &[u8],
    ) -> Reply {
        let mut query = vec![("offset", offset.to_string())];
        if let Some(path) = path {
            query.push(("path", path.to_string()));
        }
        let url = self.url(&format!("upload/stream/{transfer_id}"));
        let request = self.client().put(url).query(&query).body(bytes.to_vec());
        self.send(request, Some(self.admin()))
    }

    /// `GET upload/stream/{id}[?path=P]`.
    pub fn stream_status(&self, transfer_id: u64, path: Option<&str>) -> Reply {
        let url = self.url(&format!("upload/stream/{transfer_id}"));
        let mut request = self.client().get(url);
        if let Some(path) = path {
            request = request.query(&[("path", path)]);
        }
        self.send(request, Some(self.admin()))
    }
}

/// The transfer id of a stage answer.
pub fn transfer_id(staged: &Value) -> u64 {
    staged["transfer_id"].as_u64().expect("transfer_id")
}

/// Flips the first byte of a committed (read-only) file in place.
pub fn flip_first_byte(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("making it writable");
    let mut bytes = fs::read(path).expect("reading the stored file");
    bytes[0] ^= 0xFF;
    fs::write(path, bytes).expect("rewriting the stored file");
}

/// A config under which `validate/file` always re-hashes (no cached verification).
pub const ALWAYS_REHASH: &str = "checksum_timeout = 0\n";

/// The body of `upload/batch_put` for `files` (name, bytes) with their sizes and
/// MD5s: the manifest's length, the manifest, then the bytes.
pub fn batch_put_body(uploader: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let listed: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| json!({"name": name, "size": bytes.len(), "checksum": md5(bytes)}))
        .collect();
    let manifest = json!({"uploader": uploader, "deletion_policy": "allowed", "files": listed});
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let mut body = (manifest.len() as u64).to_le_bytes().to_vec();
    body.extend_from_slice(&manifest);
    for (_, bytes) in files {
        body.extend_from_slice(bytes);
    }
    body
}

/// `PUT upload/batch_put` with `body`; returns the status and the JSON answer.
pub fn batch_put(node: &TestNode, body: Vec<u8>, auth: (&str, &str)) -> (u16, Value) {
    let request = node.client().put(node.url("upload/batch_put")).body(body);
    let reply = node.send(request, Some(auth));
    (reply.status, reply.json)
}
