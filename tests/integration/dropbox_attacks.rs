//! Drop-boxes against a hostile instrument account: a subdirectory swapped for a
//! link to a directory outside while a file waits to settle (aimed at the data
//! directory, and at a store), a moved-aside file that would share the stored
//! inode, and a FIFO dropped in.
//!
//! Waiting: every test ends by waiting for a file dropped last to be recorded
//! and to leave the drop-box. A drop-box records its batches in order, so by
//! then whatever the node did with the earlier files is done.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::Path;

use crate::dropbox::{dropbox, dropbox_errors, dropbox_node, recorded, wait_until};
use crate::node::TestNode;
use crate::support::md5;

/// Drops `later.dat` (complete at once) and waits until it is recorded and has
/// left the drop-box: every earlier batch is finished by then.
fn drop_last(node: &TestNode) {
    let root = dropbox(node);
    fs::write(root.join("later.dat"), b"dropped last").unwrap();
    wait_until("later.dat is ingested and leaves the drop-box", || {
        recorded(node, "p/later.dat").is_some() && !root.join("later.dat").exists()
    });
}

/// Puts `obs/<name>` in the drop-box without writing it (a link, which only the
/// settle rule completes), then at once renames `obs` aside and puts a link to
/// `target` in its place, as an instrument account can.
fn swap_for_link(root: &Path, name: &str, scratch: &Path, target: &Path) {
    fs::create_dir_all(root.join("obs")).unwrap();
    let source = scratch.join("instrument-frame");
    fs::write(&source, b"the instrument's own bytes").unwrap();
    fs::hard_link(&source, root.join("obs").join(name)).unwrap();
    fs::rename(root.join("obs"), root.join("obs-aside")).unwrap();
    symlink(target, root.join("obs")).unwrap();
}

/// The uncleared drop-box errors about `path` (the file itself, not one below it).
fn errors_about(node: &TestNode, path: &Path) -> Vec<String> {
    let shown = format!("{} ", path.display());
    dropbox_errors(node)
        .iter()
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.contains(&shown))
        .map(str::to_string)
        .collect()
}

/// Checks that the link put in place of `obs` was reported once, as a link.
fn assert_link_reported(node: &TestNode) {
    let about = errors_about(node, &dropbox(node).join("obs"));
    assert_eq!(about.len(), 1, "{about:?}");
    assert!(about[0].contains("symbolic link"), "{}", about[0]);
}

