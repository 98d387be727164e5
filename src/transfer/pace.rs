//! A bandwidth cap shared by every stream to one peer: each chunk books the time
//! its bytes take at the cap, after the chunks booked before it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::db::repo::librarians;
use crate::node::Node;

/// The pace of each capped peer, shared by every stream to it in this process.
static PACES: LazyLock<Mutex<HashMap<String, Arc<Pace>>>> = LazyLock::new(Default::default);

/// The pace for streams to `peer`, as its cap now is (`None`: no cap). A changed
/// cap takes effect at the next batch.
pub fn for_peer(node: &Node, peer: &str) -> Option<Arc<Pace>> {
    let rate = node
        .db
        .read(|tx| librarians::max_rate(tx, peer))
        .ok()
        .flatten()?;
    let mut paces = PACES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let pace = paces
        .entry(format!("{}/{peer}", node.config.name))
        .or_insert_with(|| Arc::new(Pace::new(rate)));
    if pace.bytes_per_second() != rate {
        *pace = Arc::new(Pace::new(rate));
    }
    Some(pace.clone())
}

/// Paces the bytes sent to one peer to at most `bytes_per_second`.
#[derive(Debug)]
pub struct Pace {
    bytes_per_second: u64,
    /// When the bytes booked so far will have gone at the cap.
    booked_until: Mutex<Option<Instant>>,
}

/// Bursts shorter than this are not paced (a peer idle for a while does not get
/// a head start larger than this).
const SLACK: Duration = Duration::from_millis(50);

impl Pace {
    /// A cap of `bytes_per_second` (at least one byte a second).
    pub fn new(bytes_per_second: u64) -> Pace {
        Pace {
            bytes_per_second: bytes_per_second.max(1),
            booked_until: Mutex::new(None),
        }
    }

    /// The cap.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Books `bytes` and returns how long to wait before sending them.
    pub fn book(&self, bytes: u64) -> Duration {
        let now = Instant::now();
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let mut booked = self
            .booked_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let start = match *booked {
            Some(until) if until + SLACK > now => until.max(now),
            _ => now,
        };
        *booked = Some(start + cost);
        start.saturating_duration_since(now)
    }

    /// Waits until `bytes` may be sent.
    pub async fn wait_for(&self, bytes: u64) {
        let wait = self.book(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_follow_one_another_at_the_cap() {
        let pace = Pace::new(1_000_000);
        assert_eq!(pace.book(500_000), Duration::ZERO);
        let second = pace.book(500_000);
        assert!(
            second > Duration::from_millis(450) && second <= Duration::from_millis(500),
            "{second:?}"
        );
        let third = pace.book(1_000_000);
        assert!(
            third > Duration::from_millis(950) && third <= Duration::from_secs(1),
            "{third:?}"
        );
    }

    #[test]
    fn an_idle_peer_gets_no_credit_beyond_the_slack() {
        let pace = Pace::new(1_000);
        pace.book(1);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(pace.book(1), Duration::ZERO);
        let next = pace.book(1);
        assert!(next <= Duration::from_millis(1), "{next:?}");
    }
}
