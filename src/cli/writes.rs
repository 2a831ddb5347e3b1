//! `plansync writes`: the writes the CRM refused or that keep failing, and an admin's
//! decision on each: send it again, or give up on it.

use std::path::PathBuf;

use chrono::Utc;
use serde_json::Value;

use crate::store::{Store, StoreError, WriteStatus};

use super::status::{config_and_store, pretty, write_json};
use super::sync::DEFAULT_CONFIG;
use super::CliError;

/// Options of `plansync writes`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_ADMIN)]
pub struct WritesArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG, global = true)]
    pub config: PathBuf,

    #[command(subcommand)]
    pub action: WritesAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum WritesAction {
    /// List the failed writes with the CRM's statusCode and message.
    ///
    /// Example: plansync writes list --config /etc/plansync/plansync.toml
    #[command(after_long_help = super::help::EXIT_ADMIN)]
    List {
        /// Print a JSON array instead of the text list, one object per write: {"id", "object",
        /// "record_id", "status" (failed, ignored), "fields" (field -> value it would write),
        /// "reason", "status_code", "message", "permanent", "attempts", "next_attempt_at",
        /// "created_at", "updated_at"}, times in RFC 3339 UTC.
        #[arg(long)]
        json: bool,
    },
    /// Queue a failed (or ignored) write again; the next cycle sends it first.
    ///
    /// Example: plansync writes retry 42
    #[command(after_long_help = super::help::EXIT_ADMIN)]
    Retry {
        /// The write's id, as `plansync writes list` shows it.
        id: i64,
        /// Print the write as it is now, one JSON object as in `writes list --json`.
        #[arg(long)]
        json: bool,
    },
    /// Give up on a write: it stays in the log as ignored and is never sent.
    ///
    /// Example: plansync writes ignore 42
    #[command(after_long_help = super::help::EXIT_ADMIN)]
    Ignore {
        /// The write's id, as `plansync writes list` shows it.
        id: i64,
        /// Print the write as it is now, one JSON object as in `writes list --json`.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: WritesArgs) -> Result<(), CliError> {
    let (_config, mut store) = config_and_store(&args.config)?;
    match args.action {
        WritesAction::List { json } => {
            // Failed writes, then those an admin ignored (which `retry` can still send).
            let mut rows = store.failed_writes()?;
            rows.extend(
                store
                    .standing_refusals()?
                    .into_iter()
                    .filter(|r| r.status == WriteStatus::Ignored),
            );
            if json {
                let list: Vec<Value> = rows.iter().map(write_json).collect();
                println!("{}", pretty(&Value::Array(list)));
                return Ok(());
            }
            if rows.is_empty() {
                println!("No failed or ignored writes.");
                return Ok(());
            }
            for row in &rows {
                let kind = if row.status == WriteStatus::Ignored {
                    "ignored (not sent again while its values stay the same; `retry` sends it)"
                } else if row.permanent {
                    "refused (permanent: retried only when its inputs change or an admin asks)"
                } else {
                    "failed (transient: retried automatically with backoff)"
                };
                println!("#{} {} {} {kind}", row.id, row.object, row.record_id);
                println!(
                    "    {}: {}",
                    row.last_error_code.as_deref().unwrap_or("-"),
                    row.last_error_message.as_deref().unwrap_or("-")
                );
                let fields: Vec<String> = row
                    .fields
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                println!("    fields: {}", fields.join(", "));
                println!(
                    "    attempts {}, queued {}, last tried {}{}",
                    row.attempts,
                    row.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    row.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    row.next_attempt_at
                        .map(|t| format!(", next try {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_default()
                );
            }
            println!(
                "\n{} failed or ignored write(s). Retry one with `plansync writes retry ID`, give up with `plansync writes ignore ID`.",
                rows.len()
            );
        }
        WritesAction::Retry { id, json } => decide(&mut store, id, json, true)?,
        WritesAction::Ignore { id, json } => decide(&mut store, id, json, false)?,
    }
    Ok(())
}

/// Queues write `id` again (`retry`) or ignores it, then shows what became of it.
fn decide(store: &mut Store, id: i64, json: bool, retry: bool) -> Result<(), CliError> {
    let row = known(store, id)?;
    let (decided, action, became) = if retry {
        let decided = store.retry_write(id, Utc::now());
        (
            decided,
            "retried",
            "is queued again; the next cycle sends it",
        )
    } else {
        let decided = store.ignore_write(id, Utc::now());
        (decided, "ignored", "is ignored and will not be sent")
    };
    decided.map_err(|e| decision_error(e, id, action))?;
    if json {
        println!("{}", pretty(&write_json(&known(store, id)?)));
        return Ok(());
    }
    println!("Write #{id} ({} {}) {became}.", row.object, row.record_id);
    Ok(())
}

fn known(store: &crate::store::Store, id: i64) -> Result<crate::store::OutboxRow, CliError> {
    store.write(id)?.ok_or_else(|| {
        CliError::Admin(format!(
            "there is no write #{id} in the outbox (settled writes are archived after 31 days; `plansync writes list` shows the failed ones)"
        ))
    })
}

fn decision_error(e: StoreError, id: i64, action: &str) -> CliError {
    match e {
        StoreError::InvalidState { status, .. } => {
            let hint = match status {
                WriteStatus::Succeeded => "it already succeeded",
                WriteStatus::New | WriteStatus::Sent => "it is already queued",
                WriteStatus::Ignored => "it is already ignored",
                WriteStatus::Failed => "it failed",
            };
            CliError::Admin(format!(
                "write #{id} cannot be {action}: {hint} (status {status})"
            ))
        }
        other => CliError::Store(other),
    }
}
