//! The limit on register, login and refresh per client IP (`--auth-rate`, SPEC §1): a
//! keyed GCRA limiter from `governor`, answered 429 `rate_limited` with `Retry-After`.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

/// Attempts per minute per client IP, with a burst of the same size.
#[derive(Debug)]
pub struct AuthLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    checks: AtomicU32,
}

impl AuthLimiter {
    /// `None` for 0: the limit is off.
    #[must_use]
    pub fn per_minute(n: u32) -> Option<Self> {
        let n = NonZeroU32::new(n)?;
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            clock: DefaultClock::default(),
            checks: AtomicU32::new(0),
        })
    }

    /// Takes one attempt for `ip`; `Err(seconds)` to wait when over the limit.
    /// # Errors
    /// The whole seconds until the next attempt is allowed (at least 1).
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        // Forget idle clients now and then, so the table stays as small as the traffic.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// The client's address. Behind a proxy on the same host (the peer is loopback), the last
/// hop of `X-Forwarded-For` names the client; from anywhere else the header is ignored, as
/// a client could forge it.
#[must_use]
pub fn client_ip(req: &ServiceRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if peer.is_loopback()
        && let Some(forwarded) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return Some(forwarded);
    }
    Some(peer)
}

/// Middleware for the register, login and refresh routes.
/// # Errors
/// Whatever the inner service returns.
pub async fn limit_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limiter = req.app_data::<web::Data<AppState>>().and_then(|s| s.auth_limiter.clone());
    if let (Some(limiter), Some(ip)) = (limiter, client_ip(&req))
        && let Err(retry_after) = limiter.check(ip)
    {
        let res = ApiError::RateLimited { retry_after }.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
