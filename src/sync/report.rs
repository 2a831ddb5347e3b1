//! What one cycle did, for the run log, `--json` and the human summary.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// Rows pulled per object.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ObjectStats {
    /// Live rows received (created or changed).
    pub pulled: u64,
    /// Rows received as deleted, or removed by the full reconcile.
    pub deleted: u64,
    /// Pages fetched.
    pub pages: u64,
}

/// One field change the cycle makes (or, in a dry run, would make).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    pub object: String,
    pub record_id: String,
    pub record_name: Option<String>,
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// A record the CRM refused.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WriteFailure {
    pub object: String,
    pub record_id: String,
    pub status_code: String,
    pub message: String,
    /// Whether retrying without a change cannot help (a validation rule, a missing field).
    pub permanent: bool,
}

/// Everything a cycle reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleReport {
    /// The run: `incremental`, `full`, `dry-run`, `resync`, `snapshot` ...
    pub kind: String,
    pub full: bool,
    pub dry_run: bool,
    /// The date the date-relative rules were evaluated for (org time zone).
    pub today: String,
    /// The currency mode the cycle used (`single`, `static`, `dated`; `auto` decides it).
    pub currency_mode: Option<String>,
    pub objects: BTreeMap<String, ObjectStats>,
    pub plans_recomputed: u64,
    pub links_changed: u64,
    /// Field values sent and accepted by the CRM (always 0 in a dry run, which writes
    /// nothing).
    pub fields_written: u64,
    /// Records sent and accepted by the CRM (always 0 in a dry run).
    pub records_written: u64,
    /// In a dry run: the field values it would have written (0 in other runs).
    pub fields_would_write: u64,
    /// In a dry run: the records it would have written (0 in other runs).
    pub records_would_write: u64,
    /// Plan snapshots upserted (planned ones, in a dry run).
    pub snapshots: u64,
    pub write_failures: Vec<WriteFailure>,
    /// Linking ambiguities, invalid plans, hierarchy cycles and other findings.
    pub findings: Vec<String>,
    pub api_calls: u64,
    pub api_usage: Option<String>,
    pub duration_ms: u64,
    /// Set when the cycle ended early on purpose (API budget, shutdown).
    pub stopped_early: Option<String>,
    /// In a dry run: the changes that would be written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

impl CycleReport {
    /// The report of a run that is starting: its name, whether its kind recomputes every
    /// plan, and the date its date-relative rules are evaluated for.
    pub fn start(name: super::RunName, full: bool, today: chrono::NaiveDate) -> Self {
        CycleReport {
            kind: name.as_str().to_string(),
            full,
            dry_run: name.dry_run,
            today: today.to_string(),
            ..CycleReport::default()
        }
    }

    /// Adds what a dry run would write.
    pub fn add_planned(&mut self, writes: Vec<super::compute::PlannedWrite>) {
        self.fields_would_write = writes.iter().map(|w| w.fields.len() as u64).sum();
        self.records_would_write = writes.len() as u64;
        self.changes = writes.into_iter().flat_map(|w| w.changes).collect();
    }

    /// Adds what a drain of the outbox did.
    pub fn add_pushed(&mut self, pushed: super::push::Pushed) {
        self.records_written += pushed.records_written;
        self.fields_written += pushed.fields_written;
        self.write_failures.extend(pushed.failures);
    }
}

impl fmt::Display for CycleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} run for {}:", self.kind, self.today)?;
        if let Some(mode) = &self.currency_mode {
            writeln!(f, "  currency mode {mode}")?;
        }
        for (object, s) in &self.objects {
            writeln!(
                f,
                "  pulled {:<13} {:>7} rows, {:>5} deleted",
                object, s.pulled, s.deleted
            )?;
        }
        if self.dry_run {
            writeln!(
                f,
                "  plans recomputed {}, links changed {}, dry run: would write {} fields on {} \
                 records (nothing written)",
                self.plans_recomputed,
                self.links_changed,
                self.fields_would_write,
                self.records_would_write
            )?;
        } else {
            writeln!(
                f,
                "  plans recomputed {}, links changed {}, fields written {} on {} records",
                self.plans_recomputed,
                self.links_changed,
                self.fields_written,
                self.records_written
            )?;
        }
        if self.snapshots > 0 {
            writeln!(f, "  plan snapshots {}", self.snapshots)?;
        }
        if self.dry_run {
            for c in &self.changes {
                let name = c
                    .record_name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "  would set {} {}{name} {}: {} -> {}",
                    c.object, c.record_id, c.field, c.old, c.new
                )?;
            }
        }
        for w in &self.write_failures {
            let kind = if w.permanent {
                "refused"
            } else {
                "failed, will retry"
            };
            writeln!(
                f,
                "  {kind}: {} {}: {}: {}",
                w.object, w.record_id, w.status_code, w.message
            )?;
        }
        for finding in &self.findings {
            writeln!(f, "  note: {finding}")?;
        }
        if let Some(why) = &self.stopped_early {
            writeln!(f, "  stopped early: {why}")?;
        }
        write!(
            f,
            "  {} API calls{}, {} ms",
            self.api_calls,
            self.api_usage
                .as_deref()
                .map(|u| format!(" (org usage {u})"))
                .unwrap_or_default(),
            self.duration_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_says_what_it_would_write_and_that_it_wrote_nothing() {
        let dry = CycleReport {
            kind: "snapshot-dry-run".into(),
            dry_run: true,
            fields_would_write: 176,
            records_would_write: 8,
            ..CycleReport::default()
        };
        let text = dry.to_string();
        assert!(
            text.contains("dry run: would write 176 fields on 8 records (nothing written)"),
            "{text}"
        );
        assert!(!text.contains("fields written"), "{text}");
        let json = serde_json::to_value(&dry).unwrap();
        assert_eq!(json["records_written"], 0);
        assert_eq!(json["fields_written"], 0);
        assert_eq!(json["records_would_write"], 8);
        assert_eq!(json["fields_would_write"], 176);

        let real = CycleReport {
            kind: "incremental".into(),
            fields_written: 3,
            records_written: 1,
            ..CycleReport::default()
        };
        let text = real.to_string();
        assert!(text.contains("fields written 3 on 1 records"), "{text}");
        assert!(!text.contains("would write"), "{text}");
    }
}
