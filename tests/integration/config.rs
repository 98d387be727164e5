//! `quire serve` start-up: invalid configuration is refused with a message that
//! names the key, and a node with no configuration at all runs on the defaults.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::node::{quire_command, signal, wait_for_listen_address, wait_with_deadline};

/// Runs `quire serve` in a fresh temporary directory with `configure` adding its
/// options (given that directory); it must exit by itself. Returns the exit status,
/// stderr, and whether the data directory was created.
pub fn serve_until_exit(configure: impl FnOnce(&mut Command, &Path)) -> (ExitStatus, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let stderr_path = dir.path().join("stderr.log");
    let mut command = quire_command();
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path).unwrap());
    configure(&mut command, dir.path());
    let child = command.spawn().unwrap();
    let status = wait_with_deadline(child, Duration::from_secs(60));
    let stderr = fs::read_to_string(&stderr_path).unwrap();
    (status, stderr, data_dir.exists())
}

/// Runs `quire serve` with `config` as its TOML file; it must exit by itself.
/// Returns the exit status, stderr, and whether the data directory was created.
fn serve_with_config(config: &str) -> (ExitStatus, String, bool) {
    serve_until_exit(|command, dir| {
        let config_path = dir.join("quire.toml");
        fs::write(&config_path, config).unwrap();
        command.arg("--config").arg(config_path);
    })
}

pub fn assert_refused_naming(config: &str, key: &str) {
    let (status, stderr, data_dir_created) = serve_with_config(config);
    assert!(!status.success(), "quire accepted {config:?}");
    assert!(
        stderr.contains(key),
        "the message should name {key:?}: {stderr}"
    );
    assert!(
        !data_dir_created,
        "nothing is created for a refused configuration"
    );
}

#[test]
fn a_store_with_report_full_fraction_above_one_is_refused() {
    let config = "[[stores]]\nname = \"main\"\npath = \"store\"\nreport_full_fraction = 1.5\n";
    assert_refused_naming(config, "report_full_fraction");
}

#[test]
fn an_unknown_key_is_refused() {
    assert_refused_naming("colour = \"blue\"\n", "colour");
}

#[test]
fn an_unknown_key_in_a_store_table_is_refused() {
    assert_refused_naming("[[stores]]\nname = \"a\"\npath = \"a\"\nsize = 3\n", "size");
}

#[test]
fn a_setting_of_the_wrong_type_is_refused() {
    assert_refused_naming("max_search_results = \"many\"\n", "max_search_results");
}

#[test]
fn an_unparsable_duration_is_refused() {
    assert_refused_naming("checksum_timeout = \"soon\"\n", "checksum_timeout");
}

#[test]
fn a_misspelt_key_gets_the_closest_known_one() {
    let (status, stderr, _) = serve_with_config("max_search_result = 3\n");
    assert!(!status.success());
    assert!(
        stderr.contains("`max_search_result`")
            && stderr.contains("did you mean `max_search_results`?"),
        "{stderr}"
    );
}

#[test]
fn keys_are_named_as_written_without_the_profile() {
    let (status, stderr, _) =
        serve_with_config("[[stores]]\nname = \"a\"\npath = \"a\"\nstaging = \"b\"\n");
    assert!(!status.success());
    assert!(stderr.contains("`stores[0].staging`"), "{stderr}");
    assert!(stderr.contains("did you mean `staging_path`?"), "{stderr}");
    assert!(!stderr.contains("default."), "{stderr}");
    let (status, stderr, _) = serve_until_exit(|command, _| {
        command.env("QUIRE_MAX_SEARCH_RESULTS", "many");
    });
    assert!(!status.success());
    assert!(stderr.contains("QUIRE_MAX_SEARCH_RESULTS:"), "{stderr}");
}

#[test]
fn two_stores_with_one_name_are_refused() {
    let config = "[[stores]]\nname = \"s\"\npath = \"a\"\n[[stores]]\nname = \"s\"\npath = \"b\"\n";
    assert_refused_naming(config, "stores[1].name");
}

#[test]
fn a_missing_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr.log");
    let child = quire_command()
        .arg("serve")
        .arg("--config")
        .arg(dir.path().join("nope.toml"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let status = wait_with_deadline(child, Duration::from_secs(60));
    assert!(!status.success());
    let stderr = fs::read_to_string(&stderr_path).unwrap();
    assert!(stderr.contains("nope.toml"), "{stderr}");
    assert!(!dir.path().join("quire-data").exists());
}

/// Starts `quire serve --listen 127.0.0.1:0` in `cwd` with no config and no data
/// dir, waits until it listens, stops it, and returns its stdout.
fn serve_defaults_once(cwd: &Path) -> String {
    let stdout_path = cwd.join("stdout.log");
    let mut child = quire_command()
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(cwd.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let listen_file = cwd.join("quire-data/listen-address");
    let address = wait_for_listen_address(&listen_file, &mut child, cwd);
    let password = fs::read_to_string(cwd.join("quire-data/admin-password")).unwrap();
    let reply = reqwest::blocking::Client::new()
        .post(format!("http://{address}/api/v2/ping/admin"))
        .basic_auth("admin", Some(password.trim()))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200, "the generated password works");
    signal(&child, rustix::process::Signal::TERM);
    let status = wait_with_deadline(child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert!(
        !listen_file.exists(),
        "a stopped node removes its listen address"
    );
    fs::read_to_string(stdout_path).unwrap()
}

#[test]
fn serve_without_configuration_creates_quire_data_and_keeps_the_password_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve_defaults_once(dir.path());
    let data = dir.path().join("quire-data");
    assert!(data.join("quire.redb").is_file());
    assert!(
        data.join("store").is_dir(),
        "the default store lives in the data dir"
    );
    let password_file = data.join("admin-password");
    let mode = fs::metadata(&password_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "admin-password mode is {mode:o}");
    let password = fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(password.len(), 24, "{password:?}");
    // Neither output is a terminal here: the password is only in its file, and
    // the log says where.
    let log = fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(
        !first.contains(&password),
        "not on a redirected stdout: {first}"
    );
    assert!(!log.contains(&password), "not in a redirected log: {log}");
    assert!(log.contains(&password_file.display().to_string()), "{log}");

    let second = serve_defaults_once(dir.path());
    assert!(!second.contains(&password), "not printed again: {second}");
    let again = fs::read_to_string(&password_file).unwrap();
    assert_eq!(again.trim(), password, "the password file is kept");
}
