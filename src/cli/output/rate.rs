//! The rate and time left shown by progress bars: an exponentially weighted rate,
//! shown only after a warm-up, so that neither a burst (bytes landing in the page
//! cache, bytes already on the node) nor a stall at the start makes a wild estimate.

use std::fmt;
use std::time::{Duration, Instant};

use indicatif::ProgressState;
use indicatif::style::ProgressTracker;

/// A sample this old weighs half as much as a new one.
const HALF_LIFE: Duration = Duration::from_secs(4);
/// How long the position must have been moving before a rate is shown.
const WARM_UP: Duration = Duration::from_secs(2);
/// Observations closer together than this are folded into the next one.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longer estimates are not shown.
const LONGEST_ESTIMATE: Duration = Duration::from_secs(100 * 24 * 3600);

/// An exponentially weighted rate of a position that grows over time.
///
/// The first step of the position is not a sample: when it started is unknown, and
/// it may be a jump (bytes already there) rather than work done. A position that
/// goes back (a stream resumed from fewer bytes) is measured afresh from there.
#[derive(Debug, Clone, Default)]
pub struct SmoothedRate {
    /// The last observation taken as a sample boundary.
    last: Option<(Instant, u64)>,
    /// When the position first moved.
    moving_since: Option<Instant>,
    /// Sum of samples times their weights, and the sum of the weights: their
    /// quotient is the weighted mean, not biased towards zero at the start.
    weighted: f64,
    weight: f64,
}

impl SmoothedRate {
    /// Records the position at `now`.
    pub fn observe(&mut self, now: Instant, position: u64) {
        let Some((then, before)) = self.last else {
            self.last = Some((now, position));
            return;
        };
        if position < before {
            self.last = Some((now, position));
            return;
        }
        if self.moving_since.is_none() {
            if position > before {
                self.moving_since = Some(now);
            }
            self.last = Some((now, position));
            return;
        }
        let elapsed = now.saturating_duration_since(then);
        if elapsed < MIN_INTERVAL {
            return;
        }
        let seconds = elapsed.as_secs_f64();
        let sample = (position - before) as f64 / seconds;
        let keep = 0.5f64.powf(seconds / HALF_LIFE.as_secs_f64());
        self.weighted = self.weighted * keep + sample * (1.0 - keep);
        self.weight = self.weight * keep + (1.0 - keep);
        self.last = Some((now, position));
    }

    /// The smoothed rate per second, once the warm-up is over.
    pub fn per_second(&self, now: Instant) -> Option<f64> {
        let since = self.moving_since?;
        if now.saturating_duration_since(since) < WARM_UP || self.weight <= 0.0 {
            return None;
        }
        Some(self.weighted / self.weight)
    }

    /// The time left to reach `length` from `position`, once the warm-up is over
    /// and while the rate is not zero.
    pub fn time_left(&self, now: Instant, position: u64, length: u64) -> Option<Duration> {
        let rate = self.per_second(now)?;
        if rate <= 0.0 {
            return None;
        }
        let seconds = length.saturating_sub(position) as f64 / rate;
        Duration::try_from_secs_f64(seconds.min(LONGEST_ESTIMATE.as_secs_f64())).ok()
    }
}

/// What a bar counts.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Bytes,
    Files,
}

/// The `{rate}` key of a progress bar's template: "12.5 MiB/s, 1m 05s left".
#[derive(Debug, Clone)]
pub struct RateKey {
    rate: SmoothedRate,
    unit: Unit,
}

impl RateKey {
    pub fn new(unit: Unit) -> RateKey {
        RateKey {
            rate: SmoothedRate::default(),
            unit,
        }
    }
}

impl ProgressTracker for RateKey {
    fn clone_box(&self) -> Box<dyn ProgressTracker> {
        Box::new(self.clone())
    }

    fn tick(&mut self, state: &ProgressState, now: Instant) {
        self.rate.observe(now, state.pos());
    }

    fn reset(&mut self, _: &ProgressState, _: Instant) {
        self.rate = SmoothedRate::default();
    }

    fn write(&self, state: &ProgressState, w: &mut dyn fmt::Write) {
        if state.len().is_some_and(|length| state.pos() >= length) {
            return; // done moving: a rate decaying while the node commits says nothing
        }
        let now = Instant::now();
        let Some(rate) = self.rate.per_second(now) else {
            return;
        };
        let _ = match self.unit {
            Unit::Bytes => write!(w, "{}/s", super::human_size(rate as u64)),
            Unit::Files => write!(w, "{rate:.0} files/s"),
        };
        if let Some(left) = state
            .len()
            .and_then(|length| self.rate.time_left(now, state.pos(), length))
        {
            let _ = write!(w, ", {} left", short_duration(left));
        }
    }
}

