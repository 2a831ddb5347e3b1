//! Table tests of the outbox policy: writes in doubt, unwanted queued writes, refusals.

use chrono::Duration;
use serde_json::json;

use super::*;
use crate::store::WriteStatus;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn map(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn row(id: i64, object: &str, record_id: &str, kind: WriteKind, fields: Value) -> OutboxRow {
    OutboxRow {
        id,
        object: object.into(),
        record_id: record_id.into(),
        kind,
        fields: map(fields),
        reason: "rollups".into(),
        status: WriteStatus::New,
        attempts: 0,
        last_error_code: None,
        last_error_message: None,
        permanent: false,
        next_attempt_at: None,
        superseded_by: None,
        created_at: t0(),
        updated_at: t0(),
        set_aside: false,
    }
}

fn upsert() -> WriteKind {
    WriteKind::Upsert {
        external_id_field: "Snapshot_Key__c".into(),
    }
}

fn record(deleted: bool, fields: Value) -> MirrorRecord {
    MirrorRecord {
        id: "x".into(),
        system_modstamp: t0(),
        is_deleted: deleted,
        fields: map(fields),
    }
}

#[test]
fn the_crm_holds_a_write_over_the_fields_it_read() {
    let cases = [
        (json!({"A": 1, "B": "x"}), json!({"A": 1}), true),
        (json!({"A": 10000}), json!({"A": 10000.00}), true),
        (json!({"A": 1}), json!({"A": 2}), false),
        (json!({"A": null}), json!({"A": null}), true),
        (json!({"A": null}), json!({"A": 0}), false),
        (json!({"A": 0}), json!({"A": null}), false),
        // A field the read does not carry cannot tell; with none compared, nothing holds.
        (json!({"A": 1}), json!({"A": 1, "Changed_At__c": "t"}), true),
        (json!({"A": 1}), json!({"Changed_At__c": "t"}), false),
        (json!({"A": "7"}), json!({"A": 7}), true),
    ];
    for (crm, written, holds) in cases {
        assert_eq!(
            crm_holds(&map(crm.clone()), &map(written.clone())),
            holds,
            "{crm} holds {written}"
        );
    }
}

#[test]
fn a_write_in_doubt_landed_only_as_an_update_the_live_record_holds() {
    let update = row(
        1,
        "Account_Plan__c",
        "a01",
        WriteKind::Update,
        json!({"A": 5}),
    );
    let snapshot = row(2, "Plan_Snapshot__c", "", upsert(), json!({"A": 5}));
    let holding = record(false, json!({"A": 5}));
    let deleted = record(true, json!({"A": 5}));
    let other = record(false, json!({"A": 6}));
    let cases = [
        (&update, Some(&holding), true),
        (&update, Some(&other), false),
        (&update, Some(&deleted), false),
        (&update, None, false),
        (&snapshot, Some(&holding), false),
        (&snapshot, None, false),
    ];
    for (row, record, landed_) in cases {
        assert_eq!(landed(row, record), landed_, "row {} {record:?}", row.id);
    }
}

#[test]
fn writes_in_doubt_are_reread_by_object_once_per_record() {
    let names = Names::default();
    let in_doubt = [
        row(1, &names.plan.object, "a01", WriteKind::Update, json!({})),
        row(
            2,
            &names.opportunity.object,
            "006",
            WriteKind::Update,
            json!({}),
        ),
        row(3, &names.plan.object, "a01", WriteKind::Update, json!({})),
        row(4, &names.plan.object, "a02", WriteKind::Update, json!({})),
        row(5, &names.snapshot.object, "", upsert(), json!({})),
        row(6, "Unknown__c", "x", WriteKind::Update, json!({})),
    ];
    let reads = rereads(&in_doubt, &names);
    assert_eq!(reads.len(), 2, "{reads:?}");
    let of = |kind: ObjectKind| {
        reads
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, m)| m.clone())
    };
    assert_eq!(
        of(ObjectKind::Plan),
        Some(PullMode::Where(vec!["Id IN ('a01','a02')".into()]))
    );
    assert_eq!(
        of(ObjectKind::Opportunity),
        Some(PullMode::Where(vec!["Id IN ('006')".into()]))
    );
    assert!(rereads(&in_doubt[4..5], &names).is_empty());
}

