use super::*;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_are_valid_and_safe() {
    let file = parse(None, "", no_env()).unwrap();
    assert_eq!(file, FileConfig::default());
    let settings = Settings::from_file_config(file).unwrap();
    assert_eq!(settings.sip_udp.len(), 2);
    assert_eq!(settings.sip_tls[0].port(), 5061);
    assert_eq!(settings.http.port(), 8080);
    assert!(settings.database_url.starts_with("sqlite://"));
    assert!(settings.database_url.contains("cloudpbx.db"));
    assert_eq!(settings.timers.t1, std::time::Duration::from_millis(500));
    assert!(settings.nat_keepalive_interval <= std::time::Duration::from_secs(30));
}

#[test]
fn file_overrides_defaults_and_keeps_the_rest() {
    let text = "data_dir = \"/tmp/x\"\n[sip]\nt1_ms = 250\nudp_listen = [\"127.0.0.1:5999\"]\n";
    let settings =
        Settings::from_file_config(parse(Some(text), "f.toml", no_env()).unwrap()).unwrap();
    assert_eq!(settings.sip_udp, vec!["127.0.0.1:5999".parse().unwrap()]);
    assert_eq!(settings.timers.t1.as_millis(), 250);
    assert_eq!(settings.timers.t2.as_millis(), 4000);
    assert_eq!(settings.data_dir, std::path::PathBuf::from("/tmp/x"));
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let err = parse(Some("[sip]\nt1 = 3\n"), "f.toml", no_env()).unwrap_err();
    assert_eq!(err.key(), Some("sip.t1"), "{err}");
    assert!(err.to_string().contains("unknown field `t1`"), "{err}");
    let err = parse(Some("colour = 1\n"), "f.toml", no_env()).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn wrong_types_name_the_key() {
    let err = parse(Some("[sip]\nt1_ms = \"fast\"\n"), "f.toml", no_env()).unwrap_err();
    assert_eq!(err.key(), Some("sip.t1_ms"), "{err}");
}

#[test]
fn syntax_errors_are_reported() {
    let err = parse(Some("[sip\n"), "f.toml", no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
}

#[test]
fn environment_overrides_file() {
    let text = "[sip]\nt1_ms = 250\n";
    let vars = env(&[
        ("CLOUDPBX__SIP__T1_MS", "300"),
        ("CLOUDPBX__SIP__UDP_LISTEN", "127.0.0.1:5070, [::1]:5070"),
        ("CLOUDPBX__DATA_DIR", "/var/lib/cloudpbx"),
        (
            "CLOUDPBX__DATABASE__URL",
            "postgres://postgres@127.0.0.1/cloudpbx",
        ),
        ("CLOUDPBX_CONFORMANCE_DIR", "/elsewhere"), // not a config key: ignored
    ]);
    let settings = Settings::from_file_config(parse(Some(text), "f.toml", vars).unwrap()).unwrap();
    assert_eq!(settings.timers.t1.as_millis(), 300);
    assert_eq!(settings.sip_udp.len(), 2);
    assert_eq!(settings.sip_udp[1], "[::1]:5070".parse().unwrap());
    assert_eq!(
        settings.database_url,
        "postgres://postgres@127.0.0.1/cloudpbx"
    );
    assert_eq!(
        settings.data_dir,
        std::path::PathBuf::from("/var/lib/cloudpbx")
    );
}

#[test]
fn environment_list_as_toml_literal() {
    let vars = env(&[("CLOUDPBX__SIP__TLS_LISTEN", "[\"127.0.0.1:5061\"]")]);
    let settings = Settings::from_file_config(parse(None, "", vars).unwrap()).unwrap();
    assert_eq!(settings.sip_tls, vec!["127.0.0.1:5061".parse().unwrap()]);
}

#[test]
fn unknown_environment_keys_are_rejected() {
    let err = parse(None, "", env(&[("CLOUDPBX__SIP__T9_MS", "1")])).unwrap_err();
    assert!(err.to_string().contains("t9_ms"), "{err}");
    let err = parse(None, "", env(&[("CLOUDPBX__SIP__T1_MS", "soon")])).unwrap_err();
    assert_eq!(err.key(), Some("sip.t1_ms"), "{err}");
}

#[test]
fn validation_names_the_key() {
    let cases = [
        ("[sip]\nudp_listen = [\"nonsense\"]\n", "sip.udp_listen"),
        ("[sip]\nt1_ms = 0\n", "sip.t1_ms"),
        ("[sip]\nt1_ms = 5000\nt2_ms = 4000\n", "sip.t2_ms"),
        ("[sip]\ntls_cert_path = \"c.pem\"\n", "sip.tls_key_path"),
        (
            "[registrar]\ndefault_expiry_secs = 10\n",
            "registrar.default_expiry_secs",
        ),
        (
            "[registrar]\nnat_keepalive_interval_secs = 0\n",
            "registrar.nat_keepalive_interval_secs",
        ),
        (
            "[registrar]\nrefresh_write_back_ms = 300001\n",
            "registrar.refresh_write_back_ms",
        ),
        ("[rtp]\nport_min = 10001\n", "rtp.port_min"),
        ("[http]\nlisten = \"8080\"\n", "http.listen"),
        ("[database]\nurl = \"mysql://x\"\n", "database.url"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        (
            "[sip]\ndigest_algorithms = [\"SHA-1\"]\n",
            "sip.digest_algorithms",
        ),
        ("[sip]\ndigest_algorithms = []\n", "sip.digest_algorithms"),
        (
            "[sip]\nudp_listen = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
            "sip.udp_listen",
        ),
    ];
    for (text, key) in cases {
        let file = parse(Some(text), "f.toml", no_env()).unwrap();
        let err = Settings::from_file_config(file).unwrap_err();
        assert_eq!(err.key(), Some(key), "{text}: {err}");
    }
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloudpbx.toml");
    std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:18080\"\n").unwrap();
    let settings = load(Some(&path), no_env()).unwrap();
    assert_eq!(settings.http, "127.0.0.1:18080".parse().unwrap());
    let err = load(Some(&dir.path().join("missing.toml")), no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err}");
}

#[test]
fn defaults_toml_round_trips() {
    let text = defaults_toml();
    assert!(text.contains("[sip]"));
    assert_eq!(
        parse(Some(&text), "defaults", no_env()).unwrap(),
        FileConfig::default()
    );
}
