//! How long a message that failed for a passing reason should stay hidden before it returns.
//!
//! SQS counts every receive against the queue's `maxReceiveCount`. With a fixed visibility
//! timeout, a store outage longer than `maxReceiveCount × timeout` walks every message into the
//! dead-letter queue though nothing is wrong with them. Hiding each store failure for longer on
//! every receive (`ChangeMessageVisibility` with [`Backoff::visibility_timeout`]) stretches the
//! same receives over a much longer outage. Messages that failed their own content should keep
//! the queue's timeout: they will fail again however long they wait.

use std::time::Duration;

/// SQS's longest visibility timeout: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// An exponential schedule: `base × 2^(receive_count − 1)`, at most `cap`, and never above
/// [`MAX_VISIBILITY_TIMEOUT`].
///
/// ```
/// use std::time::Duration;
/// use sqs_batch::Backoff;
///
/// let backoff = Backoff::new(Duration::from_secs(180));
/// let seconds: Vec<u32> = (1..=5).map(|n| backoff.visibility_timeout(n)).collect();
/// assert_eq!(seconds, [180, 360, 720, 1440, 2880]);
/// // A 5th receive comes 45 minutes after the first: a 30-minute outage dead-letters nothing.
/// assert_eq!(seconds[..4].iter().sum::<u32>(), 45 * 60);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Doubling from `base`, capped at SQS's maximum. A good `base` is the queue's own
    /// visibility timeout.
    pub const fn new(base: Duration) -> Backoff {
        Backoff { base, cap: MAX_VISIBILITY_TIMEOUT }
    }

    /// Caps the schedule lower than SQS's maximum (a cap above it is still held to it).
    pub fn with_cap(self, cap: Duration) -> Backoff {
        Backoff { cap: cap.min(MAX_VISIBILITY_TIMEOUT), ..self }
    }

    /// How long to hide a message that failed on its `receive_count`-th receive. A count of 0
    /// (absent or unreadable) is treated as the first receive.
    pub fn delay(&self, receive_count: u32) -> Duration {
        // 2^20 × 1 s already exceeds 12 h, so more doublings cannot change the capped result.
        let doublings = receive_count.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// [`delay`](Backoff::delay) in whole seconds, as `ChangeMessageVisibility`'s
    /// `VisibilityTimeout` takes it (at most 43 200, so it fits any integer type SDKs use).
    pub fn visibility_timeout(&self, receive_count: u32) -> u32 {
        // The cap keeps the delay within 43 200 s, far inside u32.
        u32::try_from(self.delay(receive_count).as_secs()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u32 = 60 * 60;

    #[test]
    fn the_delay_doubles_per_receive_and_stops_at_its_cap() {
        let three_minutes = Backoff::new(Duration::from_secs(180));
        let one_hour = Backoff::new(Duration::from_secs(180)).with_cap(Duration::from_secs(3600));
        let cases = [
            ("receive count 0 is the first receive", three_minutes, 0, 180),
            ("the first receive waits the base", three_minutes, 1, 180),
            ("the second doubles", three_minutes, 2, 360),
            ("the eighth", three_minutes, 8, 180 * 128),
            ("the ninth reaches 12 h", three_minutes, 9, 12 * HOUR),
            ("far beyond stays at 12 h", three_minutes, u32::MAX, 12 * HOUR),
            ("a lower cap", one_hour, 6, HOUR),
            ("under a lower cap", one_hour, 5, 2880),
            ("a cap above SQS's is held to it", three_minutes.with_cap(Duration::from_secs(48 * 3600)), 30, 12 * HOUR),
            ("a base above the cap", Backoff::new(Duration::from_secs(24 * 3600)), 1, 12 * HOUR),
            ("a zero base never hides", Backoff::new(Duration::ZERO), 10, 0),
            ("the largest base does not overflow", Backoff::new(Duration::MAX), u32::MAX, 12 * HOUR),
        ];
        for (name, backoff, receive_count, seconds) in cases {
            assert_eq!(backoff.visibility_timeout(receive_count), seconds, "{name}");
        }
    }

    #[test]
    fn sub_second_delays_round_down_for_sqs() {
        let backoff = Backoff::new(Duration::from_millis(1500));
        assert_eq!(backoff.delay(2), Duration::from_secs(3));
        assert_eq!(backoff.visibility_timeout(1), 1);
    }
}
