//! The command implementations: parse the flags into the API's request values, run them
//! through `pbx_api::ops::Ops` as the operator, print the result.

use std::io::Write;

use anyhow::{Context, anyhow, bail};
use pbx_api::ApiError;
use pbx_api::model::{
    CreateDevice, CreateTenant, CreateToken, CreateUser, DeviceCreatedView, DeviceKindName,
    DeviceView, SipSecretView, TenantView, TokenCreatedView, TokenView, UserView,
};
use pbx_api::ops::Ops;
use pbx_domain::{Actor, DeviceId, DisplayName, Extension, Realm, SipDomain, Slug, TenantStatus};
use pbx_store::{IssuedCredential, Store};

use super::output::{self, or_dash};
use super::{AdminCommand, DeviceAction, TenantAction, TokenAction, UserAction};

/// Runs `cmd` on `store` as the operator, writing its output to `out` (JSON when `json`).
pub async fn execute(
    cmd: &AdminCommand,
    store: &Store,
    realm: &Realm,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let ops = Ops::new(store, Actor::Operator);
    match cmd {
        AdminCommand::Tenant(args) => tenant(&ops, &args.action, json, out).await,
        AdminCommand::User(args) => user(&ops, &args.action, json, out).await,
        AdminCommand::Device(args) => device(&ops, &args.action, realm, json, out).await,
        AdminCommand::Token(args) => token(&ops, &args.action, json, out).await,
    }
}

/// Parses a flag's value, naming the flag on failure.
fn flag<T, E: std::fmt::Display>(name: &str, parsed: Result<T, E>) -> anyhow::Result<T> {
    parsed.map_err(|error| anyhow!("--{name}: {error}"))
}

/// An API error, with the request field renamed to the command-line flag that fed it.
fn cli_error(error: ApiError) -> anyhow::Error {
    let flag = error.field().map(|field| match field.as_str() {
        "sip_domain" => "sip-domain".to_owned(),
        "display_name" => "name".to_owned(),
        "class_of_service" => "class-of-service".to_owned(),
        "reseller_id" => "reseller".to_owned(),
        "expires_at_ms" => "expires-in-days".to_owned(),
        other => other.to_owned(),
    });
    match (flag, &error) {
        (Some(flag), ApiError::InvalidField { message, .. }) => anyhow!("--{flag}: {message}"),
        (Some(flag), ApiError::MissingField { .. }) => anyhow!("--{flag} is required"),
        (Some(flag), ApiError::Conflict { message, .. }) => anyhow!("--{flag}: {message}"),
        _ => anyhow::Error::new(error),
    }
}

fn tenant_rows(tenants: &[TenantView]) -> Vec<Vec<String>> {
    tenants
        .iter()
        .map(|tenant| {
            vec![
                tenant.slug.clone(),
                tenant.name.clone(),
                tenant.sip_domain.clone(),
                tenant.status.clone(),
                tenant.id.to_string(),
            ]
        })
        .collect()
}

async fn tenant(
    ops: &Ops<'_>,
    action: &TenantAction,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    const HEADERS: &[&str] = &["SLUG", "NAME", "SIP DOMAIN", "STATUS", "ID"];
    match action {
        TenantAction::Create {
            name,
            slug,
            sip_domain,
            reseller,
            suspended,
        } => {
            let request = CreateTenant {
                name: flag("name", DisplayName::parse(name))?,
                slug: flag("slug", Slug::parse(slug))?,
                sip_domain: flag("sip-domain", SipDomain::parse(sip_domain))?,
                reseller_id: reseller
                    .as_deref()
                    .map(|id| flag("reseller", id.parse()))
                    .transpose()?,
                status: suspended.then_some(TenantStatus::Suspended),
            };
            let view = TenantView::from(ops.create_tenant(&request).await.map_err(cli_error)?);
            if json {
                output::json(out, &view)
            } else {
                output::table(out, HEADERS, &tenant_rows(&[view]))
            }
        }
        TenantAction::List => {
            let views: Vec<TenantView> = ops
                .tenants()
                .await
                .map_err(cli_error)?
                .into_iter()
                .map(Into::into)
                .collect();
            if json {
                output::json(out, &views)
            } else {
                output::table(out, HEADERS, &tenant_rows(&views))
            }
        }
        TenantAction::Show { tenant } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let view = TenantView::from(ops.tenant(&scope).await.map_err(cli_error)?);
            if json {
                return output::json(out, &view);
            }
            output::record(
                out,
                &[
                    ("id", view.id.to_string()),
                    ("slug", view.slug),
                    ("name", view.name),
                    ("sip domain", view.sip_domain),
                    ("status", view.status),
                    ("reseller", or_dash(view.reseller_id)),
                ],
            )
        }
        TenantAction::Delete { tenant, yes } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            if !yes {
                bail!(
                    "deleting tenant {tenant} removes its users, devices and registrations: repeat with --yes"
                );
            }
            ops.delete_tenant(&scope).await.map_err(cli_error)?;
            if json {
                output::json(out, &serde_json::json!({ "deleted": scope.tenant_id() }))
            } else {
                Ok(writeln!(out, "deleted tenant {tenant}")?)
            }
        }
    }
}

