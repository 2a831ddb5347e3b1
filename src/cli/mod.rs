//! The command line: one subcommand per job, each in its own file.

pub mod bench;
pub mod demo;
pub mod emulator;
pub mod flags;
pub mod logging;
pub mod plans;
pub mod run;
pub mod sync;
pub mod table;
// Admin commands.
pub mod completions;
pub mod doctor;
pub mod explain;
pub mod help;
pub mod ids;
pub mod inputs;
pub mod manpages;
pub mod mapping;
pub mod plan_cmd;
pub mod resync;
pub mod snapshot;
pub mod status;
pub mod writes;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ConfigError;
use crate::crm::CrmError;
use crate::error::chain as error_chain;
use crate::store::StoreError;
use crate::sync::SyncError;

/// plansync keeps account plans in a Salesforce-style CRM up to date.
#[derive(Debug, Parser)]
#[command(name = "plansync", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format: `text` for a terminal, `json` for log collectors (one object per line, on
    /// stderr), `auto`: JSON when started by systemd (JOURNAL_STREAM or INVOCATION_ID set),
    /// text otherwise. Example: --log-format json
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

impl LogFormat {
    /// `Auto` made concrete from the environment's variable names.
    pub fn resolve(self, env_has: impl Fn(&str) -> bool) -> LogFormat {
        match self {
            LogFormat::Auto if env_has("JOURNAL_STREAM") || env_has("INVOCATION_ID") => {
                LogFormat::Json
            }
            LogFormat::Auto => LogFormat::Text,
            other => other,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one sync cycle: pull, link, recompute and write back.
    ///
    /// Example: plansync sync --config /etc/plansync/plansync.toml --dry-run
    Sync(sync::SyncArgs),
    /// Run a full sync against the embedded CRM emulator's demo org, with no setup.
    ///
    /// Example: plansync demo --scale 10 --as-of 2026-08-15
    Demo(demo::DemoArgs),
    /// Measure a full, a 1%-change and an unchanged sync against the embedded emulator.
    ///
    /// Example: cargo run --release -- bench --scale 100 --latency-ms 20
    Bench(bench::BenchArgs),
    /// Run the Salesforce-compatible CRM emulator as an HTTP server.
    ///
    /// Example: plansync emulator --listen 127.0.0.1:8080 --seed demo
    Emulator(Box<emulator::EmulatorArgs>),
    /// Run the daemon: sync on the [schedule] cron schedules until SIGTERM.
    ///
    /// Example: plansync run --config /etc/plansync/plansync.toml
    Run(run::RunArgs),
    // Admin commands: they read the store (and the CRM) while the daemon runs.
    /// Show the last runs, pull cursors, API usage, pending and failed writes and findings.
    ///
    /// Example: plansync status --config /etc/plansync/plansync.toml --json
    Status(status::StatusArgs),
    /// Explain which plan an opportunity links to, why, and what would change it.
    ///
    /// Example: plansync explain 006000000000001AAA
    Explain(explain::ExplainArgs),
    /// Show a plan's inputs and every rollup with the opportunities and activities behind it.
    ///
    /// With --history, how its won, open, weighted, gap, coverage and attainment moved, one row
    /// per change the cycles recorded.
    ///
    /// Example: plansync plan a0P000000000001AAA --as-of 2026-08-15
    ///
    /// Example: plansync plan a0P000000000001AAA --history --since 2026-08-01
    Plan(plan_cmd::PlanArgs),
    /// Re-pull a plan, an account, an object or everything (ignoring cursors), recompute and
    /// write back, with progress.
    ///
    /// Example: plansync resync --plan a0P000000000001AAA --dry-run
    Resync(resync::ResyncArgs),
    /// Take the plan snapshots now (one Account_Plan_Snapshot__c per plan and date).
    ///
    /// Example: plansync snapshot --date 2026-09-30
    Snapshot(snapshot::SnapshotArgs),
    /// List failed writes, or retry or ignore one.
    ///
    /// Example: plansync writes list; plansync writes retry 42
    Writes(writes::WritesArgs),
    /// Check the configuration, secrets, CRM access, API version, mapped fields and store.
    ///
    /// Exits non-zero when any check finds a problem. Example: plansync doctor
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script.
    ///
    /// Example: plansync completions bash > /etc/bash_completion.d/plansync
    Completions(completions::CompletionsArgs),
    /// Write the man pages (one per command) into a directory; used to build the packages.
    #[command(hide = true)]
    Manpages(manpages::ManpagesArgs),
}

/// Why a command failed; each says what to fix. Messages follow [`crate::error`]: a variant
/// that wraps a cause keeps it as its source and does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Crm(#[from] CrmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    #[error("the emulator: {0}")]
    Emulator(String),
    /// An admin command's input names nothing, or asks for what cannot be done.
    #[error("{0}")]
    Admin(String),
    /// An admin command's input is wrong: a malformed Id, another object's Id, a record the
    /// CRM does not have. Fix the command line.
    #[error("{0}")]
    Input(String),
    /// A field or object under `[mapping]` that the CRM does not have (found when the CRM
    /// refused a query): fix the configuration or the org.
    #[error("{0}")]
    Mapping(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the cycle stopped early: {0}")]
    StoppedEarly(String),
}

impl From<crate::metadata::id::IdCheckError> for CliError {
    fn from(e: crate::metadata::id::IdCheckError) -> Self {
        CliError::Input(e.to_string())
    }
}

impl CliError {
    /// The process exit status: 2 for a configuration or an input to fix, 3 for a run that
    /// stopped early on purpose (the API budget), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Input(_) | CliError::Mapping(_) => 2,
            CliError::StoppedEarly(_) => 3,
            _ => 1,
        }
    }
}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A closed pipe (`plansync status --json | head`) ends a command at once and quietly, as
    // it does other Unix tools. The daemon and the emulator keep ignoring SIGPIPE, so that a
    // restarted journald or a client gone away cannot kill a server.
    if !matches!(cli.command, Command::Run(_) | Command::Emulator(_)) {
        sigpipe::reset();
    }
    // The demo's own output tells the story; its logs only speak up for problems.
    let default_filter = match cli.command {
        Command::Demo(_) | Command::Bench(_) => "warn",
        _ => "warn,plansync=info",
    };
    init_logging(cli.log_format, default_filter);
    let outcome: Result<(), (String, u8)> = match cli.command {
        Command::Emulator(args) => emulator::run(*args).map_err(|e| (error_chain(&*e), 1)),
        Command::Sync(args) => block_on(sync::run(args)),
        Command::Demo(args) => block_on(demo::run(args)),
        Command::Bench(args) => bench::main(args).map_err(|e| (error_chain(&e), e.exit_code())),
        Command::Run(args) => block_on(run::run(args)),
        Command::Status(args) => block_on(status::run(args)),
        Command::Explain(args) => block_on(explain::run(args)),
        Command::Plan(args) => block_on(plan_cmd::run(args)),
        Command::Resync(args) => block_on(resync::run(args)),
        Command::Snapshot(args) => block_on(snapshot::run(args)),
        Command::Writes(args) => block_on(writes::run(args)),
        Command::Doctor(args) => block_on(doctor::run(args)),
        Command::Completions(args) => {
            completions::run(args);
            Ok(())
        }
        Command::Manpages(args) => {
            manpages::run(args).map_err(|e| (error_chain(&e), e.exit_code()))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            eprintln!("plansync: {message}");
            ExitCode::from(code)
        }
    }
}

/// Runs an async command on a fresh runtime; an error becomes its message and exit code.
fn block_on(
    fut: impl std::future::Future<Output = Result<(), CliError>>,
) -> Result<(), (String, u8)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| (format!("cannot start the async runtime: {e}"), 1))?;
    runtime
        .block_on(fut)
        .map_err(|e| (error_chain(&e), e.exit_code()))
}

/// Logs go to stderr, so stdout stays for the command's own output. When stderr is the
/// systemd journal, each line carries its syslog priority (`<3>` for errors ...).
fn init_logging(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::fmt::format::JsonFields;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let journal = logging::stderr_is_journal();
    let json = format.resolve(|name| std::env::var_os(name).is_some()) == LogFormat::Json;
    let _ = match (json, journal) {
        (true, true) => builder
            .fmt_fields(JsonFields::new())
            .event_format(logging::JournalPriority(
                tracing_subscriber::fmt::format().json(),
            ))
            .try_init(),
        (true, false) => builder.json().try_init(),
        (false, true) => builder
            .event_format(logging::JournalPriority(tracing_subscriber::fmt::format()))
            .try_init(),
        (false, false) => builder.try_init(),
    };
}
