//! When a run stops at its next safe point (design.md §5): a shutdown was asked for, or the
//! org's daily API usage reached `[limits] max_api_usage_percent`. The one place the API
//! budget rule is written; the cycle checks it on its first response (before storing what
//! it brought) and between every page and write batch, from `Sforce-Limit-Info`.

use tokio_util::sync::CancellationToken;

use crate::crm::ApiUsage;

/// Why the API budget is spent: the usage the CRM last reported is at or above
/// `max_percent` of the org's daily allowance. `None` while below it, when no usage has been
/// reported yet, or when the CRM reports no allowance (0).
pub fn over_budget(usage: Option<ApiUsage>, max_percent: u8) -> Option<String> {
    let usage = usage?;
    if usage.max == 0 {
        return None;
    }
    let percent = usage.used.saturating_mul(100) / usage.max;
    (percent >= u64::from(max_percent)).then(|| {
        format!(
            "the org's daily API usage is {}/{} ({percent}%), at or above [limits] max_api_usage_percent = {max_percent}",
            usage.used, usage.max
        )
    })
}

/// Why a run must stop at this safe point: a shutdown (`cancel`) first, then the budget.
pub fn stop_reason(
    cancel: &CancellationToken,
    usage: Option<ApiUsage>,
    max_percent: u8,
) -> Option<String> {
    if cancel.is_cancelled() {
        return Some("shutdown requested".into());
    }
    over_budget(usage, max_percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(used: u64, max: u64) -> Option<ApiUsage> {
        Some(ApiUsage { used, max })
    }

    #[test]
    fn the_budget_is_spent_at_the_configured_share() {
        let cases = [
            (None, 80, false),
            (usage(0, 0), 80, false),
            (usage(500, 0), 80, false),
            (usage(79, 100), 80, false),
            (usage(7_999, 10_000), 80, false),
            (usage(80, 100), 80, true),
            (usage(90_000, 100_000), 80, true),
            (usage(150, 100), 80, true),
            (usage(0, 100), 0, true),
            (usage(99, 100), 100, false),
            (usage(100, 100), 100, true),
            (usage(u64::MAX, 100), 80, true),
        ];
        for (usage, max_percent, spent) in cases {
            assert_eq!(
                over_budget(usage, max_percent).is_some(),
                spent,
                "{usage:?} at {max_percent}%"
            );
        }
    }

    #[test]
    fn the_reason_names_the_usage_and_the_setting() {
        assert_eq!(
            over_budget(usage(90_000, 100_000), 80).unwrap(),
            "the org's daily API usage is 90000/100000 (90%), at or above [limits] max_api_usage_percent = 80"
        );
    }

    #[test]
    fn a_shutdown_stops_before_the_budget_is_looked_at() {
        let cancel = CancellationToken::new();
        assert_eq!(stop_reason(&cancel, usage(10, 100), 80), None);
        assert!(stop_reason(&cancel, usage(95, 100), 80)
            .unwrap()
            .contains("API usage"));
        cancel.cancel();
        assert_eq!(
            stop_reason(&cancel, usage(95, 100), 80).as_deref(),
            Some("shutdown requested")
        );
        assert_eq!(
            stop_reason(&cancel, None, 80).as_deref(),
            Some("shutdown requested")
        );
    }
}