fn user_rows(users: &[UserView]) -> Vec<Vec<String>> {
    users
        .iter()
        .map(|user| {
            vec![
                user.extension.clone(),
                user.display_name.clone(),
                user.class_of_service.clone(),
                user.id.to_string(),
            ]
        })
        .collect()
}

async fn user(
    ops: &Ops<'_>,
    action: &UserAction,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    const HEADERS: &[&str] = &["EXTENSION", "NAME", "CLASS OF SERVICE", "ID"];
    match action {
        UserAction::Create {
            tenant,
            extension,
            name,
            class_of_service,
        } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let request = CreateUser {
                extension: flag("extension", Extension::parse(extension))?,
                display_name: flag("name", DisplayName::parse(name))?,
                class_of_service: class_of_service
                    .as_deref()
                    .map(|text| flag("class-of-service", text.parse()))
                    .transpose()?,
            };
            let view = UserView::from(ops.create_user(&scope, &request).await.map_err(cli_error)?);
            if json {
                output::json(out, &view)
            } else {
                output::table(out, HEADERS, &user_rows(&[view]))
            }
        }
        UserAction::List { tenant } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let views: Vec<UserView> = ops
                .users(&scope)
                .await
                .map_err(cli_error)?
                .into_iter()
                .map(Into::into)
                .collect();
            if json {
                output::json(out, &views)
            } else {
                output::table(out, HEADERS, &user_rows(&views))
            }
        }
        UserAction::Show { tenant, user } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let view = UserView::from(ops.user(&scope, user).await.map_err(cli_error)?);
            if json {
                output::json(out, &view)
            } else {
                output::table(out, HEADERS, &user_rows(&[view]))
            }
        }
        UserAction::Delete { tenant, user } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let found = ops.user(&scope, user).await.map_err(cli_error)?;
            ops.delete_user(&scope, &found).await.map_err(cli_error)?;
            if json {
                output::json(out, &serde_json::json!({ "deleted": found.id }))
            } else {
                Ok(writeln!(out, "deleted user {}", found.extension)?)
            }
        }
    }
}

fn device_rows(devices: &[DeviceView]) -> Vec<Vec<String>> {
    devices
        .iter()
        .map(|device| {
            vec![
                device.id.to_string(),
                device.user_id.to_string(),
                device.kind.clone(),
                or_dash(device.mac.as_ref()),
                or_dash(device.sip_username.as_ref()),
                or_dash(device.enabled),
                device.label.clone(),
            ]
        })
        .collect()
}

fn secret_view(issued: &IssuedCredential) -> SipSecretView {
    SipSecretView {
        sip_username: issued.credential.auth_username.to_string(),
        sip_password: issued.password.expose().to_owned(),
        realm: issued.credential.realm.to_string(),
    }
}

fn print_secret(out: &mut dyn Write, secret: &SipSecretView) -> anyhow::Result<()> {
    output::record(
        out,
        &[
            ("sip username", secret.sip_username.clone()),
            ("sip password", secret.sip_password.clone()),
            ("realm", secret.realm.clone()),
        ],
    )?;
    writeln!(out, "The password is shown only now; it is not stored.")?;
    Ok(())
}

