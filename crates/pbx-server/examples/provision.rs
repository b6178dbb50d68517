//! Benchmark provisioning: opens the SQLite store in a data directory (the one `cloudpbx serve`
//! will use) and creates one tenant with N users, one softphone and one credential each, then
//! writes the SIPp injection file for `bench/registration/reg_auth.xml`.
//!
//! `cargo run --release -p pbx-server --example provision -- <data_dir> <users> <users.csv> [realm]`

use std::io::Write;
use std::path::PathBuf;

use pbx_domain::{
    Actor, ClassOfService, DeviceKind, DisplayName, Extension, NewDevice, NewTenant, NewUser,
    Realm, SipDomain, Slug, TenantStatus,
};
use pbx_store::Store;

type Error = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: provision <data_dir> <users> <users.csv> [realm]";
    let data_dir = PathBuf::from(args.next().ok_or(usage)?);
    let users: u32 = args.next().ok_or(usage)?.parse()?;
    let csv_path = PathBuf::from(args.next().ok_or(usage)?);
    let realm = Realm::parse(&args.next().unwrap_or_else(|| "cloudpbx".to_owned()))?;

    let store = Store::open(&format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("cloudpbx.db").display()
    ))
    .await?;
    let domain = "bench.pbx.test";
    let tenant = store
        .tenants()
        .create(
            &Actor::Operator,
            &NewTenant {
                reseller_id: None,
                name: DisplayName::parse("Bench")?,
                slug: Slug::parse("bench")?,
                sip_domain: SipDomain::parse(domain)?,
                status: TenantStatus::Active,
            },
        )
        .await?;
    let scope = store.scope(&Actor::Operator, tenant.id).await?;
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
    writeln!(csv, "SEQUENTIAL")?;
    for index in 0..users {
        let extension = format!("{}", 10_000 + index);
        let user = store
            .users()
            .create(
                &scope,
                &NewUser {
                    extension: Extension::parse(&extension)?,
                    display_name: DisplayName::parse(&format!("User {extension}"))?,
                    class_of_service: ClassOfService::National,
                },
            )
            .await?;
        let device = store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: user.id,
                    kind: DeviceKind::Softphone,
                    label: "bench".into(),
                },
            )
            .await?;
        let issued = store.credentials().issue(&scope, device.id, &realm).await?;
        let (name, password) = (
            issued.credential.auth_username.as_str(),
            issued.password.expose(),
        );
        writeln!(
            csv,
            "{extension};{domain};{name};{password};[authentication username={name} password={password}]"
        )?;
    }
    csv.flush()?;
    store.close().await;
    println!("provisioned {users} users in {}", data_dir.display());
    Ok(())
}
