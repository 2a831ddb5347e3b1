//! The grouped recompute against the whole-org one ([`super::super::plan_writes`] over
//! [`super::super::org_data`]) on a seeded demo org, and what an unchanged cycle reads.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::*;
use crate::domain::Rates;
use crate::emulator::org::Org;
use crate::emulator::seed::seed;
use crate::metadata::standard::catalog;
use crate::store::{MirrorRecord, NewWrite, Store, WriteKind};
use crate::sync::compute::{org_data, plan_writes, Planned};
use crate::sync::convert::parse_datetime;
use crate::sync::pull::ChangedRecord;
use crate::sync::scope::{self, PlanMembership};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 15, 6, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 8, 15).unwrap()
}

/// A store holding the demo org at `scale` as a full pull leaves it (the mapped fields).
fn seeded_store(scale: u32) -> Store {
    let names = Names::default();
    let mut org = Org::new(catalog(false).unwrap(), now());
    seed(&mut org, "demo", scale, today(), now()).unwrap();
    let mut store = Store::open_in_memory().unwrap();
    for kind in ObjectKind::ALL {
        let object = names.object(kind).to_string();
        let fields = names.select_fields(kind);
        let records: Vec<MirrorRecord> = org
            .live_records(&object)
            .map(|r| {
                let kept: Map<String, Value> = fields
                    .iter()
                    .map(|f| (f.clone(), r.get(f).cloned().unwrap_or(Value::Null)))
                    .collect();
                record(&kept)
            })
            .collect();
        store.apply_page(&object, &records, None).unwrap();
    }
    store
}

fn record(fields: &Map<String, Value>) -> MirrorRecord {
    MirrorRecord {
        id: fields["Id"].as_str().unwrap().to_string(),
        system_modstamp: fields
            .get("SystemModstamp")
            .and_then(Value::as_str)
            .and_then(parse_datetime)
            .unwrap_or(now()),
        is_deleted: false,
        fields: fields.clone(),
    }
}

fn ids(store: &Store, object: &str) -> Vec<String> {
    store.live_ids(object).unwrap()
}

/// Replaces fields of a stored record (a newer version, as a pull stores it) and returns the
/// change as the pull reports it.
fn change(store: &mut Store, kind: ObjectKind, id: &str, set: Value) -> ChangedRecord {
    let names = Names::default();
    let object = names.object(kind).to_string();
    let before = store.record(&object, id).unwrap().map(|r| r.fields);
    let mut after = before.clone().unwrap_or_default();
    after.insert("Id".into(), Value::String(id.into()));
    for (k, v) in set.as_object().unwrap() {
        after.insert(k.clone(), v.clone());
    }
    let mut r = record(&after);
    r.system_modstamp = now() + Duration::hours(1);
    store.apply_page(&object, &[r], None).unwrap();
    ChangedRecord {
        kind,
        id: id.into(),
        before,
        after,
        deleted: false,
    }
}

/// Odd cases the demo seed may lack: a link to a plan of another tree, a locked link to one,
/// a link to a plan that is gone on an account in no plan, and a ParentId cycle.
fn add_odd_cases(store: &mut Store) {
    let names = Names::default();
    let opps = ids(store, "Opportunity");
    let plans = ids(store, "Account_Plan__c");
    let far_plan = plans.last().unwrap().clone();
    change(
        store,
        ObjectKind::Opportunity,
        &opps[0],
        json!({"Account_Plan__c": far_plan}),
    );
    change(
        store,
        ObjectKind::Opportunity,
        &opps[1],
        json!({"Account_Plan__c": far_plan, "Plan_Link_Locked__c": true}),
    );
    change(
        store,
        ObjectKind::Opportunity,
        &opps[2],
        json!({"Account_Plan__c": "a0Z000000000009ZZZ", "AccountId": "001000000000009ZZZ"}),
    );
    for (id, parent) in [
        ("001000000000001ZZZ", "001000000000002ZZZ"),
        ("001000000000002ZZZ", "001000000000001ZZZ"),
    ] {
        let fields = json!({
            "Id": id, "SystemModstamp": "2026-08-15T06:00:00.000+0000", "IsDeleted": false,
            "Name": id, "ParentId": parent,
        });
        store
            .apply_page(
                &names.account.object,
                &[record(fields.as_object().unwrap())],
                None,
            )
            .unwrap();
    }
}

