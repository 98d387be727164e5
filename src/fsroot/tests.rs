use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

/// A root with `inside/` and a sibling directory `outside/` holding a secret.
fn setup() -> (tempfile::TempDir, Dir) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("root/inside")).unwrap();
    fs::create_dir_all(dir.path().join("outside")).unwrap();
    fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
    fs::write(dir.path().join("root/inside/plain"), b"plain").unwrap();
    symlink(dir.path().join("outside"), dir.path().join("root/linkdir")).unwrap();
    symlink(
        dir.path().join("outside/secret"),
        dir.path().join("root/inside/linkfile"),
    )
    .unwrap();
    let root = Dir::open_trusted(&dir.path().join("root")).unwrap();
    (dir, root)
}

fn is_symlink_refusal(error: &io::Error) -> bool {
    matches!(refusal(error), Some(Refusal::Symlink(_)))
}

#[test]
fn links_anywhere_on_a_path_are_refused() {
    let (dir, root) = setup();
    for relative in ["linkdir/secret", "inside/linkfile", "linkdir"] {
        let error = root.open_entry(Path::new(relative)).unwrap_err();
        assert!(is_symlink_refusal(&error), "{relative}: {error}");
        let walked =
            open::open_by_walk(&root, Path::new(relative), rustix::fs::OFlags::RDONLY).unwrap_err();
        assert!(is_symlink_refusal(&walked), "{relative} by walk: {walked}");
    }
    let error = root.open_dir(Path::new("linkdir")).unwrap_err();
    assert!(is_symlink_refusal(&error), "{error}");
    let error = root
        .open_for_writing(Path::new("inside/linkfile"), 0o644)
        .unwrap_err();
    assert!(is_symlink_refusal(&error), "{error}");
    let error = root
        .open_for_writing(Path::new("linkdir/new"), 0o644)
        .unwrap_err();
    assert!(is_symlink_refusal(&error), "{error}");
    assert!(root.create_file(Path::new("linkdir/new"), 0o644).is_err());
    assert!(root.create_dir(Path::new("linkdir/new"), 0o755).is_err());
    let elsewhere = Dir::open_trusted(dir.path()).unwrap();
    assert!(
        root.rename_no_replace(Path::new("linkdir/secret"), &elsewhere, Path::new("stolen"))
            .is_err()
    );
    assert!(root.unlink(Path::new("linkdir/secret")).is_err());
    assert_eq!(
        fs::read(dir.path().join("outside/secret")).unwrap(),
        b"secret"
    );
    assert!(!dir.path().join("outside/new").exists());
    assert!(!dir.path().join("stolen").exists());
    let error = root.open_file(Path::new("../outside/secret")).unwrap_err();
    assert!(matches!(refusal(&error), Some(Refusal::NotBeneath(_))));
    assert!(root.open_file(Path::new("/etc/passwd")).is_err());
}

#[test]
fn files_and_directories_open_and_say_what_they_are() {
    let (_dir, root) = setup();
    let (mut file, meta) = root.open_file(Path::new("inside/plain")).unwrap();
    assert_eq!(meta.kind, Kind::File);
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    assert_eq!(text, "plain");
    let inside = root.open_dir(Path::new("inside")).unwrap();
    assert_eq!(inside.path(), root.path().join("inside"));
    let names: Vec<_> = inside.entries().unwrap();
    assert_eq!(
        names,
        vec![
            ("linkfile".into(), Kind::Symlink),
            ("plain".into(), Kind::File)
        ]
    );
    assert_eq!(
        root.stat(Path::new("inside/linkfile")).unwrap().kind,
        Kind::Symlink
    );
    assert!(root.try_stat(Path::new("inside/none")).unwrap().is_none());
    let error = root.open_file(Path::new("inside")).unwrap_err();
    assert!(matches!(refusal(&error), Some(Refusal::WrongKind { .. })));
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let (dir, root) = setup();
    let fifo = dir.path().join("root/inside/fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let error = root.open_entry(Path::new("inside/fifo")).err().unwrap();
    assert!(
        matches!(refusal(&error), Some(Refusal::WrongKind { .. })),
        "{error}"
    );
    let error = root
        .open_for_writing(Path::new("inside/fifo"), 0o644)
        .err()
        .unwrap();
    assert!(error.raw_os_error() == Some(libc::ENXIO) || refusal(&error).is_some());
}

#[test]
fn a_file_with_other_names_is_not_written() {
    let (dir, root) = setup();
    fs::hard_link(
        dir.path().join("outside/secret"),
        dir.path().join("root/inside/hard"),
    )
    .unwrap();
    let error = root
        .open_for_writing(Path::new("inside/hard"), 0o644)
        .unwrap_err();
    assert!(matches!(refusal(&error), Some(Refusal::HardLinked { .. })));
    let (mut file, _) = root
        .open_for_writing(Path::new("inside/new"), 0o640)
        .unwrap();
    file.write_all(b"new").unwrap();
    assert_eq!(
        fs::read(dir.path().join("root/inside/new")).unwrap(),
        b"new"
    );
}

#[test]
fn trees_are_walked_and_removed_without_following_links() {
    let (dir, root) = setup();
    fs::create_dir_all(dir.path().join("root/inside/deep/er")).unwrap();
    fs::write(dir.path().join("root/inside/deep/er/f"), b"f").unwrap();
    symlink(
        dir.path().join("outside"),
        dir.path().join("root/inside/deep/out"),
    )
    .unwrap();
    let mut seen = Vec::new();
    root.walk(&mut |entry| {
        seen.push((entry.relative.to_path_buf(), entry.kind));
        Visit::Continue
    })
    .unwrap();
    let shown: Vec<String> = seen
        .iter()
        .map(|(p, k)| format!("{}:{k:?}", p.display()))
        .collect();
    assert_eq!(
        shown,
        [
            "inside:Dir",
            "inside/deep:Dir",
            "inside/deep/er:Dir",
            "inside/deep/er/f:File",
            "inside/deep/out:Symlink",
            "inside/linkfile:Symlink",
            "inside/plain:File",
            "linkdir:Symlink",
        ]
    );
    // A read-only directory goes too.
    fs::set_permissions(
        dir.path().join("root/inside/deep/er"),
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    assert!(root.remove_tree(Path::new("inside")).unwrap());
    assert!(!dir.path().join("root/inside").exists());
    assert!(!root.remove_tree(Path::new("inside")).unwrap());
    assert!(root.remove_tree(Path::new("linkdir")).unwrap());
    assert_eq!(
        fs::read(dir.path().join("outside/secret")).unwrap(),
        b"secret"
    );
}

#[test]
fn unnamed_files_are_named_without_replacing() {
    let (dir, root) = setup();
    let mut file = root.create_unnamed(Path::new("inside"), 0o644).unwrap();
    file.write_all(b"bytes").unwrap();
    root.link_file(&file, Path::new("inside/named")).unwrap();
    let error = root
        .link_file(&file, Path::new("inside/plain"))
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(
        fs::read(dir.path().join("root/inside/named")).unwrap(),
        b"bytes"
    );
    let error = root
        .rename_no_replace(Path::new("inside/named"), &root, Path::new("inside/plain"))
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    root.rename_no_replace(Path::new("inside/named"), &root, Path::new("moved"))
        .unwrap();
    assert_eq!(fs::read(dir.path().join("root/moved")).unwrap(), b"bytes");
}
