//! Files and their name, time, uploader and source indexes.

use std::collections::BTreeSet;

use redb::ReadableTable;

use super::{get, instances, next_ids};
use crate::db::codec::encode;
use crate::db::tables::{FILES, FILES_BY_SOURCE, FILES_BY_TIME, FILES_BY_UPLOADER};
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::{File, Instance, Timestamp};

/// The file called `name`.
pub fn get_file(tx: &impl Reads, name: &str) -> Result<Option<File>, DbError> {
    get(tx, FILES, name)
}

/// Whether a file called `name` exists.
pub fn exists(tx: &impl Reads, name: &str) -> Result<bool, DbError> {
    Ok(exist_all(tx, &[name])?[0])
}

/// For each name, whether a file of that name exists (one table lookup each).
pub fn exist_all(tx: &impl Reads, names: &[&str]) -> Result<Vec<bool>, DbError> {
    let Some(table) = tx.table(FILES)? else {
        return Ok(vec![false; names.len()]);
    };
    names
        .iter()
        .map(|name| Ok(table.get(*name)?.is_some()))
        .collect()
}

/// Records a new file. The caller has checked that the name is free.
pub fn insert(txn: &WriteTxn, file: &File) -> Result<(), DbError> {
    insert_all(txn, std::slice::from_ref(file))
}

/// Records new files, opening each table once. The caller has checked that the
/// names are free.
pub fn insert_all(txn: &WriteTxn, new_files: &[File]) -> Result<(), DbError> {
    let mut files = txn.open_table(FILES)?;
    let mut by_time = txn.open_table(FILES_BY_TIME)?;
    let mut by_uploader = txn.open_table(FILES_BY_UPLOADER)?;
    let mut by_source = txn.open_table(FILES_BY_SOURCE)?;
    for file in new_files {
        let key = file.create_time.index_key();
        let name = file.name.as_str();
        files.insert(name, encode(file).as_slice())?;
        by_time.insert((key, name), ())?;
        by_uploader.insert((file.uploader.as_str(), key, name), ())?;
        by_source.insert((file.source.as_str(), key, name), ())?;
    }
    Ok(())
}

/// Forgets a file's record and its index entries (its instances and remote
/// instances are the caller's to remove, in the same transaction).
pub fn remove(txn: &WriteTxn, file: &File) -> Result<(), DbError> {
    let key = file.create_time.index_key();
    let name = file.name.as_str();
    txn.open_table(FILES)?.remove(name)?;
    txn.open_table(FILES_BY_TIME)?.remove((key, name))?;
    txn.open_table(FILES_BY_UPLOADER)?
        .remove((file.uploader.as_str(), key, name))?;
    txn.open_table(FILES_BY_SOURCE)?
        .remove((file.source.as_str(), key, name))?;
    Ok(())
}

/// Records new files, each with its first instance (whose id is assigned here).
/// A name that is taken or that nests with a recorded file (see [`obstacles`]),
/// or that is repeated or nested within `work`, is refused and nothing is written
/// for it; returns for each item whether it was recorded.
pub fn record_with_instances(
    txn: &WriteTxn,
    work: &[(File, Instance)],
) -> Result<Vec<bool>, DbError> {
    let names: Vec<&str> = work.iter().map(|(f, _)| f.name.as_str()).collect();
    let accepted: Vec<bool> = obstacles_in_order(txn, &names)?
        .into_iter()
        .map(|obstacle| obstacle.is_none())
        .collect();
    let count = accepted.iter().filter(|a| **a).count();
    if count > 0 {
        let first_id = next_ids(txn, "instances", count as u64)?;
        let mut new_files = Vec::with_capacity(count);
        let mut new_instances = Vec::with_capacity(count);
        let chosen = work.iter().zip(&accepted).filter(|(_, a)| **a);
        for (offset, ((file, instance), _)) in chosen.enumerate() {
            let mut instance = instance.clone();
            instance.id = first_id + offset as u64;
            new_files.push(file.clone());
            new_instances.push(instance);
        }
        insert_all(txn, &new_files)?;
        instances::put_instances(txn, &new_instances)?;
    }
    Ok(accepted)
}

