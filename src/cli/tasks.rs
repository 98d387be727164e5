//! `quire tasks`: the node's background tasks (last run, next run), and running one
//! now.

use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

use super::connection::ConnectionArgs;
use super::failure::Failure;
use super::output::{print_json, print_table};
use crate::model::Timestamp;
use crate::peer::LibrarianClient;
use crate::protocol::tasks::TaskStatus;

/// How long `quire tasks run` waits for a run to finish.
const RUN_WAIT_LIMIT: Duration = Duration::from_secs(7 * 86_400);

/// Options of `quire tasks`.
#[derive(Debug, Args)]
#[command(after_help = "\
Tasks are declared in the node's configuration as [[tasks.<type>]] tables, or in a
Librarian background JSON file given to `quire serve --background-config`. Each runs
once when the node starts and then every `every` after the start of its last run.")]
pub struct TasksArgs {
    #[command(subcommand)]
    pub action: Option<TasksAction>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What to do with tasks.
#[derive(Debug, Subcommand)]
pub enum TasksAction {
    /// Show every task: its last run (start, duration, items, errors) and next run
    /// (the default).
    List,
    /// Run a task now (after the run in progress, if any) and wait for its report.
    /// Exits non-zero when the run failed or had item errors.
    Run {
        /// The task's `task_name`.
        name: String,
        /// Only ask for the run; do not wait for it to finish.
        #[arg(long)]
        no_wait: bool,
    },
}

/// Runs `quire tasks`.
pub fn run(args: TasksArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        match args.action.unwrap_or(TasksAction::List) {
            TasksAction::List => {
                let listing = client.tasks().await?;
                if args.json {
                    return print_json(&listing);
                }
                print_statuses(&listing.tasks);
                Ok(())
            }
            TasksAction::Run { name, no_wait } => run_one(&client, &name, no_wait, args.json).await,
        }
    })
}

async fn run_one(
    client: &LibrarianClient,
    name: &str,
    no_wait: bool,
    json: bool,
) -> anyhow::Result<()> {
    if no_wait {
        let answer = client.run_task(name, false).await?;
        if json {
            return print_json(&answer);
        }
        println!("task {name} will run as soon as it is free; see `quire tasks`");
        return Ok(());
    }
    let patient = LibrarianClient::new(client.connection().clone(), RUN_WAIT_LIMIT)?;
    let spinner = if json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    spinner.set_message(format!("running task {name}"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let answer = patient.run_task(name, true).await;
    spinner.finish_and_clear();
    let answer = answer?;
    let report = answer.report.ok_or_else(|| {
        Failure::new(format!("the node did not report on the run of {name}"))
            .remedy("`quire tasks` shows the task's last run")
    })?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "task {name}: {} in {}; {} items done, {} errors",
            report.outcome,
            seconds(report.duration_seconds),
            report.items_done,
            report.errors
        );
        if let Some(error) = &report.last_error {
            println!("last error: {error}");
        }
    }
    if report.outcome.starts_with("failed") || report.errors > 0 {
        let failure = Failure::new(format!(
            "task {name} did not run cleanly ({}, {} errors)",
            report.outcome, report.errors
        ));
        return Err(failure
            .remedy(
                "the node's log and its error list (`librarian search-errors`) have the \
                 details; `quire tasks run` runs it again",
            )
            .into());
    }
    Ok(())
}

fn print_statuses(tasks: &[TaskStatus]) {
    if tasks.is_empty() {
        println!(
            "no background tasks are configured; add [[tasks.<type>]] tables to the \
             configuration or pass --background-config"
        );
        return;
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|task| {
            let (last, took, items, errors, outcome) = match &task.last_run {
                Some(run) => (
                    when(run.started),
                    seconds(run.duration_seconds),
                    run.items_done.to_string(),
                    run.errors.to_string(),
                    run.outcome.clone(),
                ),
                None => (
                    "never".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ),
            };
            let next = match (&task.running_since, &task.next_run) {
                (Some(since), _) => format!("running since {}", when(*since)),
                (None, Some(next)) => when(*next),
                (None, None) => "-".into(),
            };
            vec![
                task.task_name.clone(),
                task.task_type.clone(),
                seconds(task.every_seconds),
                last,
                took,
                items,
                errors,
                outcome,
                next,
            ]
        })
        .collect();
    print_table(
        &[
            "NAME", "TYPE", "EVERY", "LAST RUN", "TOOK", "ITEMS", "ERRORS", "OUTCOME", "NEXT RUN",
        ],
        &rows,
    );
}

fn when(time: Timestamp) -> String {
    let text = serde_json::to_value(time)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    text.split('.').next().unwrap_or_default().replace('T', " ")
}

fn seconds(value: f64) -> String {
    let whole = value.round() as u64;
    match whole {
        0 if value < 1.0 => format!("{:.0} ms", value * 1000.0),
        0..=119 => format!("{whole} s"),
        120..=7199 => format!("{} min", whole / 60),
        _ if whole.is_multiple_of(86_400) => format!("{} d", whole / 86_400),
        _ => format!("{:.1} h", value / 3600.0),
    }
}
