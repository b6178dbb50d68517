//! IP whitelists and phone numbers.

use serde_json::json;

use crate::support::on_both;

#[tokio::test]
async fn whitelist_crud_for_tenant_and_user() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        let ann = app.user("acme", "201").await;
        app.user("acme", "202").await;
        let path = "/api/v1/tenants/acme/ip-whitelist";
        let office = app
            .post(
                path,
                &op,
                json!({ "network": "192.0.2.7/24", "description": "office" }),
            )
            .await
            .expect(201);
        assert_eq!(office["network"], "192.0.2.0/24", "host bits cleared");
        assert_eq!(office["user_id"], serde_json::Value::Null);
        let home = app
            .post(
                path,
                &op,
                json!({ "network": "2001:db8::1", "user": "201" }),
            )
            .await
            .expect(201);
        assert_eq!(home["user_id"], ann["id"]);
        let sub = app
            .post(
                "/api/v1/tenants/acme/users/202/ip-whitelist",
                &op,
                json!({ "network": "198.51.100.0/28" }),
            )
            .await
            .expect(201);

        assert_eq!(
            app.get(path, &op)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let only_ann = app.get(&format!("{path}?user=201"), &op).await.expect(200);
        assert_eq!(only_ann.as_array().unwrap().len(), 1);
        assert_eq!(only_ann[0]["network"], "2001:db8::1/128");
        let via_user = app
            .get("/api/v1/tenants/acme/users/202/ip-whitelist", &op)
            .await
            .expect(200);
        assert_eq!(via_user[0]["id"], sub["id"]);
        let office_path = format!("{path}/{}", office["id"].as_str().unwrap());
        assert_eq!(
            app.get(&office_path, &op).await.expect(200)["description"],
            "office"
        );

        // The live directory enforces it.
        let snapshot = app.state.directory.snapshot();
        let tenant = snapshot.tenant_by_slug("acme").unwrap().id;
        assert!(snapshot.whitelist_permits(tenant, None, "192.0.2.99".parse().unwrap()));
        assert!(!snapshot.whitelist_permits(tenant, None, "203.0.113.1".parse().unwrap()));

        assert_eq!(app.delete(&office_path, &op).await.status.as_u16(), 204);
        app.get(&office_path, &op)
            .await
            .assert_error(404, "not_found", None);
        app.delete(&office_path, &op)
            .await
            .assert_error(404, "not_found", None);
        let snapshot = app.state.directory.snapshot();
        assert!(
            snapshot.whitelist_permits(tenant, None, "203.0.113.1".parse().unwrap()),
            "no tenant list: open"
        );

        // Field errors.
        app.post(path, &op, json!({ "network": "192.0.2.0/33" }))
            .await
            .assert_error(422, "invalid_field", Some("network"));
        app.post(path, &op, json!({ "network": "example.com" }))
            .await
            .assert_error(422, "invalid_field", Some("network"));
        app.post(path, &op, json!({ "description": "x" }))
            .await
            .assert_error(422, "missing_field", Some("network"));
        app.post(path, &op, json!({ "network": "10.0.0.0/8", "user": "999" }))
            .await
            .assert_error(422, "invalid_field", Some("user"));
        app.post(
            path,
            &op,
            json!({ "network": "10.0.0.0/8", "description": "x".repeat(201) }),
        )
        .await
        .assert_error(422, "invalid_field", Some("description"));
        app.get(&format!("{path}?user=999"), &op)
            .await
            .assert_error(400, "invalid_parameter", Some("user"));
        let kinds = app.event_kinds("acme").await;
        assert_eq!(kinds[0], "ip_whitelist.removed");
        assert_eq!(
            kinds
                .iter()
                .filter(|kind| *kind == "ip_whitelist.added")
                .count(),
            3
        );
    })
    .await;
}

