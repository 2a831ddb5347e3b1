//! The org's daily API request counter: the `Sforce-Limit-Info` header value, the
//! `REQUEST_LIMIT_EXCEEDED` refusal, and the body of the `/limits` resource.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

/// Default `--daily-api-limit`: an Enterprise-sized allocation.
pub const DEFAULT_DAILY_API_LIMIT: u64 = 100_000;

/// Counts data API calls against a daily maximum.
#[derive(Debug)]
pub struct ApiUsage {
    used: AtomicU64,
    max: u64,
}

/// The daily allocation is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("TotalRequests Limit exceeded.")]
pub struct LimitExceeded;

impl ApiUsage {
    pub fn new(max: u64) -> ApiUsage {
        ApiUsage {
            used: AtomicU64::new(0),
            max,
        }
    }

    /// Counts one call, or refuses it when the allocation is used up.
    pub fn count(&self) -> Result<u64, LimitExceeded> {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used < self.max).then_some(used + 1)
            })
            .map(|previous| previous + 1)
            .map_err(|_| LimitExceeded)
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Sets the counter, e.g. to start a test near the limit.
    pub fn set_used(&self, used: u64) {
        self.used.store(used, Ordering::SeqCst);
    }

    /// The `Sforce-Limit-Info` header value, `api-usage=USED/MAX`.
    pub fn header_value(&self) -> String {
        format!("api-usage={}/{}", self.used(), self.max)
    }

    /// The `/limits` resource body.
    pub fn limits_body(&self) -> Value {
        let remaining = self.max.saturating_sub(self.used());
        let fixed = |max: u64| json!({"Max": max, "Remaining": max});
        json!({
            "ConcurrentAsyncGetReportInstances": fixed(200),
            "ConcurrentSyncReportRuns": fixed(20),
            "DailyApiRequests": {"Max": self.max, "Remaining": remaining},
            "DailyAsyncApexExecutions": fixed(250_000),
            "DailyBulkApiBatches": fixed(15_000),
            "DailyBulkApiRequests": fixed(10_000),
            "DailyBulkV2QueryFileStorageMB": fixed(976_562),
            "DailyBulkV2QueryJobs": fixed(10_000),
            "DailyStreamingApiEvents": fixed(1_000_000),
            "DataStorageMB": fixed(1_024),
            "FileStorageMB": fixed(1_024),
            "HourlyTimeBasedWorkflow": fixed(1_000),
            "MassEmail": fixed(5_000),
            "SingleEmail": fixed(5_000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_to_the_max_then_refuses() {
        let usage = ApiUsage::new(2);
        assert_eq!(usage.count(), Ok(1));
        assert_eq!(usage.count(), Ok(2));
        assert_eq!(usage.count(), Err(LimitExceeded));
        assert_eq!(usage.header_value(), "api-usage=2/2");
        assert_eq!(usage.limits_body()["DailyApiRequests"]["Remaining"], 0);
    }
}