/// A recorded file that keeps a new name from being stored. Stored files are
/// immutable, so a name may neither lie inside one nor be the directory of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obstacle {
    /// A file of that very name.
    Same,
    /// This file's name is a parent path of the new name: the new file would be
    /// stored inside it.
    Inside(String),
    /// This file lies under the new name: the new name is (part of) its directory.
    Holds(String),
}

/// For each name, the recorded file in its way, if any. Each name costs a point
/// lookup per parent path and one range scan for `<name>/` (names sort
/// byte-wise, so every name under it follows that key).
pub fn obstacles(tx: &impl Reads, names: &[&str]) -> Result<Vec<Option<Obstacle>>, DbError> {
    find_obstacles(tx, names, false)
}

/// Like [`obstacles`], but names are taken in order as if each one without an
/// obstacle were recorded before the next: for recording them all in one
/// transaction.
pub fn obstacles_in_order(
    tx: &impl Reads,
    names: &[&str],
) -> Result<Vec<Option<Obstacle>>, DbError> {
    find_obstacles(tx, names, true)
}

fn find_obstacles(
    tx: &impl Reads,
    names: &[&str],
    in_order: bool,
) -> Result<Vec<Option<Obstacle>>, DbError> {
    let table = tx.table(FILES)?;
    let mut earlier: BTreeSet<&str> = BTreeSet::new();
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let recorded = |key: &str| -> Result<bool, DbError> {
            Ok(earlier.contains(key)
                || match &table {
                    Some(table) => table.get(key)?.is_some(),
                    None => false,
                })
        };
        let mut obstacle = None;
        if recorded(name)? {
            obstacle = Some(Obstacle::Same);
        }
        for (end, _) in name.match_indices('/') {
            if obstacle.is_some() {
                break;
            }
            let parent = &name[..end];
            if recorded(parent)? {
                obstacle = Some(Obstacle::Inside(parent.to_string()));
            }
        }
        if obstacle.is_none() {
            let under = format!("{name}/");
            let in_earlier = earlier
                .range::<str, _>((
                    std::ops::Bound::Included(under.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .next()
                .filter(|other| other.starts_with(&under))
                .map(|other| other.to_string());
            let in_table = match &table {
                Some(table) => match table.range::<&str>(under.as_str()..)?.next() {
                    Some(entry) => {
                        let (key, _) = entry?;
                        let key = key.value();
                        key.starts_with(&under).then(|| key.to_string())
                    }
                    None => None,
                },
                None => None,
            };
            obstacle = in_table.or(in_earlier).map(Obstacle::Holds);
        }
        if in_order && obstacle.is_none() {
            earlier.insert(name);
        }
        found.push(obstacle);
    }
    Ok(found)
}

/// The recorded file in the way of `name`, if any (see [`obstacles`]).
pub fn obstacle(tx: &impl Reads, name: &str) -> Result<Option<Obstacle>, DbError> {
    Ok(obstacles(tx, &[name])?.pop().flatten())
}

/// Filters of a file search; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct FileQuery {
    pub name: Option<String>,
    pub uploader: Option<String>,
    pub source: Option<String>,
    /// Inclusive creation-time window.
    pub window: Option<(Timestamp, Timestamp)>,
    pub limit: usize,
}

impl FileQuery {
    fn accepts(&self, file: &File) -> bool {
        self.name.as_ref().is_none_or(|n| *n == file.name)
            && self.uploader.as_ref().is_none_or(|u| *u == file.uploader)
            && self.source.as_ref().is_none_or(|s| *s == file.source)
            && self
                .window
                .is_none_or(|(start, end)| start <= file.create_time && file.create_time <= end)
    }

    fn key_bounds(&self) -> (u64, u64) {
        match self.window {
            Some((start, end)) => (start.index_key(), end.index_key()),
            None => (0, u64::MAX),
        }
    }
}

/// Files matching `query`, newest first, at most `query.limit`.
pub fn search(tx: &impl Reads, query: &FileQuery) -> Result<Vec<File>, DbError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    if let Some(name) = &query.name {
        let found = get_file(tx, name)?;
        return Ok(found.into_iter().filter(|f| query.accepts(f)).collect());
    }
    let (low, high) = query.key_bounds();
    let mut names = Vec::new();
    let mut collect = |name: &str| -> Result<bool, DbError> {
        if let Some(file) = get_file(tx, name)?
            && query.accepts(&file)
        {
            names.push(file);
        }
        Ok(names.len() < query.limit)
    };
    let keyed_by = query
        .uploader
        .as_deref()
        .map(|u| (FILES_BY_UPLOADER, u))
        .or(query.source.as_deref().map(|s| (FILES_BY_SOURCE, s)));
    if let Some((index, owner)) = keyed_by {
        let Some(table) = tx.table(index)? else {
            return Ok(Vec::new());
        };
        let upper = (owner, high, "\u{10FFFF}");
        for entry in table.range((owner, low, "")..=upper)?.rev() {
            let (key, _) = entry?;
            if !collect(key.value().2)? {
                break;
            }
        }
    } else {
        let Some(table) = tx.table(FILES_BY_TIME)? else {
            return Ok(Vec::new());
        };
        for entry in table.range((low, "")..=(high, "\u{10FFFF}"))?.rev() {
            let (key, _) = entry?;
            if !collect(key.value().1)? {
                break;
            }
        }
    }
    Ok(names)
}

