//! The format fixture: `fixtures/db-v1.redb` holds one record of every stored type,
//! written by the first release. Every later build must open it and read the same
//! values; a change to a stored layout without a new version and a decoder for the
//! old one fails here.
//!
//! Set `QUIRE_REGENERATE_FIXTURES=1` to rewrite the fixture. Do that only when
//! adding a new fixture for a new format version, never to make this test pass.

use std::path::{Path, PathBuf};

use super::repo::{errors, files, instances, librarians, next_id, stores, transfers, users};
use super::{Db, DbError};
use crate::model::{
    Algorithm, AuthLevel, Checksum, CorruptFile, DeletionPolicy, ErrorCategory, ErrorRecord,
    ErrorSeverity, File, IncomingTransfer, Instance, Librarian, OutgoingTransfer, RemoteInstance,
    StoreState, Timestamp, TransferStatus, User,
};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/db-v1.redb")
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("valid fixture time")
}

fn checksum() -> Checksum {
    Checksum::parse("md5:::d41d8cd98f00b204e9800998ecf8427e").expect("valid")
}

fn file() -> File {
    File {
        name: "obs/2026/run-0001.dat".into(),
        create_time: at("2026-11-22T06:34:31.722255"),
        size: 0,
        checksum: checksum(),
        uploader: "pipeline".into(),
        source: "site-a".into(),
    }
}

fn instance() -> Instance {
    Instance {
        id: 1,
        file_name: file().name,
        store_id: 1,
        path: "/data/store/obs/2026/run-0001.dat".into(),
        deletion_policy: DeletionPolicy::Allowed,
        created_time: at("2026-11-22T06:34:32"),
        available: true,
        blake3: [7; 32],
        verified_time: at("2026-11-22T06:34:33"),
    }
}

fn remote() -> RemoteInstance {
    RemoteInstance {
        id: 1,
        file_name: file().name,
        librarian_name: "site-b".into(),
        store_id: 3,
        copy_time: at("2026-11-23T01:00:00"),
        sender: "site-a".into(),
    }
}

fn store() -> StoreState {
    StoreState {
        id: 1,
        name: "main".into(),
        enabled: false,
    }
}

fn user() -> User {
    User {
        username: "pipeline".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        level: AuthLevel::ReadAppend,
    }
}

fn librarian() -> Librarian {
    Librarian {
        id: 1,
        name: "site-b".into(),
        url: "https://site-b.example.org".into(),
        port: 21108,
        sealed_authenticator: vec![1, 2, 3],
        last_seen: Some(at("2026-11-22T00:00:00")),
        transfers_enabled: true,
    }
}

fn incoming() -> IncomingTransfer {
    IncomingTransfer {
        id: 1,
        status: TransferStatus::Staged,
        uploader: "pipeline".into(),
        source: "site-a".into(),
        transfer_size: 12,
        transfer_checksum: Checksum::new(Algorithm::Blake3, vec![9; 32]),
        store_id: 1,
        staging_name: "0b8c7a0e-3d9f-4a51-9f4e-1f2e3d4c5b6a".into(),
        upload_name: "run-0002.dat".into(),
        destination_location: "obs/2026/run-0002.dat".into(),
        start_time: at("2026-11-22T07:00:00"),
        end_time: None,
        source_transfer_id: Some(44),
        record_algorithm: Some(Algorithm::Md5),
    }
}

fn outgoing() -> OutgoingTransfer {
    OutgoingTransfer {
        id: 1,
        status: TransferStatus::Ongoing,
        destination: "site-b".into(),
        file_name: file().name,
        transfer_size: 0,
        transfer_checksum: checksum(),
        source_path: instance().path,
        start_time: at("2026-11-22T08:00:00"),
        end_time: Some(at("2026-11-22T08:00:01")),
        remote_transfer_id: Some(5),
    }
}

