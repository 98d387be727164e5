//! Integration tests: real `quire serve` processes on 127.0.0.1:0, each in its own
//! temporary directory, driven over HTTP as a client would.

mod admin;
mod batch;
mod cli;
mod cli_upload;
mod commit;
mod config;
mod crash;
mod drive_attacks;
mod dropbox;
mod dropbox_attacks;
mod errors;
mod federation;
mod hardening_auth;
mod hardening_data;
mod hardening_http;
mod librarians;
mod local_clone;
mod nesting;
mod node;
mod ping;
mod restart;
mod rolling_deletion;
mod search;
mod small_fs;
mod sneakernet;
mod space;
mod staging_attacks;
mod stream;
mod support;
mod tasks;
mod tls;
mod upload;
mod users;
mod validate;
