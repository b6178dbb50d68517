//! `cloudpbx tenant|user|device|token ...`: the basics of the management API for operators
//! at a shell. The commands act as the platform operator directly on the store named by the
//! configuration (`database.url`, by default the SQLite file in the data directory), through
//! the same operations as the HTTP API (`pbx_api::ops`), so every write is validated the
//! same way and leaves the same audit event. Commands that print data take `--json`.
//!
//! A running server picks the changes up on its next directory reload (see the report of
//! the API crate); the HTTP API applies them at once.

mod commands;
mod output;
#[cfg(test)]
mod tests;

use clap::{Args, Subcommand};
use pbx_domain::Realm;
use pbx_store::Store;

pub use commands::execute;

/// The admin command groups.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants (customer companies).
    Tenant(TenantArgs),
    /// Users (extensions) of a tenant.
    User(UserArgs),
    /// Devices of users, each with its own SIP credential.
    Device(DeviceArgs),
    /// API tokens.
    Token(TokenArgs),
}

/// `cloudpbx tenant ...`
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: TenantAction,
}

/// Tenant actions.
#[derive(Debug, Subcommand)]
pub enum TenantAction {
    /// Create a tenant.
    Create {
        /// Company name.
        #[arg(long)]
        name: String,
        /// Short name: 2-63 of a-z, 0-9 and '-', starting with a letter.
        #[arg(long)]
        slug: String,
        /// SIP domain (a host name).
        #[arg(long)]
        sip_domain: String,
        /// Owning reseller id.
        #[arg(long)]
        reseller: Option<String>,
        /// Create it suspended.
        #[arg(long)]
        suspended: bool,
    },
    /// List tenants.
    List,
    /// Show one tenant (id or slug).
    Show {
        /// Tenant id or slug.
        tenant: String,
    },
    /// Delete a tenant with everything in it.
    Delete {
        /// Tenant id or slug.
        tenant: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

/// `cloudpbx user ...`
#[derive(Debug, Args)]
pub struct UserArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: UserAction,
}

/// User actions.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user.
    Create {
        /// Tenant id or slug.
        tenant: String,
        /// Extension: 2-8 digits, not starting with 0.
        #[arg(long)]
        extension: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// internal_only, national (default) or international.
        #[arg(long)]
        class_of_service: Option<String>,
    },
    /// List a tenant's users.
    List {
        /// Tenant id or slug.
        tenant: String,
    },
    /// Show a user.
    Show {
        /// Tenant id or slug.
        tenant: String,
        /// User id or extension.
        user: String,
    },
    /// Delete a user with its devices.
    Delete {
        /// Tenant id or slug.
        tenant: String,
        /// User id or extension.
        user: String,
    },
}

/// `cloudpbx device ...`
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: DeviceAction,
}

/// Device actions.
#[derive(Debug, Subcommand)]
pub enum DeviceAction {
    /// Create a device and print its SIP user name and password (shown once).
    Create {
        /// Tenant id or slug.
        tenant: String,
        /// Owning user: id or extension.
        #[arg(long)]
        user: String,
        /// desk-phone, softphone or mobile-app.
        #[arg(long, value_parser = ["desk-phone", "softphone", "mobile-app"])]
        kind: String,
        /// Desk phones: yealink, polycom, snom, grandstream, cisco or other.
        #[arg(long)]
        vendor: Option<String>,
        /// Desk phones: the model.
        #[arg(long)]
        model: Option<String>,
        /// Desk phones: the MAC address.
        #[arg(long)]
        mac: Option<String>,
        /// Free label.
        #[arg(long)]
        label: Option<String>,
    },
    /// List a tenant's devices (never passwords).
    List {
        /// Tenant id or slug.
        tenant: String,
    },
    /// Give a device's SIP credential a new password (printed once).
    Rotate {
        /// Tenant id or slug.
        tenant: String,
        /// Device id.
        device: String,
    },
    /// Delete a device and its credential.
    Delete {
        /// Tenant id or slug.
        tenant: String,
        /// Device id.
        device: String,
    },
}

/// `cloudpbx token ...`
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: TokenAction,
}

/// Token actions.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create an API token and print its secret (shown once).
    Create {
        /// What the token is for.
        #[arg(long)]
        name: String,
        /// operator, reseller or customer_admin.
        #[arg(long, value_parser = ["operator", "reseller", "customer_admin"])]
        role: String,
        /// Reseller tokens: the reseller id.
        #[arg(long)]
        reseller: Option<String>,
        /// Customer admin tokens: the tenant (id or slug).
        #[arg(long)]
        tenant: Option<String>,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: String,
    },
}

impl AdminCommand {
    /// Whether the command's own `--json` flag is set.
    pub const fn json(&self) -> bool {
        match self {
            Self::Tenant(args) => args.json,
            Self::User(args) => args.json,
            Self::Device(args) => args.json,
            Self::Token(args) => args.json,
        }
    }
}

/// Runs an admin command on the store named by `settings`, printing to stdout. `json` (a
/// global flag of the binary, or the command's own `--json`) selects JSON output.
pub async fn run(
    cmd: AdminCommand,
    settings: &pbx_server::config::Settings,
    json: bool,
) -> anyhow::Result<()> {
    let store = Store::open(&settings.database_url).await?;
    let realm = Realm::parse(&settings.realm)
        .map_err(|error| anyhow::anyhow!("config key `sip.realm`: {error}"))?;
    let json = json || cmd.json();
    let mut out = Vec::new();
    let result = execute(&cmd, &store, &realm, json, &mut out).await;
    store.close().await;
    std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
    result
}
