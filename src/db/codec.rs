//! Versioned encoding of stored records: one format-version byte, then the record in
//! postcard.
//!
//! Invariant: a record type's layout never changes under the same version. Changing a
//! stored type means bumping its `VERSION` and teaching `decode_older` to read the
//! previous layout (the old layouts live in `legacy.rs`); the fixtures
//! `fixtures/db-v*.redb` and their tests catch a silent change.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DbError;
use super::legacy::InstanceV1;
use crate::model::{
    CorruptFile, DropboxIntent, ErrorRecord, File, IncomingTransfer, Instance, Librarian,
    OutgoingTransfer, OwedCallback, RemoteInstance, SendQueueItem, StoreState, UploadIntent, User,
};

/// A type stored in the database.
pub trait Record: Serialize + DeserializeOwned {
    /// Name used in error messages.
    const KIND: &'static str;
    /// The layout version written by this build.
    const VERSION: u8 = 1;

    /// Reads a record written with an older layout `version`.
    fn decode_older(version: u8, bytes: &[u8]) -> Result<Self, String> {
        let _ = bytes;
        Err(format!("unknown layout version {version}"))
    }
}

/// Encodes a record with its version byte.
pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    let mut bytes = vec![R::VERSION];
    let body = postcard::to_allocvec(record).expect("records always serialize");
    bytes.extend_from_slice(&body);
    bytes
}

/// Decodes a record, dispatching on its version byte.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, DbError> {
    let fail = |reason: String| DbError::Decode {
        kind: R::KIND,
        reason,
    };
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| fail("empty record".into()))?;
    if version == R::VERSION {
        postcard::from_bytes(body).map_err(|e| fail(e.to_string()))
    } else if version > R::VERSION {
        Err(fail(format!(
            "layout version {version} was written by a newer quire (this build reads up to {})",
            R::VERSION
        )))
    } else {
        R::decode_older(version, body).map_err(fail)
    }
}

macro_rules! records {
    ($($type:ty => $kind:literal),* $(,)?) => {
        $(impl Record for $type { const KIND: &'static str = $kind; })*
    };
}

records! {
    File => "file",
    RemoteInstance => "remote instance",
    StoreState => "store",
    User => "user",
    Librarian => "librarian",
    IncomingTransfer => "incoming transfer",
    OutgoingTransfer => "outgoing transfer",
    ErrorRecord => "error",
    CorruptFile => "corrupt file",
    OwedCallback => "owed callback",
    DropboxIntent => "drop-box intent",
    UploadIntent => "upload intent",
    SendQueueItem => "send-queue batch",
}

/// Layout 2 added `verified_stat` (what the copy looked like when last hashed).
impl Record for Instance {
    const KIND: &'static str = "instance";
    const VERSION: u8 = 2;

    fn decode_older(version: u8, bytes: &[u8]) -> Result<Self, String> {
        match version {
            1 => postcard::from_bytes::<InstanceV1>(bytes)
                .map(Instance::from)
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown layout version {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuthLevel;

    #[test]
    fn round_trips_and_refuses_newer_versions() {
        let user = User {
            username: "a".into(),
            password_hash: "h".into(),
            level: AuthLevel::ReadOnly,
        };
        let mut bytes = encode(&user);
        assert_eq!(decode::<User>(&bytes).unwrap(), user);
        bytes[0] = 9;
        let error = decode::<User>(&bytes).unwrap_err().to_string();
        assert!(error.contains("newer quire"), "{error}");
        assert!(decode::<User>(&[]).is_err());
    }

    fn instance(verified_stat: Option<crate::model::CopyStat>) -> Instance {
        let at = crate::model::Timestamp::from_micros(1_000_000);
        Instance {
            id: 4,
            file_name: "a/b".into(),
            store_id: 2,
            path: "/s/a/b".into(),
            deletion_policy: crate::model::DeletionPolicy::Allowed,
            created_time: at,
            available: true,
            blake3: [3; 32],
            verified_time: at,
            verified_stat,
        }
    }

    #[test]
    fn an_instance_of_layout_1_reads_without_a_verified_stat() {
        let old = instance(None);
        let layout_1 = InstanceV1 {
            id: old.id,
            file_name: old.file_name.clone(),
            store_id: old.store_id,
            path: old.path.clone(),
            deletion_policy: old.deletion_policy,
            created_time: old.created_time,
            available: old.available,
            blake3: old.blake3,
            verified_time: old.verified_time,
        };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_allocvec(&layout_1).unwrap());
        assert_eq!(decode::<Instance>(&bytes).unwrap(), old);

        let stat = crate::model::CopyStat {
            size: 9,
            modified_ns: -5,
            inode: 77,
            entries: [1; 16],
        };
        let current = instance(Some(stat));
        let bytes = encode(&current);
        assert_eq!(bytes[0], 2);
        assert_eq!(decode::<Instance>(&bytes).unwrap(), current);
    }
}
