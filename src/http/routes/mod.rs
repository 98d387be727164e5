//! One file per group of routes.

pub mod admin;
pub mod errors;
pub mod librarians;
pub mod ping;
pub mod search;
pub mod tasks;
pub mod upload;
pub mod users;
pub mod validate;