/// Visits the files created at or after `since`, oldest first, until `visit`
/// returns `false`.
pub fn visit_created_since(
    tx: &impl Reads,
    since: Timestamp,
    visit: &mut dyn FnMut(File) -> Result<bool, DbError>,
) -> Result<(), DbError> {
    let Some(table) = tx.table(FILES_BY_TIME)? else {
        return Ok(());
    };
    for entry in table.range((since.index_key(), "")..)? {
        let (key, _) = entry?;
        if let Some(file) = get_file(tx, key.value().1)?
            && !visit(file)?
        {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::model::{Algorithm, Checksum};

    fn file(name: &str) -> File {
        File {
            name: name.to_string(),
            create_time: Timestamp::now(),
            size: 1,
            checksum: Checksum::new(Algorithm::Md5, vec![0; 16]),
            uploader: "ann".into(),
            source: "ann".into(),
        }
    }

    #[test]
    fn obstacles_name_the_file_a_name_lies_inside_or_holds() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("test.redb")).unwrap();
        let stored: Vec<File> = ["d", "p/q/r", "p.x", "p0"].map(file).to_vec();
        db.write_blocking(move |txn| Ok(Ok::<_, DbError>(insert_all(txn, &stored)?)))
            .unwrap();
        let names = ["d", "d/x", "d/x/y", "p", "p/q", "p/q2", "dd", "n", "n/m"];
        let found = db.read(|tx| obstacles(tx, &names)).unwrap();
        let inside = |f: &str| Some(Obstacle::Inside(f.into()));
        let holds = |f: &str| Some(Obstacle::Holds(f.into()));
        assert_eq!(
            found,
            vec![
                Some(Obstacle::Same),
                inside("d"),
                inside("d"),
                holds("p/q/r"),
                holds("p/q/r"),
                None,
                None,
                None,
                None
            ]
        );
        // In order, a name meets the earlier ones as if they were recorded.
        let found = db
            .read(|tx| obstacles_in_order(tx, &["n", "n/m", "o/p", "o"]))
            .unwrap();
        assert_eq!(found, vec![None, inside("n"), None, holds("o/p")]);
    }
}
