//! Fraud guard: a tenant's outbound destination exceptions (GET/PUT), stored on both
//! engines, validated with errors naming the field, scoped to the tenant.

use serde_json::json;

use crate::support::on_both;

const PATH: &str = "/api/v1/tenants/acme/security/destination-exceptions";

#[tokio::test]
async fn destination_exceptions_are_stored_validated_and_scoped() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        app.tenant("beta", None).await;

        // Never set: empty lists.
        let empty = app.get(PATH, &op).await.expect(200);
        assert_eq!(
            empty,
            json!({ "allow": [], "block": [], "updated_at_ms": null })
        );

        // Set (normalised to +digits, duplicates dropped, order kept) and read back.
        let body = json!({ "allow": ["+319091234", "319091234"], "block": ["44", "+1900"] });
        let set = app.put(PATH, &op, body).await.expect(200);
        assert_eq!(set["allow"], json!(["+319091234"]));
        assert_eq!(set["block"], json!(["+44", "+1900"]));
        assert!(set["updated_at_ms"].as_i64().is_some_and(|t| t > 0));
        let read = app.get(PATH, &op).await.expect(200);
        assert_eq!(read, set, "stored");
        assert!(
            app.event_kinds("acme")
                .await
                .iter()
                .any(|k| k == "security.destination_exceptions_changed"),
            "audited"
        );

        // 4xx errors name the field.
        let put = |body: serde_json::Value| app.put(PATH, &op, body);
        put(json!({ "allow": [], "block": ["+44", "0900"] }))
            .await
            .assert_error(422, "invalid_field", Some("block.1"));
        put(json!({ "allow": ["+31 909"], "block": [] }))
            .await
            .assert_error(422, "invalid_field", Some("allow.0"));
        put(json!({ "allow": ["+1234567890123456"], "block": [] }))
            .await
            .assert_error(422, "invalid_field", Some("allow.0"));
        put(json!({ "allow": ["+44"], "block": ["+1", "44"] }))
            .await
            .assert_error(422, "invalid_field", Some("block.1"));
        put(json!({ "allow": [] }))
            .await
            .assert_error(422, "missing_field", Some("block"));
        put(json!({ "allow": [], "block": [], "deny": [] }))
            .await
            .assert_error(422, "unknown_field", Some("deny"));
        put(json!({ "allow": "+44", "block": [] }))
            .await
            .assert_error(422, "invalid_field", Some("allow"));
        let too_many: Vec<String> = (0..1001).map(|n| format!("+44{n}")).collect();
        put(json!({ "allow": [], "block": too_many }))
            .await
            .assert_error(422, "invalid_field", Some("block"));
        assert_eq!(
            app.get(PATH, &op).await.expect(200),
            set,
            "refusals changed nothing"
        );

        // A customer admin may change the blocks, not lift default blocks.
        let admin = app.admin_token("acme").await;
        let blocks = json!({ "allow": ["+319091234"], "block": ["+44"] });
        let changed = app.put(PATH, &admin, blocks).await.expect(200);
        assert_eq!(changed["block"], json!(["+44"]));
        let lift = json!({ "allow": ["+319091234", "+882"], "block": ["+44"] });
        app.put(PATH, &admin, lift)
            .await
            .assert_error(403, "forbidden", None);

        // Another tenant's admin sees nothing of acme's: 404, and beta's own list is empty.
        let beta_admin = app.admin_token("beta").await;
        app.get(PATH, &beta_admin)
            .await
            .assert_error(404, "not_found", None);
        app.put(PATH, &beta_admin, json!({ "allow": [], "block": [] }))
            .await
            .assert_error(404, "not_found", None);
        let beta = app
            .get(
                "/api/v1/tenants/beta/security/destination-exceptions",
                &beta_admin,
            )
            .await
            .expect(200);
        assert_eq!(beta["block"], json!([]));
        assert_eq!(
            app.get(PATH, &op).await.expect(200)["block"],
            json!(["+44"])
        );
    })
    .await;
}
