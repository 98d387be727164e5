//! The format fixtures: `fixtures/db-v<N>.redb` holds one record of every stored
//! type as the build that introduced database format N wrote it. Every later build
//! must open each fixture and read the same values; a change to a stored layout
//! without a new version and a decoder for the old one fails here.
//!
//! The checks only ever read copies of the committed files. Writing a fixture is a
//! separate, ignored test that writes the fixture of the current format only if it
//! does not exist yet
//! (`QUIRE_REGENERATE_FIXTURES=1 cargo test --lib db::fixture -- --ignored`): do
//! that once, when adding a new format version, never to make a check pass.

use std::path::{Path, PathBuf};

use super::repo::{
    callbacks, dropbox_intents, errors, files, instances, librarians, next_id, stores, transfers,
    upload_intents, users,
};
use super::{Db, DbError, FORMAT_VERSION};
use crate::model::{
    Algorithm, AuthLevel, CallbackKind, Checksum, CopyStat, CorruptFile, DeletionPolicy,
    DropboxIntent, ErrorCategory, ErrorRecord, ErrorSeverity, File, IncomingTransfer, Instance,
    IntentItem, Librarian, NamedItem, OutgoingTransfer, OwedCallback, RemoteInstance, StoreState,
    Timestamp, TransferStatus, UploadIntent, User,
};

/// The committed fixture of database format `version`.
fn fixture_path(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/db-v{version}.redb"))
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

/// The instance as format 1 wrote it: no stat recorded with its last hash.
fn instance_v1() -> Instance {
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
        verified_stat: None,
    }
}

/// The instance as format 2 writes it.
fn instance_v2() -> Instance {
    Instance {
        verified_stat: Some(CopyStat {
            size: 0,
            modified_ns: 1_795_242_871_000_000_123,
            inode: 131_077,
            entries: [0; 16],
        }),
        ..instance_v1()
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
        source_path: instance_v1().path,
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

fn owed() -> OwedCallback {
    OwedCallback {
        transfer_id: 1,
        kind: CallbackKind::Fail,
        attempts: 3,
        last_attempt: Some(at("2026-11-22T10:00:00")),
        last_error: Some("site-a did not answer".into()),
    }
}

fn dropbox_intent() -> DropboxIntent {
    DropboxIntent {
        id: 1,
        store_id: 1,
        items: vec![IntentItem {
            name: "obs/2026/run-0003.dat".into(),
            source: "/data/dropbox/run-0003.dat".into(),
            source_device: 2049,
            source_inode: 11,
            target: "/data/store/obs/2026/run-0003.dat".into(),
            target_device: 2049,
            target_inode: 12,
        }],
    }
}

fn upload_intent() -> UploadIntent {
    UploadIntent {
        id: 1,
        store_id: 1,
        items: vec![NamedItem {
            name: "obs/2026/run-0004.dat".into(),
            target: "/data/store/obs/2026/run-0004.dat".into(),
            device: 2049,
            inode: 13,
        }],
    }
}

/// Writes the records of format 2 (the current one) into a new database at `path`.
fn write_current_fixture(path: &Path) -> Result<(), DbError> {
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
        instances::put_instance(txn, &instance_v2())?;
        instances::put_remote(txn, &remote())?;
        instances::put_corrupt(txn, &corrupt())?;
        stores::put_store(txn, &store())?;
        users::put_user(txn, &user())?;
        librarians::put_librarian(txn, &librarian())?;
        transfers::put_incoming(txn, &incoming())?;
        transfers::put_outgoing(txn, &outgoing())?;
        errors::put_error(txn, &error())?;
        callbacks::put_owed(txn, &owed())?;
        dropbox_intents::put_intent(txn, &dropbox_intent())?;
        upload_intents::put_intent(txn, &upload_intent())?;
        Ok(Ok::<_, DbError>(()))
    })
}

/// Opens a copy of the committed fixture of `version` (a check never touches the
/// committed file itself).
fn open_copy(version: u32) -> (tempfile::TempDir, Db) {
    let copy_dir = tempfile::tempdir().expect("temporary directory");
    let copy = copy_dir.path().join(format!("db-v{version}.redb"));
    std::fs::copy(fixture_path(version), &copy).unwrap_or_else(|error| {
        panic!(
            "the committed fixture {} is missing ({error})",
            fixture_path(version).display()
        )
    });
    let db =
        Db::open(&copy).unwrap_or_else(|error| panic!("the v{version} fixture opens: {error}"));
    (copy_dir, db)
}

/// Checks the records both formats hold; `instance` is the instance as that format
/// wrote it.
fn check_common_records(db: &Db, instance: &Instance) {
    db.read(|tx| {
        assert_eq!(files::get_file(tx, &file().name)?, Some(file()));
        assert_eq!(instances::get_instance(tx, 1)?.as_ref(), Some(instance));
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

/// The format version recorded in `db`.
fn recorded_format(db: &Db) -> u32 {
    use super::Reads;
    db.read(|tx| {
        let meta = tx.table(super::tables::META)?.expect("a meta table");
        let value = meta.get("format_version")?.expect("a format version");
        Ok(u32::from_le_bytes(
            value.value().try_into().expect("4 bytes"),
        ))
    })
    .expect("reading the format version")
}

#[test]
fn the_first_release_database_still_opens_and_reads() {
    let (_dir, db) = open_copy(1);
    check_common_records(&db, &instance_v1());
    assert_eq!(
        recorded_format(&db),
        FORMAT_VERSION,
        "opening upgrades the format in place"
    );
}

#[test]
fn the_format_2_database_still_opens_and_reads() {
    let (_dir, db) = open_copy(2);
    check_common_records(&db, &instance_v2());
    db.read(|tx| {
        assert_eq!(callbacks::get_owed(tx, 1)?, Some(owed()));
        assert_eq!(dropbox_intents::all_intents(tx)?, vec![dropbox_intent()]);
        assert_eq!(upload_intents::all_intents(tx)?, vec![upload_intent()]);
        Ok(())
    })
    .expect("reading the fixture");
}

/// Not a check: writes the fixture of the current format, once. Refuses to replace
/// a committed fixture.
#[test]
#[ignore = "writes fixtures/; run with QUIRE_REGENERATE_FIXTURES=1 only for a new format"]
fn write_the_fixture_of_the_current_format() {
    assert!(
        std::env::var_os("QUIRE_REGENERATE_FIXTURES").is_some(),
        "set QUIRE_REGENERATE_FIXTURES=1 to write fixtures/db-v{FORMAT_VERSION}.redb"
    );
    assert_eq!(FORMAT_VERSION, 2, "add the records of the new format first");
    let path = fixture_path(FORMAT_VERSION);
    assert!(
        !path.exists(),
        "{} exists; a committed fixture is never rewritten",
        path.display()
    );
    write_current_fixture(&path).expect("writing the fixture");
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
