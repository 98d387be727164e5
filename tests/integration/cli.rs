//! The command line as a user meets it: failures that name the command (as text or
//! JSON), options before the subcommand, a closed stdout, `quire serve` on a busy
//! port, what the node's log holds, the manual page and the packaging around it.

use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::config::serve_until_exit;
use crate::node::{TestNode, quire_command, signal, wait_for_listen_address, wait_with_deadline};
use crate::support::READONLY;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `quire` with `args`, then the connection options of `node`.
fn cli_as(node: &TestNode, user: &str, password: &str, args: &[&str]) -> Output {
    quire_command()
        .args(args)
        .args(["--url", &node.base, "--user", user, "--password", password])
        .stdin(Stdio::null())
        .output()
        .expect("running quire")
}

#[test]
fn a_refusal_names_the_command_not_the_route_as_text_and_as_json() {
    let node = TestNode::start();
    node.create_user("reader", "reader-password", READONLY);
    let create = ["users", "create", "someone", "--level", "readonly"];

    let as_text = cli_as(&node, "reader", "reader-password", &create);
    let stderr = text(&as_text.stderr);
    assert_eq!(as_text.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("quire users create: error:"), "{stderr}");
    assert!(stderr.contains("quire users create: remedy:"), "{stderr}");
    assert!(!stderr.contains("users/create"), "{stderr}");
    assert!(as_text.stdout.is_empty());

    let mut json_args = create.to_vec();
    json_args.push("--json");
    let as_json = cli_as(&node, "reader", "reader-password", &json_args);
    assert_eq!(as_json.status.code(), Some(1), "same status as text");
    let report: Value = serde_json::from_slice(&as_json.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&as_json.stdout)));
    assert_eq!(report["command"], "quire users create", "{report}");
    assert!(
        report["error"].as_str().unwrap().contains("401"),
        "{report}"
    );
    assert!(report["remedy"].as_str().is_some(), "{report}");
    assert!(as_json.stderr.is_empty(), "{}", text(&as_json.stderr));

    let unknown = node.cli(&["librarians", "transfers", "nowhere", "enable"]);
    let stderr = text(&unknown.stderr);
    assert!(
        stderr.contains("quire librarians transfers: error:"),
        "{stderr}"
    );
    assert!(!stderr.contains("admin/librarians"), "{stderr}");
}

#[test]
fn a_local_failure_is_json_too_with_a_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let output = quire_command()
        .args(["--json", "ping"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)));
    assert!(
        report["error"].as_str().unwrap().contains("admin-password"),
        "{report}"
    );
    assert!(
        report["remedy"].as_str().unwrap().contains("--password"),
        "{report}"
    );
}

#[test]
fn a_command_that_prints_its_own_json_report_keeps_stdout_one_document() {
    let node = TestNode::start();
    node.create_user("reader", "reader-password", READONLY);
    let output = cli_as(&node, "reader", "not-the-password", &["ping", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)));
    assert_eq!(report["credentials_valid"], false, "{report}");
    assert!(text(&output.stderr).contains("quire ping: error:"));
}

