//! Integration tests: real `quire serve` processes on 127.0.0.1:0, each in its own
//! temporary directory, driven over HTTP as a client would.

mod admin;
mod batch;
mod commit;
mod config;
mod crash;
mod dropbox;
mod errors;
mod node;
mod ping;
mod restart;
mod search;
mod stream;
mod support;
mod upload;
mod users;
mod validate;
