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
    /// Bulk API 2.0 query jobs created (`DailyBulkV2QueryJobs`).
    bulk_jobs: AtomicU64,
    /// Bytes of Bulk API 2.0 query results served (`DailyBulkV2QueryFileStorageMB`).
    bulk_bytes: AtomicU64,
}

/// Bulk API 2.0 query jobs an org may create in a rolling 24 hours.
pub const DAILY_BULK_QUERY_JOBS: u64 = 10_000;
/// Megabytes of Bulk API 2.0 query results an org may keep in a rolling 24 hours (1 TB).
pub const DAILY_BULK_QUERY_STORAGE_MB: u64 = 976_562;

/// The daily allocation is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("TotalRequests Limit exceeded.")]
pub struct LimitExceeded;

impl ApiUsage {
    pub fn new(max: u64) -> ApiUsage {
        ApiUsage {
            used: AtomicU64::new(0),
            max,
            bulk_jobs: AtomicU64::new(0),
            bulk_bytes: AtomicU64::new(0),
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

    /// Counts one Bulk API 2.0 query job, or refuses it with the number already created
    /// when the daily allowance is used up.
    pub fn count_bulk_job(&self) -> Result<u64, u64> {
        self.bulk_jobs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < DAILY_BULK_QUERY_JOBS).then_some(n + 1)
            })
            .map(|previous| previous + 1)
    }

    /// Bulk API 2.0 query jobs created so far.
    pub fn bulk_jobs(&self) -> u64 {
        self.bulk_jobs.load(Ordering::SeqCst)
    }

    /// Sets the bulk query job counter (e.g. to start a test near the limit).
    pub fn set_bulk_jobs(&self, n: u64) {
        self.bulk_jobs.store(n, Ordering::SeqCst);
    }

    /// Records `bytes` of query results served.
    pub fn add_bulk_bytes(&self, bytes: u64) {
        self.bulk_bytes.fetch_add(bytes, Ordering::SeqCst);
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
            "DailyBulkV2QueryFileStorageMB": {
                "Max": DAILY_BULK_QUERY_STORAGE_MB,
                "Remaining": DAILY_BULK_QUERY_STORAGE_MB
                    .saturating_sub(self.bulk_bytes.load(Ordering::SeqCst).div_ceil(1024 * 1024)),
            },
            "DailyBulkV2QueryJobs": {
                "Max": DAILY_BULK_QUERY_JOBS,
                "Remaining": DAILY_BULK_QUERY_JOBS.saturating_sub(self.bulk_jobs()),
            },
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

    #[test]
    fn bulk_query_jobs_count_against_their_daily_allowance() {
        let usage = ApiUsage::new(10);
        assert_eq!(usage.count_bulk_job(), Ok(1));
        usage.add_bulk_bytes(3 * 1024 * 1024 + 1);
        let body = usage.limits_body();
        assert_eq!(
            body["DailyBulkV2QueryJobs"]["Remaining"],
            DAILY_BULK_QUERY_JOBS - 1
        );
        assert_eq!(
            body["DailyBulkV2QueryFileStorageMB"]["Remaining"],
            DAILY_BULK_QUERY_STORAGE_MB - 4
        );
        usage.set_bulk_jobs(DAILY_BULK_QUERY_JOBS);
        assert_eq!(usage.count_bulk_job(), Err(DAILY_BULK_QUERY_JOBS));
        assert_eq!(usage.used(), 0, "bulk jobs have their own allowance");
    }
}
