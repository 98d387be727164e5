//! Checking that local instances still hold the bytes their records describe, and
//! recording what was found: a mismatch or a missing copy becomes a corrupt-file
//! record and an error; a later match clears the corrupt-file record.
//!
//! The cache rule: an earlier matching hash may stand in for a new one only while it
//! is younger than the caller's trust period and the copy still looks as it did when
//! that hash began (`stat.rs`: size, modification time, inode, and for a directory
//! every entry). A missing copy, a changed copy, a copy whose last hash did not
//! match, and a copy whose last hash recorded no stat are always hashed.
//!
//! A copy is reached from its store's root symlink-free (`crate::fsroot`): a copy
//! replaced by a link, or reached through a linked directory, is unreadable (and
//! so corrupt), never followed.

mod stat;

use std::path::Path;
use std::time::Duration;

pub use stat::copy_stat_in;

use crate::checksum::digest_in;
use crate::db::repo::{errors, instances, next_id};
use crate::db::{Db, DbError, WriteTxn};
use crate::fsroot::Dir;
use crate::model::{
    Algorithm, Checksum, CopyStat, CorruptFile, ErrorCategory, ErrorSeverity, File, Instance,
    Timestamp,
};
use crate::store::Stores;

/// What hashing one instance found.
#[derive(Debug, Clone)]
pub struct Verification {
    pub instance: Instance,
    /// `None` when the copy is missing or unreadable.
    pub current: Option<(Checksum, u64)>,
    /// Whether the copy matches its record.
    pub matches: bool,
    /// Whether the answer came from an earlier hash instead of a new one.
    pub cached: bool,
    /// When the answer was computed: the start of the hash (for a cached answer,
    /// of the earlier hash), or when the copy was found missing.
    pub computed_time: Timestamp,
    /// What the copy looked like just before a new hash; `None` for cached answers
    /// and copies that could not be read.
    pub stat: Option<CopyStat>,
    /// Why the copy could not be read, if it could not.
    pub problem: Option<String>,
}

/// The answer for a copy that could not be read (missing, unreadable).
fn unreadable(instance: &Instance, error: std::io::Error, at: Timestamp) -> Verification {
    Verification {
        instance: instance.clone(),
        current: None,
        matches: false,
        cached: false,
        computed_time: at,
        stat: None,
        problem: Some(error.to_string()),
    }
}

/// The earlier hash of a copy may be reused: it is younger than `trust_for`, it
/// matched, and the copy (whose stat is `now`) looks as it did when it was taken.
fn may_reuse(instance: &Instance, now: &CopyStat, trust_for: Duration) -> bool {
    let age = Timestamp::now().as_micros() - instance.verified_time.as_micros();
    let young = age >= 0 && (age as u128) < trust_for.as_micros();
    young && instance.verified_stat.as_ref() == Some(now)
}

/// The copy's store root and its path there: a copy is only ever reached from
/// its store's root, symlink-free.
fn locate<'a>(stores: &Stores, instance: &'a Instance) -> std::io::Result<(Dir, &'a Path)> {
    let store = stores.by_id(instance.store_id).ok_or_else(|| {
        std::io::Error::other(format!("store #{} is not configured", instance.store_id))
    })?;
    let relative = store
        .relative_path(Path::new(&instance.path))
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "{} is not under the root of store '{}'",
                instance.path, store.name
            ))
        })?;
    Ok((store.root_dir()?, relative))
}

/// Answers from the earlier hash if the cache rule allows it; otherwise hashes
/// with `hash`, which gives the current checksum, size and whether it matches.
fn verify_with(
    stores: &Stores,
    file: &File,
    instance: &Instance,
    trust_for: Duration,
    hash: impl FnOnce(&Dir, &Path) -> std::io::Result<(Checksum, u64, bool)>,
) -> Verification {
    let started = Timestamp::now();
    let (root, relative) = match locate(stores, instance) {
        Ok(found) => found,
        Err(error) => return unreadable(instance, error, started),
    };
    let stat = match copy_stat_in(&root, relative) {
        Ok(stat) => stat,
        Err(error) => return unreadable(instance, error, started),
    };
    if may_reuse(instance, &stat, trust_for) {
        return Verification {
            instance: instance.clone(),
            current: Some((file.checksum.clone(), file.size)),
            matches: true,
            cached: true,
            computed_time: instance.verified_time,
            stat: None,
            problem: None,
        };
    }
    match hash(&root, relative) {
        Ok((checksum, size, matches)) => Verification {
            instance: instance.clone(),
            current: Some((checksum, size)),
            matches,
            cached: false,
            computed_time: started,
            stat: Some(stat),
            problem: None,
        },
        Err(error) => unreadable(instance, error, started),
    }
}

/// Hashes `instance` (a blocking call) unless the cache rule lets a hash younger
/// than `trust_for` stand (`Duration::ZERO` always hashes). Compares both the
/// file's own checksum and the instance's BLAKE3.
pub fn verify_instance(
    stores: &Stores,
    file: &File,
    instance: &Instance,
    trust_for: Duration,
) -> Verification {
    let algorithm = file.checksum.algorithm;
    verify_with(stores, file, instance, trust_for, |root, relative| {
        let digests = digest_in(root, relative, &[algorithm])?;
        let checksum = digests.get(algorithm).cloned().expect("computed");
        let matches = checksum == file.checksum
            && digests.size == file.size
            && digests.blake3() == instance.blake3;
        Ok((checksum, digests.size, matches))
    })
}

/// Like [`verify_instance`], but compares only the size and the BLAKE3 that quire
/// recorded for the copy (large files are hashed on all cores). This is the check of
/// the `check_integrity` task: it does not depend on the uploader's algorithm.
pub fn verify_instance_blake3(
    stores: &Stores,
    file: &File,
    instance: &Instance,
    trust_for: Duration,
) -> Verification {
    verify_with(stores, file, instance, trust_for, |root, relative| {
        let digests = digest_in(root, relative, &[Algorithm::Blake3])?;
        let blake3 = digests.blake3();
        Ok((
            Checksum::new(Algorithm::Blake3, blake3.to_vec()),
            digests.size,
            digests.size == file.size && blake3 == instance.blake3,
        ))
    })
}

/// Records the outcome of a fresh verification: on a match, the hash's time and
/// the stat taken before it (clearing any corrupt-file record); on a mismatch, the
/// corruption, raising an error the first time (repeats only count up, so a copy
/// checked often does not flood the error list), and no stat, so that no later
/// check can reuse an earlier match. Cached answers record nothing.
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
        instance.verified_time = outcome.computed_time;
        instance.verified_stat = outcome.stat;
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
    if instance.verified_stat.take().is_some() {
        instances::put_instance(txn, &instance)?;
    }
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
