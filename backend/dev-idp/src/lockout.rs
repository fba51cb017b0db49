//! B2C's smart-lockout idea: after `threshold` failed sign-ins a sign-in name is locked, and
//! each further lock lasts twice as long. Failures are counted per name whether or not the
//! account exists, and both cases show the same messages, so lockout reveals nothing.
//!
//! Every attempt is counted *before* its password is checked ([`Store::reserve_attempt`]):
//! checking the count first and recording the failure after the slow hash let 30 guesses posted
//! at once all be evaluated against a limit of 10.
//!
//! [`Store::reserve_attempt`]: crate::store::Store::reserve_attempt

use crate::config::Lockout;
use crate::store::Failures;

pub const LOCKED_MESSAGE: &str =
    "Your account is temporarily locked to prevent unauthorized use. Try again later.";
pub const INVALID_MESSAGE: &str = "Invalid username or password.";

const MAX_LOCK_SECONDS: u64 = 86400;

pub fn is_locked(f: &Failures, now: i64) -> bool {
    f.locked_until > now
}

/// Applied to the failure count after one more failure: locks when the threshold is reached.
pub fn after_failure(policy: &Lockout, now: i64) -> impl FnOnce(Failures) -> Failures + use<> {
    let (threshold, base) = (policy.threshold, policy.lock_seconds);
    move |mut f| {
        if f.count >= threshold {
            let factor = 1u64 << f.locks.min(16);
            f.locked_until = now + base.saturating_mul(factor).min(MAX_LOCK_SECONDS) as i64;
            f.locks += 1;
            f.count = 0;
        }
        f
    }
}

/// Sign-in names are counted in the form emails are stored in.
pub fn key(sign_in_name: &str) -> String {
    crate::email::normalized(sign_in_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow() {
        let policy = Lockout {
            threshold: 2,
            lock_seconds: 60,
        };
        let mut f = Failures::default();
        f.count += 1;
        f = after_failure(&policy, 1000)(f);
        assert!(!is_locked(&f, 1000));
        f.count += 1;
        f = after_failure(&policy, 1000)(f);
        assert_eq!(f.locked_until, 1060);
        f.count += 2;
        f = after_failure(&policy, 2000)(f);
        assert_eq!(f.locked_until, 2120);
    }
}
