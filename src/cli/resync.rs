//! `plansync resync`: re-pulls what an admin names (a plan, an account, an object or
//! everything) ignoring the cursors, recomputes and writes back, showing progress: a bar on a
//! terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config;
use crate::sync::{ObjectKind, Progress, ResyncTarget, SyncEngine};

use super::flags::{AsOf, CycleFlags};
use super::ids;
use super::sync::{engine_from_config, DEFAULT_CONFIG};
use super::CliError;

/// Options of `plansync resync`: exactly one of `--plan`, `--account`, `--object`, `--all`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_CYCLE)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["plan", "account", "object", "all"])))]
pub struct ResyncArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    /// Example: --config ./plansync.toml
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Re-pull one plan: its record, its junction rows, its accounts and their opportunities,
    /// contacts and activities. Example: plansync resync --plan a0P000000000001AAA
    #[arg(long, value_name = "PLAN_ID")]
    pub plan: Option<String>,

    /// Re-pull one account with its plans, opportunities, contacts and activities.
    /// Example: plansync resync --account 001000000000001AAA
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Option<String>,

    /// Re-pull every record of one object, by API name or label (opportunity, plan,
    /// plan_account, account, contact, task, event). Example: plansync resync --object Opportunity
    #[arg(long, value_name = "NAME", value_parser = ObjectNameParser)]
    pub object: Option<ObjectKind>,

    /// Re-pull every object and recompute every plan. Example: plansync resync --all
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub flags: CycleFlags,

    #[command(flatten)]
    pub as_of: AsOf,
}

/// The resync target the flags name; Ids as given (see [`checked`]).
pub fn target(args: &ResyncArgs) -> Result<ResyncTarget, CliError> {
    if args.all {
        return Ok(ResyncTarget::All);
    }
    if let Some(plan) = &args.plan {
        return Ok(ResyncTarget::Plan(plan.trim().to_string()));
    }
    if let Some(account) = &args.account {
        return Ok(ResyncTarget::Account(account.trim().to_string()));
    }
    if let Some(kind) = args.object {
        return Ok(ResyncTarget::Object(kind));
    }
    Err(CliError::Admin(
        "name what to resync: --plan ID, --account ID, --object NAME or --all".into(),
    ))
}

/// `--object`: a label (`opportunity`) or the default API name of its object
/// (`Opportunity`), case-insensitively; the labels are the possible values shell completion
/// offers.
#[derive(Debug, Clone, Copy)]
pub struct ObjectNameParser;

impl clap::builder::TypedValueParser for ObjectNameParser {
    type Value = ObjectKind;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ObjectKind, clap::Error> {
        let name = value.to_string_lossy();
        ObjectKind::parse(name.trim()).ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "--object {name:?} is not an object plansync pulls; use one of {}\n",
                    ObjectKind::ALL.map(ObjectKind::label).join(", ")
                ),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ObjectKind::ALL
                .into_iter()
                .map(|k| clap::builder::PossibleValue::new(k.label())),
        ))
    }
}

/// The target with its Id checked: well formed and of the right object (locally), and a
/// record the CRM has (one query), so a wrong Id fails with what is wrong instead of pulling
/// nothing.
pub async fn checked(target: ResyncTarget, engine: &SyncEngine) -> Result<ResyncTarget, CliError> {
    let names = &engine.settings().names;
    let (kind, raw, taker) = match &target {
        ResyncTarget::Plan(raw) => (ObjectKind::Plan, raw, "--plan"),
        ResyncTarget::Account(raw) => (ObjectKind::Account, raw, "--account"),
        ResyncTarget::All | ResyncTarget::Object(_) => return Ok(target),
    };
    let id = ids::check_with_crm(raw, kind, taker, names, engine.store(), engine.crm()).await?;
    Ok(match kind {
        ObjectKind::Plan => ResyncTarget::Plan(id),
        _ => ResyncTarget::Account(id),
    })
}

