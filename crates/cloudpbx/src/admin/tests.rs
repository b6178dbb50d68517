//! The admin commands on a real SQLite store, as an operator would type them.

use clap::Parser;
use pbx_domain::Realm;
use pbx_store::Store;
use serde_json::Value;

use super::{AdminCommand, execute};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: AdminCommand,
}

struct Shell {
    store: Store,
    realm: Realm,
    _dir: tempfile::TempDir,
}

impl Shell {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&pbx_store::sqlite_url(&dir.path().join("admin.sqlite3")))
            .await
            .unwrap();
        Self {
            store,
            realm: Realm::parse("cloudpbx.test").unwrap(),
            _dir: dir,
        }
    }

    /// Runs `cloudpbx <line>`; returns the output or the error text.
    async fn run(&self, line: &str) -> Result<String, String> {
        let words = std::iter::once("cloudpbx").chain(line.split_whitespace());
        let cli = Cli::try_parse_from(words).map_err(|error| error.to_string())?;
        let json = cli.command.json();
        let mut out = Vec::new();
        execute(&cli.command, &self.store, &self.realm, json, &mut out)
            .await
            .map_err(|error| format!("{error:#}"))?;
        Ok(String::from_utf8(out).unwrap())
    }

    async fn json(&self, line: &str) -> Value {
        let text = self
            .run(line)
            .await
            .unwrap_or_else(|error| panic!("{line}: {error}"));
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{line}: not JSON ({error}): {text}"))
    }
}

