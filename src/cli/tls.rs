//! `quire tls init`: a private certificate authority and a certificate for this
//! node, for a quick start with HTTPS (rcgen). Production sites may use
//! certificates from their own CA instead: `[tls]` takes any PEM files.
//!
//! Invariant: nothing is ever overwritten. Private keys are written 0600 into
//! `<data_dir>/tls/` (0700), and a directory that already holds any of the four
//! files is refused whole.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use serde::Serialize;

use super::failure::Failure;
use super::output::print_json;
use crate::config::{DEFAULT_DATA_DIR, host_name};
use crate::node::{CA_CERT_FILE, TLS_DIR};

/// The CA's private key, beside its certificate (kept for issuing more).
const CA_KEY_FILE: &str = "ca-key.pem";
/// The node's certificate and key.
const NODE_CERT_FILE: &str = "node.pem";
const NODE_KEY_FILE: &str = "node-key.pem";
/// Years the CA and the node's certificate are valid from the start of this year.
const CA_YEARS: i32 = 10;
const NODE_YEARS: i32 = 5;

/// Options of `quire tls`.
#[derive(Debug, Args)]
pub struct TlsArgs {
    #[command(subcommand)]
    pub command: TlsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a private CA and a certificate for this node in <data dir>/tls/, and
    /// print the [tls] lines that make `quire serve` use them. Clients trust the
    /// CA with --ca-file <data dir>/tls/ca.pem (local commands do so by
    /// themselves); peers with `[tls] ca_file`.
    Init(InitArgs),
}

/// Options of `quire tls init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// A name or address clients use to reach the node (repeat for several)
    /// [default: this host's name, localhost, 127.0.0.1 and ::1].
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostnames: Vec<String>,
    /// Data directory of the node [default: ./quire-data].
    #[arg(long, env = "QUIRE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Made {
    ca_file: PathBuf,
    ca_key_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
    hostnames: Vec<String>,
    valid_until_year: i32,
}

/// Runs `quire tls`.
pub fn run(args: TlsArgs) -> anyhow::Result<()> {
    match args.command {
        TlsCommand::Init(args) => init(args),
    }
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let hostnames = if args.hostnames.is_empty() {
        vec![
            host_name(),
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
        ]
    } else {
        args.hostnames
    };
    let dir = data_dir.join(TLS_DIR);
    let files = [CA_CERT_FILE, CA_KEY_FILE, NODE_CERT_FILE, NODE_KEY_FILE].map(|f| dir.join(f));
    if let Some(there) = files.iter().find(|f| f.symlink_metadata().is_ok()) {
        return Err(Failure::new(format!("{} exists already", there.display()))
            .remedy(format!(
                "keep using the certificates in {}, or move that directory away to make new ones",
                dir.display()
            ))
            .into());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    let year = chrono::Utc::now().year();
    let (ca_pem, ca_key_pem, node_pem, node_key_pem) = make(&hostnames, year)?;
    let [ca_file, ca_key_file, cert_file, key_file] = files;
    write_new(&ca_file, &ca_pem, 0o644)?;
    write_new(&ca_key_file, &ca_key_pem, 0o600)?;
    write_new(&cert_file, &node_pem, 0o644)?;
    write_new(&key_file, &node_key_pem, 0o600)?;
    let made = Made {
        ca_file,
        ca_key_file,
        cert_file,
        key_file,
        hostnames,
        valid_until_year: year + NODE_YEARS,
    };
    if args.json {
        return print_json(&made);
    }
    println!(
        "made a CA ({}, key {}) and a certificate for {} ({}, key {}), valid until {}",
        made.ca_file.display(),
        made.ca_key_file.display(),
        made.hostnames.join(", "),
        made.cert_file.display(),
        made.key_file.display(),
        made.valid_until_year
    );
    println!("add to the node's configuration file, then restart it:\n");
    println!("[tls]");
    println!("cert_file = \"{TLS_DIR}/{NODE_CERT_FILE}\"");
    println!("key_file = \"{TLS_DIR}/{NODE_KEY_FILE}\"");
    println!("ca_file = \"{TLS_DIR}/{CA_CERT_FILE}\"");
    println!(
        "\nclients elsewhere: --ca-file {} (or QUIRE_CA_FILE); keep {} private",
        made.ca_file.display(),
        made.ca_key_file.display()
    );
    Ok(())
}

/// The CA's certificate and key, and the node's, all PEM.
fn make(hostnames: &[String], year: i32) -> anyhow::Result<(String, String, String, String)> {
    let refused = |what: &str, e: rcgen::Error| Failure::new(format!("cannot make {what}: {e}"));
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| refused("the CA", e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name = name(&format!("quire CA on {}", host_name()));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = date_time_ymd(year, 1, 1);
    ca.not_after = date_time_ymd(year + CA_YEARS, 1, 1);
    let ca_key = KeyPair::generate().map_err(|e| refused("the CA's key", e))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| refused("the CA", e))?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let mut node =
        CertificateParams::new(hostnames.to_vec()).map_err(|e| refused("the certificate", e))?;
    node.distinguished_name = name(&hostnames[0]);
    node.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    node.not_before = date_time_ymd(year, 1, 1);
    node.not_after = date_time_ymd(year + NODE_YEARS, 1, 1);
    let node_key = KeyPair::generate().map_err(|e| refused("the node's key", e))?;
    let node_cert = node
        .signed_by(&node_key, &issuer)
        .map_err(|e| refused("the certificate", e))?;
    Ok((
        ca_cert.pem(),
        ca_key_pem,
        node_cert.pem(),
        node_key.serialize_pem(),
    ))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes `text` to a new file with `mode`, synced; never replaces a file.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}