/// `42s`, `3m 05s`, `1h 02m`.
pub fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Feeds `steps` observations `every` apart, the position growing by what
    /// `step` says for each index; returns the estimator and the time of the last.
    fn feed(
        rate: &mut SmoothedRate,
        start: Instant,
        position: &mut u64,
        steps: u32,
        every: Duration,
        step: impl Fn(u32) -> u64,
    ) -> Instant {
        let mut now = start;
        for index in 0..steps {
            now += every;
            *position += step(index);
            rate.observe(now, *position);
        }
        now
    }

    #[test]
    fn nothing_is_estimated_during_the_warm_up() {
        let mut rate = SmoothedRate::default();
        let start = Instant::now();
        rate.observe(start, 0);
        let mut position = 0;
        let tick = Duration::from_millis(200);
        let now = feed(&mut rate, start, &mut position, 9, tick, |_| 10 * MIB);
        assert!(now.duration_since(start) < WARM_UP + tick);
        assert_eq!(rate.per_second(now), None);
        assert_eq!(rate.time_left(now, position, 1 << 40), None);
        let now = feed(&mut rate, now, &mut position, 5, tick, |_| 10 * MIB);
        assert!(rate.per_second(now).is_some(), "shown after the warm-up");
    }

    #[test]
    fn a_jump_at_the_start_does_not_count() {
        // 3 GiB already on the node, then 10 MiB/s.
        let mut rate = SmoothedRate::default();
        let start = Instant::now();
        rate.observe(start, 0);
        rate.observe(start + Duration::from_millis(50), 3 << 30);
        let mut position = 3 << 30;
        let now = feed(
            &mut rate,
            start + Duration::from_millis(50),
            &mut position,
            30,
            Duration::from_millis(100),
            |_| MIB,
        );
        let per_second = rate.per_second(now).unwrap();
        assert!(
            (per_second - 10.0 * MIB as f64).abs() < 0.01 * MIB as f64,
            "{per_second}"
        );
    }

    #[test]
    fn the_first_estimate_of_an_uneven_transfer_is_close_to_the_truth() {
        // 10 MiB/s on average, in uneven chunks: 0, 2 MiB, 0, 2 MiB... every 100 ms
        // (the first chunk starts the clock).
        let mut rate = SmoothedRate::default();
        let start = Instant::now();
        rate.observe(start, 0);
        let mut position = 0;
        let mut now = start;
        let total = 1 << 30;
        let mut first = None;
        for index in 0..200u32 {
            now += Duration::from_millis(100);
            position += if index % 2 == 0 { 2 * MIB } else { 0 };
            rate.observe(now, position);
            if let Some(left) = rate.time_left(now, position, total) {
                first = Some((left, total - position));
                break;
            }
        }
        let (left, remaining) = first.expect("an estimate after the warm-up");
        let truth = remaining as f64 / (10.0 * MIB as f64);
        let shown = left.as_secs_f64();
        assert!(
            (shown - truth).abs() < 0.25 * truth,
            "first estimate {shown:.1}s, truth {truth:.1}s"
        );
    }

    #[test]
    fn the_rate_follows_a_change_and_a_stall_brings_it_down() {
        let mut rate = SmoothedRate::default();
        let start = Instant::now();
        rate.observe(start, 0);
        let mut position = 0;
        let tick = Duration::from_millis(250);
        let now = feed(&mut rate, start, &mut position, 40, tick, |_| 25 * MIB);
        let fast = rate.per_second(now).unwrap();
        assert!((fast - 100.0 * MIB as f64).abs() < MIB as f64, "{fast}");
        // A stall of 8 s (two half-lives): the rate falls to about a quarter.
        let now = feed(&mut rate, now, &mut position, 32, tick, |_| 0);
        let stalled = rate.per_second(now).unwrap();
        assert!(stalled < 0.35 * fast && stalled > 0.15 * fast, "{stalled}");
        assert!(rate.time_left(now, position, position + MIB).is_some());
        // Stopped for long: no division by zero, an estimate capped or none.
        let now = feed(&mut rate, now, &mut position, 4000, tick, |_| 0);
        let left = rate.time_left(now, position, position + (1 << 40));
        assert!(left.is_none_or(|left| left <= LONGEST_ESTIMATE));
    }

    #[test]
    fn a_position_that_goes_back_is_measured_afresh() {
        let mut rate = SmoothedRate::default();
        let start = Instant::now();
        rate.observe(start, 0);
        let mut position = 0;
        let tick = Duration::from_millis(200);
        let now = feed(&mut rate, start, &mut position, 20, tick, |_| 2 * MIB);
        let before = rate.per_second(now).unwrap();
        // A resumed stream restarts from fewer bytes: no negative sample.
        position -= 20 * MIB;
        rate.observe(now + tick, position);
        let now = feed(&mut rate, now + tick, &mut position, 5, tick, |_| 2 * MIB);
        let after = rate.per_second(now).unwrap();
        assert!(
            (after - before).abs() < 0.05 * before,
            "{before} -> {after}"
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(Duration::from_secs(42)), "42s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(short_duration(Duration::from_secs(3720)), "1h 02m");
    }
}
