//! One file per group of routes.

pub mod admin;
pub mod batch_put;
pub mod checkin;
pub mod clone;
pub mod corrupt;
pub mod errors;
pub mod librarians;
pub mod manifest;
pub mod ping;
pub mod search;
mod taken;
pub mod tasks;
pub mod transfers;
pub mod upload;
pub mod users;
pub mod validate;