pub async fn run(args: ResyncArgs) -> Result<(), CliError> {
    let target = target(&args)?;
    let config = config::load(&args.config)?;
    let mut engine = engine_from_config(&config)?;
    let target = checked(target, &engine).await?;
    let progress = Reporter::attach(&mut engine);
    let result = engine
        .resync(target, args.flags.dry_run, args.as_of.as_of)
        .await;
    progress.finish();
    match result {
        Ok(report) => args.flags.print_report(&report),
        Err(e) => Err(super::mapping::explain_failure(e, &config, engine.crm()).await),
    }
}

/// Shows progress on stderr: a bar on a terminal, one line per page or batch otherwise.
/// The bar is drawn at the first report (never empty first); when a stage ends (the next
/// object, the write-back, the end of the run) its last frame is replaced by
/// [`finished_line`], so the screen keeps the counts each stage reached.
#[derive(Clone)]
pub struct Reporter {
    terminal: bool,
    state: Arc<Mutex<Stage>>,
}

/// The stage on screen: its bar and latest counts.
#[derive(Default)]
struct Stage {
    bar: Option<ProgressBar>,
    what: String,
    done: u64,
    total: u64,
}

/// What a progress report says: the stage ("pulling Event", "writing back") and its counts.
pub fn stage_of(p: &Progress) -> (String, u64, u64) {
    match p {
        Progress::Pulled {
            object,
            rows,
            total,
        } => (format!("pulling {object}"), *rows, *total),
        Progress::Wrote { done, total } => ("writing back".to_string(), *done, *total),
    }
}

/// A finished stage's last frame: "pulled Event: 1200/1200", "wrote back: 40/40".
pub fn finished_line(what: &str, done: u64, total: u64) -> String {
    let past = match what.split_once(' ') {
        Some(("pulling", object)) => format!("pulled {object}"),
        Some(("writing", rest)) => format!("wrote {rest}"),
        _ => what.to_string(),
    };
    format!("{past}: {done}/{}", total.max(done))
}

impl Reporter {
    pub fn new(terminal: bool) -> Reporter {
        Reporter {
            terminal,
            state: Arc::new(Mutex::new(Stage::default())),
        }
    }

    /// A reporter for stderr (a bar when it is a terminal), told `engine`'s progress.
    pub fn attach(engine: &mut SyncEngine) -> Reporter {
        let progress = Reporter::new(std::io::stderr().is_terminal());
        let listener = progress.clone();
        engine.on_progress(move |p| listener.report(p));
        progress
    }

    pub fn report(&self, p: &Progress) {
        let (what, done, total) = stage_of(p);
        if !self.terminal {
            eprintln!("{what}: {done}/{total}");
            return;
        }
        let mut stage = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if stage.bar.is_none() || stage.what != what {
            Self::end(&mut stage);
            let bar = ProgressBar::hidden();
            let style = ProgressStyle::with_template(
                "{spinner} {msg:<24} [{bar:30}] {pos}/{len} ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(what.clone());
            bar.set_length(total.max(done));
            bar.set_position(done);
            // Drawn from here on, with the counts already set.
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            stage.bar = Some(bar);
            stage.what = what;
        }
        stage.done = done;
        stage.total = total;
        if let Some(bar) = &stage.bar {
            bar.set_length(total.max(done));
            bar.set_position(done);
        }
    }

    /// Replaces the stage's bar by its finished line.
    fn end(stage: &mut Stage) {
        if let Some(bar) = stage.bar.take() {
            bar.set_style(
                ProgressStyle::with_template("  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.finish_with_message(finished_line(&stage.what, stage.done, stage.total));
        }
    }

    pub fn finish(&self) {
        let mut stage = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Self::end(&mut stage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_stage_shows_the_counts_it_reached() {
        let (what, done, total) = stage_of(&Progress::Pulled {
            object: "Event".into(),
            rows: 1200,
            total: 1200,
        });
        assert_eq!(finished_line(&what, done, total), "pulled Event: 1200/1200");
        let (what, done, total) = stage_of(&Progress::Wrote { done: 7, total: 40 });
        assert_eq!(finished_line(&what, done, total), "wrote back: 7/40");
        // More rows than the CRM announced (records created while pulling).
        assert_eq!(finished_line("pulling Task", 12, 10), "pulled Task: 12/12");
    }
}
