//! Steps 3–4 of the cycle: build the domain's inputs from the mirror, compute the desired
//! links and rollups, and diff them against the values last read from (or written to) the CRM.
//!
//! The cycle computes group by group ([`plan_writes_by_group`], in `compute/groups.rs`),
//! reading only the records each group of plans needs; [`org_data`] and [`plan_writes`] read
//! and compute the whole mirror at once, for the admin commands that explain it and as the
//! reference the grouped recompute is tested against.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::domain::{
    self, Account, CurrencyType, DatedConversionRate, FieldValue, FindingKind, OrgData, Plan,
    PlanState, Rates, RollupField, Rollups, Rules,
};
use crate::store::{MirrorRecord, NewWrite, PlanMetrics, Store, WriteKind};

use super::convert::{self, current_rollup, field, field_value_json, format_datetime, text};
use super::names::{Names, ObjectKind};
use super::report::Change;
use super::SyncError;

mod groups;

pub use groups::{
    extra_accounts, junction, nothing_to_recompute, plan_writes_by_group, Covered, Junction,
    Recompute, Structure, WritesTo, GROUP_ACCOUNTS,
};

/// One record's desired changes.
#[derive(Debug, Clone)]
pub struct PlannedWrite {
    pub object: String,
    pub record_id: String,
    pub record_name: Option<String>,
    /// The fields to send, by API name.
    pub fields: Map<String, Value>,
    pub changes: Vec<Change>,
    /// Why the write is made (`link`, `rollups`, `sync_problem` or `snapshot`).
    pub reason: &'static str,
    /// An update by Id, or an upsert by external id (snapshots).
    pub kind: WriteKind,
}

impl From<PlannedWrite> for NewWrite {
    /// The write as the outbox queues it (its record's name and changes are for reports).
    fn from(w: PlannedWrite) -> NewWrite {
        NewWrite {
            object: w.object,
            record_id: w.record_id,
            kind: w.kind,
            fields: w.fields,
            reason: w.reason.to_string(),
        }
    }
}

/// The outcome of the compute step.
#[derive(Debug, Default)]
pub struct Planned {
    pub writes: Vec<PlannedWrite>,
    pub plans_recomputed: u64,
    pub links_changed: u64,
    /// Linking ambiguities, invalid plans, hierarchy cycles: (kind, subject, message).
    pub findings: Vec<(String, String, String)>,
    /// The rollups computed, by plan Id (for snapshots).
    pub rollups: BTreeMap<String, Rollups>,
    /// The state of the same plans as a snapshot records it (target, close ratio used ...).
    pub states: BTreeMap<String, PlanState>,
}

fn load(store: &Store, names: &Names, kind: ObjectKind) -> Result<Vec<MirrorRecord>, SyncError> {
    Ok(store.live_records(names.object(kind))?)
}

/// The domain's inputs read from the mirror, with what the diff needs besides.
pub struct MirrorInputs {
    pub org: OrgData,
    /// Plan records by Id: their current rollup values.
    pub plan_records: HashMap<String, MirrorRecord>,
    /// Opportunity names by Id, for readable changes.
    pub opportunity_names: HashMap<String, Option<String>>,
}

/// Reads the mirror into the domain's inputs.
pub fn org_data(store: &Store, names: &Names, rates: Rates) -> Result<MirrorInputs, SyncError> {
    let extra = junction_accounts(store, names)?;
    let plan_records: HashMap<String, MirrorRecord> = load(store, names, ObjectKind::Plan)?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut plans: Vec<_> = plan_records
        .values()
        .map(|r| convert::plan(names, r, extra.get(&r.id).cloned().unwrap_or_default()))
        .collect();
    plans.sort_by(|a, b| a.id.cmp(&b.id));
    let mut opportunity_names = HashMap::new();
    let opportunities = convert_all(store, names, ObjectKind::Opportunity, |names, r| {
        opportunity_names.insert(r.id.clone(), text(&r.fields, &names.opportunity.name));
        convert::opportunity(names, r)
    })?;
    let org = OrgData {
        accounts: convert_all(store, names, ObjectKind::Account, convert::account)?,
        plans,
        opportunities,
        contacts: convert_all(store, names, ObjectKind::Contact, convert::contact)?,
        tasks: convert_all(store, names, ObjectKind::Task, convert::task)?,
        events: convert_all(store, names, ObjectKind::Event, convert::event)?,
        rates,
    };
    Ok(MirrorInputs {
        org,
        plan_records,
        opportunity_names,
    })
}

