//! Users: CRUD by id and by extension, field errors.

use serde_json::json;

use crate::support::on_both;

#[tokio::test]
async fn user_crud_by_id_and_extension() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        let ann = app.user("acme", "201").await;
        assert_eq!(ann["extension"], "201");
        assert_eq!(ann["class_of_service"], "national", "the default class of service");
        let made = app
            .post(
                "/api/v1/tenants/acme/users",
                &op,
                json!({ "extension": "202", "display_name": "Bob", "class_of_service": "internal_only" }),
            )
            .await
            .expect(201);
        assert_eq!(made["class_of_service"], "internal_only");

        let listed = app.get("/api/v1/tenants/acme/users", &op).await.expect(200);
        let extensions: Vec<_> = listed.as_array().unwrap().iter().map(|u| u["extension"].clone()).collect();
        assert_eq!(extensions, [json!("201"), json!("202")]);
        let id = ann["id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/api/v1/tenants/acme/users/{id}"), &op).await.expect(200)["extension"], "201");
        assert_eq!(app.get("/api/v1/tenants/acme/users/202", &op).await.expect(200)["display_name"], "Bob");

        let patched = app
            .patch("/api/v1/tenants/acme/users/201", &op, json!({ "extension": "301", "class_of_service": "international" }))
            .await
            .expect(200);
        assert_eq!(patched["extension"], "301");
        assert_eq!(patched["display_name"], "User 201", "absent fields keep their value");
        let tenant = app.state.directory.snapshot().tenant_by_slug("acme").unwrap().id;
        assert!(app.state.directory.snapshot().user_by_extension(tenant, "301").is_some(), "directory refreshed");

        assert_eq!(app.delete("/api/v1/tenants/acme/users/301", &op).await.status.as_u16(), 204);
        app.get(&format!("/api/v1/tenants/acme/users/{id}"), &op).await.assert_error(404, "not_found", None);
        app.delete("/api/v1/tenants/acme/users/301", &op).await.assert_error(404, "not_found", None);
        app.get("/api/v1/tenants/acme/users/not-an-extension", &op).await.assert_error(404, "not_found", None);
        let kinds = app.event_kinds("acme").await;
        assert_eq!(kinds[..4], ["user.deleted", "user.updated", "user.created", "user.created"]);

        // A customer admin manages its own users.
        let admin = app.admin_token("acme").await;
        app.post("/api/v1/tenants/acme/users", &admin, json!({ "extension": "401", "display_name": "Cy" })).await.expect(201);
        assert_eq!(app.get("/api/v1/tenants/acme/users", &admin).await.expect(200).as_array().unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn user_bad_requests_name_the_field() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        let path = "/api/v1/tenants/acme/users";
        app.post(
            path,
            &op,
            json!({ "extension": "0123", "display_name": "A" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("extension"));
        app.post(path, &op, json!({ "extension": 201, "display_name": "A" }))
            .await
            .assert_error(422, "invalid_field", Some("extension"));
        app.post(
            path,
            &op,
            json!({ "extension": "201", "display_name": " " }),
        )
        .await
        .assert_error(422, "invalid_field", Some("display_name"));
        app.post(
            path,
            &op,
            json!({ "extension": "201", "display_name": "A", "class_of_service": "galactic" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("class_of_service"));
        app.post(path, &op, json!({ "display_name": "A" }))
            .await
            .assert_error(422, "missing_field", Some("extension"));
        app.post(
            path,
            &op,
            json!({ "extension": "201", "display_name": "A", "pin": "1234" }),
        )
        .await
        .assert_error(422, "unknown_field", Some("pin"));
        app.user("acme", "201").await;
        app.user("acme", "202").await;
        app.post(
            path,
            &op,
            json!({ "extension": "201", "display_name": "A" }),
        )
        .await
        .assert_error(409, "conflict", Some("extension"));
        app.patch(
            "/api/v1/tenants/acme/users/202",
            &op,
            json!({ "extension": "201" }),
        )
        .await
        .assert_error(409, "conflict", Some("extension"));
        app.patch(
            "/api/v1/tenants/acme/users/202",
            &op,
            json!({ "extension": "2x" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("extension"));
        // The same extension in another tenant is fine.
        app.tenant("globex", None).await;
        app.user("globex", "201").await;
    })
    .await;
}
