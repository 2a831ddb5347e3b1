//! A full pull reconciles the mirror with the CRM: live rows the CRM no longer returns are
//! removed, whether the pull went through REST queries or Bulk query jobs.

use chrono::{TimeZone, Utc};
use serde_json::{Map, Value};

use super::upgrade_tests::{engine_on, full_cycle};
use super::SyncSettings;
use crate::emulator::Emulator;
use crate::store::{MirrorRecord, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pull_removes_what_the_crm_no_longer_has_by_rest_and_by_bulk() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    for bulk_min_rows in [u64::MAX, 1] {
        let dir = tempfile::tempdir().unwrap();
        let settings = SyncSettings {
            bulk_min_rows,
            max_api_usage_percent: 100,
            ..SyncSettings::default()
        };
        let mut engine = engine_on(&emulator, &dir, settings);
        full_cycle(&mut engine).await;
        let live = engine.store().live_ids("Opportunity").unwrap();
        assert_eq!(live.len(), 200, "bulk_min_rows {bulk_min_rows}");

        // Rows the CRM never returns again (a record purged from its recycle bin), written
        // by another process on the same store.
        let mut other = Store::open(&dir.path().join("plansync.db")).unwrap();
        let gone: Vec<MirrorRecord> = ["006000000000001AAA", "006000000000002AAA"]
            .iter()
            .map(|id| MirrorRecord {
                id: id.to_string(),
                system_modstamp: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                is_deleted: false,
                fields: Map::<String, Value>::new(),
            })
            .collect();
        other.apply_page("Opportunity", &gone, None).unwrap();
        drop(other);
        assert_eq!(engine.store().live_ids("Opportunity").unwrap().len(), 202);

        let report = full_cycle(&mut engine).await;
        assert_eq!(
            engine.store().live_ids("Opportunity").unwrap(),
            live,
            "bulk_min_rows {bulk_min_rows}"
        );
        assert_eq!(report.objects["opportunity"].deleted, 2, "{report:?}");
        // Nothing else was removed: every other object kept its rows.
        assert_eq!(engine.store().live_ids("Account").unwrap().len(), 30);
    }
    emulator.shutdown().await;
}
