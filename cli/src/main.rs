//! `leadtime`: the command line, a thin layer over the `leadtime` engine crate.

mod cases;
mod cmd;
mod failure;
mod input;
mod log;
#[cfg(feature = "prometheus")]
mod prometheus;

use clap::{Parser, Subcommand};
use failure::Failure;
use std::process::ExitCode;

/// Predictive autoscaling policies in a WebAssembly sandbox.
#[derive(Parser)]
#[command(name = "leadtime", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (e.g. `info`, or `policy=debug` for what policies log); logs go to stderr.
    #[arg(
        long,
        global = true,
        default_value = "warn,policy=off",
        env = "LEADTIME_LOG"
    )]
    log: String,
    /// Compile policies every run instead of keeping compiled code under
    /// `$XDG_CACHE_HOME/leadtime` (or `~/.cache/leadtime`). LEADTIME_NO_CACHE=1 does the same.
    // Falsey parsing, so that the env var takes 1/0, yes/no and true/false, as users expect.
    #[arg(
        long,
        global = true,
        env = "LEADTIME_NO_CACHE",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    no_cache: bool,
    /// Log lines as `text` (coloured only on a terminal, never with NO_COLOR) or `json` (one
    /// object per line, for log shippers). `leadtime serve` also reads `logFormat` from its config.
    #[arg(long, global = true, env = "LEADTIME_LOG_FORMAT", value_enum)]
    log_format: Option<log::Format>,
}

// One command is parsed once per process, so the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Ask a policy for a replica target for one request; prints the decision as JSON.
    Decide(cmd::decide::Args),
    /// Show a policy module's ABI version, exports, imports and size, and whether it validates.
    Inspect(cmd::inspect::Args),
    /// List the built-in policies.
    Policies,
    /// Serve KEDA's external scaler gRPC API, fed by Prometheus (see serve/).
    #[cfg(feature = "serve")]
    Serve(cmd::serve::Args),
    /// Custom Pod Autoscaler evaluate step: evaluate JSON on stdin, `{"targetReplicas": N}` out.
    CpaEvaluate(cmd::cpa::Args),
    /// Create a ready-to-build policy project in Rust, C or AssemblyScript.
    New(cmd::new::Args),
    /// Check a policy against a file of cases, or fuzz it with generated requests.
    Test(cmd::test_policy::Args),
    /// Replay a demand trace through policies, against the HPA and the oracle; prints a table.
    Backtest(cmd::backtest::Args),
    /// The scoreboard over a corpus of traces: each policy at the predictive policy's cost.
    Evaluate(cmd::evaluate::Args),
    /// Every workload of a cluster (its ScaledObjects) backtested from its Prometheus history
    /// against the HPA at equal cost: which workloads predictive scaling would help, and where it
    /// would hurt.
    #[cfg(feature = "serve")]
    Fleet(cmd::fleet::Args),
    /// What a policy costs: load time, per-call p50 and p99, fuel per call, memory per instance.
    Bench(cmd::bench::Args),
    /// Compiles one module from stdin to stdout for a parent `leadtime` (`leadtime::CompileWorker`).
    #[command(hide = true)]
    CompileWorker {
        /// The parent engine's settings.
        settings: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cmd::set_disk_cache(!cli.no_cache);
    let format = cli
        .log_format
        .or_else(|| cli.command.log_format())
        .unwrap_or_default();
    log::init(&cli.log, format);
    // A bug of ours must still end in one `error:` line, never a panic's exit code 101.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal: {info}");
    }));
    let outcome = std::panic::catch_unwind(|| run(cli.command));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(failure)) => {
            // A log shipper reading JSON lines gets the failure as one of them.
            match format {
                log::Format::Json => tracing::error!(kind = %failure.kind, "{failure}"),
                log::Format::Text => eprintln!("error: {failure}"),
            }
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(70),
    }
}

impl Command {
    /// The log format a command's own configuration asks for, when the flag does not say.
    fn log_format(&self) -> Option<log::Format> {
        match self {
            #[cfg(feature = "serve")]
            Command::Serve(args) => cmd::serve::log_format(args),
            _ => None,
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Decide(args) => cmd::decide::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Policies => cmd::policies::run(),
        #[cfg(feature = "serve")]
        Command::Serve(args) => cmd::serve::run(args),
        Command::CpaEvaluate(args) => cmd::cpa::run(args),
        Command::New(args) => cmd::new::run(args),
        Command::Test(args) => cmd::test_policy::run(args),
        Command::Backtest(args) => cmd::backtest::run(args),
        Command::Evaluate(args) => cmd::evaluate::run(args),
        #[cfg(feature = "serve")]
        Command::Fleet(args) => cmd::fleet::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::CompileWorker { settings } => Ok(leadtime::run_compile_worker(&settings)),
    }
}
