//! `quire search`: find files by name, uploader, source or creation time, newest
//! first. The newest `--max-results` are shown and stderr says how many more match;
//! `--all` lists every match, page by page (`pager.rs`).

mod pager;

use clap::Args;

use super::connection::ConnectionArgs;
use super::output::{Table, human_size, note_json_printed, print_json};
use crate::model::Timestamp;
use crate::peer::LibrarianClient;
use crate::protocol::search::{FileSearchRequest, FileSearchResponse};
use pager::{EARLIEST, LATEST, Pager};

/// Beyond the files shown, how many more are counted before saying "more than".
const COUNT_LIMIT: usize = 10_000;

/// Options of `quire search`.
#[derive(Debug, Args)]
#[command(after_help = "\
When more files match than are shown, stderr says how many more there are (counted
up to 10,000). --all lists every one: it pages through the matches by creation time,
so a listing is complete however low the node's own limit per answer
(max_search_results) is, unless more files than that limit share one creation
instant, which stderr then reports.")]
pub struct SearchArgs {
    /// Exact file name.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Files uploaded by this account.
    #[arg(long, short = 'u')]
    pub uploader: Option<String>,
    /// Files that entered the network through this librarian.
    #[arg(long, short = 's')]
    pub source: Option<String>,
    /// Files created at or after this time (ISO 8601, UTC unless a zone is given).
    #[arg(long, value_parser = Timestamp::parse)]
    pub since: Option<Timestamp>,
    /// Files created at or before this time.
    #[arg(long, value_parser = Timestamp::parse)]
    pub until: Option<Timestamp>,
    /// Show the newest N matches.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_results: usize,
    /// Show every match, however many.
    #[arg(long, conflicts_with = "max_results")]
    pub all: bool,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Runs `quire search`.
pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let filters = FileSearchRequest {
            name: args.name.clone(),
            create_time_window: None,
            uploader: args.uploader.clone(),
            source: args.source.clone(),
            max_results: 0,
        };
        let since = args.since.unwrap_or(EARLIEST);
        let until = args.until.unwrap_or(LATEST);
        let mut pager = Pager::new(&client, filters, since, until);
        if args.all {
            list_all(&mut pager, args.json).await?;
        } else {
            list_newest(&mut pager, args.max_results, args.json).await?;
        }
        warn_about_crowded_instants(&client, pager.crowded_instants());
        Ok(())
    })
}

/// Shows the newest `max_results` matches, and says on stderr how many more there
/// are: one more than shown is asked for, and only if it exists are the rest
/// counted, up to `COUNT_LIMIT`.
async fn list_newest(pager: &mut Pager<'_>, max_results: usize, json: bool) -> anyhow::Result<()> {
    let mut found: Vec<FileSearchResponse> = Vec::new();
    while found.len() <= max_results {
        let page = pager.next_page(max_results + 1 - found.len()).await?;
        if page.is_empty() {
            break;
        }
        found.extend(page);
    }
    let mut more = found.len().saturating_sub(max_results);
    found.truncate(max_results);
    let mut counted_all = true;
    if more > 0 {
        counted_all = false;
        while more <= COUNT_LIMIT {
            let page = pager.next_page(COUNT_LIMIT + 1 - more).await?;
            if page.is_empty() {
                counted_all = true;
                break;
            }
            more += page.len();
        }
    }
    if json {
        print_json(&found)?;
    } else if found.is_empty() {
        println!("no files found");
    } else {
        let table = Table::new(&HEADER, rows(&found));
        table.print_header();
        table.print_rows(&rows(&found));
    }
    if more > 0 {
        let shown = found.len();
        let how_many = match counted_all {
            true => format!("{more} more match ({} in all)", shown + more),
            false => format!("more than {COUNT_LIMIT} more match"),
        };
        let all = match counted_all {
            true => format!("`--max-results {}` or `--all`", shown + more),
            false => "`--all`".to_string(),
        };
        eprintln!("quire search: showed the newest {shown}; {how_many}; {all} lists them all");
    }
    Ok(())
}

/// Prints every match as the pages come: one table (its columns as wide as the
/// first page needs) or one JSON array, closed even when a page fails.
async fn list_all(pager: &mut Pager<'_>, json: bool) -> anyhow::Result<()> {
    let mut printed = 0usize;
    let listed = print_pages(pager, json, &mut printed).await;
    match (json, printed) {
        (true, 0) if listed.is_ok() => print_json(&Vec::<FileSearchResponse>::new())?,
        (true, 0) => {}
        (true, _) => println!("]"),
        (false, 0) if listed.is_ok() => println!("no files found"),
        (false, _) => {}
    }
    listed
}

async fn print_pages(pager: &mut Pager<'_>, json: bool, printed: &mut usize) -> anyhow::Result<()> {
    let mut table: Option<Table> = None;
    loop {
        let page = pager.next_page(usize::MAX).await?;
        if page.is_empty() {
            return Ok(());
        }
        if json {
            for file in &page {
                let text = serde_json::to_string_pretty(file)?;
                let separator = if *printed == 0 { "[" } else { "," };
                note_json_printed();
                println!("{separator}\n{text}");
                *printed += 1;
            }
            continue;
        }
        let rows = rows(&page);
        let table = table.get_or_insert_with(|| {
            let table = Table::new(&HEADER, rows.clone());
            table.print_header();
            table
        });
        table.print_rows(&rows);
        *printed += page.len();
    }
}

/// Tells which creation instants held more files than the node returns at once.
fn warn_about_crowded_instants(client: &LibrarianClient, crowded: &[Timestamp]) {
    for instant in crowded {
        eprintln!(
            "quire search: warning: more files were created at {instant} than {} returns \
             in one answer, so some of them may be missing; raise its max_search_results, \
             or narrow the search (--uploader, --source)",
            client.connection().url
        );
    }
}

const HEADER: [&str; 6] = [
    "NAME",
    "SIZE",
    "CREATED (UTC)",
    "UPLOADER",
    "COPIES",
    "CHECKSUM",
];

fn rows(files: &[FileSearchResponse]) -> Vec<Vec<String>> {
    files
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                human_size(f.size),
                f.create_time.to_wire()[..19].replace('T', " "),
                f.uploader.clone(),
                format!("{}+{}", f.instances.len(), f.remote_instances.len()),
                f.checksum.clone(),
            ]
        })
        .collect()
}
