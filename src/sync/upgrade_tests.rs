//! The rates fingerprint a previous version stored (the `Debug` text of the rates) is read
//! once as a rates change: the first cycle after the upgrade recomputes every plan, stores the
//! fingerprint in its stable format, and the next cycle recomputes nothing.

use std::time::Duration as StdDuration;

use url::Url;

use super::rates::RATES_FINGERPRINT;
use super::*;
use crate::crm::{AuthConfig, CrmConfig};
use crate::emulator::{Emulator, RunningEmulator};

/// An engine on the emulator (no retries) and a fresh store in `dir`.
pub(crate) fn engine_on(
    emulator: &RunningEmulator,
    dir: &tempfile::TempDir,
    settings: SyncSettings,
) -> SyncEngine {
    let crm = CrmClient::new(CrmConfig {
        login_url: Url::parse(emulator.base_url()).unwrap(),
        instance_url: None,
        api_version: "62.0".into(),
        auth: AuthConfig::ClientCredentials {
            client_id: emulator.client_id().to_string(),
            client_secret: emulator.client_secret().to_string().into(),
        },
        timeout: StdDuration::from_secs(30),
        max_retries: 0,
    })
    .unwrap();
    let store = Store::open(&dir.path().join("plansync.db")).unwrap();
    SyncEngine::new(crm, store, settings)
}

/// Runs a full cycle.
pub(crate) async fn full_cycle(engine: &mut SyncEngine) -> CycleReport {
    engine
        .run_cycle(CycleOptions {
            full: true,
            ..CycleOptions::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fingerprint_in_the_old_format_recomputes_every_plan_once() {
    let emulator = Emulator::builder()
        .seed("demo")
        .multi_currency("USD")
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = SyncSettings {
        max_api_usage_percent: 100,
        currency: crate::config::CurrencyMode::Auto,
        ..SyncSettings::default()
    };
    let mut engine = engine_on(&emulator, &dir, settings);
    let incremental = CycleOptions::default();

    let full = full_cycle(&mut engine).await;
    assert!(full.plans_recomputed > 0, "{full}");
    assert_ne!(full.currency_mode.as_deref(), Some("single"), "{full}");
    let quiet = engine.run_cycle(incremental.clone()).await.unwrap();
    assert_eq!(quiet.plans_recomputed, 0, "nothing changed: {quiet}");

    // What the previous version stored: the rates' Debug text.
    let rates = SyncEngine::stored_rates(&engine.store, crate::config::CurrencyMode::Auto).unwrap();
    engine
        .store
        .set_meta(RATES_FINGERPRINT, &format!("{rates:?}"))
        .unwrap();

    let upgraded = engine.run_cycle(incremental.clone()).await.unwrap();
    assert_eq!(
        upgraded.plans_recomputed, full.plans_recomputed,
        "once, every plan: {upgraded}"
    );
    let stored = engine.store.meta(RATES_FINGERPRINT).unwrap().unwrap();
    assert!(stored.starts_with("rates v1\n"), "{stored}");
    let after = engine.run_cycle(incremental).await.unwrap();
    assert_eq!(after.plans_recomputed, 0, "and only once: {after}");
    emulator.shutdown().await;
}