/// Converts every live record of an object as it is read, without keeping the parsed rows.
fn convert_all<T>(
    store: &Store,
    names: &Names,
    kind: ObjectKind,
    mut convert: impl FnMut(&Names, &MirrorRecord) -> T,
) -> Result<Vec<T>, SyncError> {
    let mut out = Vec::new();
    store.for_each_live_record(names.object(kind), |r| out.push(convert(names, &r)))?;
    Ok(out)
}

/// Computes links and rollups over the mirror and diffs them into writes. With `scope`, only
/// those plans and the plans whose links move are recomputed; without, every plan.
pub fn plan_writes(
    inputs: &MirrorInputs,
    names: &Names,
    rules: &Rules,
    today: NaiveDate,
    now: DateTime<Utc>,
    scope: Option<&BTreeSet<String>>,
) -> Planned {
    let MirrorInputs {
        org,
        plan_records,
        opportunity_names: opp_names,
    } = inputs;
    let mut outcome = domain::compute(org, rules, today, scope);
    if let Some(scope) = scope {
        // A link that moves touches both its old and its new plan.
        let current: BTreeMap<String, Option<String>> = org
            .opportunities
            .iter()
            .map(|o| (o.id.clone(), o.plan_id.clone()))
            .collect();
        let moved: BTreeSet<String> = domain::plans_touched_by(&current, &outcome.links)
            .difference(scope)
            .cloned()
            .collect();
        if !moved.is_empty() {
            let more = domain::compute(org, rules, today, Some(&moved));
            outcome.rollups.extend(more.rollups);
            outcome.states.extend(more.states);
        }
    }
    let mut planned = Planned {
        plans_recomputed: outcome.rollups.len() as u64,
        findings: finding_rows(&outcome.findings),
        ..Planned::default()
    };
    let (writes, links_changed) = diff_outcome(
        &outcome,
        &org.opportunities,
        plan_records,
        opp_names,
        names,
        now,
    );
    planned.writes = writes;
    planned.links_changed = links_changed;
    planned.rollups = outcome.rollups;
    planned.states = outcome.states;
    planned
}

/// Findings as the store keeps them: (kind, subject Ids joined by commas, message).
pub(crate) fn finding_rows(findings: &[domain::Finding]) -> Vec<(String, String, String)> {
    findings
        .iter()
        .map(|f| {
            (
                finding_kind(f.kind).to_string(),
                f.ids.join(","),
                f.message.clone(),
            )
        })
        .collect()
}