#[tokio::test]
async fn tenant_commands() {
    let shell = Shell::new().await;
    let made = shell
        .run("tenant create --name Acme --slug acme --sip-domain acme.example.com")
        .await
        .unwrap();
    assert!(made.starts_with("SLUG"), "{made}");
    assert!(
        made.contains("acme.example.com") && made.contains("active"),
        "{made}"
    );
    shell
        .run(
            "tenant create --name Globex --slug globex --sip-domain globex.example.com --suspended",
        )
        .await
        .unwrap();

    let listed = shell.json("tenant list --json").await;
    let slugs: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme", "globex"]);
    assert_eq!(listed[1]["status"], "suspended");
    let shown = shell.json("tenant --json show acme").await;
    assert_eq!(shown["sip_domain"], "acme.example.com");
    let by_id = shell
        .run(&format!("tenant show {}", shown["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert!(by_id.contains("slug:") && by_id.contains("acme"), "{by_id}");

    let error = shell
        .run("tenant create --name X --slug -bad --sip-domain x.example.com")
        .await
        .unwrap_err();
    assert!(error.contains("--slug"), "{error}");
    let error = shell
        .run("tenant create --name X --slug acme --sip-domain x.example.com")
        .await
        .unwrap_err();
    assert!(
        error.contains("--slug") && error.contains("already exists"),
        "{error}"
    );
    let error = shell
        .run("tenant create --name X --slug xx --sip-domain localhost")
        .await
        .unwrap_err();
    assert!(error.contains("--sip-domain"), "{error}");
    assert!(
        shell
            .run("tenant show nope")
            .await
            .unwrap_err()
            .contains("tenant not found")
    );

    let refused = shell.run("tenant delete acme").await.unwrap_err();
    assert!(refused.contains("--yes"), "{refused}");
    assert_eq!(
        shell
            .json("tenant list --json")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let deleted = shell.json("tenant delete acme --yes --json").await;
    assert_eq!(deleted["deleted"], shown["id"]);
    assert_eq!(
        shell
            .json("tenant list --json")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn user_and_device_commands() {
    let shell = Shell::new().await;
    shell
        .run("tenant create --name Acme --slug acme --sip-domain acme.example.com")
        .await
        .unwrap();
    let user = shell
        .json("user create acme --extension 201 --name Ann --json")
        .await;
    assert_eq!(user["class_of_service"], "national");
    shell
        .run("user create acme --extension 202 --name Bob --class-of-service international")
        .await
        .unwrap();
    let error = shell
        .run("user create acme --extension 0201 --name Cy")
        .await
        .unwrap_err();
    assert!(error.contains("--extension"), "{error}");
    let error = shell
        .run("user create acme --extension 203 --name Cy --class-of-service galactic")
        .await
        .unwrap_err();
    assert!(error.contains("--class-of-service"), "{error}");
    let error = shell
        .run("user create acme --extension 201 --name Dup")
        .await
        .unwrap_err();
    assert!(error.contains("--extension"), "{error}");
    let table = shell.run("user list acme").await.unwrap();
    assert_eq!(table.lines().count(), 3, "{table}");
    assert_eq!(
        shell.json("user show acme 202 --json").await["display_name"],
        "Bob"
    );

    // Device: the password is printed once, never listed.
    let created = shell
        .json("device create acme --user 201 --kind softphone --label laptop --json")
        .await;
    let username = created["credential"]["sip_username"]
        .as_str()
        .unwrap()
        .to_owned();
    let password = created["credential"]["sip_password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(password.len(), 26);
    let id = created["device"]["id"].as_str().unwrap().to_owned();
    let listed = shell.run("device list acme --json").await.unwrap();
    assert!(
        listed.contains(&username) && !listed.contains(&password),
        "{listed}"
    );
    let table = shell.run("device list acme").await.unwrap();
    assert!(
        table.contains("laptop") && table.contains(&username),
        "{table}"
    );

    let rotated = shell
        .run(&format!("device rotate acme {id}"))
        .await
        .unwrap();
    assert!(
        rotated.contains(&username) && !rotated.contains(&password),
        "{rotated}"
    );
    assert!(rotated.contains("shown only now"), "{rotated}");

    let desk = shell
        .run("device create acme --user 202 --kind desk-phone --vendor yealink --model T54W --mac 00:15:65:aa:bb:cc")
        .await
        .unwrap();
    assert!(
        desk.contains("00:15:65:aa:bb:cc") && desk.contains("sip password:"),
        "{desk}"
    );
    let error = shell
        .run("device create acme --user 202 --kind desk-phone --vendor yealink --model T54W")
        .await
        .unwrap_err();
    assert!(error.contains("--mac"), "{error}");
    let error = shell.run("device create acme --user 202 --kind desk-phone --vendor acme --model X --mac 001565aabbcd").await.unwrap_err();
    assert!(error.contains("--vendor"), "{error}");
    let error = shell
        .run("device create acme --user 999 --kind softphone")
        .await
        .unwrap_err();
    assert!(error.contains("--user"), "{error}");
    assert!(
        shell
            .run("device create acme --user 201 --kind fax")
            .await
            .is_err(),
        "clap refuses unknown kinds"
    );

    assert!(
        shell
            .run(&format!("device delete acme {id}"))
            .await
            .unwrap()
            .contains("deleted device")
    );
    assert_eq!(
        shell
            .json("device list acme --json")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        shell
            .run("device delete acme not-an-id")
            .await
            .unwrap_err()
            .contains("not a device id")
    );
    shell.run("user delete acme 202").await.unwrap();
    assert_eq!(
        shell.json("device list acme --json").await,
        serde_json::json!([]),
        "devices go with their user"
    );

    // Every write was audited, as the operator.
    let scope = shell
        .store
        .scope(
            &pbx_domain::Actor::Operator,
            user["tenant_id"].as_str().unwrap().parse().unwrap(),
        )
        .await
        .unwrap();
    let events = shell.store.events().list(&scope, 100).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|event| event.kind.as_str()).collect();
    for kind in [
        "tenant.created",
        "user.created",
        "device.created",
        "device.credential_rotated",
        "device.deleted",
        "user.deleted",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing in {kinds:?}");
    }
    assert_eq!(events[0].payload["actor"], "Operator");
}

#[tokio::test]
async fn token_commands() {
    let shell = Shell::new().await;
    shell
        .run("tenant create --name Acme --slug acme --sip-domain acme.example.com")
        .await
        .unwrap();
    let created = shell.json("token create --name portal --role customer_admin --tenant acme --expires-in-days 30 --json").await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cpbx_"));
    assert!(created["token"]["expires_at_ms"].as_i64().unwrap() > pbx_api::now_ms());
    let authenticated = shell
        .store
        .api_tokens()
        .authenticate(&secret, pbx_api::now_ms())
        .await
        .unwrap();
    assert!(authenticated.is_some(), "the printed secret works");

    let table = shell
        .run("token create --name ops --role operator")
        .await
        .unwrap();
    assert!(
        table.contains("secret:") && table.contains("cpbx_"),
        "{table}"
    );
    let error = shell
        .run("token create --name x --role customer_admin")
        .await
        .unwrap_err();
    assert!(error.contains("--tenant is required"), "{error}");
    let error = shell
        .run("token create --name x --role reseller --reseller nope")
        .await
        .unwrap_err();
    assert!(error.contains("--reseller"), "{error}");
    assert!(
        shell
            .run("token create --name x --role root")
            .await
            .is_err()
    );

    let listed = shell.run("token list --json").await.unwrap();
    assert!(!listed.contains(&secret), "secrets are never listed");
    assert_eq!(
        serde_json::from_str::<Value>(&listed)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let id = created["token"]["id"].as_str().unwrap();
    let revoked = shell.run(&format!("token revoke {id}")).await.unwrap();
    assert!(revoked.contains("revoked"), "{revoked}");
    assert!(
        shell
            .store
            .api_tokens()
            .authenticate(&secret, pbx_api::now_ms())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        shell
            .run(&format!("token revoke {id}"))
            .await
            .unwrap_err()
            .contains("already revoked")
    );
    assert!(
        shell
            .run("token revoke nope")
            .await
            .unwrap_err()
            .contains("not a token id")
    );
}
