//! Diego's crash restart policy, as a pure function.
//!
//! The first three crashes restart immediately; after that the wait doubles
//! from 30 s up to 16 minutes; after [`GIVE_UP_AFTER`] crashes the instance stays
//! crashed. An instance that ran healthy for [`RESET_AFTER`] starts counting
//! from zero again.

use std::time::Duration;

/// Crashes restarted without delay.
pub const IMMEDIATE_RESTARTS: u32 = 3;
/// The first back-off.
pub const MIN_BACKOFF: Duration = Duration::from_secs(30);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(16 * 60);
/// After this many crashes an instance is not restarted any more.
pub const GIVE_UP_AFTER: u32 = 200;
/// A healthy run this long resets the crash count.
pub const RESET_AFTER: Duration = Duration::from_secs(5 * 60);

/// How long to wait before restarting after the `crash_count`-th crash
/// (1-based); `None` means do not restart.
pub fn restart_delay(crash_count: u32) -> Option<Duration> {
    if crash_count >= GIVE_UP_AFTER {
        return None;
    }
    if crash_count <= IMMEDIATE_RESTARTS {
        return Some(Duration::ZERO);
    }
    let doublings = (crash_count - IMMEDIATE_RESTARTS - 1).min(10);
    Some(MIN_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn diego_policy() {
        assert_eq!(restart_delay(1), Some(Duration::ZERO));
        assert_eq!(restart_delay(3), Some(Duration::ZERO));
        assert_eq!(restart_delay(4), Some(Duration::from_secs(30)));
        assert_eq!(restart_delay(5), Some(Duration::from_secs(60)));
        assert_eq!(restart_delay(8), Some(Duration::from_secs(480)));
        assert_eq!(restart_delay(9), Some(MAX_BACKOFF));
        assert_eq!(restart_delay(199), Some(MAX_BACKOFF));
        assert_eq!(restart_delay(200), None);
    }

    proptest! {
        #[test]
        fn delay_never_shrinks_and_stays_bounded(n in 1u32..GIVE_UP_AFTER - 1) {
            let a = restart_delay(n).unwrap();
            let b = restart_delay(n + 1).unwrap();
            prop_assert!(a <= b);
            prop_assert!(b <= MAX_BACKOFF);
        }
    }
}