/// The writes an outcome asks for against the values the mirror holds: the link of each of
/// `opportunities` whose desired link differs (a locked link is never touched), and the
/// rollup fields and Sync_Problem__c of each plan the outcome recomputed or froze that has a
/// record in `plan_records`; sorted by object and Id. Also returns how many links change.
pub(crate) fn diff_outcome(
    outcome: &domain::Outcome,
    opportunities: &[domain::Opportunity],
    plan_records: &HashMap<String, MirrorRecord>,
    opp_names: &HashMap<String, Option<String>>,
    names: &Names,
    now: DateTime<Utc>,
) -> (Vec<PlannedWrite>, u64) {
    let mut writes = Vec::new();
    let mut links_changed = 0;
    // The opportunity's plan link (design.md §3.2); a locked link is never touched.
    let link_field = &names.opportunity.plan_link;
    for opp in opportunities {
        if opp.link_locked {
            continue;
        }
        let desired = outcome.links.get(&opp.id).cloned().flatten();
        if desired == opp.plan_id {
            continue;
        }
        let old = opp
            .plan_id
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null);
        let new = desired.map(Value::String).unwrap_or(Value::Null);
        let mut fields = Map::new();
        fields.insert(link_field.clone(), new.clone());
        links_changed += 1;
        writes.push(PlannedWrite {
            object: names.opportunity.object.clone(),
            record_id: opp.id.clone(),
            record_name: opp_names.get(&opp.id).cloned().flatten(),
            fields,
            changes: vec![Change {
                object: names.opportunity.object.clone(),
                record_id: opp.id.clone(),
                record_name: opp_names.get(&opp.id).cloned().flatten(),
                field: link_field.clone(),
                old,
                new,
            }],
            reason: "link",
            kind: WriteKind::Update,
        });
    }

    // The plan's rollup fields (design.md §3.3, §3.6), and its Sync_Problem__c: the reason
    // when its rollups are frozen (a rate it needs is unusable), cleared once they compute.
    let api_name: BTreeMap<RollupField, &String> =
        names.plan.rollups.iter().map(|(f, n)| (*f, n)).collect();
    let recomputed: BTreeSet<&String> = outcome
        .rollups
        .keys()
        .chain(outcome.frozen.keys())
        .collect();
    for plan_id in recomputed {
        let Some(record) = plan_records.get(plan_id) else {
            continue;
        };
        let record_name = text(&record.fields, &names.plan.name);
        let mut fields = Map::new();
        let mut changes = Vec::new();
        let mut change =
            |fields: &mut Map<String, Value>, field: &String, old: Value, new: Value| {
                fields.insert(field.clone(), new.clone());
                changes.push(Change {
                    object: names.plan.object.clone(),
                    record_id: plan_id.clone(),
                    record_name: record_name.clone(),
                    field: field.clone(),
                    old,
                    new,
                });
            };
        if let Some(rollups) = outcome.rollups.get(plan_id) {
            let current: BTreeMap<RollupField, FieldValue> = names
                .plan
                .rollups
                .iter()
                .map(|(f, name)| (*f, current_rollup(*f, field(&record.fields, name))))
                .collect();
            for diff in domain::diff_rollups(&current, rollups) {
                if let Some(name) = api_name.get(&diff.field) {
                    change(
                        &mut fields,
                        name,
                        field_value_json(&diff.old),
                        field_value_json(&diff.new),
                    );
                }
            }
        }
        let rollups_changed = !fields.is_empty();
        if let Some(problem_field) = &names.plan.sync_problem {
            let wanted = outcome.frozen.get(plan_id);
            let current = text(&record.fields, problem_field);
            if wanted != current.as_ref() {
                change(
                    &mut fields,
                    problem_field,
                    current.map(Value::String).unwrap_or(Value::Null),
                    wanted.cloned().map(Value::String).unwrap_or(Value::Null),
                );
            }
        }
        if fields.is_empty() {
            continue;
        }
        // The change timestamp follows the rollup values only: a problem text that appears
        // or clears alone is no rollup change.
        if rollups_changed {
            fields.insert(
                names.plan.rollups_changed_at.clone(),
                Value::String(format_datetime(now)),
            );
        }
        writes.push(PlannedWrite {
            object: names.plan.object.clone(),
            record_id: plan_id.clone(),
            record_name,
            fields,
            changes,
            reason: if rollups_changed {
                "rollups"
            } else {
                "sync_problem"
            },
            kind: WriteKind::Update,
        });
    }
    writes.sort_by(|a, b| (&a.object, &a.record_id).cmp(&(&b.object, &b.record_id)));
    (writes, links_changed)
}

/// The accounts and plans (with their junction accounts) of the mirror: what plan membership
/// needs, without loading opportunities and activities.
pub fn structure(store: &Store, names: &Names) -> Result<(Vec<Account>, Vec<Plan>), SyncError> {
    let extra = junction_accounts(store, names)?;
    let accounts = convert_all(store, names, ObjectKind::Account, convert::account)?;
    let plans = convert_all(store, names, ObjectKind::Plan, |names, r| {
        convert::plan(names, r, extra.get(&r.id).cloned().unwrap_or_default())
    })?;
    Ok((accounts, plans))
}

/// Plan Id → the extra accounts its junction rows add, sorted.
fn junction_accounts(
    store: &Store,
    names: &Names,
) -> Result<BTreeMap<String, Vec<String>>, SyncError> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in load(store, names, ObjectKind::PlanAccount)? {
        if let (Some(plan), Some(account)) = (
            text(&r.fields, &names.plan_account.plan),
            text(&r.fields, &names.plan_account.account),
        ) {
            extra.entry(plan).or_default().push(account);
        }
    }
    for accounts in extra.values_mut() {
        accounts.sort();
    }
    Ok(extra)
}

