//! Every redb table of a quire database, in one place.
//!
//! Values named `&[u8]` hold records encoded by `codec` (a version byte, then the
//! record). Index tables map a composite key to `()`; they are kept in step with their
//! primary table inside the same write transaction.

use redb::TableDefinition;

/// Database-wide facts: `format_version` (u32, little-endian).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The last id handed out per entity kind.
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// File name -> `File`.
pub const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
/// (create time key, name): files in creation order.
pub const FILES_BY_TIME: TableDefinition<(u64, &str), ()> = TableDefinition::new("files_by_time");
/// (uploader, create time key, name).
pub const FILES_BY_UPLOADER: TableDefinition<(&str, u64, &str), ()> =
    TableDefinition::new("files_by_uploader");
/// (source, create time key, name).
pub const FILES_BY_SOURCE: TableDefinition<(&str, u64, &str), ()> =
    TableDefinition::new("files_by_source");

/// Instance id -> `Instance`.
pub const INSTANCES: TableDefinition<u64, &[u8]> = TableDefinition::new("instances");
/// (file name, instance id).
pub const INSTANCES_BY_FILE: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("instances_by_file");
/// (store id, instance id).
pub const INSTANCES_BY_STORE: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("instances_by_store");

/// Remote instance id -> `RemoteInstance`.
pub const REMOTE_INSTANCES: TableDefinition<u64, &[u8]> = TableDefinition::new("remote_instances");
/// (file name, remote instance id).
pub const REMOTE_INSTANCES_BY_FILE: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("remote_instances_by_file");

/// Store id -> `StoreState`.
pub const STORES: TableDefinition<u64, &[u8]> = TableDefinition::new("stores");
/// Username -> `User`.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Peer librarian name -> `Librarian`.
pub const LIBRARIANS: TableDefinition<&str, &[u8]> = TableDefinition::new("librarians");

/// Incoming transfer id -> `IncomingTransfer`.
pub const INCOMING: TableDefinition<u64, &[u8]> = TableDefinition::new("incoming_transfers");
/// (checksum text, id) of incoming transfers that are not yet terminal.
pub const INCOMING_LIVE: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("incoming_transfers_live");
/// Outgoing transfer id -> `OutgoingTransfer`.
pub const OUTGOING: TableDefinition<u64, &[u8]> = TableDefinition::new("outgoing_transfers");
/// Ids of outgoing transfers that are not yet terminal.
pub const OUTGOING_LIVE: TableDefinition<u64, ()> = TableDefinition::new("outgoing_transfers_live");

/// Incoming transfer id -> `OwedCallback`: clones whose source librarian has not
/// yet been told that they completed or failed.
pub const OWED_CALLBACKS: TableDefinition<u64, &[u8]> = TableDefinition::new("owed_callbacks");

/// Error id -> `ErrorRecord`.
pub const ERRORS: TableDefinition<u64, &[u8]> = TableDefinition::new("errors");
/// Corrupt-file record id -> `CorruptFile`.
pub const CORRUPT_FILES: TableDefinition<u64, &[u8]> = TableDefinition::new("corrupt_files");
/// Drop-box batch id -> `DropboxIntent`: batches placing files in a store whose
/// records have not committed yet.
pub const DROPBOX_INTENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("dropbox_intents");
/// Batch upload id -> `UploadIntent`: `upload/batch_put` requests naming files in
/// a store whose records have not committed yet.
pub const UPLOAD_INTENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("upload_intents");
/// Send-queue id -> `SendQueueItem`: batches of outgoing clones and how their bytes
/// travel.
pub const SEND_QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("send_queue");
/// Ids of send-queue batches still QUEUED or MOVED (the work of the queue tasks).
pub const SEND_QUEUE_LIVE: TableDefinition<u64, ()> = TableDefinition::new("send_queue_live");
/// (destination librarian, file name) -> why: files that destination holds with
/// other bytes under the same name. `send_clone` does not offer them again.
pub const SEND_CONFLICTS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("send_conflicts");
/// Peer librarian name -> most bytes per second sent to it (`--max-rate`); no
/// entry: no cap.
pub const PEER_MAX_RATES: TableDefinition<&str, u64> = TableDefinition::new("peer_max_rates");
/// Corrupt-file record id -> (when the bad copy was given up, in microseconds; the
/// incoming transfer bringing the new one, 0 until the source agreed to send it;
/// the source librarian): repairs under way (`corruption_fixer`).
pub const CORRUPT_REPAIRS: TableDefinition<u64, (i64, u64, &str)> =
    TableDefinition::new("corrupt_repairs");