async fn device(
    ops: &Ops<'_>,
    action: &DeviceAction,
    realm: &Realm,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    const HEADERS: &[&str] = &[
        "ID",
        "USER",
        "KIND",
        "MAC",
        "SIP USERNAME",
        "ENABLED",
        "LABEL",
    ];
    let device_id = |text: &str| -> anyhow::Result<DeviceId> {
        text.parse()
            .map_err(|_| anyhow!("device {text}: not a device id"))
    };
    match action {
        DeviceAction::Create {
            tenant,
            user,
            kind,
            vendor,
            model,
            mac,
            label,
        } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let request = CreateDevice {
                user: user.clone(),
                kind: match kind.as_str() {
                    "desk-phone" => DeviceKindName::DeskPhone,
                    "mobile-app" => DeviceKindName::MobileApp,
                    _ => DeviceKindName::Softphone,
                },
                vendor: vendor
                    .as_deref()
                    .map(|text| flag("vendor", text.parse()))
                    .transpose()?,
                model: model.clone(),
                mac: mac
                    .as_deref()
                    .map(|text| flag("mac", text.parse()))
                    .transpose()?,
                label: label.clone(),
            };
            let created = ops
                .create_device(&scope, &request, realm)
                .await
                .map_err(cli_error)?;
            let credential = secret_view(&created.issued);
            let view = DeviceCreatedView {
                device: DeviceView::new(created.device, Some(&created.issued.credential)),
                credential,
            };
            if json {
                return output::json(out, &view);
            }
            output::table(
                out,
                HEADERS,
                &device_rows(std::slice::from_ref(&view.device)),
            )?;
            writeln!(out)?;
            print_secret(out, &view.credential)
        }
        DeviceAction::List { tenant } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let views: Vec<DeviceView> = ops
                .devices(&scope)
                .await
                .map_err(cli_error)?
                .into_iter()
                .map(|(device, credential)| DeviceView::new(device, credential.as_ref()))
                .collect();
            if json {
                output::json(out, &views)
            } else {
                output::table(out, HEADERS, &device_rows(&views))
            }
        }
        DeviceAction::Rotate { tenant, device } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let issued = ops
                .rotate_device_password(&scope, device_id(device)?, realm)
                .await
                .map_err(cli_error)?;
            let view = secret_view(&issued);
            if json {
                output::json(out, &view)
            } else {
                print_secret(out, &view)
            }
        }
        DeviceAction::Delete { tenant, device } => {
            let scope = ops.scope(tenant).await.map_err(cli_error)?;
            let id = device_id(device)?;
            ops.delete_device(&scope, id).await.map_err(cli_error)?;
            if json {
                output::json(out, &serde_json::json!({ "deleted": id }))
            } else {
                Ok(writeln!(out, "deleted device {id}")?)
            }
        }
    }
}

fn token_rows(tokens: &[TokenView]) -> Vec<Vec<String>> {
    tokens
        .iter()
        .map(|token| {
            vec![
                token.id.to_string(),
                token.name.clone(),
                token.role.clone(),
                or_dash(token.reseller_id.or(token.tenant_id)),
                if token.revoked_at_ms.is_some() {
                    "revoked".to_owned()
                } else {
                    "active".to_owned()
                },
            ]
        })
        .collect()
}

async fn token(
    ops: &Ops<'_>,
    action: &TokenAction,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    const HEADERS: &[&str] = &["ID", "NAME", "ROLE", "RESELLER/TENANT", "STATE"];
    match action {
        TokenAction::Create {
            name,
            role,
            reseller,
            tenant,
            expires_in_days,
        } => {
            let expires_at_ms = expires_in_days.map(|days| {
                pbx_api::now_ms().saturating_add(i64::from(days).saturating_mul(86_400_000))
            });
            let request = CreateToken {
                name: name.clone(),
                role: flag("role", role.parse())?,
                reseller_id: reseller
                    .as_deref()
                    .map(|id| flag("reseller", id.parse()))
                    .transpose()?,
                tenant: tenant.clone(),
                expires_at_ms,
            };
            let (token, secret) = ops.create_token(&request).await.map_err(cli_error)?;
            let view = TokenCreatedView {
                token: token.into(),
                secret: secret.expose().to_owned(),
            };
            if json {
                return output::json(out, &view);
            }
            output::table(out, HEADERS, &token_rows(std::slice::from_ref(&view.token)))?;
            writeln!(out)?;
            output::record(out, &[("secret", view.secret.clone())])?;
            writeln!(
                out,
                "The secret is shown only now; only its SHA-256 hash is stored."
            )?;
            Ok(())
        }
        TokenAction::List => {
            let views: Vec<TokenView> = ops
                .tokens()
                .await
                .map_err(cli_error)?
                .into_iter()
                .map(Into::into)
                .collect();
            if json {
                output::json(out, &views)
            } else {
                output::table(out, HEADERS, &token_rows(&views))
            }
        }
        TokenAction::Revoke { id } => {
            let id = id
                .parse()
                .with_context(|| format!("token {id}: not a token id"))?;
            let view = TokenView::from(ops.revoke_token(id).await.map_err(cli_error)?);
            if json {
                output::json(out, &view)
            } else {
                output::table(out, HEADERS, &token_rows(&[view]))
            }
        }
    }
}
