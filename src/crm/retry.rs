//! Retries of CRM requests: the [`Backoff`] between attempts and [`with_retries`], the one
//! loop that both the token request and every data request run in (attempt counting, the
//! retryable check, the wait and its debug log).

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use super::CrmError;

/// Backoff between retries: attempt `n` (0-based) waits a random duration between half and
/// all of `min(base * 2^n, max)`. A `Retry-After` header, when present, sets a floor (capped
/// at `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        let low = ceiling / 2;
        let jittered = if ceiling > low {
            rand::thread_rng().gen_range(low..=ceiling)
        } else {
            ceiling
        };
        match retry_after {
            Some(floor) => jittered.max(floor.min(self.max)),
            None => jittered,
        }
    }
}

/// How one attempt of a request ended, as [`with_retries`] reads it.
pub(super) enum Attempt<T> {
    /// The request's result.
    Done(T),
    /// Send again at once, not counted as a retry (the token was just replaced).
    Resend,
    /// A failure, with the server's `Retry-After` when it sent one (a floor for the wait).
    Failed(CrmError, Option<Duration>),
}

/// Runs `attempt` until it is done. A failure is retried after the backoff when the request
/// may be sent again (`idempotent`), the error [`CrmError::is_retryable`] and fewer than
/// `max_retries` retries were made; otherwise it is returned. An `Err` from `attempt` ends the
/// request at once. `attempt` gets the attempt's number: 1 for the first send, counting every
/// send (resends and retries alike), as the request's trace span shows it.
pub(super) async fn with_retries<T, F, Fut>(
    backoff: &Backoff,
    max_retries: u32,
    what: &str,
    idempotent: bool,
    mut attempt: F,
) -> Result<T, CrmError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Attempt<T>, CrmError>>,
{
    let mut retries = 0;
    let mut number = 0;
    loop {
        number += 1;
        let (error, retry_after) = match attempt(number).await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Resend => continue,
            Attempt::Failed(error, retry_after) => (error, retry_after),
        };
        if !(idempotent && error.is_retryable() && retries < max_retries) {
            return Err(error);
        }
        let delay = backoff.delay(retries, retry_after);
        retries += 1;
        tracing::debug!(what, error = %error, ?delay, retry = retries, "retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn fast() -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        }
    }

    fn busy() -> CrmError {
        CrmError::Api {
            status: 503,
            error_code: "SERVER_UNAVAILABLE".into(),
            message: "busy".into(),
            fields: Vec::new(),
        }
    }

    /// Runs [`with_retries`] over a script of outcomes, one per attempt; returns the result
    /// and the attempt numbers seen.
    async fn run(
        max_retries: u32,
        idempotent: bool,
        script: Vec<Result<Attempt<&'static str>, CrmError>>,
    ) -> (Result<&'static str, CrmError>, Vec<u32>) {
        let script = Mutex::new(script.into_iter());
        let seen = Mutex::new(Vec::new());
        let result = with_retries(&fast(), max_retries, "the test", idempotent, |n| {
            seen.lock().unwrap().push(n);
            let next = script.lock().unwrap().next().expect("an attempt too many");
            async move { next }
        })
        .await;
        (result, seen.into_inner().unwrap())
    }

    #[tokio::test]
    async fn retryable_failures_are_retried_until_done() {
        let (result, attempts) = run(
            3,
            true,
            vec![
                Ok(Attempt::Failed(busy(), None)),
                Ok(Attempt::Failed(busy(), Some(Duration::from_millis(1)))),
                Ok(Attempt::Done("ok")),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), "ok");
        assert_eq!(attempts, [1, 2, 3]);
    }

    #[tokio::test]
    async fn retries_stop_at_the_maximum_with_the_last_error() {
        let (result, attempts) = run(
            2,
            true,
            (0..3).map(|_| Ok(Attempt::Failed(busy(), None))).collect(),
        )
        .await;
        assert!(matches!(result, Err(CrmError::Api { status: 503, .. })));
        assert_eq!(attempts, [1, 2, 3], "the first try and two retries");
    }

    #[tokio::test]
    async fn a_request_that_may_not_be_resent_is_tried_once() {
        let (result, attempts) = run(3, false, vec![Ok(Attempt::Failed(busy(), None))]).await;
        assert!(result.is_err());
        assert_eq!(attempts, [1]);
    }

    #[tokio::test]
    async fn permanent_failures_and_errors_end_the_request_at_once() {
        let refused = CrmError::InvalidRequest("bad".into());
        let (result, attempts) = run(3, true, vec![Ok(Attempt::Failed(refused, None))]).await;
        assert!(matches!(result, Err(CrmError::InvalidRequest(_))));
        assert_eq!(attempts, [1]);

        let (result, attempts) = run(3, true, vec![Err(busy())]).await;
        assert!(result.unwrap_err().is_retryable(), "returned as it came");
        assert_eq!(attempts, [1], "an Err is not retried, even a retryable one");
    }

    #[tokio::test]
    async fn a_resend_is_not_counted_as_a_retry() {
        let (result, attempts) = run(
            1,
            true,
            vec![
                Ok(Attempt::Resend),
                Ok(Attempt::Failed(busy(), None)),
                Ok(Attempt::Resend),
                Ok(Attempt::Done("ok")),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), "ok");
        assert_eq!(attempts, [1, 2, 3, 4], "every send has its own number");
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d0 = b.delay(0, None);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d3 = b.delay(3, None);
            assert!(
                d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
                "{d3:?}"
            );
            assert!(b.delay(30, None) <= Duration::from_secs(1));
        }
        assert!(b.delay(0, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
        assert!(b.delay(0, Some(Duration::from_secs(60))) <= Duration::from_secs(1));
    }
}
