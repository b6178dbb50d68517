//! CloudPBX command-line entry point.
//!
//! `cloudpbx serve` runs the platform; `cloudpbx config check|defaults` helps write a
//! configuration file. Every configuration key can also be set through the environment as
//! `CLOUDPBX__<SECTION>__<KEY>` (see `cloudpbx config defaults` for the keys).

use std::path::PathBuf;
use std::process::ExitCode;

mod admin;

/// See the `mimalloc` feature in Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use pbx_server::config::{self, ConfigError, EXIT_INVALID_CONFIG};

/// CloudPBX: hosted multi-tenant business telephone platform.
#[derive(Debug, Parser)]
#[command(name = "cloudpbx", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML). Without one, the built-in safe defaults are used.
    #[arg(
        short,
        long,
        global = true,
        env = "CLOUDPBX_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: SIP (UDP/TCP/TLS), HTTP API and TFTP listeners, with an embedded SQLite
    /// database in the data directory unless a database URL is configured.
    Serve(ServeArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Operator administration on the configured database (tenants, users, devices, tokens).
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

/// The stable `serve` flags. Each is also a config-file key and an environment variable; a flag
/// wins over the environment, which wins over the file.
#[derive(Debug, Clone, Default, clap::Args)]
struct ServeArgs {
    /// Data directory (SQLite database, TLS certificate, recordings).
    #[arg(long, env = "CLOUDPBX_DATA_DIR", value_name = "DIR")]
    data_dir: Option<String>,
    /// SIP listen address for UDP and TCP (repeatable; IPv6 as `[::]:5060`).
    #[arg(
        long,
        env = "CLOUDPBX_SIP_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    sip_listen: Vec<String>,
    /// SIP over TLS listen address (repeatable).
    #[arg(
        long,
        env = "CLOUDPBX_SIP_TLS_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    sip_tls_listen: Vec<String>,
    /// HTTP API and portal listen address.
    #[arg(long, env = "CLOUDPBX_HTTP_LISTEN", value_name = "ADDR:PORT")]
    http_listen: Option<String>,
    /// TFTP provisioning listen address.
    #[arg(long, env = "CLOUDPBX_TFTP_LISTEN", value_name = "ADDR:PORT")]
    tftp_listen: Option<String>,
    /// RTP media port range.
    #[arg(long, env = "CLOUDPBX_RTP_PORTS", value_name = "LOW-HIGH")]
    rtp_ports: Option<String>,
    /// Database URL (`sqlite://...` or `postgres://...`); default: SQLite in the data directory.
    #[arg(long, env = "CLOUDPBX_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// The operator's first API token, instead of a generated one printed once.
    #[arg(
        long,
        env = "CLOUDPBX_BOOTSTRAP_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    bootstrap_token: Option<String>,
}

impl ServeArgs {
    /// The flags as configuration overrides (same form as `CLOUDPBX__SECTION__KEY` variables).
    fn overrides(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut out = Vec::new();
        let mut set = |key: &str, value: String| out.push((format!("CLOUDPBX__{key}"), value));
        if let Some(dir) = &self.data_dir {
            set("DATA_DIR", dir.clone());
        }
        if !self.sip_listen.is_empty() {
            set("SIP__UDP_LISTEN", self.sip_listen.join(","));
            set("SIP__TCP_LISTEN", self.sip_listen.join(","));
        }
        if !self.sip_tls_listen.is_empty() {
            set("SIP__TLS_LISTEN", self.sip_tls_listen.join(","));
        }
        if let Some(addr) = &self.http_listen {
            set("HTTP__LISTEN", addr.clone());
        }
        if let Some(addr) = &self.tftp_listen {
            set("TFTP__LISTEN", addr.clone());
        }
        if let Some(url) = &self.database_url {
            set("DATABASE__URL", url.clone());
        }
        if let Some(range) = &self.rtp_ports {
            let (low, high) = range
                .split_once('-')
                .and_then(|(l, h)| {
                    Some((l.trim().parse::<u16>().ok()?, h.trim().parse::<u16>().ok()?))
                })
                .ok_or_else(|| ConfigError::Invalid {
                    key: "rtp".into(),
                    reason: format!("--rtp-ports `{range}`: expected LOW-HIGH, e.g. 10000-20000"),
                })?;
            set("RTP__PORT_MIN", low.to_string());
            set("RTP__PORT_MAX", high.to_string());
        }
        Ok(out)
    }
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Validate the configuration (file + environment + flags) and print the effective settings.
    Check(ServeArgs),
    /// Print the built-in defaults as a TOML file to start from.
    Defaults,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            action: ConfigAction::Defaults,
        } => {
            print!("{}", config::defaults_toml());
            ExitCode::SUCCESS
        }
        Command::Config {
            action: ConfigAction::Check(args),
        } => match load(&cli.config, &args) {
            Ok(settings) => {
                println!("configuration is valid:\n{settings:#?}");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Admin(command) => {
            let settings = match load(&cli.config, &ServeArgs::default()) {
                Ok(settings) => settings,
                Err(code) => return code,
            };
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("cloudpbx: cannot start the runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(admin::run(command, &settings, false)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("cloudpbx: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            let settings = match load(&cli.config, &args) {
                Ok(settings) => settings,
                Err(code) => return code,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("cloudpbx: cannot start the runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let options = pbx_server::serve::ServeOptions {
                bootstrap_token: args.bootstrap_token,
            };
            match runtime.block_on(pbx_server::serve::run(settings, options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("cloudpbx: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(path: &Option<PathBuf>, args: &ServeArgs) -> Result<config::Settings, ExitCode> {
    let env = std::env::vars().chain(args.overrides().map_err(invalid)?);
    config::load(path.as_deref(), env).map_err(invalid)
}

fn invalid(err: ConfigError) -> ExitCode {
    {
        eprintln!("cloudpbx: invalid configuration: {err}");
        if let Some(key) = err.key() {
            eprintln!("cloudpbx: fix the key `{key}` (or its CLOUDPBX__ environment variable)");
        }
        ExitCode::from(EXIT_INVALID_CONFIG as u8)
    }
}
