//! `plansync emulator`: runs the Salesforce-compatible emulator as an HTTP server until SIGTERM
//! or SIGINT. Its first line on stdout is `listening on http://HOST:PORT`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::emulator::auth::{BadPublicKey, JwtConfig};
use crate::emulator::faults::{FaultSpec, FaultSpecError};
use crate::emulator::limits::DEFAULT_DAILY_API_LIMIT;
use crate::emulator::{EmulatorBuilder, EmulatorConfig, EmulatorError};

/// Options of `plansync emulator`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_SERVER)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port. Example: --listen 127.0.0.1:8080
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Allow listening on a non-loopback address (the default credentials are well known).
    #[arg(long)]
    pub allow_remote: bool,
    /// Seed data set: `empty` (no records), `demo` (a generated org that scales) or `golden`
    /// (the fixture the rules are checked against). Example: --seed golden
    #[arg(long, default_value = "demo")]
    pub seed: String,
    /// Multiplies the seed data set's size (demo seed). Example: --scale 10
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// OAuth client id (consumer key) the token endpoint accepts.
    #[arg(long, default_value = crate::emulator::DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// OAuth client secret (consumer secret) the token endpoint accepts.
    #[arg(long, default_value = crate::emulator::DEFAULT_CLIENT_SECRET)]
    pub client_secret: String,
    /// Refresh token the refresh_token grant accepts (random and logged when not given).
    #[arg(long)]
    pub refresh_token: Option<String>,
    /// PEM file with the RSA public key that verifies JWT bearer assertions.
    #[arg(long, requires = "jwt_username")]
    pub jwt_public_key: Option<PathBuf>,
    /// Username JWT bearer assertions must name in `sub`.
    #[arg(long, requires = "jwt_public_key")]
    pub jwt_username: Option<String>,
    /// Delay added to every request, in milliseconds. Example: --latency-ms 50
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fault injection spec, e.g. `seed=7,503=0.05,drop=0.01,lock=0.1,expire@5,9`.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Data API calls allowed before 403 REQUEST_LIMIT_EXCEEDED. Example: --daily-api-limit 500
    #[arg(long, default_value_t = DEFAULT_DAILY_API_LIMIT)]
    pub daily_api_limit: u64,
    /// Session lifetime in seconds, counted from the token's issue; after it, requests get
    /// 401 INVALID_SESSION_ID. Example: --session-ttl-s 60
    #[arg(long, default_value_t = 7200)]
    pub session_ttl_s: u64,
    /// Turns on multi-currency with this ISO code as the corporate currency.
    /// Example: --multi-currency USD
    #[arg(long, value_name = "ISO")]
    pub multi_currency: Option<String>,
    /// An SFDX project folder (holding sfdx-project.json) whose custom objects and fields the
    /// org serves instead of the package built into plansync, for admins who extend it. It is
    /// refused, naming the file and the rule, when a real org would refuse to deploy it.
    /// Example: --metadata ./schema/salesforce
    #[arg(long, value_name = "DIR")]
    pub metadata: Option<PathBuf>,
}

/// Why `plansync emulator` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorCommandError {
    #[error("--listen {value:?} is not an address such as 127.0.0.1:8080")]
    BadListen { value: String },
    #[error("--faults")]
    Faults(#[from] FaultSpecError),
    #[error("cannot read --jwt-public-key {path}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--jwt-public-key {path}")]
    BadKey {
        path: PathBuf,
        #[source]
        source: BadPublicKey,
    },
    #[error("--multi-currency {0:?} is not a 3-letter ISO currency code")]
    BadCurrency(String),
    #[error(transparent)]
    Start(#[from] EmulatorError),
    #[error("cannot start the async runtime or write to stdout")]
    Io(#[from] std::io::Error),
}

/// Builds the emulator configuration from the command line.
pub fn config(args: &EmulatorArgs) -> Result<EmulatorConfig, EmulatorCommandError> {
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| EmulatorCommandError::BadListen {
            value: args.listen.clone(),
        })?;
    let jwt = match (&args.jwt_public_key, &args.jwt_username) {
        (Some(path), Some(username)) => {
            let pem = std::fs::read(path).map_err(|source| EmulatorCommandError::ReadKey {
                path: path.clone(),
                source,
            })?;
            let jwt =
                JwtConfig::new(&pem, username).map_err(|source| EmulatorCommandError::BadKey {
                    path: path.clone(),
                    source,
                })?;
            Some(jwt)
        }
        _ => None,
    };
    if let Some(iso) = &args.multi_currency {
        if iso.len() != 3 || !iso.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(EmulatorCommandError::BadCurrency(iso.clone()));
        }
    }
    Ok(EmulatorConfig {
        listen,
        allow_remote: args.allow_remote,
        seed: args.seed.clone(),
        scale: args.scale,
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        refresh_token: args.refresh_token.clone(),
        jwt,
        latency: Duration::from_millis(args.latency_ms),
        faults: FaultSpec::parse(&args.faults)?,
        daily_api_limit: args.daily_api_limit,
        session_ttl: Duration::from_secs(args.session_ttl_s),
        multi_currency: args.multi_currency.clone(),
        today: None,
        metadata: args.metadata.clone(),
    })
}

/// Runs the emulator until SIGTERM or SIGINT, then shuts it down gracefully.
pub fn run(args: EmulatorArgs) -> Result<(), Box<dyn std::error::Error>> {
    serve(args).map_err(Into::into)
}

fn serve(args: EmulatorArgs) -> Result<(), EmulatorCommandError> {
    let config = config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // The handlers go in before the address is announced: a client may send SIGTERM as
        // soon as it reads the line, and without a handler that would kill the process.
        let signals = Signals::install()?;
        let running = EmulatorBuilder::from_config(config).start().await?;
        {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "listening on {}", running.base_url())?;
            stdout.flush()?;
        }
        if args.refresh_token.is_none() {
            tracing::info!(refresh_token = %running.refresh_token(), "refresh token for the refresh_token grant");
        }
        signals.wait().await?;
        tracing::info!("stopping the emulator");
        running.shutdown().await;
        Ok(())
    })
}

/// SIGTERM and SIGINT, listened for from the moment of `install`.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn wait(mut self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
            Ok(())
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            tokio::signal::ctrl_c().await
        }
    }
}
