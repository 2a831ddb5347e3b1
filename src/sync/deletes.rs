//! Step 2 of the cycle (design.md §4): deletions the pulls cannot see. After a full pull,
//! local rows the CRM no longer has are removed. After an incremental pull, `getDeleted` for
//! the window since the log was last read removes records purged from the recycle bin
//! before a pull could see them as deleted; when the log no longer reaches back that far,
//! every live Id is listed instead. A CRM that refuses the log only delays the removal to the
//! nightly full run. Removed records are returned as changes, so the plans they counted in
//! are recomputed.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use crate::crm::{pages, CrmError};
use crate::store::Cursor;

use super::names::ObjectKind;
use super::pull::ChangedRecord;
use super::{convert, off_worker, Hooks, Progress, SyncEngine, SyncError};

/// The meta key holding how far the CRM's delete log of `object` was last read.
pub(super) fn delete_log_key(object: &str) -> String {
    format!("delete_log_covered:{object}")
}

/// Where the delete-log window starts: where the log last reached (`covered`), or the
/// cursor before this pull for a first look, minus the lookback.
pub fn delete_log_start(
    covered: Option<DateTime<Utc>>,
    cursor: DateTime<Utc>,
    lookback: Duration,
) -> DateTime<Utc> {
    covered.unwrap_or(cursor) - lookback
}

/// How long the delete log is left unread while incremental cycles run: the CRM keeps it for
/// 15 days (the recycle bin's), so it is read well before that, with days to spare for a
/// daemon that was down.
pub const DELETE_LOG_DUE: Duration = Duration::days(12);

/// Whether the delete log is read after a pull: in every full pull (the nightly run, a
/// resync), and in an incremental one only when it was never read or was last read
/// (`covered`) [`DELETE_LOG_DUE`] or longer before `now`. Soft deletions need no log: they
/// arrive as IsDeleted rows from queryAll.
pub fn log_due(full: bool, covered: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    full || covered.is_none_or(|covered| now - covered >= DELETE_LOG_DUE)
}

/// Whether a window is worth a request: longer than a minute (the CRM's log has minute
/// granularity).
pub fn worth_reading(start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    end - start > Duration::minutes(1)
}

/// Whether the log reaches back to `start`: it does unless the CRM says its earliest
/// deletion is later.
pub fn log_reaches(earliest_available: Option<DateTime<Utc>>, start: DateTime<Utc>) -> bool {
    earliest_available.is_none_or(|earliest| earliest <= start)
}

/// The local Ids the CRM does not list as live, in local order.
pub fn missing<S: AsRef<str>>(local: Vec<String>, live: &[S]) -> Vec<String> {
    let live: HashSet<&str> = live.iter().map(AsRef::as_ref).collect();
    local
        .into_iter()
        .filter(|id| !live.contains(id.as_str()))
        .collect()
}

/// The Ids the delete log lists that the mirror still holds as live, in log order.
pub fn logged_gone(log: Vec<(String, DateTime<Utc>)>, local_live: Vec<String>) -> Vec<String> {
    let local: HashSet<String> = local_live.into_iter().collect();
    log.into_iter()
        .map(|(id, _)| id)
        .filter(|id| local.contains(id))
        .collect()
}

impl SyncEngine {
    /// After a full pull of `object`: removes the local rows whose Ids the CRM did not return
    /// (those the pull did not note, [`crate::store::Store::note_live`]). Returns how many were
    /// removed.
    pub(super) fn remove_missing(&mut self, object: &str) -> Result<u64, SyncError> {
        off_worker(|| {
            let gone = self.store.live_ids_not_noted(object)?;
            self.store.clear_noted_live(object)?;
            if gone.is_empty() {
                return Ok(0);
            }
            info!(object = %object, count = gone.len(), "removing records the CRM no longer has");
            Ok(self.store.remove_records(object, &gone)? as u64)
        })
    }

