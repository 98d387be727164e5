//! A small filesystem for tests that fill a store: a tmpfs mounted in a mount
//! namespace of its own, which a user namespace lets an unprivileged user create.
//! A holder process keeps the namespace alive; every `quire serve` of the node
//! enters it (`nsenter`), so the store outlives restarts; the test reaches the
//! tmpfs through `/proc/<holder>/root`, and nothing is mounted outside.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

/// How long mounting may take.
const MOUNT_DEADLINE: Duration = Duration::from_secs(30);

/// A tmpfs mounted at `mount_point` inside a namespace held by a process.
pub struct SmallFs {
    holder: Child,
    /// Where the tmpfs is mounted, as the node sees it.
    pub mount_point: PathBuf,
    _dir: TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs with `options` (e.g. `size=20m`). Fails the test, saying
    /// why, where user and mount namespaces are not available.
    pub fn mount(options: &str) -> SmallFs {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let mount_point = fs::canonicalize(dir.path()).expect("a canonical path");
        let script =
            "mount -t tmpfs -o \"$1\" quire-test \"$0\" && echo mounted && exec sleep 100000";
        let mut holder = Command::new("unshare")
            .args([
                "--user",
                "--map-root-user",
                "--mount",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", script])
            .arg(&mount_point)
            .arg(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running unshare (util-linux)");
        let stdout = holder.stdout.take().expect("a piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let ready = receiver.recv_timeout(MOUNT_DEADLINE).unwrap_or_default();
        if ready.trim() != "mounted" {
            let _ = holder.kill();
            let output = holder.wait_with_output().expect("waiting for unshare");
            panic!(
                "this test needs a small tmpfs, mounted in a user and mount namespace of its \
                 own (`unshare --user --map-root-user --mount`), and that failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        SmallFs {
            holder,
            mount_point,
            _dir: dir,
        }
    }

    /// The command that runs a program inside the namespace (for
    /// `TestNode::start_wrapped`).
    pub fn wrapper(&self) -> Vec<String> {
        [
            "nsenter",
            "--target",
            &self.holder.id().to_string(),
            "--user",
            "--mount",
            "--preserve-credentials",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    /// The path through which the test reaches `path` (absolute, as the node sees
    /// it) inside the namespace.
    pub fn outside(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").expect("an absolute path");
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(relative)
    }

    /// Free bytes of the tmpfs.
    pub fn free_bytes(&self) -> u64 {
        let stat = rustix::fs::statvfs(self.outside(&self.mount_point)).expect("statvfs");
        stat.f_bavail * stat.f_frsize
    }

    /// Writes a file outside any store until fewer than `bytes` are free.
    pub fn fill_leaving(&self, bytes: u64) {
        let free = self.free_bytes();
        let filler = self.outside(&self.mount_point.join("filler"));
        let size = free.saturating_sub(bytes) as usize;
        fs::write(filler, vec![0u8; size]).expect("filling the tmpfs");
        assert!(
            self.free_bytes() <= bytes,
            "{} bytes free",
            self.free_bytes()
        );
    }

    /// Creates empty files outside any store until no inode is left, then removes
    /// `spare` of them so that exactly `spare` inodes are free.
    pub fn use_up_inodes_but(&self, spare: usize) {
        let dir = self.outside(&self.mount_point.join("inodes"));
        if !dir.is_dir() {
            fs::create_dir(&dir).expect("a directory for the inode filler");
        }
        let mut made = Vec::new();
        loop {
            let path = dir.join(format!("{}-{}", spare, made.len()));
            match fs::File::create(&path) {
                Ok(_) => made.push(path),
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(error) if error.kind() == ErrorKind::StorageFull => break,
                Err(error) => panic!("filling the inodes: {error}"),
            }
            assert!(made.len() < 1_000_000, "the tmpfs has no inode limit");
        }
        for path in made.iter().rev().take(spare) {
            fs::remove_file(path).expect("freeing an inode");
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
