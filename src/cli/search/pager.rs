//! Every file a search matches, page by page, through the protocol's only cursor:
//! the inclusive `create_time_window` of `search/file`.
//!
//! The node answers newest first (ties in a fixed order) and at most its
//! `max_search_results` at a time. Each next window ends at the oldest creation time
//! of the page before, inclusive, so files sharing that instant are neither skipped
//! nor given twice: the names already given at that instant are remembered and
//! dropped. Only when more files share one instant than the node returns at once
//! can the protocol not reach the rest of them; the pager then steps past that
//! instant and reports it.

use std::collections::HashSet;

use crate::model::Timestamp;
use crate::peer::LibrarianClient;
use crate::protocol::search::{FileSearchRequest, FileSearchResponse};

/// 0001-01-01T00:00:00, the earliest instant the wire form writes.
pub const EARLIEST: Timestamp = Timestamp::from_micros(-62_135_596_800_000_000);
/// 9999-12-31T23:59:59.999999, the latest.
pub const LATEST: Timestamp = Timestamp::from_micros(253_402_300_799_999_999);
/// Most results asked for in one request (the node gives at most its own limit).
const MOST_PER_REQUEST: usize = 1 << 20;

/// Walks a search from the newest match to the oldest.
pub struct Pager<'a> {
    client: &'a LibrarianClient,
    /// The filters; the window and the count are set per request.
    filters: FileSearchRequest,
    since: Timestamp,
    /// Inclusive end of the next window.
    end: Timestamp,
    /// Names already given whose creation time is `end`.
    given_at_end: HashSet<String>,
    /// Length of the last answer that held fewer files than asked for.
    last_short: Option<usize>,
    /// The node's limit per answer, once an answer shorter than asked turned out
    /// not to be the last.
    limit: Option<usize>,
    /// An instant stepped past, and how many files the node gave at it.
    stepped: Option<(Timestamp, usize)>,
    /// Instants at which some files may have been out of reach.
    crowded: Vec<Timestamp>,
    done: bool,
}

impl<'a> Pager<'a> {
    /// A pager over the files matching `filters` created in `[since, until]`.
    pub fn new(
        client: &'a LibrarianClient,
        filters: FileSearchRequest,
        since: Timestamp,
        until: Timestamp,
    ) -> Pager<'a> {
        Pager {
            client,
            filters,
            since,
            end: until,
            given_at_end: HashSet::new(),
            last_short: None,
            limit: None,
            stepped: None,
            crowded: Vec::new(),
            done: since > until,
        }
    }

    /// Instants at which more files were created than the node returns at once, so
    /// that some of them may be missing.
    pub fn crowded_instants(&self) -> &[Timestamp] {
        &self.crowded
    }

    /// The next files, newest first: about `wanted` of them (fewer if the node's
    /// limit is lower), none given before. Empty once every match was given.
    pub async fn next_page(&mut self, wanted: usize) -> anyhow::Result<Vec<FileSearchResponse>> {
        while !self.done {
            let asked = self
                .given_at_end
                .len()
                .saturating_add(wanted.max(1))
                .min(MOST_PER_REQUEST);
            let request = FileSearchRequest {
                create_time_window: Some(vec![self.since, self.end]),
                max_results: asked,
                ..self.filters.clone()
            };
            let mut page = self.client.search_files(&request).await?;
            page.sort_by(|a, b| (b.create_time, &b.name).cmp(&(a.create_time, &a.name)));
            let answered = page.len();
            let Some(oldest) = page.last().map(|file| file.create_time) else {
                self.finish();
                break;
            };
            let fresh: Vec<FileSearchResponse> = page
                .into_iter()
                .filter(|f| !(f.create_time == self.end && self.given_at_end.contains(&f.name)))
                .collect();
            if fresh.is_empty() {
                // Only files already given, all at `end`: nothing more can be
                // listed at this instant, so step past it.
                self.note_answer(answered, asked, false);
                self.step_past_end(answered);
                continue;
            }
            self.note_answer(answered, asked, true);
            // A name names at most one file.
            self.done = self.filters.name.is_some();
            if oldest != self.end {
                self.end = oldest;
                self.given_at_end.clear();
            }
            self.given_at_end.extend(
                fresh
                    .iter()
                    .filter(|f| f.create_time == oldest)
                    .map(|f| f.name.clone()),
            );
            return Ok(fresh);
        }
        Ok(Vec::new())
    }

    /// Learns the node's limit: an answer shorter than asked that was followed by
    /// new files was cut by it. An instant stepped past before new files came was
    /// then cut too, and is crowded.
    fn note_answer(&mut self, answered: usize, asked: usize, brought_new_files: bool) {
        if brought_new_files {
            if let Some(short) = self.last_short.take() {
                self.limit = Some(short);
            }
            if let Some((instant, _)) = self.stepped.take() {
                self.crowded.push(instant);
            }
        }
        if answered < asked {
            self.last_short = Some(answered);
        }
    }

    /// Moves the window's end one microsecond back.
    fn step_past_end(&mut self, answered: usize) {
        self.stepped = Some((self.end, answered));
        if self.end <= self.since {
            self.finish();
            return;
        }
        self.end = self.end.plus_micros(-1);
        self.given_at_end.clear();
    }

    /// No match is left. The last instant stepped past was crowded if the node
    /// gave as many files at it as its limit.
    fn finish(&mut self) {
        self.done = true;
        if let Some((instant, answered)) = self.stepped.take()
            && self.limit.is_some_and(|limit| answered >= limit)
        {
            self.crowded.push(instant);
        }
    }
}