/// A finding kind's stable name, as the store and `status` show it.
pub fn finding_kind(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Ambiguity => "ambiguity",
        FindingKind::InvalidPlanPeriod => "invalid_plan_period",
        FindingKind::HierarchyCycle => "hierarchy_cycle",
        FindingKind::UnknownCurrency => "unknown_currency",
        FindingKind::DatedRateGap => "dated_rate_gap",
    }
}

/// The snapshot upserts of design.md §3.7: one record per rolled-up plan, keyed
/// `{planId}:{YYYY-MM-DD}`, carrying the plan's metrics under the plan's rollup field names,
/// the plan's state on the date (target, close ratio used as a percent, status) and, in a
/// multi-currency org, the plan's CurrencyIsoCode: the metrics are in the plan's currency, so
/// the record must say so (the CRM would otherwise give it the user's default currency).
pub fn snapshot_writes(
    names: &Names,
    rollups: &BTreeMap<String, Rollups>,
    states: &BTreeMap<String, PlanState>,
    date: NaiveDate,
) -> Vec<PlannedWrite> {
    let n = &names.snapshot;
    rollups
        .iter()
        .map(|(plan_id, rollups)| {
            let key = format!("{plan_id}:{date}");
            let mut fields = Map::new();
            fields.insert(n.plan.clone(), Value::String(plan_id.clone()));
            fields.insert(n.snapshot_date.clone(), Value::String(date.to_string()));
            fields.insert(n.snapshot_key.clone(), Value::String(key.clone()));
            for (field, name) in &names.plan.rollups {
                fields.insert(name.clone(), field_value_json(&rollups.value(*field)));
            }
            if let Some(state) = states.get(plan_id) {
                let money = |d: Option<rust_decimal::Decimal>| {
                    field_value_json(&d.map_or(FieldValue::Null, FieldValue::Decimal))
                };
                fields.insert(n.revenue_target.clone(), money(state.revenue_target));
                fields.insert(
                    n.close_ratio_used.clone(),
                    money(Some(state.close_ratio_used_percent)),
                );
                fields.insert(
                    n.plan_status.clone(),
                    state.status.clone().map_or(Value::Null, Value::String),
                );
                if let Some(currency_field) = &n.currency {
                    // A plan without a currency of its own is in the corporate currency;
                    // leaving the field out lets the CRM apply its default.
                    if let Some(code) = &state.currency {
                        fields.insert(currency_field.clone(), Value::String(code.clone()));
                    }
                }
            }
            let changes = fields
                .iter()
                .map(|(field, new)| Change {
                    object: n.object.clone(),
                    record_id: key.clone(),
                    record_name: None,
                    field: field.clone(),
                    old: Value::Null,
                    new: new.clone(),
                })
                .collect();
            PlannedWrite {
                object: n.object.clone(),
                record_id: key,
                record_name: None,
                fields,
                changes,
                reason: "snapshot",
                kind: WriteKind::Upsert {
                    external_id_field: n.snapshot_key.clone(),
                },
            }
        })
        .collect()
}

/// The metrics `plansync plan --history` follows, for every plan whose rollups were
/// computed, in the plan's currency.
pub fn history_metrics(
    rollups: &BTreeMap<String, Rollups>,
    states: &BTreeMap<String, PlanState>,
) -> Vec<PlanMetrics> {
    rollups
        .iter()
        .map(|(plan_id, r)| PlanMetrics {
            plan_id: plan_id.clone(),
            currency: states.get(plan_id).and_then(|s| s.currency.clone()),
            won: r.won_amount,
            open: r.open_pipeline,
            weighted: r.weighted_pipeline,
            gap: r.pipeline_gap,
            coverage: r.coverage_ratio,
            attainment: r.attainment,
        })
        .collect()
}

