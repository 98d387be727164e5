//! Opening a database file: creating it fresh, or checking that this build can read
//! the format it was written in.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use redb::ReadableDatabase;

use super::DbError;
use super::tables::META;

/// The database format this build writes. Start-up refuses a database with a newer
/// format, and upgrades older ones in place: records carry their own layout version
/// and older layouts are read as they are, so upgrading only records the new format
/// version, which keeps builds that cannot read the newer layouts from opening it.
///
/// Format 2: instances record what the copy looked like when it was last hashed.
pub const FORMAT_VERSION: u32 = 2;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the database {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "the database {path} has format version {found}, but this quire reads formats up to \
         {FORMAT_VERSION}; run a newer quire, or restore a backup made by this version"
    )]
    TooNew { path: String, found: u32 },
    #[error("the database {path} is not a quire database (it has no format version)")]
    NotQuire { path: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

const FORMAT_KEY: &str = "format_version";

pub(super) fn open_database(path: &Path) -> Result<redb::Database, OpenError> {
    let shown = path.display().to_string();
    let unreadable = |reason: String| OpenError::Unreadable {
        path: shown.clone(),
        reason,
    };
    let existed = path.exists();
    make_private(path).map_err(|e| unreadable(format!("cannot make it private (0600): {e}")))?;
    let database = redb::Database::builder()
        .create(path)
        .map_err(|e| unreadable(e.to_string()))?;
    let found = read_format_version(&database)?;
    match found {
        Some(version) if version > FORMAT_VERSION => Err(OpenError::TooNew {
            path: shown,
            found: version,
        }),
        Some(version) if version < FORMAT_VERSION => {
            write_format_version(&database)?;
            Ok(database)
        }
        Some(_) => Ok(database),
        None if existed && has_any_table(&database)? => Err(OpenError::NotQuire { path: shown }),
        None => {
            write_format_version(&database)?;
            Ok(database)
        }
    }
}

/// The database holds password hashes and sealed peer credentials: it is created
/// 0600, and an existing file that others could read is made 0600 too.
fn make_private(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // redb initialises an empty file as a new database.
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                let narrowed = std::fs::Permissions::from_mode(mode & 0o700);
                match std::fs::set_permissions(path, narrowed) {
                    Ok(()) => {}
                    // Another owner's file: say so, and open it all the same.
                    Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
                        tracing::warn!(
                            path = %path.display(),
                            mode = format!("{mode:o}"),
                            %error,
                            "the database is readable by others and cannot be narrowed; make it 0600"
                        );
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        }
        Err(error) => Err(error),
    }
}

fn read_format_version(database: &redb::Database) -> Result<Option<u32>, DbError> {
    let transaction = database.begin_read()?;
    let table = match transaction.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(value) = table.get(FORMAT_KEY)? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = value
        .value()
        .try_into()
        .map_err(|_| DbError::Storage("format version is not 4 bytes".into()))?;
    Ok(Some(u32::from_le_bytes(bytes)))
}

fn has_any_table(database: &redb::Database) -> Result<bool, DbError> {
    let transaction = database.begin_read()?;
    Ok(transaction.list_tables()?.next().is_some())
}

fn write_format_version(database: &redb::Database) -> Result<(), DbError> {
    let transaction = database.begin_write()?;
    {
        let mut table = transaction.open_table(META)?;
        table.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())?;
    }
    transaction.commit()?;
    Ok(())
}
