//! `plansync explain OPPORTUNITY_ID`: which plan an opportunity links to and why, from the
//! store's mirror of the CRM: the candidates and the rule that chose between them, the plans
//! that were not candidates and why, the lock, and what would change the link.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::domain::explain::{explain_link, EmptyBecause, LinkExplanation, PlanFacts};
use crate::domain::{Membership, Rules};
use crate::sync::convert::text;

use super::inputs::AdminInputs;
use super::sync::DEFAULT_CONFIG;
use super::CliError;
use crate::sync::ObjectKind;

/// Options of `plansync explain`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_ADMIN)]
pub struct ExplainArgs {
    /// The opportunity's Id (15 or 18 characters). Example: plansync explain 006000000000001AAA
    #[arg(value_name = "OPPORTUNITY_ID")]
    pub opportunity_id: String,

    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Print one JSON object instead of the text: {"opportunity_id", "opportunity_name",
    /// "account_id", "account_name", "close_date", "current_link", "locked", "link" (the plan
    /// the next cycle sets), "rules_link", "changes" (whether the next cycle changes the link),
    /// "decider" (the rule that chose, or null), "empty_because" (no_account, no_close_date,
    /// no_candidate or null), "candidates": [{"plan_id", "plan_name", "membership" (direct,
    /// junction, hierarchy), "hops", "period_start", "period_end", "period_days", "status"}]
    /// best first, "not_candidates": [{"plan_id", "plan_name", "membership", "status",
    /// "reasons": [text]}], "levers": [text]}. Example: plansync explain 006… --json
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ExplainArgs) -> Result<(), CliError> {
    let input = AdminInputs::load(
        &args.config,
        &args.opportunity_id,
        ObjectKind::Opportunity,
        "explain",
    )?;
    let (store, names, opp_id) = (&input.store, &input.names, &input.id);
    let (rules, inputs) = input.org()?;
    let explanation = explain_link(&inputs.org, &rules, opp_id).ok_or_else(|| {
        CliError::Admin(format!(
            "no opportunity {opp_id} in the store's mirror of the CRM (deleted, mistyped, or not pulled yet: run `plansync sync`)"
        ))
    })?;
    let opp_name = inputs.opportunity_names.get(opp_id).cloned().flatten();
    let account_name = explanation
        .account_id
        .as_deref()
        .and_then(|a| store.record(&names.account.object, a).ok().flatten())
        .and_then(|r| text(&r.fields, &names.account.name));
    if args.json {
        let value = explanation_json(
            &explanation,
            opp_name.as_deref(),
            account_name.as_deref(),
            &rules,
        );
        println!("{}", super::status::pretty(&value));
        return Ok(());
    }
    print!(
        "{}",
        render(
            &explanation,
            opp_name.as_deref(),
            account_name.as_deref(),
            &rules
        )
    );
    Ok(())
}

/// A membership as `--json` names it: its kind and, for the hierarchy, the hops.
fn membership_json(m: Option<Membership>) -> (Value, Value) {
    match m {
        None => (Value::Null, Value::Null),
        Some(Membership::Direct) => (json!("direct"), Value::Null),
        Some(Membership::Junction) => (json!("junction"), Value::Null),
        Some(Membership::Hierarchy { hops }) => (json!("hierarchy"), json!(hops)),
    }
}

/// The explanation as `--json` prints it (fields documented on [`ExplainArgs::json`]).
pub fn explanation_json(
    e: &LinkExplanation,
    opp_name: Option<&str>,
    account_name: Option<&str>,
    rules: &Rules,
) -> Value {
    let candidates: Vec<Value> = e
        .candidates
        .iter()
        .map(|c| {
            let (kind, hops) = membership_json(Some(c.membership));
            json!({
                "plan_id": c.plan.id,
                "plan_name": c.plan.name,
                "membership": kind,
                "hops": hops,
                "period_start": c.plan.period_start,
                "period_end": c.plan.period_end,
                "period_days": c.period_days,
                "status": c.plan.status,
            })
        })
        .collect();
    let not_candidates: Vec<Value> = e
        .not_candidates
        .iter()
        .map(|r| {
            let (kind, hops) = membership_json(r.membership);
            json!({
                "plan_id": r.plan.id,
                "plan_name": r.plan.name,
                "membership": kind,
                "hops": hops,
                "period_start": r.plan.period_start,
                "period_end": r.plan.period_end,
                "status": r.plan.status,
                "reasons": r.reasons.iter().map(|x| x.describe(rules)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "opportunity_id": e.opportunity_id,
        "opportunity_name": opp_name,
        "account_id": e.account_id,
        "account_name": account_name,
        "close_date": e.close_date,
        "current_link": e.current_link,
        "locked": e.locked,
        "link": e.link,
        "rules_link": e.rules_link,
        "changes": e.current_link != e.link,
        "decider": e.decider.map(|d| d.describe()),
        "empty_because": e.empty_because.map(|w| match w {
            EmptyBecause::NoAccount => "no_account",
            EmptyBecause::NoCloseDate => "no_close_date",
            EmptyBecause::NoCandidate => "no_candidate",
        }),
        "candidates": candidates,
        "not_candidates": not_candidates,
        "levers": e.levers.iter().map(|l| l.describe(rules)).collect::<Vec<_>>(),
    })
}

fn membership(m: Membership) -> String {
    match m {
        Membership::Direct => "direct (the plan's account)".into(),
        Membership::Junction => "junction (an extra account of the plan)".into(),
        Membership::Hierarchy { hops } => format!("hierarchy, {hops} level(s) below"),
    }
}

fn period(p: &PlanFacts) -> String {
    let d = |x: Option<chrono::NaiveDate>| x.map_or("(none)".to_string(), |d| d.to_string());
    format!("{}..{}", d(p.period_start), d(p.period_end))
}

fn link(l: &Option<String>) -> String {
    l.clone().unwrap_or_else(|| "(empty)".into())
}

/// The explanation as text.
pub fn render(
    e: &LinkExplanation,
    opp_name: Option<&str>,
    account_name: Option<&str>,
    rules: &Rules,
) -> String {
    let mut out = String::new();
    let name = opp_name.map(|n| format!(" ({n})")).unwrap_or_default();
    out.push_str(&format!("Opportunity {}{name}\n", e.opportunity_id));
    out.push_str(&format!(
        "  account {}{}, close date {}\n",
        e.account_id.as_deref().unwrap_or("(none)"),
        account_name.map(|n| format!(" ({n})")).unwrap_or_default(),
        e.close_date
            .map_or_else(|| "(none)".to_string(), |d| d.to_string())
    ));
    out.push_str(&format!(
        "  current link {}{}\n",
        link(&e.current_link),
        if e.locked {
            ", locked (Plan_Link_Locked__c)"
        } else {
            ""
        }
    ));
    out.push_str(&format!("  links to: {}\n", link(&e.link)));
    if e.locked {
        out.push_str(&format!(
            "  why: the link is locked, so it is kept as is (the rules alone would give {})\n",
            link(&e.rules_link)
        ));
    } else if let (Some(first), Some(decider)) = (e.candidates.first(), e.decider) {
        out.push_str(&format!(
            "  why: plan {} won by {}\n",
            first.plan.label(),
            decider.describe()
        ));
    } else if let Some(why) = e.empty_because {
        out.push_str(&format!(
            "  why: {}\n",
            match why {
                EmptyBecause::NoAccount => "the opportunity has no AccountId",
                EmptyBecause::NoCloseDate => "the opportunity has no CloseDate",
                EmptyBecause::NoCandidate => "no plan is a candidate (see below)",
            }
        ));
    }
    if e.current_link != e.link {
        out.push_str(&format!(
            "  the next cycle changes the link from {} to {}\n",
            link(&e.current_link),
            link(&e.link)
        ));
    }

    out.push_str(&format!(
        "\nCandidates ({}), best first\n",
        e.candidates.len()
    ));
    if e.candidates.is_empty() {
        out.push_str("  none\n");
    }
    for (i, c) in e.candidates.iter().enumerate() {
        out.push_str(&format!(
            "  {}. {}: {}; period {} ({} days); status {}\n",
            i + 1,
            c.plan.label(),
            membership(c.membership),
            period(&c.plan),
            c.period_days,
            c.plan.status.as_deref().unwrap_or("(none)")
        ));
    }
    if e.candidates.len() > 1 {
        out.push_str(
            "  tie-breaks, in order: closest membership, shortest period, latest start, smallest Id\n",
        );
    }

    out.push_str(&format!("\nNot candidates ({})\n", e.not_candidates.len()));
    if e.not_candidates.is_empty() {
        out.push_str("  none of the account's plans was left out\n");
    }
    for r in &e.not_candidates {
        let reasons: Vec<String> = r.reasons.iter().map(|x| x.describe(rules)).collect();
        out.push_str(&format!(
            "  {}: period {}; status {}{}: {}\n",
            r.plan.label(),
            period(&r.plan),
            r.plan.status.as_deref().unwrap_or("(none)"),
            r.membership
                .map(|m| format!("; {}", membership(m)))
                .unwrap_or_default(),
            reasons.join("; ")
        ));
    }

    out.push_str("\nWhat would change the link\n");
    for lever in &e.levers {
        out.push_str(&format!("  - {}\n", lever.describe(rules)));
    }
    out
}
