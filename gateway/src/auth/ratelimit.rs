//! Rate limits (GCRA, from `governor`): requests per user, per API key and
//! per client address; login attempts per email and per address. Over the
//! limit: 429 `RATE_LIMITED` with `Retry-After`.

use crate::http::ApiError;
use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Limits {
    requests: DefaultKeyedRateLimiter<String>,
    logins: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn check(l: &DefaultKeyedRateLimiter<String>, key: &str, what: &str) -> Result<(), ApiError> {
    l.check_key(&key.to_string()).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("too many {what}; retry after {} s", secs.max(1)),
            )
        }
    })
}

impl Limits {
    pub fn new(per_minute: u32, login_per_minute: u32) -> Self {
        Limits {
            requests: RateLimiter::keyed(quota(per_minute)),
            logins: RateLimiter::keyed(quota(login_per_minute)),
            checks: AtomicU64::new(0),
        }
    }

    fn housekeeping(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            self.requests.retain_recent();
            self.logins.retain_recent();
        }
    }

    /// `user:<id>`, `key:<id>` or `ip:<address>`.
    pub fn request(&self, key: &str) -> Result<(), ApiError> {
        self.housekeeping();
        check(&self.requests, key, "requests")
    }

    /// `email:<address>` or `ip:<address>`.
    pub fn login(&self, key: &str) -> Result<(), ApiError> {
        self.housekeeping();
        check(&self.logins, key, "login attempts")
    }
}
