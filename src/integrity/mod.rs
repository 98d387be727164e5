//! Checking that local instances still hold the bytes their records describe, and
//! recording what was found: a mismatch or a missing copy becomes a corrupt-file
//! record and an error; a later match clears the corrupt-file record.

use std::path::Path;
use std::time::Duration;

use crate::checksum::digest_path;
use crate::db::repo::{errors, instances, next_id};
use crate::db::{Db, DbError, WriteTxn};
use crate::model::{
    Algorithm, Checksum, CorruptFile, ErrorCategory, ErrorSeverity, File, Instance, Timestamp,
};

/// What hashing one instance found.
#[derive(Debug, Clone)]
pub struct Verification {
    pub instance: Instance,
    /// `None` when the copy is missing or unreadable.
    pub current: Option<(Checksum, u64)>,
    /// Whether the copy matches its record.
    pub matches: bool,
    /// Whether the answer came from a recent verification instead of a new hash.
    pub cached: bool,
    /// Why the copy could not be read, if it could not.
    pub problem: Option<String>,
}

/// The answer for a copy that could not be read (missing, unreadable).
fn unreadable(instance: &Instance, error: std::io::Error) -> Verification {
    Verification {
        instance: instance.clone(),
        current: None,
        matches: false,
        cached: false,
        problem: Some(error.to_string()),
    }
}

/// The answer for a copy verified less than `trust_for` ago, if it was.
fn cached_verification(
    file: &File,
    instance: &Instance,
    trust_for: Duration,
) -> Option<Verification> {
    let age = Timestamp::now().as_micros() - instance.verified_time.as_micros();
    (age >= 0 && (age as u128) < trust_for.as_micros()).then(|| Verification {
        instance: instance.clone(),
        current: Some((file.checksum.clone(), file.size)),
        matches: true,
        cached: true,
        problem: None,
    })
}

/// Hashes `instance` (a blocking call), unless it was verified less than
/// `trust_for` ago. Compares both the file's own checksum and the instance's BLAKE3.
pub fn verify_instance(file: &File, instance: &Instance, trust_for: Duration) -> Verification {
    if let Some(cached) = cached_verification(file, instance, trust_for) {
        return cached;
    }
    let algorithm = file.checksum.algorithm;
    match digest_path(Path::new(&instance.path), &[algorithm]) {
        Ok(digests) => {
            let checksum = digests.get(algorithm).cloned().expect("computed");
            let matches = checksum == file.checksum
                && digests.size == file.size
                && digests.blake3() == instance.blake3;
            Verification {
                instance: instance.clone(),
                current: Some((checksum, digests.size)),
                matches,
                cached: false,
                problem: None,
            }
        }
        Err(error) => unreadable(instance, error),
    }
}

/// Like [`verify_instance`], but compares only the size and the BLAKE3 that quire
/// recorded for the copy (large files are hashed on all cores). This is the check of
/// the `check_integrity` task: it does not depend on the uploader's algorithm.
pub fn verify_instance_blake3(
    file: &File,
    instance: &Instance,
    trust_for: Duration,
) -> Verification {
    if let Some(cached) = cached_verification(file, instance, trust_for) {
        return cached;
    }
    match digest_path(Path::new(&instance.path), &[Algorithm::Blake3]) {
        Ok(digests) => {
            let blake3 = digests.blake3();
            Verification {
                instance: instance.clone(),
                current: Some((
                    Checksum::new(Algorithm::Blake3, blake3.to_vec()),
                    digests.size,
                )),
                matches: digests.size == file.size && blake3 == instance.blake3,
                cached: false,
                problem: None,
            }
        }
        Err(error) => unreadable(instance, error),
    }
}

/// Records the outcome of a fresh verification: refreshes `verified_time` on a
/// match (clearing any corrupt-file record), or records the corruption on a
/// mismatch, raising an error the first time (repeats only count up, so a copy
/// checked often does not flood the error list). Cached answers record nothing.
pub fn record_outcome(
    db: &Db,
    file: &File,
    outcome: &Verification,
    caller: &str,
) -> Result<(), DbError> {
    record_outcomes(db, vec![(file.clone(), outcome.clone())], caller)
}

/// Records many outcomes (see [`record_outcome`]) in one transaction.
pub fn record_outcomes(
    db: &Db,
    outcomes: Vec<(File, Verification)>,
    caller: &str,
) -> Result<(), DbError> {
    let fresh: Vec<(File, Verification)> =
        outcomes.into_iter().filter(|(_, o)| !o.cached).collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let caller = caller.to_string();
    db.write_blocking(move |txn| {
        for (file, outcome) in &fresh {
            record_in(txn, file, outcome, &caller)?;
        }
        Ok(Ok::<_, DbError>(()))
    })
}

fn record_in(
    txn: &WriteTxn,
    file: &File,
    outcome: &Verification,
    caller: &str,
) -> Result<(), DbError> {
    let existing = instances::corrupt_record_of(txn, outcome.instance.id)?;
    let Some(mut instance) = instances::get_instance(txn, outcome.instance.id)? else {
        return Ok(());
    };
    if outcome.matches {
        instance.verified_time = Timestamp::now();
        instances::put_instance(txn, &instance)?;
        if let Some(record) = existing {
            instances::delete_corrupt(txn, record.id)?;
        }
        return Ok(());
    }
    let (checksum, size) = outcome
        .current
        .clone()
        .unwrap_or((file.checksum.clone(), 0));
    let first_time = existing.is_none();
    let record = match existing {
        Some(mut record) => {
            record.count += 1;
            record.corrupt_time = Timestamp::now();
            record.checksum = checksum;
            record.size = size;
            record
        }
        None => CorruptFile {
            id: next_id(txn, "corrupt_files")?,
            file_name: file.name.clone(),
            instance_id: instance.id,
            corrupt_time: Timestamp::now(),
            size,
            checksum,
            count: 1,
        },
    };
    instances::put_corrupt(txn, &record)?;
    if !first_time {
        // Already reported; the corrupt record counts the repeats.
        return Ok(());
    }
    let what = match &outcome.problem {
        Some(problem) => format!("is unreadable ({problem})"),
        None => format!(
            "does not match its record: expected {} bytes with {}, found {} bytes with {}",
            file.size, file.checksum, record.size, record.checksum
        ),
    };
    errors::raise(
        txn,
        ErrorSeverity::Error,
        ErrorCategory::DataIntegrity,
        format!(
            "Instance {} of file {} at {} {what}.",
            instance.id, file.name, instance.path
        ),
        Some(caller.to_string()),
    )?;
    Ok(())
}