    /// After a full or incremental pull of `object`: what the delete log shows removed, when
    /// the log is due ([`log_due`]). A pull that had no cursor before it took every record the
    /// CRM has, so the log counts as read up to `now` without a request.
    pub(super) async fn deletes_if_due(
        &mut self,
        kind: ObjectKind,
        object: &str,
        full: bool,
        cursor_before: Option<Cursor>,
        now: DateTime<Utc>,
        hooks: &Hooks<'_>,
    ) -> Result<Vec<ChangedRecord>, SyncError> {
        let key = delete_log_key(object);
        if cursor_before.is_none() {
            off_worker(|| self.store.set_meta(&key, &convert::format_datetime(now)))?;
            return Ok(Vec::new());
        }
        let covered = off_worker(|| self.store.meta(&key))?;
        let covered = covered.as_deref().and_then(convert::parse_datetime);
        if !log_due(full, covered, now) {
            return Ok(Vec::new());
        }
        self.deletes_since(kind, object, cursor_before, now, hooks)
            .await
    }

    /// After an incremental pull of `object` that had a cursor before it (`cursor_before`):
    /// what the delete log shows removed since it was last read, up to `now`.
    pub(super) async fn deletes_since(
        &mut self,
        kind: ObjectKind,
        object: &str,
        cursor_before: Option<Cursor>,
        now: DateTime<Utc>,
        hooks: &Hooks<'_>,
    ) -> Result<Vec<ChangedRecord>, SyncError> {
        let Some(cursor) = cursor_before else {
            return Ok(Vec::new());
        };
        let covered = off_worker(|| self.store.meta(&delete_log_key(object)))?;
        let covered = covered.as_deref().and_then(convert::parse_datetime);
        let start = delete_log_start(covered, cursor.system_modstamp, self.settings.lookback);
        self.apply_delete_log(kind, object, (start, now), hooks)
            .await
    }

    /// `getDeleted` from `start` to `end` (the cycle's start), or the list of every live Id
    /// when the log no longer reaches back to `start`: removes what the CRM deleted and
    /// returns the removed records as changes.
    pub(super) async fn apply_delete_log(
        &mut self,
        kind: ObjectKind,
        object: &str,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        hooks: &Hooks<'_>,
    ) -> Result<Vec<ChangedRecord>, SyncError> {
        if !worth_reading(start, end) {
            return Ok(Vec::new());
        }
        let log = match self.crm.get_deleted(object, start, end).await {
            Ok(log) => log,
            Err(CrmError::QuotaExceeded { message }) => return Err(SyncError::Stopped(message)),
            Err(e) => {
                warn!(object, error = %e, "the delete log is not available; the nightly full run will reconcile");
                return Ok(Vec::new());
            }
        };
        let gone: Vec<String> = if log_reaches(log.earliest_date_available, start) {
            let local = off_worker(|| self.store.live_ids(object))?;
            logged_gone(log.deleted, local)
        } else {
            info!(
                object,
                "the delete log does not reach back far enough: listing every Id"
            );
            let live = self.list_live_ids(object, hooks).await?;
            missing(off_worker(|| self.store.live_ids(object))?, &live)
        };
        off_worker(|| {
            let mut removed = Vec::with_capacity(gone.len());
            for id in &gone {
                if let Some(record) = self.store.record(object, id)? {
                    removed.push(ChangedRecord {
                        kind,
                        id: id.clone(),
                        before: Some(record.fields.clone()),
                        after: record.fields,
                        deleted: true,
                    });
                }
            }
            self.store.remove_records(object, &gone)?;
            if let Some(covered) = log.latest_date_covered {
                self.store
                    .set_meta(&delete_log_key(object), &convert::format_datetime(covered))?;
            }
            Ok(removed)
        })
    }