#[test]
fn a_subdirectory_swapped_for_a_link_to_the_data_directory_takes_nothing_from_it() {
    let node =
        dropbox_node("after_ingest = \"delete\"\nsettle_seconds = 1\nrescan_seconds = 0.5\n");
    let root = dropbox(&node);
    let secret = node.data_dir.join("admin-password");
    let before = fs::read(&secret).unwrap();
    swap_for_link(&root, "admin-password", node.dir.path(), &node.data_dir);
    wait_until(
        "the instrument's file is ingested from where it was moved",
        || recorded(&node, "p/obs-aside/admin-password").is_some(),
    );
    wait_until("the link is looked at", || {
        !errors_about(&node, &root.join("obs")).is_empty()
    });
    drop_last(&node);
    assert_eq!(
        fs::read(&secret).unwrap(),
        before,
        "the file behind the link stays where it is"
    );
    assert!(
        recorded(&node, "p/obs/admin-password").is_none(),
        "nothing is recorded from behind the link"
    );
    assert_eq!(
        recorded(&node, "p/obs-aside/admin-password").unwrap()["checksum"],
        md5(b"the instrument's own bytes")
    );
    assert!(
        fs::symlink_metadata(root.join("obs"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays, reported"
    );
    assert_link_reported(&node);
}

#[test]
fn a_subdirectory_swapped_for_a_link_into_a_store_moves_no_stored_file_aside() {
    let node = dropbox_node(
        "after_ingest = \"move\"\nmove_to = \"done\"\nsettle_seconds = 1\nrescan_seconds = 0.5\n",
    );
    let root = dropbox(&node);
    node.upload("stored/victim.dat", b"stored bytes");
    let stored = node.store_root().join("stored/victim.dat");
    swap_for_link(
        &root,
        "victim.dat",
        node.dir.path(),
        &node.store_root().join("stored"),
    );
    wait_until(
        "the instrument's file is ingested from where it was moved",
        || recorded(&node, "p/obs-aside/victim.dat").is_some(),
    );
    wait_until("the link is looked at", || {
        !errors_about(&node, &root.join("obs")).is_empty()
    });
    drop_last(&node);
    assert_eq!(
        fs::read(&stored).unwrap(),
        b"stored bytes",
        "the stored file stays in its store"
    );
    assert!(recorded(&node, "p/obs/victim.dat").is_none());
    assert!(!node.data_dir.join("done/obs/victim.dat").exists());
    assert!(node.data_dir.join("done/obs-aside/victim.dat").exists());
    assert_link_reported(&node);
}

#[test]
fn a_moved_aside_file_never_shares_the_stored_inode() {
    let node = dropbox_node(
        "after_ingest = \"move\"\nmove_to = \"done\"\nsettle_seconds = 1\nlink = true\n",
    );
    let root = dropbox(&node);
    fs::write(root.join("frame.dat"), b"frame bytes").unwrap();
    let aside = node.data_dir.join("done/frame.dat");
    wait_until("the file is moved aside", || aside.exists());
    let stored = node.store_root().join("p/frame.dat");
    assert_ne!(
        fs::metadata(&aside).unwrap().ino(),
        fs::metadata(&stored).unwrap().ino(),
        "the moved-aside file is a name outside the store"
    );
    assert_eq!(fs::metadata(&stored).unwrap().nlink(), 1);
    let mut writer = fs::OpenOptions::new().append(true).open(&aside).unwrap();
    writer.write_all(b" changed by the instrument").unwrap();
    drop(writer);
    assert_eq!(fs::read(&stored).unwrap(), b"frame bytes");
    let (status, body) = node.post_admin(
        "validate/file",
        serde_json::json!({"file_name": "p/frame.dat", "fresh": true}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["computed_same_checksum"], true, "{body}");
}

#[test]
fn a_deleted_file_is_linked_only_when_nothing_else_names_it() {
    let node = dropbox_node("after_ingest = \"delete\"\nsettle_seconds = 1\nlink = true\n");
    let root = dropbox(&node);
    fs::write(root.join("own.dat"), b"the node's own file").unwrap();
    let outside = node.dir.path().join("kept-elsewhere");
    fs::write(&outside, b"two names").unwrap();
    fs::hard_link(&outside, root.join("shared.dat")).unwrap();
    wait_until("both leave the drop-box", || {
        !root.join("own.dat").exists() && !root.join("shared.dat").exists()
    });
    let stored = |name: &str| fs::metadata(node.store_root().join(name)).unwrap();
    assert_eq!(stored("p/own.dat").nlink(), 1);
    assert_eq!(stored("p/shared.dat").nlink(), 1);
    assert_ne!(
        stored("p/shared.dat").ino(),
        fs::metadata(&outside).unwrap().ino(),
        "a file with another name is copied"
    );
}

#[test]
fn a_fifo_is_reported_once_and_never_waited_for() {
    let node =
        dropbox_node("after_ingest = \"delete\"\nsettle_seconds = 1\nrescan_seconds = 0.2\n");
    let root = dropbox(&node);
    let fifo = root.join("pipe.dat");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let shown = format!("{} ", fifo.display());
    let about_fifo = || {
        dropbox_errors(&node)
            .into_iter()
            .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(&shown)))
            .collect::<Vec<_>>()
    };
    wait_until("the FIFO is reported", || !about_fifo().is_empty());
    let refusals = || {
        crate::dropbox::logged(&node, "drop-box files done")
            .iter()
            .filter(|line| line["fields"]["refused"] == 1)
            .count()
    };
    wait_until("the FIFO was looked at three times", || refusals() >= 3);
    drop_last(&node);
    let errors = about_fifo();
    assert_eq!(
        errors.len(),
        1,
        "reported once, not once per retry: {errors:?}"
    );
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("FIFO"), "{message}");
    assert!(
        fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO stays"
    );
    assert!(recorded(&node, "p/pipe.dat").is_none());
}
