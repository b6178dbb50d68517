//! OpenAPI document, health, metrics, unknown paths.

use axum::http::Method;

use crate::support::on_both;

/// Every documented path.
const PATHS: &[&str] = &[
    "/api/v1/resellers",
    "/api/v1/tenants",
    "/api/v1/tenants/{tenant}",
    "/api/v1/tenants/{tenant}/users",
    "/api/v1/tenants/{tenant}/users/{user}",
    "/api/v1/tenants/{tenant}/devices",
    "/api/v1/tenants/{tenant}/devices/{device}",
    "/api/v1/tenants/{tenant}/devices/{device}/credentials/rotate",
    "/api/v1/tenants/{tenant}/ip-whitelist",
    "/api/v1/tenants/{tenant}/ip-whitelist/{entry}",
    "/api/v1/tenants/{tenant}/users/{user}/ip-whitelist",
    "/api/v1/numbers",
    "/api/v1/tenants/{tenant}/numbers",
    "/api/v1/tenants/{tenant}/numbers/{number}",
    "/api/v1/tenants/{tenant}/registrations",
    "/api/v1/tenants/{tenant}/users/{user}/registrations",
    "/api/v1/tenants/{tenant}/events",
    "/api/v1/events",
    "/api/v1/tokens",
    "/api/v1/tokens/{token}",
    "/api/v1/routes",
    "/api/v1/routes/{route}",
    "/api/v1/security/bans",
    "/api/v1/security/bans/{source}",
    "/api/v1/security/events",
    "/api/v1/security/throttles",
    "/api/v1/tenants/{tenant}/call-settings",
    "/api/v1/tenants/{tenant}/cdrs",
    "/api/v1/tenants/{tenant}/cdrs/{cdr}",
    "/api/v1/tenants/{tenant}/devices/{device}/provisioning",
    "/api/v1/tenants/{tenant}/devices/{device}/provisioning/fetches",
    "/api/v1/tenants/{tenant}/provisioning",
    "/api/v1/tenants/{tenant}/provisioning/fetches",
    "/api/v1/tenants/{tenant}/routes",
    "/api/v1/tenants/{tenant}/routes/{route}",
    "/api/v1/tenants/{tenant}/security/blocks",
    "/api/v1/tenants/{tenant}/security/blocks/{user}",
    "/api/v1/tenants/{tenant}/security/destination-exceptions",
    "/api/v1/tenants/{tenant}/security/events",
    "/api/v1/tenants/{tenant}/security/limits",
    "/api/v1/tenants/{tenant}/users/{user}/security/limits",
    "/api/v1/tenants/{tenant}/security/throttles",
    "/api/v1/tenants/{tenant}/security/throttles/{user_name}",
    "/api/v1/tenants/{tenant}/trunks",
    "/api/v1/tenants/{tenant}/trunks/{trunk}",
    "/api/v1/trunks",
    "/api/v1/trunks/{trunk}",
    "/api/v1/openapi.json",
    "/healthz",
    "/metrics",
];

#[tokio::test]
async fn openapi_document_lists_every_path() {
    on_both(|app| async move {
        let reply = app
            .call(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        assert_eq!(reply.status.as_u16(), 200);
        assert!(reply.content_type.starts_with("application/json"));
        let document = reply.body;
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        let paths = document["paths"].as_object().unwrap();
        for path in PATHS {
            assert!(
                paths.contains_key(*path),
                "{path} missing from the OpenAPI document"
            );
        }
        assert_eq!(
            paths.len(),
            PATHS.len(),
            "undocumented extras: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
        assert!(paths["/api/v1/tenants/{tenant}/devices"]["post"].is_object());
        assert!(paths["/api/v1/tenants/{tenant}/registrations"]["delete"].is_object());
        assert!(paths["/api/v1/tenants/{tenant}/security/blocks"]["post"].is_object());
        for limits in [
            "/api/v1/tenants/{tenant}/security/limits",
            "/api/v1/tenants/{tenant}/users/{user}/security/limits",
        ] {
            for method in ["get", "put", "delete"] {
                assert!(paths[limits][method].is_object(), "{method} {limits}");
            }
        }
        for schema in [
            "UsageLimits",
            "EffectiveLimits",
            "LimitsView",
            "CreateBlock",
        ] {
            assert!(
                document["components"]["schemas"][schema].is_object(),
                "{schema}"
            );
        }
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(document["components"]["schemas"]["ErrorBody"].is_object());
        assert!(document["components"]["schemas"]["DeviceCreatedView"].is_object());
        // The served document is the one the library builds.
        assert_eq!(document, serde_json::to_value(pbx_api::openapi()).unwrap());
    })
    .await;
}

#[tokio::test]
async fn health_metrics_and_unknown_paths() {
    on_both(|app| async move {
        let health = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.status.as_u16(), 200);
        assert_eq!(health.body["status"], "ok");

        app.tenant("acme", None).await;
        app.call(Method::GET, "/api/v1/tenants", None, None)
            .await
            .assert_error(401, "unauthenticated", None);
        app.call(Method::GET, "/api/v1/nothing-here", None, None)
            .await
            .assert_error(404, "not_found", None);
        let metrics = app.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(metrics.status.as_u16(), 200);
        assert!(
            metrics
                .content_type
                .starts_with("text/plain; version=0.0.4")
        );
        let text = metrics.text;
        assert!(
            text.contains("# TYPE cloudpbx_api_responses_total counter"),
            "{text}"
        );
        assert!(
            text.contains("cloudpbx_api_responses_total{class=\"2xx\"}"),
            "{text}"
        );
        assert!(text.contains("cloudpbx_directory_tenants 1"), "{text}");
        let value = |name: &str| -> u64 {
            text.lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.rsplit(' ').next())
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        assert!(value("cloudpbx_api_auth_failures_total") >= 1);
        assert!(value("cloudpbx_api_writes_total") >= 1);
        assert!(value("cloudpbx_api_responses_total{class=\"4xx\"}") >= 2);
        // Every non-comment line is `name{labels} value`.
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let (_, number) = line.rsplit_once(' ').unwrap();
            number
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad sample line {line:?}"));
        }
    })
    .await;
}
