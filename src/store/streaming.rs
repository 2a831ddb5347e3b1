//! The change-event subscription's keeping: per channel, the replayId of the last event a
//! completed cycle covered (the daemon subscribes from it after a restart), and the
//! subscription's state, last event and freshness lag, which `plansync status` (another
//! process) reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::ops::{parse_ts, ts};
use super::{Store, StoreError};

/// The subscription as the daemon last recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingStatus {
    /// `disabled`, `connecting`, `subscribed`, `down` or `unsupported`.
    pub state: String,
    pub since: DateTime<Utc>,
    pub error: Option<String>,
    /// The channels, comma-separated.
    pub channels: String,
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_commit_at: Option<DateTime<Utc>>,
    /// Commit of the oldest change a woken cycle covered to the end of that cycle.
    pub freshness_lag_ms: Option<i64>,
    pub woken_cycles: u64,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// The stored replayId of every channel that has one.
    pub fn replay_ids(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT channel, replay_id FROM streaming_replay ORDER BY channel")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps the replayIds of events a completed cycle covered, in one transaction.
    pub fn save_replay_ids(
        &self,
        ids: &BTreeMap<String, i64>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // `unchecked`: the daemon holds the store shared; no other transaction is open here.
        let tx = self.conn.unchecked_transaction()?;
        for (channel, id) in ids {
            tx.execute(
                "INSERT INTO streaming_replay (channel, replay_id, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (channel) DO UPDATE SET replay_id = ?2, updated_at = ?3",
                params![channel, id, ts(now)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the subscription's state for `status`.
    pub fn save_streaming_status(&self, s: &StreamingStatus) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO streaming_state (id, state, since, error, channels, last_event_at,
                 last_commit_at, freshness_lag_ms, woken_cycles, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET state = ?1, since = ?2, error = ?3, channels = ?4,
                 last_event_at = ?5, last_commit_at = ?6, freshness_lag_ms = ?7,
                 woken_cycles = ?8, updated_at = ?9",
            params![
                s.state,
                ts(s.since),
                s.error,
                s.channels,
                s.last_event_at.map(ts),
                s.last_commit_at.map(ts),
                s.freshness_lag_ms,
                i64::try_from(s.woken_cycles).unwrap_or(i64::MAX),
                ts(s.updated_at),
            ],
        )?;
        Ok(())
    }

    /// The subscription as the daemon last recorded it; `None` when no daemon ever ran one.
    pub fn streaming_status(&self) -> Result<Option<StreamingStatus>, StoreError> {
        type Row = (
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            i64,
            String,
        );
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT state, since, error, channels, last_event_at, last_commit_at,
                        freshness_lag_ms, woken_cycles, updated_at
                 FROM streaming_state WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((state, since, error, channels, event, commit, lag, woken, updated)) = row else {
            return Ok(None);
        };
        let what = "streaming_state";
        Ok(Some(StreamingStatus {
            state,
            since: parse_ts(&since, what)?,
            error,
            channels,
            last_event_at: event.map(|t| parse_ts(&t, what)).transpose()?,
            last_commit_at: commit.map(|t| parse_ts(&t, what)).transpose()?,
            freshness_lag_ms: lag,
            woken_cycles: u64::try_from(woken).unwrap_or(0),
            updated_at: parse_ts(&updated, what)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn replay_ids_are_kept_per_channel_and_replaced() {
        let store = Store::open_in_memory().unwrap();
        assert!(store.replay_ids().unwrap().is_empty());
        let now = at("2026-12-01T10:00:00Z");
        let first = BTreeMap::from([
            ("/data/AccountChangeEvent".to_string(), 7),
            ("/data/OpportunityChangeEvent".to_string(), 12),
        ]);
        store.save_replay_ids(&first, now).unwrap();
        store
            .save_replay_ids(
                &BTreeMap::from([("/data/OpportunityChangeEvent".to_string(), 40)]),
                now,
            )
            .unwrap();
        assert_eq!(
            store.replay_ids().unwrap(),
            BTreeMap::from([
                ("/data/AccountChangeEvent".to_string(), 7),
                ("/data/OpportunityChangeEvent".to_string(), 40),
            ])
        );
    }

    #[test]
    fn the_status_round_trips_and_is_absent_before_any_daemon() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.streaming_status().unwrap(), None);
        let status = StreamingStatus {
            state: "down".into(),
            since: at("2026-12-01T10:00:00Z"),
            error: Some("403::Unknown client".into()),
            channels: "/data/AccountChangeEvent".into(),
            last_event_at: Some(at("2026-12-01T09:59:00Z")),
            last_commit_at: None,
            freshness_lag_ms: Some(2300),
            woken_cycles: 4,
            updated_at: at("2026-12-01T10:00:01Z"),
        };
        store.save_streaming_status(&status).unwrap();
        assert_eq!(store.streaming_status().unwrap(), Some(status.clone()));
        let later = StreamingStatus {
            state: "subscribed".into(),
            error: None,
            ..status
        };
        store.save_streaming_status(&later).unwrap();
        assert_eq!(store.streaming_status().unwrap(), Some(later));
    }
}
