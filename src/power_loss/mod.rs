//! Power-loss tests of every commit path: the durability primitives and the group
//! committer record, in order, what they did (`store::durable::record`); the
//! record is checked for order, then every cut point of it is replayed as a power
//! loss and start-up recovery is run on what the loss left.
//!
//! At each cut point two states are replayed, in the directory the node ran in
//! (records hold absolute paths), with the database as its last durable commit
//! before the cut left it:
//! - *synced only*: a directory holds the entries its last fsync (or syncfs) saw,
//!   a file the bytes its last fsync (or syncfs) saw; everything unsynced is lost;
//! - *metadata kept*: every name is where it was at the cut (a journal that wrote
//!   all metadata), but files hold only the bytes a sync saw (empty otherwise).
//!
//! The order checks (`checks::order`): a file's bytes are synced before its name
//! appears in a store, unless a durable intent lists that name; bytes are synced
//! before they are evicted and read back; a drop-box file is removed only after
//! its record is durable; and every success the test heard of was durable when
//! it heard of it. The state checks (`checks::state`), at every cut point: before
//! recovery, every recorded copy is there with its recorded bytes (so a record
//! never commits before its bytes and entry are durable); after recovery, still
//! so, nothing is in a store that no record points at (a drive may keep verified
//! copies that the next `create_local_clone` run adopts), staging holds only live
//! transfers, and no intent is left.

mod checks;
mod harness;
mod model;
mod replay;
mod scenarios;