#[tokio::test]
async fn numbers_assign_route_unassign() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        app.tenant("globex", None).await;
        let ann = app.user("acme", "201").await;
        let admin = app.admin_token("acme").await;

        let free = app
            .post(
                "/api/v1/numbers",
                &op,
                json!({ "number": "+31 20 123 4567" }),
            )
            .await
            .expect(201);
        assert_eq!(free["number"], "+31201234567");
        assert_eq!(free["tenant_id"], serde_json::Value::Null);
        assert_eq!(
            app.get("/api/v1/numbers", &op)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .len(),
            1
        );
        app.post("/api/v1/numbers", &op, json!({ "number": "+31201234567" }))
            .await
            .assert_error(409, "conflict", Some("number"));
        app.post("/api/v1/numbers", &op, json!({ "number": "12345" }))
            .await
            .assert_error(422, "invalid_field", Some("number"));
        app.post(
            "/api/v1/numbers",
            &admin,
            json!({ "number": "+31201234568" }),
        )
        .await
        .assert_error(403, "forbidden", None);
        app.get("/api/v1/numbers", &admin)
            .await
            .assert_error(403, "forbidden", None);

        // From the inventory, routed to a user; and a brand-new number straight to a tenant.
        let assigned = app
            .post(
                "/api/v1/tenants/acme/numbers",
                &op,
                json!({ "number": "+31201234567", "user": "201" }),
            )
            .await
            .expect(201);
        assert_eq!(assigned["user_id"], ann["id"]);
        app.post(
            "/api/v1/tenants/acme/numbers",
            &op,
            json!({ "number": "0031201234999" }),
        )
        .await
        .expect(201);
        assert_eq!(app.get("/api/v1/numbers", &op).await.expect(200), json!([]));
        let snapshot = app.state.directory.snapshot();
        let routed = snapshot.number("+31201234567").unwrap();
        assert_eq!(
            routed.user_id.map(|id| id.to_string()),
            ann["id"].as_str().map(str::to_owned)
        );

        // Taken by acme: globex cannot get it.
        app.post(
            "/api/v1/tenants/globex/numbers",
            &op,
            json!({ "number": "+31201234567" }),
        )
        .await
        .assert_error(409, "conflict", Some("number"));
        app.post(
            "/api/v1/tenants/acme/numbers",
            &admin,
            json!({ "number": "+31201230000" }),
        )
        .await
        .assert_error(403, "forbidden", None);
        app.post(
            "/api/v1/tenants/acme/numbers",
            &op,
            json!({ "number": "+31201230000", "user": "999" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("user"));
        app.post(
            "/api/v1/tenants/acme/numbers",
            &op,
            json!({ "number": "+0" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("number"));

        // The customer admin lists and routes its numbers.
        let listed = app
            .get("/api/v1/tenants/acme/numbers", &admin)
            .await
            .expect(200);
        assert_eq!(listed.as_array().unwrap().len(), 2);
        let by_number = app
            .get("/api/v1/tenants/acme/numbers/+31201234567", &admin)
            .await
            .expect(200);
        let by_id = app
            .get(
                &format!(
                    "/api/v1/tenants/acme/numbers/{}",
                    by_number["id"].as_str().unwrap()
                ),
                &admin,
            )
            .await
            .expect(200);
        assert_eq!(by_id["number"], "+31201234567");
        let unrouted = app
            .patch(
                "/api/v1/tenants/acme/numbers/+31201234567",
                &admin,
                json!({ "user": null }),
            )
            .await
            .expect(200);
        assert_eq!(unrouted["user_id"], serde_json::Value::Null);
        app.patch(
            "/api/v1/tenants/acme/numbers/+31201234567",
            &admin,
            json!({ "user": "201" }),
        )
        .await
        .expect(200);
        app.patch(
            "/api/v1/tenants/acme/numbers/+31201234567",
            &admin,
            json!({ "user": "555" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("user"));
        app.delete("/api/v1/tenants/acme/numbers/+31201234567", &admin)
            .await
            .assert_error(403, "forbidden", None);

        // Unassign: back to the free inventory, gone from the directory.
        assert_eq!(
            app.delete("/api/v1/tenants/acme/numbers/+31201234567", &op)
                .await
                .status
                .as_u16(),
            204
        );
        app.get("/api/v1/tenants/acme/numbers/+31201234567", &op)
            .await
            .assert_error(404, "not_found", None);
        assert_eq!(
            app.get("/api/v1/numbers", &op).await.expect(200)[0]["number"],
            "+31201234567"
        );
        assert!(
            app.state
                .directory
                .snapshot()
                .number("+31201234567")
                .is_none()
        );
        let kinds = app.event_kinds("acme").await;
        assert_eq!(
            kinds[..4],
            [
                "number.unassigned",
                "number.routed",
                "number.routed",
                "number.assigned"
            ]
        );
    })
    .await;
}
