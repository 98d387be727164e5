//! quire's network provider: `PUT /api/v2/upload/stream/{id}?offset=N[&path=P]`
//! with the raw bytes, `GET` of the same path for the staged length, then commit
//! with `transfer_provider_name: "quire_http"`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use quire::model::Algorithm;
use serde_json::json;

use crate::node::TestNode;
use crate::support::{
    ALWAYS_REHASH, READAPPEND, commit_body, directory_checksum, stage_body, transfer_id,
};

fn commit_streamed(node: &TestNode, staged: &serde_json::Value) -> (u16, serde_json::Value) {
    let body = commit_body(staged, "quire_http", "0", "test-uploader");
    node.post_admin("upload/commit", body)
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn streamed_upload_is_staged_reported_and_committed() {
    let node = TestNode::start();
    let bytes = payload(100_000);
    let staged = node.stage("streamed.bin", &bytes);
    let id = transfer_id(&staged);
    let put = node.put_stream(id, 0, None, &bytes);
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["staged_bytes"], bytes.len());
    assert_eq!(put.json["transfer_id"], id);
    let status = node.stream_status(id, None);
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.json["staged_bytes"], bytes.len());
    let (code, body) = commit_streamed(&node, &staged);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        fs::read(node.store_root().join("streamed.bin")).unwrap(),
        bytes
    );
    assert_eq!(node.file_record("streamed.bin")["size"], bytes.len());
}

#[test]
fn stream_status_of_a_fresh_transfer_is_zero() {
    let node = TestNode::start();
    let staged = node.stage("fresh", b"fresh");
    let status = node.stream_status(transfer_id(&staged), None);
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.json["staged_bytes"], 0);
}

#[test]
fn interrupted_stream_resumes_from_the_staged_length() {
    let node = TestNode::start();
    let bytes = payload(64 * 1024 + 17);
    let staged = node.stage("resumed.bin", &bytes);
    let id = transfer_id(&staged);
    let half = bytes.len() / 2;
    let put = node.put_stream(id, 0, None, &bytes[..half]);
    assert_eq!(put.status, 200, "{}", put.text);
    let status = node.stream_status(id, None);
    let staged_bytes = status.json["staged_bytes"].as_u64().expect("staged_bytes");
    assert_eq!(staged_bytes, half as u64);
    let put = node.put_stream(id, staged_bytes, None, &bytes[staged_bytes as usize..]);
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["staged_bytes"], bytes.len());
    let (code, body) = commit_streamed(&node, &staged);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        fs::read(node.store_root().join("resumed.bin")).unwrap(),
        bytes
    );
}

#[test]
fn resuming_at_an_earlier_offset_replaces_the_tail() {
    let node = TestNode::start();
    let bytes = payload(1000);
    let staged = node.stage("rewind.bin", &bytes);
    let id = transfer_id(&staged);
    let mut wrong = bytes[..600].to_vec();
    wrong[500..].fill(0xEE);
    assert_eq!(node.put_stream(id, 0, None, &wrong).status, 200);
    let put = node.put_stream(id, 500, None, &bytes[500..]);
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["staged_bytes"], 1000);
    let (code, body) = commit_streamed(&node, &staged);
    assert_eq!(code, 200, "{body}");
}

#[test]
fn resuming_beyond_the_staged_length_is_416() {
    let node = TestNode::start();
    let bytes = payload(100);
    let staged = node.stage("gap.bin", &bytes);
    let id = transfer_id(&staged);
    assert_eq!(node.put_stream(id, 0, None, &bytes[..10]).status, 200);
    let put = node.put_stream(id, 50, None, &bytes[50..]);
    assert_eq!(put.status, 416, "{}", put.text);
    assert_eq!(node.stream_status(id, None).json["staged_bytes"], 10);
}

#[test]
fn streaming_more_than_the_declared_size_is_413() {
    let node = TestNode::start();
    let staged = node.stage("small.bin", b"four");
    let put = node.put_stream(transfer_id(&staged), 0, None, b"four and then some");
    assert_eq!(put.status, 413, "{}", put.text);
}

#[test]
fn streamed_bytes_that_do_not_match_are_refused_at_commit() {
    let node = TestNode::start();
    let staged = node.stage("corrupted.bin", b"original");
    assert_eq!(
        node.put_stream(transfer_id(&staged), 0, None, b"0riginal")
            .status,
        200
    );
    let (code, body) = commit_streamed(&node, &staged);
    assert_eq!(code, 406, "{body}");
    let (status, _) = node.search_name("corrupted.bin");
    assert_eq!(status, 404);
}

#[test]
fn directory_upload_streams_each_file_with_a_path() {
    let node = TestNode::start();
    let files: [(&str, &[u8]); 3] = [
        ("a.txt", b"alpha"),
        ("sub/b.txt", b"bravo bravo"),
        ("sub/deep/c.txt", b"charlie"),
    ];
    let contents: Vec<&[u8]> = files.iter().map(|(_, bytes)| *bytes).collect();
    let size: usize = contents.iter().map(|bytes| bytes.len()).sum();
    let sum = directory_checksum(Algorithm::Md5, &contents);
    let (status, staged) =
        node.post_admin("upload/stage", stage_body("tree", size as i64, &sum, "ann"));
    assert_eq!(status, 201, "{staged}");
    let id = transfer_id(&staged);
    for (path, bytes) in files {
        let put = node.put_stream(id, 0, Some(path), bytes);
        assert_eq!(put.status, 200, "{path}: {}", put.text);
        assert_eq!(put.json["path"], path);
        assert_eq!(put.json["staged_bytes"], bytes.len());
    }
    let status = node.stream_status(id, Some("sub/b.txt"));
    assert_eq!(status.json["staged_bytes"], 11, "{}", status.text);
    let (code, body) = commit_streamed(&node, &staged);
    assert_eq!(code, 200, "{body}");
    for (path, bytes) in files {
        assert_eq!(
            fs::read(node.store_root().join("tree").join(path)).unwrap(),
            bytes
        );
    }
    let file = node.file_record("tree");
    assert_eq!(file["checksum"], sum);
    assert_eq!(file["size"], size);
}

