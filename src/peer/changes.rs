//! Changes to the peer registry, as group-commit write jobs: add a peer, remove one
//! (optionally cancelling its live outgoing transfers), switch transfers to it on
//! or off.
//!
//! Invariant: a removal and the cancellations it asks for happen in one
//! transaction; transfers already terminal are never touched.

use crate::db::repo::{librarians, next_id, transfers};
use crate::db::{DbError, WriteTxn};
use crate::model::{Librarian, OutgoingTransfer, Timestamp, TransferStatus};

/// Records `peer` under a fresh id unless a peer of that name exists; returns
/// whether it was added (an existing peer is left unchanged).
pub fn insert_peer(txn: &WriteTxn, mut peer: Librarian) -> Result<bool, DbError> {
    if librarians::get_librarian(txn, &peer.name)?.is_some() {
        return Ok(false);
    }
    peer.id = next_id(txn, "librarians")?;
    librarians::put_librarian(txn, &peer)?;
    Ok(true)
}

/// What a removal did.
#[derive(Debug)]
pub struct RemovedPeer {
    /// The record as it was.
    pub peer: Librarian,
    /// The outgoing transfers it cancelled.
    pub cancelled: Vec<OutgoingTransfer>,
}

/// Forgets the peer `name`. With `cancel_outgoing`, its live outgoing transfers
/// become CANCELLED (ended `now`); without, they are kept as they are, so that
/// re-adding the peer lets them go on. `None` when no such peer exists.
pub fn remove_peer(
    txn: &WriteTxn,
    name: &str,
    cancel_outgoing: bool,
    now: Timestamp,
) -> Result<Option<RemovedPeer>, DbError> {
    let Some(peer) = librarians::get_librarian(txn, name)? else {
        return Ok(None);
    };
    let mut cancelled = Vec::new();
    if cancel_outgoing {
        for mut transfer in librarians::live_outgoing_to(txn, name)? {
            transfer.status = TransferStatus::Cancelled;
            transfer.end_time = Some(now);
            transfers::put_outgoing(txn, &transfer)?;
            cancelled.push(transfer);
        }
    }
    librarians::delete_librarian(txn, name)?;
    Ok(Some(RemovedPeer { peer, cancelled }))
}

/// Enables or disables transfers to the peer `name`; `None` when it is unknown.
pub fn set_transfers_enabled(
    txn: &WriteTxn,
    name: &str,
    enabled: bool,
) -> Result<Option<Librarian>, DbError> {
    let Some(mut peer) = librarians::get_librarian(txn, name)? else {
        return Ok(None);
    };
    peer.transfers_enabled = enabled;
    librarians::put_librarian(txn, &peer)?;
    Ok(Some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::model::Checksum;

    fn peer(name: &str) -> Librarian {
        Librarian {
            id: 0,
            name: name.into(),
            url: "http://127.0.0.1".into(),
            port: 1,
            sealed_authenticator: vec![1],
            last_seen: None,
            transfers_enabled: true,
        }
    }

    fn outgoing(id: u64, destination: &str, status: TransferStatus) -> OutgoingTransfer {
        OutgoingTransfer {
            id,
            status,
            destination: destination.into(),
            file_name: format!("f{id}"),
            transfer_size: 0,
            transfer_checksum: Checksum::parse("md5:::d41d8cd98f00b204e9800998ecf8427e")
                .expect("valid"),
            source_path: format!("/store/f{id}"),
            start_time: Timestamp::now(),
            end_time: None,
            remote_transfer_id: Some(100 + id),
        }
    }

    fn write<R: Send + 'static>(
        db: &Db,
        job: impl FnOnce(&WriteTxn) -> Result<R, DbError> + Send + 'static,
    ) -> R {
        db.write_blocking(move |txn| Ok(Ok::<_, DbError>(job(txn)?)))
            .expect("write job")
    }

    #[test]
    fn removal_cancels_only_live_transfers_to_that_peer_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("q.redb")).unwrap();
        assert!(write(&db, |txn| insert_peer(txn, peer("site-b"))));
        assert!(write(&db, |txn| insert_peer(txn, peer("site-c"))));
        assert!(!write(&db, |txn| insert_peer(txn, peer("site-b"))));
        write(&db, |txn| {
            transfers::put_outgoing(txn, &outgoing(1, "site-b", TransferStatus::Ongoing))?;
            transfers::put_outgoing(txn, &outgoing(2, "site-b", TransferStatus::Initiated))?;
            transfers::put_outgoing(txn, &outgoing(3, "site-b", TransferStatus::Completed))?;
            transfers::put_outgoing(txn, &outgoing(4, "site-c", TransferStatus::Staged))
        });

        // Without the flag the transfers stay as they are.
        let removed = write(&db, |txn| {
            remove_peer(txn, "site-c", false, Timestamp::now())
        });
        assert!(removed.unwrap().cancelled.is_empty());
        let kept = db
            .read(|tx| transfers::get_outgoing(tx, 4))
            .unwrap()
            .unwrap();
        assert_eq!(kept.status, TransferStatus::Staged);

        let removed = write(&db, |txn| {
            remove_peer(txn, "site-b", true, Timestamp::now())
        })
        .expect("site-b was known");
        let ids: Vec<u64> = removed.cancelled.iter().map(|t| t.id).collect();
        assert_eq!(ids, [1, 2]);
        let status = |id| {
            db.read(|tx| transfers::get_outgoing(tx, id))
                .unwrap()
                .unwrap()
                .status
        };
        assert_eq!(status(1), TransferStatus::Cancelled);
        assert_eq!(status(2), TransferStatus::Cancelled);
        assert_eq!(status(3), TransferStatus::Completed);
        assert_eq!(status(4), TransferStatus::Staged);
        assert!(
            db.read(|tx| librarians::live_outgoing_to(tx, "site-b"))
                .unwrap()
                .is_empty()
        );
        assert!(
            db.read(|tx| librarians::get_librarian(tx, "site-b"))
                .unwrap()
                .is_none()
        );
        assert!(
            write(&db, |txn| remove_peer(
                txn,
                "site-b",
                true,
                Timestamp::now()
            ))
            .is_none()
        );
    }

    #[test]
    fn transfer_switch_changes_only_known_peers() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("q.redb")).unwrap();
        write(&db, |txn| insert_peer(txn, peer("site-b")));
        let changed = write(&db, |txn| set_transfers_enabled(txn, "site-b", false));
        assert!(!changed.unwrap().transfers_enabled);
        let stored = db
            .read(|tx| librarians::get_librarian(tx, "site-b"))
            .unwrap();
        assert!(!stored.unwrap().transfers_enabled);
        assert!(write(&db, |txn| set_transfers_enabled(txn, "nobody", true)).is_none());
    }
}