fn whole(store: &Store, scope: Option<&BTreeSet<String>>) -> Planned {
    let names = Names::default();
    let inputs = org_data(store, &names, Rates::default()).unwrap();
    plan_writes(&inputs, &names, &Rules::default(), today(), now(), scope)
}

fn grouped(store: &Store, recompute: &Recompute, group_accounts: usize) -> (Planned, Covered) {
    grouped_with(store, recompute, group_accounts, WritesTo::Memory)
}

fn grouped_with(
    store: &Store,
    recompute: &Recompute,
    group_accounts: usize,
    writes_to: WritesTo,
) -> (Planned, Covered) {
    let names = Names::default();
    let structure = Structure::load(store, &names).unwrap();
    plan_writes_sized(
        store,
        &names,
        &Rules::default(),
        &Rates::default(),
        (today(), now()),
        &structure,
        recompute,
        (group_accounts, writes_to),
    )
    .unwrap()
}

/// Every write with its fields and changes, rollups, states and counts, as text.
fn shown(planned: &Planned) -> Vec<String> {
    let mut out: Vec<String> = planned
        .writes
        .iter()
        .map(|w| {
            format!(
                "{} {} {:?} {:?} {} {:?}",
                w.object, w.record_id, w.fields, w.kind, w.reason, w.changes
            )
        })
        .collect();
    out.extend(planned.rollups.iter().map(|(p, r)| format!("{p} {r:?}")));
    out.extend(planned.states.iter().map(|(p, s)| format!("{p} {s:?}")));
    out.push(format!(
        "recomputed {} links {}",
        planned.plans_recomputed, planned.links_changed
    ));
    out
}

#[test]
fn a_grouped_recompute_of_every_plan_plans_what_the_whole_org_recompute_plans() {
    let mut store = seeded_store(3);
    add_odd_cases(&mut store);
    let want = whole(&store, None);
    assert!(want.writes.len() > 100, "{}", want.writes.len());
    assert!(want.findings.iter().any(|f| f.0 == "hierarchy_cycle"));
    for group_accounts in [1, 7, GROUP_ACCOUNTS] {
        let (got, covered) = grouped(&store, &Recompute::All, group_accounts);
        assert_eq!(shown(&got), shown(&want), "groups of {group_accounts}");
        assert_eq!(got.findings, want.findings, "groups of {group_accounts}");
        assert!(covered.all);
    }
    // Staged (a cycle that is no dry run): none held, the same writes in the store without
    // their change lists, the same rollups and counts.
    store
        .stage_writes(&[new_write("Stale__c", "left from before")])
        .unwrap();
    let (staged, _) = grouped_with(&store, &Recompute::All, 7, WritesTo::Staging);
    assert!(staged.writes.is_empty());
    assert_eq!(staged_writes(&store), held_writes(&want));
    assert_eq!(staged.links_changed, want.links_changed);
    let mut want = want;
    want.writes.clear();
    assert_eq!(shown(&staged), shown(&want));
}

fn new_write(object: &str, record_id: &str) -> NewWrite {
    NewWrite {
        object: object.into(),
        record_id: record_id.into(),
        kind: WriteKind::Update,
        fields: Map::new(),
        reason: "link".into(),
    }
}

