//! The freshness window: how far a delivery's timestamp may be from this
//! machine's clock, in either direction, before it is refused.
//!
//! A signature proves who sent a body, not when: a captured request can be
//! replayed. A window bounds that. Cobo documents none for its millisecond
//! timestamps, and its retries re-sign with a fresh timestamp, so the window
//! is off by default for the Cobo schemes; Standard Webhooks asks receivers
//! for one, so it is on (five minutes) for that scheme.
//!
//! The check is a pure function of the timestamp text, the unit, the current
//! time and the window; all arithmetic is checked, so no input can overflow.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{ReceiverError, Result};

/// The unit a scheme's timestamp header counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampUnit {
    /// Unix milliseconds (both Cobo schemes).
    Milliseconds,
    /// Unix seconds (Standard Webhooks).
    Seconds,
}

impl TimestampUnit {
    fn to_ms(self, value: i64) -> Option<i64> {
        match self {
            TimestampUnit::Milliseconds => Some(value),
            TimestampUnit::Seconds => value.checked_mul(1000),
        }
    }
}

/// The window used for Standard Webhooks unless configured otherwise.
pub const STANDARD_WEBHOOKS_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// Unix milliseconds of `time`; negative before 1970, saturating far out.
pub fn unix_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Checks that `timestamp` (text, in `unit`) lies within `tolerance` of
/// `now`, in either direction. The timestamp must be plain ASCII digits.
pub fn check(
    timestamp: &str,
    unit: TimestampUnit,
    now: SystemTime,
    tolerance: Duration,
) -> Result<()> {
    let not_a_timestamp = || ReceiverError::NotATimestamp {
        value: timestamp.to_owned(),
    };
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_timestamp());
    }

    let tolerance_ms = u64::try_from(tolerance.as_millis()).unwrap_or(u64::MAX);
    let sent_ms = timestamp
        .parse::<i64>()
        .ok()
        .and_then(|value| unit.to_ms(value));
    let Some(sent_ms) = sent_ms else {
        // More digits than an i64 holds: far in the future.
        return Err(ReceiverError::TooNew {
            ahead_ms: u64::MAX,
            tolerance_ms,
        });
    };

    let now_ms = unix_ms(now);
    match now_ms.checked_sub(sent_ms) {
        Some(age) if age >= 0 => {
            let age_ms = age.unsigned_abs();
            if age_ms > tolerance_ms {
                return Err(ReceiverError::TooOld {
                    age_ms,
                    tolerance_ms,
                });
            }
        }
        Some(age) => {
            let ahead_ms = age.unsigned_abs();
            if ahead_ms > tolerance_ms {
                return Err(ReceiverError::TooNew {
                    ahead_ms,
                    tolerance_ms,
                });
            }
        }
        None => {
            return Err(ReceiverError::TooNew {
                ahead_ms: u64::MAX,
                tolerance_ms,
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_701_396_866_123;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW_MS)
    }

    fn check_ms(timestamp: &str, tolerance_ms: u64) -> Result<()> {
        check(
            timestamp,
            TimestampUnit::Milliseconds,
            now(),
            Duration::from_millis(tolerance_ms),
        )
    }

    #[test]
    fn inside_the_window_passes_both_ways() {
        assert!(check_ms("1701396866123", 0).is_ok());
        assert!(check_ms("1701396856123", 10_000).is_ok());
        assert!(check_ms("1701396876123", 10_000).is_ok());
    }

    #[test]
    fn outside_the_window_says_which_side() {
        assert!(matches!(
            check_ms("1701396856122", 10_000),
            Err(ReceiverError::TooOld {
                age_ms: 10_001,
                tolerance_ms: 10_000
            })
        ));
        assert!(matches!(
            check_ms("1701396876124", 10_000),
            Err(ReceiverError::TooNew {
                ahead_ms: 10_001,
                tolerance_ms: 10_000
            })
        ));
    }

    #[test]
    fn seconds_are_scaled() {
        let window = STANDARD_WEBHOOKS_DEFAULT;
        assert!(check("1701396866", TimestampUnit::Seconds, now(), window).is_ok());
        assert!(matches!(
            check("1701396500", TimestampUnit::Seconds, now(), window),
            Err(ReceiverError::TooOld { .. })
        ));
    }

    #[test]
    fn anything_but_digits_is_not_a_timestamp() {
        for text in ["", "abc", "-5", "+5", "1.5", "1e3", " 12", "١٢"] {
            assert!(
                matches!(
                    check_ms(text, 1000),
                    Err(ReceiverError::NotATimestamp { .. })
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let far = "99999999999999999999999999";
        assert!(matches!(
            check_ms(far, 1000),
            Err(ReceiverError::TooNew { .. })
        ));
        let max_seconds = i64::MAX.to_string();
        let result = check(&max_seconds, TimestampUnit::Seconds, now(), Duration::MAX);
        assert!(matches!(result, Err(ReceiverError::TooNew { .. })));
        assert!(matches!(
            check_ms("0", 1000),
            Err(ReceiverError::TooOld { .. })
        ));
    }

    #[test]
    fn a_clock_before_1970_does_not_panic() {
        let early = UNIX_EPOCH - Duration::from_secs(10);
        let result = check(
            &i64::MAX.to_string(),
            TimestampUnit::Milliseconds,
            early,
            Duration::ZERO,
        );
        assert!(matches!(result, Err(ReceiverError::TooNew { .. })));
    }
}