fn error() -> ErrorRecord {
    ErrorRecord {
        id: 1,
        severity: ErrorSeverity::Critical,
        category: ErrorCategory::DataIntegrity,
        message: "Instance 1 does not match its record.".into(),
        raised_time: at("2026-11-22T09:00:00"),
        cleared_time: None,
        cleared: false,
        caller: Some("check_integrity".into()),
    }
}

fn corrupt() -> CorruptFile {
    CorruptFile {
        id: 1,
        file_name: file().name,
        instance_id: 1,
        corrupt_time: at("2026-11-22T09:00:00"),
        size: 3,
        checksum: checksum(),
        count: 2,
    }
}

fn write_fixture(path: &Path) -> Result<(), DbError> {
    let _ = std::fs::remove_file(path);
    let db = Db::open(path).expect("creating the fixture");
    db.write_blocking(|txn| {
        for kind in [
            "instances",
            "remote_instances",
            "stores",
            "incoming_transfers",
            "outgoing_transfers",
            "errors",
            "corrupt_files",
            "librarians",
        ] {
            next_id(txn, kind)?;
        }
        files::insert(txn, &file())?;
        instances::put_instance(txn, &instance())?;
        instances::put_remote(txn, &remote())?;
        instances::put_corrupt(txn, &corrupt())?;
        stores::put_store(txn, &store())?;
        users::put_user(txn, &user())?;
        librarians::put_librarian(txn, &librarian())?;
        transfers::put_incoming(txn, &incoming())?;
        transfers::put_outgoing(txn, &outgoing())?;
        errors::put_error(txn, &error())?;
        Ok(Ok::<_, DbError>(()))
    })
}

#[test]
fn the_first_release_database_still_opens_and_reads() {
    if std::env::var_os("QUIRE_REGENERATE_FIXTURES").is_some() {
        write_fixture(&fixture_path()).expect("writing the fixture");
    }
    let copy_dir = tempfile::tempdir().expect("temporary directory");
    let copy = copy_dir.path().join("db-v1.redb");
    std::fs::copy(fixture_path(), &copy).expect("copying the fixture");
    let db = Db::open(&copy).expect("the v1 fixture opens");
    db.read(|tx| {
        assert_eq!(files::get_file(tx, &file().name)?, Some(file()));
        assert_eq!(instances::get_instance(tx, 1)?, Some(instance()));
        assert_eq!(instances::get_remote(tx, 1)?, Some(remote()));
        assert_eq!(instances::corrupt_record_of(tx, 1)?, Some(corrupt()));
        assert_eq!(stores::all_stores(tx)?, vec![store()]);
        assert_eq!(users::get_user(tx, "pipeline")?, Some(user()));
        assert_eq!(librarians::get_librarian(tx, "site-b")?, Some(librarian()));
        assert_eq!(transfers::get_incoming(tx, 1)?, Some(incoming()));
        assert_eq!(transfers::get_outgoing(tx, 1)?, Some(outgoing()));
        assert_eq!(errors::get_error(tx, 1)?, Some(error()));
        assert_eq!(transfers::live_incoming(tx)?, vec![incoming()]);
        Ok(())
    })
    .expect("reading the fixture");
    // The ids handed out next continue after the fixture's.
    let next = db
        .write_blocking(|txn| Ok(Ok::<_, DbError>(next_id(txn, "instances")?)))
        .expect("writing to the fixture copy");
    assert_eq!(next, 2);
}

#[test]
fn a_database_from_a_newer_release_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("newer.redb");
    {
        let database = redb::Database::create(&path).expect("create");
        let txn = database.begin_write().expect("write");
        {
            let mut meta = txn.open_table(super::tables::META).expect("meta");
            meta.insert("format_version", 99u32.to_le_bytes().as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let error = Db::open(&path).err().expect("refused").to_string();
    assert!(error.contains("format version 99"), "{error}");
    assert!(error.contains("newer quire"), "{error}");
}

#[test]
fn a_file_that_is_not_a_quire_database_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, b"this is not a database at all").expect("write");
    let error = Db::open(&path).err().expect("refused").to_string();
    assert!(error.contains("cannot open the database"), "{error}");
}
