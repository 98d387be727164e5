//! Slow and lying clients: request heads and bodies that stop arriving are cut
//! off after the configured time, connections beyond the cap wait (logged once),
//! and small protocol gaps answer with a reason.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::node::TestNode;
use crate::support::{READAPPEND, md5, stage_body, transfer_id};

/// Long enough for any answer on a loaded machine; the node's timeouts in these
/// tests are far shorter.
const PATIENCE: Duration = Duration::from_secs(60);

fn address(node: &TestNode) -> String {
    node.base.trim_start_matches("http://").to_string()
}

fn basic(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// Opens a connection and sends `head` (and whatever part of a body follows).
fn send_raw(node: &TestNode, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(address(node)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

/// Reads until the node closes the connection; fails if it does not within
/// `PATIENCE`. Returns what was read.
fn read_until_closed(mut stream: TcpStream) -> String {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!(
                "the node kept the connection open for {:?} ({error}); read so far: {}",
                started.elapsed(),
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

const TIMEOUTS: &str = "[http]\nheader_timeout = \"2s\"\nbody_idle_timeout = \"2s\"\n";

#[test]
fn a_body_that_stops_halfway_is_answered_408_and_closed() {
    let node = TestNode::with_config(TIMEOUTS);
    let body = serde_json::to_vec(&stage_body("a", 3, &md5(b"abc"), "me")).unwrap();
    let (user, pass) = node.admin();
    let head = format!(
        "POST /api/v2/upload/stage HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic(user, pass),
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&body[..body.len() / 2]);
    let answer = read_until_closed(send_raw(&node, &request));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("no byte of the request body"), "{answer}");
}

#[test]
fn a_content_length_beyond_the_body_is_closed_after_the_idle_timeout() {
    let node = TestNode::with_config(TIMEOUTS);
    let (user, pass) = node.admin();
    // A whole JSON document, but the header promises more.
    let request = format!(
        "POST /api/v2/ping/logged HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{}}",
        basic(user, pass)
    );
    let answer = read_until_closed(send_raw(&node, request.as_bytes()));
    // ping/logged does not read its body: it answers, and the unread rest of the
    // body closes the connection.
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = read_until_closed(send_raw(
        &node,
        format!(
            "POST /api/v2/search/file HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \"a\"}}",
            basic(user, pass)
        )
        .as_bytes(),
    ));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[test]
fn a_stream_upload_that_stalls_is_cut_off_without_a_500() {
    let node = TestNode::with_config(TIMEOUTS);
    let bytes = vec![7u8; 4096];
    let staged = node.stage("stalled.dat", &bytes);
    let (user, pass) = node.admin();
    let head = format!(
        "PUT /api/v2/upload/stream/{}?offset=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\
         Content-Length: {}\r\n\r\n",
        transfer_id(&staged),
        basic(user, pass),
        bytes.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&bytes[..1000]);
    let answer = read_until_closed(send_raw(&node, &request));
    assert!(
        answer.is_empty() || !answer.starts_with("HTTP/1.1 5"),
        "{answer}"
    );
    // What did arrive is kept, so the client can resume.
    let status = node.stream_status(transfer_id(&staged), None);
    assert_eq!(status.status, 200, "{}", status.text);
}

#[test]
fn a_request_head_that_never_ends_is_closed_after_the_header_timeout() {
    let node = TestNode::with_config(TIMEOUTS);
    let stream = send_raw(&node, b"POST /api/v2/ping/ HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let answer = read_until_closed(stream);
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
}

#[test]
fn connections_beyond_the_cap_wait_and_the_cap_is_logged_once() {
    let node = TestNode::with_config("[http]\nmax_connections = 2\nheader_timeout = \"10m\"\n");
    // Two connections that send nothing hold both slots.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(address(&node)).unwrap())
        .collect();
    let (sender, answers) = mpsc::channel();
    let url = node.url("ping/");
    let (user, pass) = (node.admin().0.to_string(), node.admin().1.to_string());
    let waiting = thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        let reply = client
            .post(url)
            .basic_auth(user, Some(pass))
            .json(&json!({}))
            .send();
        let _ = sender.send(reply.map(|r| r.status().as_u16()));
    });
    assert!(
        answers.recv_timeout(Duration::from_secs(3)).is_err(),
        "a third connection was served while two held the cap of 2"
    );
    for stream in &held {
        stream.shutdown(Shutdown::Both).unwrap();
    }
    let status = answers
        .recv_timeout(PATIENCE)
        .expect("the waiting connection is served once a slot is free")
        .expect("the waiting request succeeds");
    assert_eq!(status, 200);
    waiting.join().unwrap();
    let log = node.log();
    assert_eq!(
        log.matches("connection limit reached").count(),
        1,
        "the cap is logged once:\n{log}"
    );
}

#[test]
fn corrupt_routes_answer_with_a_reason_in_the_protocol_shape() {
    let node = TestNode::start();
    for route in ["corrupt/prepare", "corrupt/resend"] {
        let body = json!({"file_name": "a", "librarian_name": "peer"});
        let (status, reply) = node.post_admin(route, body);
        assert_eq!(status, 401, "{route}: an unknown librarian: {reply}");
        let detail = &reply["detail"];
        assert_eq!(detail["reason"], "Unauthorized", "{route}: {reply}");
        assert!(
            !detail["suggested_remedy"].as_str().unwrap().is_empty(),
            "{route}: {reply}"
        );
    }
}

#[test]
fn clone_complete_refuses_a_store_id_that_is_no_store_id() {
    let node = TestNode::start();
    for store_id in [-1i64, 0, i64::MAX] {
        let body =
            json!({"source_transfer_id": 1, "destination_transfer_id": 2, "store_id": store_id});
        let (status, reply) = node.post_admin("clone/complete", body);
        assert_eq!(status, 400, "store_id {store_id}: {reply}");
        let reason = reply["reason"].as_str().unwrap();
        assert!(reason.contains(&format!("store_id {store_id}")), "{reply}");
        assert_eq!(reply["source_transfer_id"], 1, "{reply}");
    }
}

#[test]
fn a_line_break_in_a_peers_text_cannot_forge_a_log_line() {
    let node = TestNode::start();
    node.create_user("peer-a", "peer-pw", READAPPEND);
    let bytes = b"cloned bytes";
    let mut body = stage_body("from-peer.dat", bytes.len() as i64, &md5(bytes), "peer-a");
    body["source_transfer_id"] = json!(7);
    body["source"] = json!("peer-a");
    let (status, staged) = node.post("clone/stage", body, "peer-a", "peer-pw");
    assert_eq!(status, 201, "{staged}");
    let forged = "gone\nERROR quire: forged line";
    let fail = json!({
        "source_transfer_id": 7,
        "destination_transfer_id": staged["destination_transfer_id"],
        "reason": forged,
    });
    let (status, reply) = node.post("clone/fail", fail, "peer-a", "peer-pw");
    assert_eq!(status, 200, "{reply}");
    let deadline = Instant::now() + PATIENCE;
    while !node.log().contains("clone failed by its sender") {
        assert!(Instant::now() < deadline, "no log line:\n{}", node.log());
        thread::sleep(Duration::from_millis(50));
    }
    let log = node.log();
    assert!(
        !log.lines()
            .any(|line| line.starts_with("ERROR quire: forged line")),
        "{log}"
    );
    assert!(log.contains(r"gone\nERROR quire: forged line"), "{log}");
}
