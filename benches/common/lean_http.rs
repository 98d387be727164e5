//! A minimal HTTP/1.1 client for the request-rate benchmarks: one kept-alive
//! connection, `POST` with a JSON body, answers read by their `Content-Length`.
//! A general client (ureq) spends about as much CPU per small request as the node
//! does answering it, and on a 2-core machine the bench's client shares the cores
//! with the node it measures; this one does the least a client can do: one write
//! per request, one or two reads per answer.

use std::io::{Read, Write};
use std::net::TcpStream;

/// Largest answer head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// One kept-alive connection to a node's API.
pub struct LeanClient {
    stream: TcpStream,
    host: String,
    /// `/api/v2/` or the like; routes are appended to it.
    prefix: String,
    authorization: String,
    /// Bytes read past the end of the previous answer (none, with a well-behaved
    /// server that answers one request at a time).
    buffer: Vec<u8>,
}

impl LeanClient {
    /// Connects to `host` (`127.0.0.1:PORT`) for routes under `prefix`.
    pub fn connect(host: &str, prefix: &str, authorization: &str) -> LeanClient {
        let stream =
            TcpStream::connect(host).unwrap_or_else(|e| panic!("connecting to {host}: {e}"));
        stream.set_nodelay(true).expect("setting TCP_NODELAY");
        LeanClient {
            stream,
            host: host.to_string(),
            prefix: prefix.to_string(),
            authorization: authorization.to_string(),
            buffer: Vec::with_capacity(4096),
        }
    }

    /// POSTs `body` (JSON) to `route`; returns the status and the answer's body.
    /// Panics on anything but a well-formed answer with a `Content-Length`.
    pub fn post(&mut self, route: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut request = Vec::with_capacity(256 + body.len());
        write!(
            request,
            "POST {}{route} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.prefix,
            self.host,
            self.authorization,
            body.len()
        )
        .expect("writing into a Vec");
        request.extend_from_slice(body);
        self.stream
            .write_all(&request)
            .unwrap_or_else(|e| panic!("POST {route}: sending: {e}"));
        self.read_answer(route)
    }

    fn read_answer(&mut self, route: &str) -> (u16, Vec<u8>) {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            assert!(
                self.buffer.len() < MAX_HEAD_BYTES,
                "POST {route}: the answer's head is too long"
            );
            self.fill(route);
        };
        let head = std::str::from_utf8(&self.buffer[..head_end])
            .unwrap_or_else(|_| panic!("POST {route}: the answer's head is not UTF-8"));
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("POST {route}: no status in {head:?}"));
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("POST {route}: no Content-Length in {head:?}"));
        while self.buffer.len() < head_end + length {
            self.fill(route);
        }
        let body = self.buffer[head_end..head_end + length].to_vec();
        self.buffer.drain(..head_end + length);
        (status, body)
    }

    fn fill(&mut self, route: &str) {
        let mut chunk = [0u8; 8192];
        let read = self
            .stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("POST {route}: reading the answer: {e}"));
        assert!(read > 0, "POST {route}: the node closed the connection");
        self.buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
