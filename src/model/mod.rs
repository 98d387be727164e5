//! Domain types of a quire node: files, instances, stores, transfers, users, errors.
//!
//! Nothing here performs I/O. These types are shared by the database layer (which
//! stores them, see `db::codec`), the HTTP layer (which maps them to the wire) and
//! the background work.

mod auth;
mod callback;
mod checksum;
mod dropbox;
mod error_record;
mod file;
mod librarian;
mod names;
mod send_queue;
mod store;
mod time;
mod transfer;
mod upload_intent;
mod user;

pub use auth::AuthLevel;
pub use callback::{CallbackKind, OwedCallback};
pub use checksum::{Algorithm, Checksum, ChecksumParseError};
pub use dropbox::{DropboxIntent, IntentItem};
pub use error_record::{ErrorCategory, ErrorRecord, ErrorSeverity};
pub use file::{CopyStat, CorruptFile, DeletionPolicy, File, Instance, RemoteInstance};
pub use librarian::Librarian;
pub use names::{NameError, is_nfc, validate_file_name};
pub use names::{NameTooLong, PathLimits, check_path_limits};
pub use send_queue::{SendItem, SendProvider, SendQueueItem, SendState};
pub use store::StoreState;
pub use time::Timestamp;
pub use transfer::{IncomingTransfer, OutgoingTransfer, TransferStatus};
pub use upload_intent::{NamedItem, UploadIntent};
pub use user::User;