/// The writes staged in the store, page by page as the enqueue reads them.
fn staged_writes(store: &Store) -> Vec<NewWrite> {
    let mut all: Vec<NewWrite> = Vec::new();
    loop {
        let after = all
            .last()
            .map(|w| (w.object.as_str(), w.record_id.as_str()));
        let page = store.staged_writes(after, 50).unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// The writes held in memory, as the outbox would queue them.
fn held_writes(planned: &Planned) -> Vec<NewWrite> {
    planned.writes.iter().cloned().map(NewWrite::from).collect()
}

/// Applies the planned writes to the mirror, as a successful write-back leaves it.
fn write_back(store: &mut Store, planned: &Planned) {
    for w in &planned.writes {
        store
            .patch_record(&w.object, &w.record_id, &w.fields)
            .unwrap();
    }
}

#[test]
fn a_grouped_partial_recompute_plans_what_the_whole_org_recompute_plans_for_the_same_changes() {
    let names = Names::default();
    let mut store = seeded_store(3);
    add_odd_cases(&mut store);
    let first = whole(&store, None);
    write_back(&mut store, &first);
    let earlier: Vec<crate::store::Finding> = first
        .findings
        .iter()
        .map(|(kind, subject, message)| crate::store::Finding {
            kind: kind.clone(),
            subject: subject.clone(),
            message: message.clone(),
        })
        .collect();
    let before_structure = Structure::load(&store, &names).unwrap();
    let before_inputs = org_data(&store, &names, Rates::default()).unwrap();

    // A few changes of different kinds.
    let opps = ids(&store, "Opportunity");
    let plans = ids(&store, "Account_Plan__c");
    let accounts = ids(&store, "Account");
    let tasks = ids(&store, "Task");
    let changes = vec![
        change(
            &mut store,
            ObjectKind::Opportunity,
            &opps[10],
            json!({"CloseDate": "2025-01-15", "Amount": 1234.5}),
        ),
        change(
            &mut store,
            ObjectKind::Plan,
            &plans[3],
            json!({"Account__c": accounts[20]}),
        ),
        change(
            &mut store,
            ObjectKind::Account,
            &accounts[5],
            json!({"ParentId": null}),
        ),
        change(
            &mut store,
            ObjectKind::Task,
            &tasks[7],
            json!({"IsClosed": true, "ActivityDate": "2026-08-01"}),
        ),
    ];

    // The scope as the whole-org code found it.
    let after_inputs = org_data(&store, &names, Rates::default()).unwrap();
    let links: HashMap<String, Option<String>> = after_inputs
        .org
        .opportunities
        .iter()
        .map(|o| (o.id.clone(), o.plan_id.clone()))
        .collect();
    let contacts: HashMap<String, Option<String>> = after_inputs
        .org
        .contacts
        .iter()
        .map(|c| (c.id.clone(), c.account_id.clone()))
        .collect();
    let before = PlanMembership::new(&before_inputs.org.accounts, &before_inputs.org.plans);
    let after = PlanMembership::new(&after_inputs.org.accounts, &after_inputs.org.plans);
    let lookups = scope::Lookups {
        opportunity_links: &links,
        contact_accounts: &contacts,
    };
    let touched = scope::touched_plans(&names, &before, &after, &lookups, &changes);
    assert!(touched.len() >= 2, "{touched:?}");

    // The structure before the pull, rebuilt from the changes, is the one read before.
    let structure = Structure::load(&store, &names).unwrap();
    let (accounts_before, plans_before) = scope::structure_before(&names, &structure, &changes);
    assert_eq!(accounts_before, before_structure.accounts);
    assert_eq!(plans_before, before_structure.plans);
    // And the lookups read by Id are the whole-org ones for the changed tasks.
    let (by_id_links, by_id_contacts) = scope::lookups_for(&store, &names, &changes).unwrap();
    for (id, link) in &by_id_links {
        assert_eq!(links.get(id), Some(link));
    }
    for (id, account) in &by_id_contacts {
        assert_eq!(contacts.get(id), Some(account));
    }

    let want = whole(&store, Some(&touched));
    let recompute = Recompute::Some {
        plans: touched.clone(),
        opportunities: [opps[10].clone()].into(),
    };
    for group_accounts in [1, GROUP_ACCOUNTS] {
        let (got, covered) = grouped(&store, &recompute, group_accounts);
        assert_eq!(shown(&got), shown(&want));
        assert_eq!(
            scope::findings_to_keep_covered(
                got.findings.clone(),
                Some(&touched),
                &covered,
                earlier.clone()
            )
            .into_iter()
            .collect::<BTreeSet<_>>(),
            scope::findings_to_keep(want.findings.clone(), Some(&touched), earlier.clone())
                .into_iter()
                .collect::<BTreeSet<_>>(),
        );
        // Only the groups of the touched plans were read, not every opportunity.
        assert!(covered.opportunities.len() < opps.len(), "{covered:?}");
    }
    // Staged, a partial recompute leaves the same writes (once each, though a link that
    // moves makes it compute again with more plans).
    for group_accounts in [1, GROUP_ACCOUNTS] {
        let (staged, _) = grouped_with(&store, &recompute, group_accounts, WritesTo::Staging);
        assert_eq!(staged_writes(&store), held_writes(&want));
        assert_eq!(staged.links_changed, want.links_changed);
    }
}

#[test]
fn the_structure_before_a_pull_puts_back_changed_junction_rows_and_takes_out_new_ones() {
    let names = Names::default();
    let mut store = seeded_store(1);
    let plans = ids(&store, "Account_Plan__c");
    let accounts = ids(&store, "Account");
    let before = Structure::load(&store, &names).unwrap();
    let fields = json!({
        "Id": "a0Y000000000001ZZZ", "SystemModstamp": "2026-08-15T07:00:00.000+0000",
        "IsDeleted": false, "Account_Plan__c": plans[0], "Account__c": accounts[9],
    });
    let new = fields.as_object().unwrap().clone();
    store
        .apply_page(&names.plan_account.object, &[record(&new)], None)
        .unwrap();
    let created = ChangedRecord {
        kind: ObjectKind::PlanAccount,
        id: "a0Y000000000001ZZZ".into(),
        before: None,
        after: new,
        deleted: false,
    };
    let after = Structure::load(&store, &names).unwrap();
    assert_ne!(after.plans, before.plans, "the junction adds an account");
    let (accounts_before, plans_before) = scope::structure_before(&names, &after, &[created]);
    assert_eq!(accounts_before, before.accounts);
    assert_eq!(plans_before, before.plans);
}

#[test]
fn reference_reads_use_their_indexes() {
    let store = seeded_store(1);
    let names = Names::default();
    index_references(&store, &names).unwrap();
    for (object, field) in [
        ("Opportunity", "AccountId"),
        ("Opportunity", "Account_Plan__c"),
        ("Task", "WhoId"),
        ("Event", "WhatId"),
    ] {
        // A long list too: unhinted, SQLite scans every row of the object for it.
        for n in [1, 500] {
            assert!(
                store.uses_reference_index(object, field, n),
                "{object}.{field} x{n}"
            );
        }
    }
    assert!(!store.uses_reference_index("Contact", "Title", 1));
}

mod cycles {
    use crate::emulator::Emulator;
    use crate::sync::upgrade_tests::{engine_on, full_cycle};
    use crate::sync::{CycleOptions, SyncEngine, SyncSettings};

    #[tokio::test]
    async fn an_unchanged_cycle_reads_no_opportunity_and_a_small_change_reads_its_group() {
        let emulator = Emulator::builder()
            .seed("demo")
            .scale(4)
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let settings = SyncSettings {
            batch_size: 200,
            max_api_usage_percent: 100,
            ..SyncSettings::default()
        };
        let mut engine = engine_on(&emulator, &dir, settings);
        let incremental = CycleOptions::default();
        let read = |engine: &SyncEngine| {
            ["Opportunity", "Contact", "Task", "Event", "Account"]
                .map(|o| engine.store().mirror_rows_read(o))
        };
        let opportunities = engine.store().mirror_rows_read("Opportunity");
        assert_eq!(opportunities, 0);

        let full = full_cycle(&mut engine).await;
        assert!(full.plans_recomputed > 0, "{full}");
        let total = engine.store().live_ids("Opportunity").unwrap().len() as u64;
        assert!(total >= 800, "{total}");
        let after_full = read(&engine);
        // Opportunities on accounts in no plan, unlinked, are not even read.
        assert!(
            after_full[0] > total / 2 && after_full[0] <= total,
            "the full run reads the opportunities of every group: {} of {total}",
            after_full[0]
        );

        let quiet = engine.run_cycle(incremental.clone()).await.unwrap();
        assert_eq!(quiet.plans_recomputed, 0, "{quiet}");
        assert_eq!(
            read(&engine),
            after_full,
            "an unchanged cycle reads no opportunity, contact, activity or account"
        );

        // One opportunity's amount changes: its plans' groups are read, not the org.
        let id = engine.store().live_ids("Opportunity").unwrap()[0].clone();
        emulator.with_org(|org| {
            let fields = serde_json::json!({"Amount": 4321});
            org.update(
                "Opportunity",
                &id,
                fields.as_object().unwrap(),
                crate::clock::Clock::system().now(),
            )
            .unwrap()
        });
        let small = engine.run_cycle(incremental).await.unwrap();
        assert!(small.plans_recomputed >= 1, "{small}");
        let read_now = read(&engine)[0] - after_full[0];
        assert!(
            read_now > 0 && read_now < after_full[0] / 2,
            "{read_now} of the {} opportunities a full run reads",
            after_full[0]
        );
        emulator.shutdown().await;
    }
}
