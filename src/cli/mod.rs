//! The command line: one subcommand per job, each in its own file.

pub mod emulator;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// plansync keeps account plans in a Salesforce-style CRM up to date.
#[derive(Debug, Parser)]
#[command(name = "plansync", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format: `text` for a terminal, `json` for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Salesforce-compatible CRM emulator as an HTTP server.
    Emulator(emulator::EmulatorArgs),
}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let outcome = match cli.command {
        Command::Emulator(args) => emulator::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("plansync: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so stdout stays for the command's own output.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hyper=warn,reqwest=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