/// Conversion rate records as JSON, to keep them in the store.
pub fn rates_json(types: &[CurrencyType], dated: &[DatedConversionRate]) -> Value {
    let types: Vec<Value> = types
        .iter()
        .map(|t| {
            serde_json::json!({
                "iso_code": t.iso_code,
                "conversion_rate": t.conversion_rate.to_string(),
                "is_corporate": t.is_corporate,
            })
        })
        .collect();
    let dated: Vec<Value> = dated
        .iter()
        .map(|d| {
            serde_json::json!({
                "iso_code": d.iso_code,
                "conversion_rate": d.conversion_rate.to_string(),
                "start_date": d.start_date.to_string(),
                "next_start_date": d.next_start_date.map(|n| n.to_string()),
            })
        })
        .collect();
    serde_json::json!({ "currency_types": types, "dated": dated })
}

/// The records [`rates_json`] wrote; `None` when the text is not that shape.
pub fn rates_from_json(text: &str) -> Option<(Vec<CurrencyType>, Vec<DatedConversionRate>)> {
    let value: Value = serde_json::from_str(text).ok()?;
    let types = value["currency_types"]
        .as_array()?
        .iter()
        .map(|t| {
            Some(CurrencyType {
                iso_code: t["iso_code"].as_str()?.to_string(),
                conversion_rate: t["conversion_rate"].as_str()?.parse().ok()?,
                is_corporate: t["is_corporate"].as_bool()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let dated = value["dated"]
        .as_array()?
        .iter()
        .map(|d| {
            Some(DatedConversionRate {
                iso_code: d["iso_code"].as_str()?.to_string(),
                conversion_rate: d["conversion_rate"].as_str()?.parse().ok()?,
                start_date: d["start_date"].as_str()?.parse().ok()?,
                next_start_date: match &d["next_start_date"] {
                    Value::Null => None,
                    v => Some(v.as_str()?.parse().ok()?),
                },
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((types, dated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::{d, dec, opp, plan};
    use crate::domain::CurrencyMode;
    use rust_decimal::Decimal;

    /// One USD plan on account A with one open opportunity in `currency` (100), the plan's
    /// record as last read from the CRM carrying `fields`.
    fn inputs(currency: &str, fields: Value) -> MirrorInputs {
        let types = [
            CurrencyType {
                iso_code: "USD".into(),
                conversion_rate: Decimal::ONE,
                is_corporate: true,
            },
            CurrencyType {
                iso_code: "EUR".into(),
                conversion_rate: dec("0.5"),
                is_corporate: false,
            },
        ];
        let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
        p.currency = Some("USD".into());
        let mut o = opp("O", "A", "2026-05-01");
        o.amount = Some(dec("100"));
        o.currency = Some(currency.into());
        o.plan_id = Some("P".into());
        let record = MirrorRecord {
            id: "P".into(),
            system_modstamp: DateTime::<Utc>::UNIX_EPOCH,
            is_deleted: false,
            fields: fields.as_object().cloned().unwrap_or_default(),
        };
        MirrorInputs {
            org: OrgData {
                accounts: vec![Account {
                    id: "A".into(),
                    parent_id: None,
                }],
                plans: vec![p],
                opportunities: vec![o],
                rates: Rates::from_records(CurrencyMode::Static, &types, &[]),
                ..OrgData::default()
            },
            plan_records: HashMap::from([("P".to_string(), record)]),
            opportunity_names: HashMap::new(),
        }
    }

    fn plan_write(planned: &Planned) -> Option<&PlannedWrite> {
        planned
            .writes
            .iter()
            .find(|w| w.object == "Account_Plan__c")
    }

    #[test]
    fn a_frozen_plan_gets_its_problem_text_alone_and_a_computing_plan_clears_it() {
        let names = Names::default();
        let rules = Rules::default();
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let today = d("2026-08-15");
        // The plan's rollups as the CRM holds them (an open 200 USD, nothing else).
        let held = Rollups {
            open_pipeline: dec("200"),
            open_count: 1,
            ..Rollups::default()
        };
        let open = Value::Object(
            names
                .plan
                .rollups
                .iter()
                .map(|(f, name)| (name.clone(), field_value_json(&held.value(*f))))
                .collect(),
        );

        // GBP has no rate: only Sync_Problem__c is written, without Rollups_Changed_At__c.
        let planned = plan_writes(
            &inputs("GBP", open.clone()),
            &names,
            &rules,
            today,
            now,
            None,
        );
        let w = plan_write(&planned).expect("a write of the problem text");
        assert_eq!(
            w.fields,
            serde_json::json!({
                "Sync_Problem__c": "Rollups frozen: no rate for currency GBP (Opportunity O)"
            })
            .as_object()
            .cloned()
            .unwrap()
        );
        assert_eq!(w.reason, "sync_problem");
        assert!(planned.rollups.is_empty());

        // Already there: nothing to write.
        let mut with_problem = open.clone();
        with_problem["Sync_Problem__c"] = w.fields["Sync_Problem__c"].clone();
        let planned = plan_writes(
            &inputs("GBP", with_problem.clone()),
            &names,
            &rules,
            today,
            now,
            None,
        );
        assert!(plan_write(&planned).is_none());

        // Fixed (EUR converts: 100 / 0.5 = 200, as the CRM holds): the text is cleared
        // alone, the rollups being unchanged.
        let planned = plan_writes(
            &inputs("EUR", with_problem),
            &names,
            &rules,
            today,
            now,
            None,
        );
        let w = plan_write(&planned).expect("a write clearing the problem");
        assert_eq!(w.fields.get("Sync_Problem__c"), Some(&Value::Null));
        assert!(
            !w.fields.contains_key("Rollups_Changed_At__c"),
            "{:?}",
            w.fields
        );
        assert!(!w.fields.contains_key("Open_Pipeline__c"));

        // Turned off in the mapping: never written.
        let mut off = names.clone();
        off.plan.sync_problem = None;
        let planned = plan_writes(&inputs("GBP", open), &off, &rules, today, now, None);
        assert!(plan_write(&planned).is_none());
    }

    fn state(currency: Option<&str>) -> PlanState {
        PlanState {
            revenue_target: Some(Decimal::new(10000000, 2)),
            close_ratio_used_percent: Decimal::new(3333, 2),
            close_ratio_source: crate::domain::rollups::CloseRatioSource::WinRate,
            status: Some("Active".into()),
            currency: currency.map(str::to_string),
        }
    }

    #[test]
    fn a_snapshot_carries_the_plans_state_and_its_currency_only_in_a_multi_currency_org() {
        let date = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
        let rollups = BTreeMap::from([("P1".to_string(), Rollups::default())]);
        let states = BTreeMap::from([("P1".to_string(), state(Some("EUR")))]);
        let multi = Names::from_mapping(&crate::config::Mapping::default(), true, None);
        let writes = snapshot_writes(&multi, &rollups, &states, date);
        let f = &writes[0].fields;
        assert_eq!(writes[0].record_id, "P1:2026-09-30");
        assert_eq!(f["CurrencyIsoCode"], "EUR");
        assert_eq!(f["Revenue_Target__c"].to_string(), "100000");
        assert_eq!(f["Close_Ratio_Used__c"].to_string(), "33.33");
        assert_eq!(f["Plan_Status__c"], "Active");
        // A single-currency org has no CurrencyIsoCode field: it is never sent.
        let single = Names::default();
        let writes = snapshot_writes(&single, &rollups, &states, date);
        assert!(!writes[0].fields.contains_key("CurrencyIsoCode"));
        assert_eq!(writes[0].fields["Plan_Status__c"], "Active");
        // No target: the field is cleared, not left at an older snapshot's value.
        let mut no_target = state(None);
        no_target.revenue_target = None;
        let states = BTreeMap::from([("P1".to_string(), no_target)]);
        let writes = snapshot_writes(&multi, &rollups, &states, date);
        assert_eq!(writes[0].fields["Revenue_Target__c"], Value::Null);
        assert!(!writes[0].fields.contains_key("CurrencyIsoCode"));
    }

    #[test]
    fn stored_rates_read_back_as_they_were_written() {
        let types = vec![
            CurrencyType {
                iso_code: "USD".into(),
                conversion_rate: Decimal::ONE,
                is_corporate: true,
            },
            CurrencyType {
                iso_code: "EUR".into(),
                conversion_rate: Decimal::new(92, 2),
                is_corporate: false,
            },
        ];
        let dated = vec![DatedConversionRate {
            iso_code: "EUR".into(),
            conversion_rate: Decimal::new(915, 3),
            start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            next_start_date: None,
        }];
        let text = rates_json(&types, &dated).to_string();
        assert_eq!(rates_from_json(&text), Some((types, dated)));
        assert_eq!(rates_from_json("{}"), None);
    }
}