#[test]
fn stream_path_that_leaves_the_upload_is_400() {
    let node = TestNode::start();
    let staged = node.stage("dir", b"xx");
    let put = node.put_stream(transfer_id(&staged), 0, Some("../../escape"), b"xx");
    assert_eq!(put.status, 400, "{}", put.text);
}

#[test]
fn streaming_to_an_unknown_transfer_is_404() {
    let node = TestNode::start();
    assert_eq!(node.put_stream(424_242, 0, None, b"x").status, 404);
    assert_eq!(node.stream_status(424_242, None).status, 404);
}

#[test]
fn streaming_to_another_accounts_transfer_is_401() {
    let node = TestNode::start();
    node.create_user("bob", "bob-pw", READAPPEND);
    let staged = node.stage("admins", b"admins");
    let url = node.url(&format!("upload/stream/{}", transfer_id(&staged)));
    let request = node
        .client()
        .put(url)
        .query(&[("offset", "0")])
        .body(b"admins".to_vec());
    let reply = node.send(request, Some(("bob", "bob-pw")));
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({"detail": "Incorrect username or password"})
    );
}

#[test]
fn stream_routes_need_credentials() {
    let node = TestNode::start();
    let staged = node.stage("creds", b"creds");
    let url = node.url(&format!("upload/stream/{}", transfer_id(&staged)));
    let reply = node.send(node.client().get(url), None);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json, json!({"detail": "Not authenticated"}));
}

/// Opens `PUT upload/stream/{id}?offset=0` declaring `declared` bytes and sends
/// `part` of them; the rest is up to the caller.
fn open_stream(node: &TestNode, id: u64, declared: usize, part: &[u8]) -> TcpStream {
    let address = node.base.trim_start_matches("http://");
    let mut socket = TcpStream::connect(address).unwrap();
    let (user, password) = node.admin();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let head = format!(
        "PUT /api/v2/upload/stream/{id}?offset=0 HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Basic {credentials}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(part).unwrap();
    socket.flush().unwrap();
    socket
}

#[test]
fn a_stream_left_behind_writes_nothing_once_a_newer_one_took_over() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    let bytes = payload(200_000);
    let staged = node.stage("taken-over.bin", &bytes);
    let id = transfer_id(&staged);
    // A stream that stalls after 50,000 bytes (its client went quiet, the node
    // does not know yet).
    let mut old = open_stream(&node, id, bytes.len(), &bytes[..50_000]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while node.stream_status(id, None).json["staged_bytes"] != 50_000 {
        assert!(Instant::now() < deadline, "the first bytes never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The client resumes on a new connection and commits.
    let put = node.put_stream(id, 50_000, None, &bytes[50_000..]);
    assert_eq!(put.status, 200, "{}", put.text);
    let (code, body) = commit_streamed(&node, &staged);
    assert_eq!(code, 200, "{body}");
    // Now the old connection wakes up and sends the rest of its body, wrong.
    old.write_all(&vec![0xEE; bytes.len() - 50_000]).unwrap();
    let mut answer = String::new();
    old.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    let stored = node.store_root().join("taken-over.bin");
    assert_eq!(
        fs::read(&stored).unwrap(),
        bytes,
        "the stored file is intact"
    );
    let (status, rows) = node.post_admin("validate/file", json!({"file_name": "taken-over.bin"}));
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["computed_same_checksum"], true, "{rows}");
}

/// `PUT upload/stream_batch` as admin: the manifest (transfer id, size), then
/// `bytes` back to back.
fn stream_batch(node: &TestNode, files: &[(u64, &[u8])]) -> crate::node::Reply {
    let manifest = json!({"files": files.iter()
        .map(|(id, bytes)| json!({"transfer_id": id, "size": bytes.len()}))
        .collect::<Vec<_>>()});
    let head = serde_json::to_vec(&manifest).unwrap();
    let mut body = (head.len() as u64).to_le_bytes().to_vec();
    body.extend_from_slice(&head);
    for (_, bytes) in files {
        body.extend_from_slice(bytes);
    }
    let request = node
        .client()
        .put(node.url("upload/stream_batch"))
        .body(body);
    node.send(request, Some(node.admin()))
}

#[test]
fn a_batch_stream_refuses_a_transfer_listed_twice_and_writes_it_once() {
    let node = TestNode::start();
    let bytes = b"the one true content".as_slice();
    let staged = node.stage("twice/a.dat", bytes);
    let id = transfer_id(&staged);
    let other = b"the other contents!!".as_slice();
    let reply = stream_batch(&node, &[(id, bytes), (id, other)]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    let files = reply.json["files"].as_array().unwrap();
    assert!(files[0]["error"].is_null(), "{}", reply.text);
    assert_eq!(files[1]["error"]["status"], 400, "{}", reply.text);
    assert!(
        files[1]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("listed twice"),
        "{}",
        reply.text
    );
    let (status, committed) = node.commit(&staged);
    assert_eq!(status, 200, "the first bytes stand: {committed}");
}
