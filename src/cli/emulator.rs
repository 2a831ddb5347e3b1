//! `plansync emulator`: runs the Salesforce-compatible emulator as an HTTP server.

/// Options of `plansync emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

pub fn run(args: EmulatorArgs) -> Result<(), Box<dyn std::error::Error>> {
    Err(format!("the emulator cannot listen on {} yet", args.listen).into())
}