    /// Every live Id of `object` in the CRM, through queryAll, so archived tasks and events
    /// (absent from query) still count as live.
    async fn list_live_ids(
        &self,
        object: &str,
        hooks: &Hooks<'_>,
    ) -> Result<Vec<String>, SyncError> {
        let first = self
            .crm
            .query(
                &format!("SELECT Id FROM {object} WHERE IsDeleted = false"),
                true,
            )
            .await?;
        let mut live = HashSet::new();
        pages::follow(
            &self.crm,
            first,
            || (hooks.stop)().map(SyncError::Stopped),
            |page| {
                live.extend(page.records.iter().filter_map(|r| convert::text(r, "Id")));
                (hooks.progress)(&Progress::Pulled {
                    object: object.to_string(),
                    rows: live.len() as u64,
                    total: page.total_size,
                });
                Ok(())
            },
        )
        .await?;
        Ok(live.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_window_starts_where_the_log_reached_or_at_the_cursor() {
        let lookback = Duration::seconds(600);
        let cursor = at("2026-03-01T12:00:00Z");
        let cases = [
            (None, "2026-03-01T11:50:00Z"),
            (Some(at("2026-03-01T12:30:00Z")), "2026-03-01T12:20:00Z"),
            (Some(at("2026-03-01T09:00:00Z")), "2026-03-01T08:50:00Z"),
        ];
        for (covered, start) in cases {
            assert_eq!(
                delete_log_start(covered, cursor, lookback),
                at(start),
                "{covered:?}"
            );
        }
    }

    #[test]
    fn the_log_is_read_in_full_pulls_and_when_it_nears_the_recycle_bins_window() {
        let now = at("2026-03-20T12:00:00Z");
        let cases = [
            (true, Some(now), true),
            (true, None, true),
            (false, None, true),
            (false, Some(now), false),
            (false, Some(now - Duration::days(11)), false),
            (
                false,
                Some(now - Duration::days(12) + Duration::seconds(1)),
                false,
            ),
            (false, Some(now - Duration::days(12)), true),
            (false, Some(now - Duration::days(20)), true),
        ];
        for (full, covered, due) in cases {
            assert_eq!(log_due(full, covered, now), due, "{full} {covered:?}");
        }
        assert!(
            DELETE_LOG_DUE < Duration::days(15),
            "read before the CRM forgets (15 days)"
        );
    }

    #[test]
    fn only_windows_longer_than_a_minute_are_read() {
        let start = at("2026-03-01T12:00:00Z");
        let cases = [
            (Duration::zero(), false),
            (Duration::seconds(59), false),
            (Duration::minutes(1), false),
            (Duration::seconds(61), true),
            (Duration::hours(5), true),
            (Duration::seconds(-30), false),
        ];
        for (length, read) in cases {
            assert_eq!(worth_reading(start, start + length), read, "{length}");
        }
    }

    #[test]
    fn a_log_that_starts_after_the_window_does_not_reach() {
        let start = at("2026-03-01T12:00:00Z");
        let cases = [
            (None, true),
            (Some(at("2026-02-20T00:00:00Z")), true),
            (Some(start), true),
            (Some(at("2026-03-01T12:00:01Z")), false),
        ];
        for (earliest, reaches) in cases {
            assert_eq!(log_reaches(earliest, start), reaches, "{earliest:?}");
        }
    }

    #[test]
    fn what_is_removed_is_what_the_mirror_holds_and_the_crm_does_not() {
        assert_eq!(
            missing(ids(&["a", "b", "c", "d"]), &["c", "a", "z"]),
            ids(&["b", "d"])
        );
        assert_eq!(missing(ids(&["a"]), &["a"]), Vec::<String>::new());
        assert_eq!(missing(ids(&["a", "b"]), &[] as &[&str]), ids(&["a", "b"]));

        let t = at("2026-03-01T12:00:00Z");
        let log = vec![
            ("b".to_string(), t),
            ("x".to_string(), t),
            ("a".to_string(), t),
        ];
        assert_eq!(
            logged_gone(log, ids(&["a", "b", "c"])),
            ids(&["b", "a"]),
            "an Id the mirror never had is not removed"
        );
        assert!(logged_gone(Vec::new(), ids(&["a"])).is_empty());
    }
}
