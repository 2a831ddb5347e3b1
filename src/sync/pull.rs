//! Step 1 of the cycle (design.md §4): pull each object changed since its cursor through
//! `queryAll`, ordered by (SystemModstamp, Id), storing each page in one transaction with the
//! cursor advance so a crash loses no page.

use chrono::Duration;
use tracing::{debug, info_span, Instrument};

use crate::crm::{soql, CrmClient};
use crate::store::{Cursor, MirrorRecord, Store};

use super::convert::{parse_datetime, text};
use super::names::{Names, ObjectKind, IS_DELETED, SYSTEM_MODSTAMP};
use super::report::ObjectStats;
use super::{Hooks, Progress, SyncError};

/// Builds the incremental (or full, with no cursor) query of one object.
pub fn build_query(
    names: &Names,
    kind: ObjectKind,
    since: Option<&Cursor>,
    lookback: Duration,
) -> String {
    let fields = names.select_fields(kind).join(", ");
    let object = names.object(kind);
    match since {
        Some(cursor) => format!(
            "SELECT {fields} FROM {object} WHERE {SYSTEM_MODSTAMP} >= {} ORDER BY {SYSTEM_MODSTAMP}, Id",
            soql::datetime(cursor.system_modstamp - lookback)
        ),
        None => format!("SELECT {fields} FROM {object} ORDER BY {SYSTEM_MODSTAMP}, Id"),
    }
}

/// What a pull of one object saw.
pub struct Pulled {
    pub stats: ObjectStats,
    /// Every Id the CRM returned as live (for the full reconcile).
    pub live_ids: Vec<String>,
    /// Ids of records that arrived (changed, created or deleted).
    pub changed_ids: Vec<String>,
}

/// Pulls one object into the store. `full` ignores the cursor.
pub async fn pull_object(
    crm: &CrmClient,
    store: &mut Store,
    names: &Names,
    kind: ObjectKind,
    full: bool,
    lookback: Duration,
    hooks: &Hooks<'_>,
) -> Result<Pulled, SyncError> {
    let object = names.object(kind).to_string();
    let span = info_span!("pull", object = %object);
    async {
        let cursor = if full { None } else { store.cursor(&object)? };
        let query = build_query(names, kind, cursor.as_ref(), lookback);
        debug!(%query, "querying");
        let mut page = crm.query(&query, true).await?;
        let mut pulled = Pulled {
            stats: ObjectStats::default(),
            live_ids: Vec::new(),
            changed_ids: Vec::new(),
        };
        loop {
            let mut records = Vec::with_capacity(page.records.len());
            for fields in page.records {
                let id = text(&fields, "Id").ok_or_else(|| SyncError::BadRecord {
                    object: object.clone(),
                    id: "?".into(),
                    why: "the record has no Id".into(),
                })?;
                let system_modstamp = text(&fields, SYSTEM_MODSTAMP)
                    .as_deref()
                    .and_then(parse_datetime)
                    .ok_or_else(|| SyncError::BadRecord {
                        object: object.clone(),
                        id: id.clone(),
                        why: format!("{SYSTEM_MODSTAMP} is missing or not a datetime"),
                    })?;
                let is_deleted = super::convert::boolean(&fields, IS_DELETED);
                if is_deleted {
                    pulled.stats.deleted += 1;
                } else {
                    pulled.stats.pulled += 1;
                    pulled.live_ids.push(id.clone());
                }
                pulled.changed_ids.push(id.clone());
                records.push(MirrorRecord {
                    id,
                    system_modstamp,
                    is_deleted,
                    fields,
                });
            }
            let next_cursor = records.last().map(|r| Cursor {
                system_modstamp: r.system_modstamp,
                id: r.id.clone(),
            });
            store.apply_page(&object, &records, next_cursor.as_ref())?;
            pulled.stats.pages += 1;
            (hooks.progress)(&Progress::Pulled {
                object: object.clone(),
                rows: pulled.stats.pulled + pulled.stats.deleted,
                total: page.total_size,
            });
            if page.done {
                break;
            }
            if let Some(why) = (hooks.stop)() {
                return Err(SyncError::Stopped(why));
            }
            let Some(next) = page.next_records_url else {
                break;
            };
            page = crm.query_more(&next).await?;
        }
        Ok(pulled)
    }
    .instrument(span)
    .await
}
