//! The store's error type and the mapping of database constraint violations onto it.

use pbx_domain::ValidationError;

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row does not exist, or exists outside the caller's tenant scope (the two are
    /// reported alike so a scope cannot probe for other tenants' ids).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
    },
    /// A unique constraint refused the write.
    #[error("{what} already exists")]
    Conflict {
        /// Which unique value collided (`tenant slug`, `extension`, ...).
        what: &'static str,
    },
    /// A row refers to a row that does not exist in the same tenant.
    #[error("referenced {what} does not exist")]
    InvalidReference {
        /// The kind of row that is missing.
        what: &'static str,
    },
    /// The actor may not perform this operation.
    #[error("not allowed: {reason}")]
    Forbidden {
        /// Why.
        reason: &'static str,
    },
    /// The database URL names an engine this store does not support.
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// The data directory for the SQLite file could not be created.
    #[error("cannot create data directory")]
    DataDirectory(#[source] std::io::Error),
    /// A stored value failed validation when read back (data written outside this code).
    #[error("corrupt value in {table}.{column}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// Why the value was refused.
        #[source]
        source: ValidationError,
    },
    /// Applying the embedded migrations failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

/// A named unique constraint and how each engine reports it: PostgreSQL gives the
/// constraint name, SQLite only the columns in its message.
struct UniqueConstraint {
    name: &'static str,
    sqlite_columns: &'static str,
    what: &'static str,
}

const UNIQUE_CONSTRAINTS: &[UniqueConstraint] = &[
    UniqueConstraint {
        name: "uq_resellers_name",
        sqlite_columns: "resellers.name",
        what: "reseller name",
    },
    UniqueConstraint {
        name: "uq_tenants_slug",
        sqlite_columns: "tenants.slug",
        what: "tenant slug",
    },
    UniqueConstraint {
        name: "uq_tenants_sip_domain",
        sqlite_columns: "tenants.sip_domain",
        what: "tenant SIP domain",
    },
    UniqueConstraint {
        name: "uq_users_tenant_extension",
        sqlite_columns: "users.tenant_id, users.extension",
        what: "extension",
    },
    UniqueConstraint {
        name: "uq_devices_mac",
        sqlite_columns: "devices.mac",
        what: "device MAC address",
    },
    UniqueConstraint {
        name: "uq_credentials_auth_username",
        sqlite_columns: "sip_credentials.auth_username",
        what: "auth user name",
    },
    UniqueConstraint {
        name: "uq_credentials_device",
        sqlite_columns: "sip_credentials.device_id",
        what: "device credential",
    },
    UniqueConstraint {
        name: "uq_numbers_e164",
        sqlite_columns: "phone_numbers.e164",
        what: "phone number",
    },
    UniqueConstraint {
        name: "uq_api_tokens_hash",
        sqlite_columns: "api_tokens.token_hash",
        what: "API token",
    },
];

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        let Some(database_error) = error.as_database_error() else {
            return match error {
                sqlx::Error::RowNotFound => Self::NotFound { what: "row" },
                other => Self::Database(other),
            };
        };
        match database_error.kind() {
            ErrorKind::UniqueViolation => {
                let constraint = database_error.constraint().unwrap_or_default();
                let message = database_error.message();
                let what = UNIQUE_CONSTRAINTS
                    .iter()
                    .find(|known| {
                        constraint == known.name || message.ends_with(known.sqlite_columns)
                    })
                    .map_or("row", |known| known.what);
                Self::Conflict { what }
            }
            ErrorKind::ForeignKeyViolation => Self::InvalidReference { what: "row" },
            _ => Self::Database(error),
        }
    }
}

/// The result type of store operations.
pub type StoreResult<T> = Result<T, StoreError>;