#[test]
fn queued_writes_no_longer_wanted_are_set_aside() {
    let names = Names::default();
    let plan = names.plan.object.clone();
    let opp = names.opportunity.object.clone();
    // The records this recompute plans a write for.
    let planned_writes = [(plan.as_str(), "a01-wanted"), (opp.as_str(), "006-wanted")];
    let recomputed: BTreeMap<String, Rollups> = ["a01-wanted", "a02-recomputed"]
        .into_iter()
        .map(|id| (id.to_string(), Rollups::default()))
        .collect();
    let wanted = Wanted::new(&names, &recomputed);
    let update = WriteKind::Update;
    let cases = [
        // (row, plan gone from the mirror, set aside)
        (
            row(1, &plan, "a01-wanted", update.clone(), json!({})),
            false,
            false,
        ),
        (
            row(2, &plan, "a02-recomputed", update.clone(), json!({})),
            false,
            true,
        ),
        (
            row(3, &plan, "a03-left-alone", update.clone(), json!({})),
            false,
            false,
        ),
        (
            row(4, &plan, "a04-deleted", update.clone(), json!({})),
            true,
            true,
        ),
        (
            row(5, &opp, "006-wanted", update.clone(), json!({})),
            false,
            false,
        ),
        (
            row(6, &opp, "006-not-wanted", update.clone(), json!({})),
            false,
            true,
        ),
        (
            row(7, &names.snapshot.object, "s", upsert(), json!({})),
            false,
            false,
        ),
        (
            row(8, &plan, "a02-recomputed", upsert(), json!({})),
            false,
            false,
        ),
        (
            row(9, "Other__c", "x", update.clone(), json!({})),
            true,
            false,
        ),
    ];
    for (row, gone, aside) in cases {
        let planned = planned_writes.contains(&(row.object.as_str(), row.record_id.as_str()));
        assert_eq!(
            wanted.unwanted(&row, planned, gone),
            aside,
            "row {}",
            row.id
        );
    }
    let needs: Vec<bool> = [
        row(1, &plan, "a01-wanted", update.clone(), json!({})),
        row(2, &plan, "a03-left-alone", update.clone(), json!({})),
        row(3, &opp, "006-not-wanted", update, json!({})),
    ]
    .iter()
    .map(|r| wanted.needs_plan_record(r))
    .collect();
    assert_eq!(needs, [false, true, false]);
}

#[test]
fn a_refused_write_is_held_back_until_its_values_or_its_record_change() {
    let changed_at = "Rollups_Changed_At__c";
    let mut refusal = row(
        1,
        "Account_Plan__c",
        "a01",
        WriteKind::Update,
        json!({"Won__c": 5, changed_at: "2026-03-01T11:00:00Z"}),
    );
    refusal.status = WriteStatus::Failed;
    refusal.permanent = true;
    // The planned write's fields.
    let same = map(json!({"Won__c": 5, changed_at: "2026-03-01T12:00:00Z"}));
    let new_value = map(json!({"Won__c": 6}));
    let more_fields = map(json!({"Won__c": 5, "Open__c": 1}));
    let before = Some(t0() - Duration::hours(1));
    let after = Some(t0() + Duration::seconds(1));
    let cases = [
        (&same, None, true),
        (&same, before, true),
        (&same, Some(t0()), true),
        (&same, after, false),
        (&new_value, before, false),
        (&more_fields, before, false),
    ];
    for (fields, modstamp, held) in cases {
        assert_eq!(
            repeats_refusal(fields, &refusal, modstamp, changed_at),
            held,
            "{fields:?} at {modstamp:?}"
        );
    }
}