#[test]
fn connection_options_and_json_may_come_before_the_subcommand() {
    let node = TestNode::start();
    let ping = quire_command()
        .args(["--url", &node.base, "--user", "admin"])
        .args(["--password", &node.admin_password, "ping"])
        .output()
        .unwrap();
    assert!(ping.status.success(), "{}", text(&ping.stderr));
    assert!(text(&ping.stdout).contains("logged in as admin"));

    node.upload("before/one", b"one");
    let output = quire_command()
        .args(["--url", &node.base, "--password", &node.admin_password])
        .args(["--json", "search", "--name", "before/one"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let found: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(found[0]["name"], "before/one");

    // An option after the subcommand wins over the same option before it.
    let wrong_first = quire_command()
        .args(["--user", "nobody", "--url", &node.base])
        .args([
            "ping",
            "--user",
            "admin",
            "--password",
            &node.admin_password,
        ])
        .output()
        .unwrap();
    assert!(
        wrong_first.status.success(),
        "{}",
        text(&wrong_first.stderr)
    );
}

#[test]
fn users_list_json_names_each_level() {
    let node = TestNode::start();
    node.create_user("reader", "reader-password", READONLY);
    let output = node.cli(&["users", "list", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let users = listed["users"].as_array().unwrap();
    let reader = users.iter().find(|u| u["username"] == "reader").unwrap();
    assert_eq!(reader["permission"], READONLY);
    assert_eq!(reader["level"], "readonly");
    let admin = users.iter().find(|u| u["username"] == "admin").unwrap();
    assert_eq!(
        (admin["permission"].as_i64(), admin["level"].as_str()),
        (Some(100), Some("admin"))
    );
}

/// Runs `command` with a stdout pipe whose reading end is already closed.
fn run_into_closed_pipe(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn every_command_ends_quietly_by_sigpipe_when_stdout_is_closed() {
    let node = TestNode::start();
    node.upload("piped/one", b"one");
    let commands: [&[&str]; 8] = [
        &["search"],
        &["search", "--all", "--json"],
        &["users"],
        &["stores", "--json"],
        &["tasks"],
        &["ping"],
        &["librarians"],
        &["search", "--name", "missing", "--json"],
    ];
    for args in commands.into_iter().chain([&["man"][..]]) {
        let mut command = quire_command();
        command.args(args);
        // The search for "missing" fails to connect, and reports that as JSON on
        // the closed stdout.
        let url = match args.contains(&"missing") {
            true => "http://127.0.0.1:1",
            false => &node.base,
        };
        if args[0] != "man" {
            command.args(["--url", url, "--password", &node.admin_password]);
        }
        let output = run_into_closed_pipe(command);
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGPIPE),
            "quire {args:?}: {:?} {stderr}",
            output.status
        );
        assert!(stderr.is_empty(), "quire {args:?} wrote: {stderr}");
    }
}

#[test]
fn serve_on_a_port_in_use_creates_nothing_and_names_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = quire_command()
        .args(["serve", "--listen", &address, "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&address), "{stderr}");
    assert!(
        stderr.contains("--listen") && stderr.contains("QUIRE_LISTEN"),
        "{stderr}"
    );
    assert!(!data.join("quire.redb").exists(), "no database was created");
    assert!(
        !data.join("admin-password").exists(),
        "no account was created"
    );
    assert!(
        !text(&output.stdout).contains("password"),
        "{}",
        text(&output.stdout)
    );
}

/// Starts `quire serve` with stdout and stderr in files and `configure` adding to
/// the command (given its directory), waits until it listens, stops it, and
/// returns its stdout, its stderr and the generated admin password.
fn serve_once_into_files(
    configure: impl FnOnce(&mut Command, &std::path::Path),
) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = quire_command();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(fs::File::create(dir.path().join("stderr.log")).unwrap());
    configure(&mut command, dir.path());
    let mut child = command.spawn().unwrap();
    wait_for_listen_address(&data.join("listen-address"), &mut child, dir.path());
    signal(&child, rustix::process::Signal::TERM);
    let status = wait_with_deadline(child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
    let password = read("data/admin-password").trim().to_string();
    (read("stdout.log"), read("stderr.log"), password)
}

#[test]
fn a_redirected_log_has_no_colours_no_password_and_the_recovery_as_fields() {
    let (stdout, stderr, password) = serve_once_into_files(|_, _| {});
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in a file: {stderr:?}"
    );
    assert!(!stderr.contains(&password) && !stdout.contains(&password));
    assert!(
        stderr.contains("admin-password"),
        "the log says where: {stderr}"
    );
    let recovery = stderr
        .lines()
        .find(|line| line.contains("start-up recovery done"))
        .unwrap_or_else(|| panic!("no recovery line: {stderr}"));
    assert!(recovery.contains("restored_commits=0"), "{recovery}");
    assert!(recovery.contains("taken_back_uploads=0"), "{recovery}");
    assert!(!recovery.contains("RecoveryReport"), "{recovery}");

    let (stdout, stderr, password) = serve_once_into_files(|command, _| {
        command.env("QUIRE_LOG_FORMAT", "json");
    });
    assert!(!stderr.contains(&password) && !stdout.contains(&password));
    let created = stderr
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["fields"]["user"] == "admin")
        .unwrap_or_else(|| panic!("no account line: {stderr}"));
    assert!(
        created["fields"]["password_file"]
            .as_str()
            .unwrap()
            .ends_with("admin-password")
    );
}

/// Lowers the open-file limit of a child to 1024 (as many systems have it).
fn low_open_file_limit(command: &mut Command) {
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| {
            let limit = rustix::process::Rlimit {
                current: Some(1024),
                maximum: Some(1024),
            };
            rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)
                .map_err(std::io::Error::from)
        });
    }
}

