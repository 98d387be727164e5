//! Network federation: the send path (`send_clone`, `consume_queue`,
//! `check_consumed_queue`) between real quire nodes on loopback, its faults, and
//! a waterfall of three nodes.

mod faults;
mod repair;
mod send_path;
mod waterfall;

use serde_json::Value;

use crate::node::TestNode;
use crate::sneakernet::success;

/// Task settings of a sending node: every task runs at start-up and on demand.
fn sender_tasks(destination: &str, extra: &str) -> String {
    format!(
        "[[tasks.send_clone]]\n\
         task_name = \"send\"\nevery = \"1h\"\n\
         destination_librarian = \"{destination}\"\nage_in_days = 7\n{extra}\n\
         [[tasks.consume_queue]]\n\
         task_name = \"consume\"\nevery = \"1h\"\n\
         [[tasks.check_consumed_queue]]\n\
         task_name = \"check\"\nevery = \"1h\"\n"
    )
}

/// A node called `name` with one store and a `receive` task; `tasks` adds more.
/// It advertises a host name of its own, so peers on this machine send to it
/// over the network (`quire_http`), as peers on other hosts would.
fn site(name: &str, tasks: &str) -> TestNode {
    site_on(name, &format!("{name}.invalid"), tasks)
}

/// Like `site`, advertising `hostname` for the `local` provider. The lines of
/// `tasks` before its first table are top-level settings.
fn site_on(name: &str, hostname: &str, tasks: &str) -> TestNode {
    let split = tasks.find("\n[").map_or(0, |at| at + 1);
    let split = if tasks.starts_with('[') { 0 } else { split };
    let (top, tables) = tasks.split_at(split);
    TestNode::with_config(&format!(
        "name = \"{name}\"\nlocal_hostnames = [\"{hostname}\"]\n{top}\n\
         [[stores]]\nname = \"main\"\npath = \"store\"\n\
         [[tasks.recieve_clone]]\ntask_name = \"receive\"\nevery = \"1h\"\n\
         {tables}\n"
    ))
}

/// Lets `from` send to `to`: an account on `to` named after `from`, and `to`
/// registered at `from` as a peer; and the account on `from` that `to` calls
/// back with.
fn connect(from: &TestNode, from_name: &str, to: &TestNode, to_name: &str) {
    let password = format!("{from_name}-secret");
    to.create_user(from_name, &password, crate::support::READAPPEND);
    from.add_peer(to_name, &to.base, from_name, &password);
    let back = format!("{to_name}-callback");
    from.create_user(to_name, &back, 2);
    to.add_peer(from_name, &from.base, to_name, &back);
}

/// Runs the sender's three tasks once, in order, and the receiver's store task.
fn send_round(from: &TestNode, to: &TestNode) -> [Value; 4] {
    [
        from.run_task("send"),
        from.run_task("consume"),
        from.run_task("check"),
        to.run_task("receive"),
    ]
}

/// Uploads `count` files of `size` bytes at `node` as `prefix/N.dat`; returns
/// their names and bytes.
fn upload_files(
    node: &TestNode,
    prefix: &str,
    count: usize,
    size: usize,
) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|n| {
            let name = format!("{prefix}/{n}.dat");
            let bytes: Vec<u8> = (0..size).map(|i| ((i * 31 + n * 7) % 251) as u8).collect();
            node.upload(&name, &bytes);
            (name, bytes)
        })
        .collect()
}

/// The remote instances `node` records for `name`, as librarian names.
fn remote_copies(node: &TestNode, name: &str) -> Vec<String> {
    node.file_record(name)["remote_instances"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|r| r["librarian_name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The bytes of `name` in `node`'s store.
fn stored_bytes(node: &TestNode, name: &str) -> Vec<u8> {
    std::fs::read(node.data_dir.join("store").join(name)).unwrap_or_default()
}

/// `quire transfers --json` at `node`.
fn transfers_json(node: &TestNode, args: &[&str]) -> Value {
    let mut all = vec!["transfers", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&success(&node.cli(&all))).expect("transfers --json")
}
