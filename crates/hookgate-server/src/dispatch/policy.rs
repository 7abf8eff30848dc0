//! When to try again, and whether a response counts as delivered.
//!
//! Pure functions over numbers, tested below; the dispatcher supplies the
//! clock and the randomness.

use std::time::{Duration, SystemTime};

/// A retry schedule with its attempt limit.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Gap after the 1st, 2nd, ... failed attempt; the last gap repeats.
    pub gaps: Vec<Duration>,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Up to this fraction of a gap is added at random. Jitter only adds:
    /// a receiver that asked for a pause never hears from us early, and a
    /// crowd of failures is spread out instead of returning in one wave.
    pub jitter: f64,
    /// Longest `Retry-After` honoured; a receiver cannot park a delivery
    /// for days by answering with a huge value.
    pub retry_after_cap: Duration,
}

impl RetryPolicy {
    /// The gap after failed attempt number `attempt_no` (1-based), with
    /// `unit_random` in `[0, 1)` choosing the jitter, and the receiver's
    /// `Retry-After` when it sent one with a 429 or 503.
    pub fn gap_after(
        &self,
        attempt_no: u32,
        retry_after: Option<Duration>,
        unit_random: f64,
    ) -> Duration {
        let index = (attempt_no.max(1) as usize - 1).min(self.gaps.len() - 1);
        let scheduled = self.gaps[index];
        let jitter = scheduled.mul_f64(self.jitter * unit_random.clamp(0.0, 1.0));
        let planned = scheduled + jitter;

        match retry_after {
            Some(asked) => planned.max(asked.min(self.retry_after_cap)),
            None => planned,
        }
    }

    /// Whether attempt number `attempt_no` was the last one allowed.
    pub fn exhausted(&self, attempt_no: u32, max_attempts: u32) -> bool {
        attempt_no >= max_attempts
    }

    /// The longest a delivery can take from first attempt to `Failed`,
    /// without jitter or `Retry-After`: logged at start so operators know
    /// the window their receivers must recover within.
    pub fn worst_case_window(&self) -> Duration {
        (1..self.max_attempts)
            .map(|n| self.gap_after(n, None, 0.0))
            .sum()
    }
}

/// Reads a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a request to wait very long:
        // the cap applies, not the plain schedule.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a status lets `Retry-After` count: only "too many requests" and
/// "unavailable" are a receiver asking us to pause.
pub fn honours_retry_after(status: u16) -> bool {
    status == 429 || status == 503
}

/// Whether a webhook response counts as delivered: 200 or 201 only, as Cobo
/// judges it (a 202 or 204 is a failed attempt).
pub fn webhook_delivered(status: u16) -> bool {
    status == 200 || status == 201
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            gaps: vec![
                Duration::from_secs(30),
                Duration::from_secs(60),
                Duration::from_secs(300),
            ],
            max_attempts: 5,
            jitter: 0.1,
            retry_after_cap: Duration::from_secs(600),
        }
    }

    #[test]
    fn gaps_follow_the_schedule_and_repeat_the_last() {
        let p = policy();
        assert_eq!(p.gap_after(1, None, 0.0), Duration::from_secs(30));
        assert_eq!(p.gap_after(2, None, 0.0), Duration::from_secs(60));
        assert_eq!(p.gap_after(3, None, 0.0), Duration::from_secs(300));
        assert_eq!(p.gap_after(9, None, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn jitter_only_delays_and_is_bounded() {
        let p = policy();
        for r in [0.0, 0.25, 0.5, 0.999] {
            let gap = p.gap_after(1, None, r);
            assert!(
                gap >= Duration::from_secs(30) && gap <= Duration::from_secs(33),
                "{gap:?}"
            );
        }
    }

    #[test]
    fn retry_after_can_lengthen_but_not_shorten_and_is_capped() {
        let p = policy();
        assert_eq!(
            p.gap_after(1, Some(Duration::from_secs(120)), 0.0),
            Duration::from_secs(120)
        );
        assert_eq!(
            p.gap_after(1, Some(Duration::from_secs(1)), 0.0),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.gap_after(1, Some(Duration::from_secs(86_400)), 0.0),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn attempt_zero_is_treated_as_the_first() {
        assert_eq!(policy().gap_after(0, None, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn exhaustion_counts_every_attempt() {
        let p = policy();
        assert!(!p.exhausted(4, 5));
        assert!(p.exhausted(5, 5));
        assert!(p.exhausted(6, 5));
    }

    #[test]
    fn worst_case_window_sums_the_gaps_between_attempts() {
        // 5 attempts: 4 gaps of 30 + 60 + 300 + 300 seconds.
        assert_eq!(policy().worst_case_window(), Duration::from_secs(690));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        let huge = parse_retry_after("99999999999999999999999", now).unwrap();
        assert_eq!(huge, Duration::from_secs(u64::MAX));
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn only_200_and_201_deliver_a_webhook() {
        assert!(webhook_delivered(200));
        assert!(webhook_delivered(201));
        for status in [202, 204, 301, 302, 400, 404, 429, 500, 503] {
            assert!(!webhook_delivered(status), "{status}");
        }
    }
}