#[test]
fn the_open_file_limit_is_logged_only_with_a_dropbox() {
    const LINE: &str = "open-file limit keeps drop-box batches small";
    let (_, without, _) = serve_once_into_files(|command, _| low_open_file_limit(command));
    assert!(!without.contains(LINE), "{without}");
    let (_, with, _) = serve_once_into_files(|command, dir| {
        low_open_file_limit(command);
        let config = dir.join("quire.toml");
        fs::create_dir(dir.join("drop")).unwrap();
        let text = format!(
            "[[dropbox]]\npath = \"{}\"\nprefix = \"drop\"\nafter_ingest = \"delete\"\n",
            dir.join("drop").display()
        );
        fs::write(&config, text).unwrap();
        command.arg("--config").arg(config);
    });
    assert!(with.contains(LINE), "{with}");
}

/// Opens a pseudo-terminal; returns its master side and the path of its slave.
fn open_pty() -> (fs::File, String) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on a descriptor this function owns; ptsname's buffer
    // is copied before any other call.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let name = std::ffi::CStr::from_ptr(libc::ptsname(master));
        let name = name.to_string_lossy().into_owned();
        (fs::File::from_raw_fd(master), name)
    }
}

#[test]
fn the_admin_password_is_shown_on_a_terminal_stderr() {
    let (mut master, slave) = open_pty();
    let terminal = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = quire_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(terminal)
        .spawn()
        .unwrap();
    wait_for_listen_address(&data.join("listen-address"), &mut child, dir.path());
    let password = fs::read_to_string(data.join("admin-password")).unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(read @ 1..) = master.read(&mut buffer) {
            seen.extend_from_slice(&buffer[..read]);
            let _ = lines.send(String::from_utf8_lossy(&seen).into_owned());
        }
    });
    let mut shown = String::new();
    while !shown.contains("not shown again") {
        shown = received
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the terminal got only: {shown:?}"));
    }
    signal(&child, rustix::process::Signal::TERM);
    wait_with_deadline(child, Duration::from_secs(60));
    assert_eq!(shown.matches(password.trim()).count(), 1, "{shown}");
}

#[test]
fn the_packaged_manual_page_is_current() {
    let output = quire_command().arg("man").output().unwrap();
    assert!(output.status.success());
    let page = text(&output.stdout);
    assert!(page.contains(".SH COMMANDS") && page.contains("quire users create"));
    let committed = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/quire.1"))
        .unwrap_or_default();
    assert!(
        committed == page,
        "packaging/quire.1 is stale; run `cargo run -- man > packaging/quire.1`"
    );
}

#[test]
fn the_package_installs_what_the_unit_file_documents() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = fs::read_to_string(format!("{root}/packaging/quire.service")).unwrap();
    let manifest = fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let documentation = unit
        .lines()
        .find_map(|line| line.strip_prefix("Documentation="))
        .expect("a Documentation line");
    for link in documentation.split_whitespace() {
        let installed = match link {
            "man:quire(1)" => "usr/share/man/man1/quire.1",
            other => other
                .strip_prefix("file:///")
                .unwrap_or_else(|| panic!("{other} is not a file the package installs")),
        };
        assert!(
            manifest.contains(&format!("\"{installed}\"")),
            "{installed}"
        );
    }
}

#[test]
fn a_client_finds_the_node_of_the_configuration_file() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quire.toml");
    fs::write(
        &config,
        format!("data_dir = \"{}\"\n", node.data_dir.display()),
    )
    .unwrap();
    let output = quire_command()
        .arg("ping")
        .env("QUIRE_CONFIG", &config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("logged in as admin"));
}

#[test]
fn the_readme_says_how_to_install_and_reach_a_packaged_node_and_links_inside() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("cargo install --path ."));
    assert!(readme.contains("sudo -u quire quire"));
    assert!(readme.contains("cargo run --release -- serve") && readme.contains("    cargo test"));
    assert!(
        !readme.contains("](http") && !readme.contains("../"),
        "links outside"
    );
}

#[test]
fn a_data_dir_that_is_a_file_is_told_once() {
    // `serve_until_exit` gives `<dir>/data` as the data directory.
    let (status, stderr, _) = serve_until_exit(|_, dir| fs::write(dir.join("data"), b"").unwrap());
    assert!(!status.success());
    assert_eq!(stderr.matches("not a directory").count(), 1, "{stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");
}
