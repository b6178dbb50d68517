//! Devices: credentials shown once, rotation live in the directory, field errors.

use md5::{Digest, Md5};
use serde_json::json;

use crate::support::{App, on_both};

/// The MD5 HA1 the live directory holds for `username`, if the credential is usable.
fn directory_ha1(app: &App, username: &str) -> Option<String> {
    app.state
        .directory
        .snapshot()
        .usable_credential(username)
        .map(|credential| credential.ha1_md5.as_hex().to_owned())
}

/// `MD5(username:realm:password)`, computed here independently of the domain crate.
fn expected_ha1(username: &str, password: &str) -> String {
    hex::encode(Md5::digest(
        format!("{username}:cloudpbx.test:{password}").as_bytes(),
    ))
}

#[tokio::test]
async fn device_credentials_are_shown_once_and_rotate_live() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        app.user("acme", "201").await;
        let created = app.softphone("acme", "201").await;
        let username = created["credential"]["sip_username"]
            .as_str()
            .unwrap()
            .to_owned();
        let password = created["credential"]["sip_password"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(created["credential"]["realm"], "cloudpbx.test");
        assert_eq!(username.len(), 16, "80-bit generated user name");
        assert!(!username.contains("201"), "no extension in the user name");
        assert_eq!(password.len(), 26, "128-bit password");
        assert_eq!(created["device"]["sip_username"], username.as_str());
        assert_eq!(created["device"]["enabled"], true);
        assert_eq!(created["device"]["kind"], "softphone");
        let id = created["device"]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/tenants/acme/devices/{id}");

        // The directory authenticates with the shown password at once.
        assert_eq!(
            directory_ha1(&app, &username),
            Some(expected_ha1(&username, &password))
        );

        // GET and list never show the password again.
        let shown = app.get(&path, &op).await;
        assert_eq!(shown.status.as_u16(), 200);
        assert_eq!(shown.body["sip_username"], username.as_str());
        assert!(
            !shown.text.contains(&password) && !shown.text.contains("sip_password"),
            "{}",
            shown.text
        );
        let listed = app.get("/api/v1/tenants/acme/devices", &op).await;
        assert_eq!(listed.body.as_array().unwrap().len(), 1);
        assert!(!listed.text.contains(&password));

        // Rotation: a new password, same user name; the old one stops working at once.
        let rotated = app
            .post(&format!("{path}/credentials/rotate"), &op, json!({}))
            .await
            .expect(200);
        let new_password = rotated["sip_password"].as_str().unwrap().to_owned();
        assert_eq!(rotated["sip_username"], username.as_str());
        assert_ne!(new_password, password);
        assert_eq!(
            directory_ha1(&app, &username),
            Some(expected_ha1(&username, &new_password))
        );
        assert_ne!(
            directory_ha1(&app, &username),
            Some(expected_ha1(&username, &password))
        );
        assert!(!app.get(&path, &op).await.text.contains(&new_password));

        // Update: label and disabling the credential (refused at once).
        let patched = app
            .patch(&path, &op, json!({ "label": "desk", "enabled": false }))
            .await
            .expect(200);
        assert_eq!(patched["label"], "desk");
        assert_eq!(patched["enabled"], false);
        assert_eq!(
            directory_ha1(&app, &username),
            None,
            "a disabled credential is unusable"
        );
        app.patch(&path, &op, json!({ "enabled": true }))
            .await
            .expect(200);
        assert!(directory_ha1(&app, &username).is_some());

        assert_eq!(app.delete(&path, &op).await.status.as_u16(), 204);
        app.get(&path, &op)
            .await
            .assert_error(404, "not_found", None);
        app.post(&format!("{path}/credentials/rotate"), &op, json!({}))
            .await
            .assert_error(404, "not_found", None);
        assert!(
            app.state
                .directory
                .snapshot()
                .credential(&username)
                .is_none(),
            "credential gone with the device"
        );
        let kinds = app.event_kinds("acme").await;
        assert_eq!(
            kinds[..5],
            [
                "device.deleted",
                "device.updated",
                "device.updated",
                "device.credential_rotated",
                "device.created"
            ]
        );
        // No audit event carries the password.
        let events = app.get("/api/v1/tenants/acme/events", &op).await;
        assert!(!events.text.contains(&password) && !events.text.contains(&new_password));
    })
    .await;
}

#[tokio::test]
async fn desk_phones_and_device_field_errors() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        let user = app.user("acme", "201").await;
        let path = "/api/v1/tenants/acme/devices";
        let desk = json!({ "user": user["id"], "kind": "desk_phone", "vendor": "yealink", "model": "T54W", "mac": "00:15:65:AA:BB:CC" });
        let made = app.post(path, &op, desk.clone()).await.expect(201);
        assert_eq!(made["device"]["mac"], "00:15:65:aa:bb:cc");
        assert_eq!(made["device"]["vendor"], "yealink");
        let snapshot = app.state.directory.snapshot();
        assert!(snapshot.device_by_mac("001565aabbcc").is_some(), "directory knows the phone by MAC");

        app.post(path, &op, desk.clone()).await.assert_error(409, "conflict", Some("mac"));
        let with = |key: &str, value: serde_json::Value| {
            let mut body = desk.clone();
            body[key] = value;
            body
        };
        app.post(path, &op, with("mac", json!("00:15:65:AA:BB"))).await.assert_error(422, "invalid_field", Some("mac"));
        app.post(path, &op, with("vendor", json!("acmephone"))).await.assert_error(422, "invalid_field", Some("vendor"));
        app.post(path, &op, with("kind", json!("fax"))).await.assert_error(422, "invalid_field", Some("kind"));
        app.post(path, &op, with("user", json!("999"))).await.assert_error(422, "invalid_field", Some("user"));
        app.post(path, &op, with("label", json!("a\nb"))).await.assert_error(422, "invalid_field", Some("label"));
        let mut no_mac = desk.clone();
        no_mac.as_object_mut().unwrap().remove("mac");
        app.post(path, &op, no_mac).await.assert_error(422, "missing_field", Some("mac"));
        app.post(path, &op, json!({ "user": "201", "kind": "softphone", "mac": "001565000001" }))
            .await
            .assert_error(422, "invalid_field", Some("mac"));
        app.post(path, &op, json!({ "kind": "softphone" })).await.assert_error(422, "missing_field", Some("user"));
        // A user of another tenant is not a user of this one.
        app.tenant("globex", None).await;
        let other = app.user("globex", "301").await;
        app.post(path, &op, json!({ "user": other["id"], "kind": "mobile_app" })).await.assert_error(422, "invalid_field", Some("user"));
        let id = made["device"]["id"].as_str().unwrap();
        app.patch(&format!("{path}/{id}"), &op, json!({ "label": "x".repeat(101) }))
            .await
            .assert_error(422, "invalid_field", Some("label"));
        app.patch(&format!("{path}/{id}"), &op, json!({ "enabled": "yes" }))
            .await
            .assert_error(422, "invalid_field", Some("enabled"));
        // Nothing half-made: still one device.
        assert_eq!(app.get(path, &op).await.expect(200).as_array().unwrap().len(), 1);
    })
    .await;
}
