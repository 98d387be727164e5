//! Layouts that older builds wrote, kept only to read them: each is the record as
//! it was under its version, and converts into today's type.
//!
//! Invariant: nothing here ever changes; a layout that changes again gets a new
//! struct beside these.

use serde::Deserialize;

use crate::model::{DeletionPolicy, Instance, Timestamp};

/// `Instance`, layout 1: before `verified_stat`.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct InstanceV1 {
    pub id: u64,
    pub file_name: String,
    pub store_id: u64,
    pub path: String,
    pub deletion_policy: DeletionPolicy,
    pub created_time: Timestamp,
    pub available: bool,
    pub blake3: [u8; 32],
    pub verified_time: Timestamp,
}

impl From<InstanceV1> for Instance {
    /// A layout-1 instance recorded no stat with its last hash, so that hash is
    /// never reused: the copy is re-hashed at its next check.
    fn from(old: InstanceV1) -> Instance {
        Instance {
            id: old.id,
            file_name: old.file_name,
            store_id: old.store_id,
            path: old.path,
            deletion_policy: old.deletion_policy,
            created_time: old.created_time,
            available: old.available,
            blake3: old.blake3,
            verified_time: old.verified_time,
            verified_stat: None,
        }
    }
}
