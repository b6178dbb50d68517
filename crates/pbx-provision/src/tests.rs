//! Resolution over a real snapshot, and every brand rendered and parsed back.

use std::collections::BTreeMap;
use std::net::IpAddr;

use pbx_domain::entities::{Device, Tenant, User, WhitelistEntry};
use pbx_domain::ids::{DeviceId, TenantId, UserId, WhitelistEntryId};
use pbx_domain::{
    ClassOfService, DeviceKind, DirectoryParts, DirectorySnapshot, DisplayName, Extension,
    MacAddress, PhoneVendor, SipDomain, Slug, TenantStatus, parse_network,
};

use crate::render::{ContextParts, TEMPLATES, TenantContext, template_for};
use crate::*;

fn tenant(n: u8, slug: &str, status: TenantStatus) -> Tenant {
    Tenant {
        id: TenantId::from_parts(1, &[n; 10]),
        reseller_id: None,
        name: DisplayName::parse(&format!("{slug} B.V.")).unwrap(),
        slug: Slug::parse(slug).unwrap(),
        sip_domain: SipDomain::parse(&format!("{slug}.pbx.example")).unwrap(),
        status,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn user(n: u8, tenant: TenantId) -> User {
    User {
        id: UserId::from_parts(1, &[n; 10]),
        tenant_id: tenant,
        extension: Extension::parse("201").unwrap(),
        display_name: DisplayName::parse("Ann").unwrap(),
        class_of_service: ClassOfService::National,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn phone(n: u8, user: &User, vendor: PhoneVendor, mac: &str) -> Device {
    Device {
        id: DeviceId::from_parts(1, &[n; 10]),
        tenant_id: user.tenant_id,
        user_id: user.id,
        kind: DeviceKind::DeskPhone {
            vendor,
            model: "T54W".into(),
            mac: MacAddress::parse(mac).unwrap(),
        },
        label: "Desk".into(),
        whitelist_exempt: false,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn allow(n: u8, tenant: TenantId, user: Option<UserId>, net: &str) -> WhitelistEntry {
    WhitelistEntry {
        id: WhitelistEntryId::from_parts(1, &[n; 10]),
        tenant_id: tenant,
        user_id: user,
        network: parse_network(net).unwrap(),
        description: String::new(),
        created_at_ms: 0,
    }
}

struct World {
    snapshot: DirectorySnapshot,
    acme: Tenant,
    beta: Tenant,
}

fn world() -> World {
    let acme = tenant(1, "acme", TenantStatus::Active);
    let beta = tenant(2, "beta", TenantStatus::Active);
    let gone = tenant(3, "gone", TenantStatus::Suspended);
    let open = tenant(4, "open", TenantStatus::Active);
    let ann = user(10, acme.id);
    let bob = user(11, beta.id);
    let olga = user(12, open.id);
    let devices = vec![
        phone(20, &ann, PhoneVendor::Yealink, "001565aabbcc"),
        phone(21, &ann, PhoneVendor::Polycom, "0004f2000001"),
        phone(22, &bob, PhoneVendor::Snom, "000413000002"),
        phone(23, &olga, PhoneVendor::Cisco, "00000c000003"),
    ];
    let whitelist = vec![
        allow(30, acme.id, None, "192.0.2.0/24"),
        allow(31, beta.id, None, "198.51.100.7"),
        allow(32, gone.id, None, "192.0.2.0/24"),
        // Ann may only provision from one host of acme's network.
        allow(33, acme.id, Some(ann.id), "192.0.2.10/32"),
    ];
    let snapshot = DirectorySnapshot::build(
        1,
        DirectoryParts {
            tenants: vec![acme.clone(), beta.clone(), gone, open],
            users: vec![ann, bob, olga],
            devices,
            whitelist,
            ..DirectoryParts::default()
        },
    );
    World {
        snapshot,
        acme,
        beta,
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn whitelisted_sources_get_their_tenants_files() {
    let w = world();
    let ok = resolve(&w.snapshot, ip("192.0.2.10"), "acme/001565aabbcc.cfg").unwrap();
    assert_eq!(ok.tenant.id, w.acme.id);
    assert_eq!(ok.vendor, PhoneVendor::Yealink);
    assert!(ok.device.is_some());
    // The same through the companyname@host form, and with no tenant in the path.
    for path in ["acme@prov.example.com/001565aabbcc.cfg", "001565aabbcc.cfg"] {
        assert_eq!(
            resolve(&w.snapshot, ip("192.0.2.10"), path).unwrap().device,
            ok.device,
            "{path}"
        );
    }
    // IPv4 seen through a dual-stack socket.
    assert!(
        resolve(
            &w.snapshot,
            ip("::ffff:192.0.2.10"),
            "acme/001565aabbcc.cfg"
        )
        .is_ok()
    );
    // <mac>.cfg of a Polycom is the Polycom master file.
    let poly = resolve(&w.snapshot, ip("192.0.2.10"), "acme/0004f2000001.cfg").unwrap();
    assert_eq!(poly.vendor, PhoneVendor::Polycom);
    // Common files need the tenant but no device.
    let common = resolve(&w.snapshot, ip("192.0.2.99"), "acme/y000000000028.cfg").unwrap();
    assert_eq!((common.device, common.model.as_str()), (None, "28"));
}

#[test]
fn refusals_name_their_reason_and_security_class() {
    let w = world();
    let check = |source: &str, path: &str, expected: Refusal, security: bool| {
        let refusal = resolve(&w.snapshot, ip(source), path).unwrap_err();
        assert_eq!(refusal, expected, "{source} {path}");
        assert_eq!(refusal.is_security(), security, "{source} {path}");
    };
    let acme = w.acme.id;
    check(
        "203.0.113.1",
        "acme/001565aabbcc.cfg",
        Refusal::NotWhitelisted(acme),
        true,
    );
    check(
        "203.0.113.1",
        "001565aabbcc.cfg",
        Refusal::NotWhitelisted(acme),
        true,
    );
    check(
        "203.0.113.1",
        "acme/firmware.rom",
        Refusal::NotWhitelisted(acme),
        true,
    );
    // In acme's network, but not on Ann's narrower list.
    check(
        "192.0.2.99",
        "acme/001565aabbcc.cfg",
        Refusal::NotWhitelisted(acme),
        true,
    );
    check(
        "192.0.2.10",
        "nobody/001565aabbcc.cfg",
        Refusal::UnknownTenant,
        true,
    );
    check(
        "192.0.2.10",
        "acme/cfg000413000002.xml",
        Refusal::ForeignDevice {
            tenant: acme,
            owner: w.beta.id,
        },
        true,
    );
    // A tenant without any whitelist provisions nothing.
    let open = w.snapshot.tenant_by_slug("open").unwrap().id;
    check(
        "192.0.2.10",
        "open/SEP00000C000003.cnf.xml",
        Refusal::NotWhitelisted(open),
        true,
    );
    let gone = w.snapshot.tenant_by_slug("gone").unwrap().id;
    check(
        "192.0.2.10",
        "gone/y000000000028.cfg",
        Refusal::TenantInactive(gone),
        false,
    );
    check(
        "192.0.2.10",
        "acme/cfg0000000000ff.xml",
        Refusal::UnknownDevice(acme),
        false,
    );
    check(
        "192.0.2.10",
        "acme/cfg001565aabbcc.xml",
        Refusal::WrongBrand(acme),
        false,
    );
    check(
        "192.0.2.10",
        "acme/sip.ld",
        Refusal::NotAConfigFile(Some(acme)),
        false,
    );
    check(
        "192.0.2.10",
        "y000000000028.cfg",
        Refusal::NotAConfigFile(None),
        false,
    );
    check("192.0.2.10", "a/b/c.cfg", Refusal::BadPath, false);
    check("192.0.2.10", "0015650000ff.cfg", Refusal::UnknownMac, true);
}

#[test]
fn a_source_outside_the_whitelist_cannot_tell_existing_macs_or_tenants_apart() {
    let w = world();
    // Known MAC, unknown MAC, another tenant's MAC, known and unknown company, suspended
    // company, bare MAC paths: all the same answer for a source on no whitelist.
    let paths = [
        "acme/001565aabbcc.cfg",
        "acme/0015650000ff.cfg",
        "acme/cfg000413000002.xml",
        "acme@prov.example.com/001565aabbcc.cfg",
        "nobody/001565aabbcc.cfg",
        "nobody/0015650000ff.cfg",
        "gone/001565aabbcc.cfg",
        "001565aabbcc.cfg",
        "0015650000ff.cfg",
        "SEP00000C000003.cnf.xml",
        "SEP0000000000FF.cnf.xml",
        "acme/sip.ld",
    ];
    for path in paths {
        let refusal = resolve(&w.snapshot, ip("203.0.113.1"), path).unwrap_err();
        assert!(refusal.is_access_violation(), "{path}: {refusal:?}");
        // ... and all count towards the source's ban score alike.
        assert!(refusal.is_security(), "{path}: {refusal:?}");
    }
    // From acme's office an unknown MAC and beta's MAC are both "file not found".
    for path in ["acme/cfg000413000002.xml", "acme/cfg0000000000ff.xml"] {
        let refusal = resolve(&w.snapshot, ip("192.0.2.10"), path).unwrap_err();
        assert!(!refusal.is_access_violation(), "{path}: {refusal:?}");
    }
}

fn context(vendor: PhoneVendor, mac: &str, line: bool) -> ConfigContext {
    ConfigContext::new(ContextParts {
        vendor,
        model: "T54W".into(),
        family: "28".into(),
        mac: mac.into(),
        tenant: TenantContext {
            name: "Acme & Sons <B.V.>".into(),
            slug: "acme".into(),
            domain: "acme.pbx.example".into(),
        },
        line: line.then(|| LineContext {
            extension: "201".into(),
            display_name: "Ann \"the\" <Boss>\nline2".into(),
            label: "Ann 201".into(),
            auth_username: "u7k2m".into(),
            password: "P4ss&<word>".into(),
            realm: "cloudpbx".into(),
            domain: "acme.pbx.example".into(),
        }),
        sip: SipServer {
            host: "sip.pbx.example".into(),
            port: 5060,
            transport: "udp".into(),
            tls_port: 5061,
        },
        register_expiry_secs: 600,
        nat_keepalive_secs: 25,
        codecs: vec![
            "G722".into(),
            "PCMA".into(),
            "PCMU".into(),
            "nonsense".into(),
        ],
        time_zone: ZoneSpellings::of("Europe/Amsterdam").unwrap(),
        language: LanguageSpellings::of("nl").unwrap(),
        recheck_secs: 86_400,
        tftp_base: "tftp://prov.pbx.example/acme".into(),
    })
}

/// Attribute or element text anywhere in an XML document.
fn xml_value(doc: &roxmltree::Document<'_>, name: &str) -> Option<String> {
    for node in doc.descendants() {
        if let Some(value) = node.attribute(name) {
            return Some(value.to_owned());
        }
        if node.has_tag_name(name) {
            return Some(node.text().unwrap_or_default().to_owned());
        }
    }
    None
}

#[test]
fn every_brand_renders_and_parses_back() {
    let renderer = Renderer::new(&BTreeMap::new()).unwrap();
    let display = "Ann \"the\" <Boss> line2";
    let password = "P4ss&<word>";
    // XML brands: (file, vendor, mac, expected key → value).
    type Case = (BrandFile, PhoneVendor, Vec<(&'static str, &'static str)>);
    let xml_cases: Vec<Case> = vec![
        (
            BrandFile::PolycomPhone(MacAddress::parse("0004f2000001").unwrap()),
            PhoneVendor::Polycom,
            vec![
                ("reg.1.auth.password", password),
                ("reg.1.displayName", display),
                ("reg.1.address", "201@acme.pbx.example"),
                ("reg.1.server.1.address", "sip.pbx.example"),
                ("reg.1.server.1.transport", "UDPOnly"),
                ("nat.keepalive.interval", "25"),
                ("voice.codecPref.G722", "1"),
                ("voice.codecPref.G711_A", "2"),
                ("tcpIpApp.sntp.gmtOffset", "3600"),
                ("lcl.ml.lang", "Dutch_Netherlands"),
                ("prov.polling.period", "86400"),
            ],
        ),
        (
            BrandFile::SnomMac("d785".into(), MacAddress::parse("000413000002").unwrap()),
            PhoneVendor::Snom,
            vec![
                ("user_pass", password),
                ("user_realname", display),
                ("user_pname", "u7k2m"),
                ("user_outbound", "sip.pbx.example:5060;transport=udp"),
                ("codec_priority_list", "g722,pcma,pcmu"),
                ("tz_posix", "CET-1CEST,M3.5.0,M10.5.0/3"),
                ("language", "Dutch"),
                ("keepalive_interval", "25"),
                ("prov_polling_period", "86400"),
            ],
        ),
        (
            BrandFile::GrandstreamMac(MacAddress::parse("000b82000004").unwrap()),
            PhoneVendor::Grandstream,
            vec![
                ("P34", password),
                ("P3", display),
                ("P36", "u7k2m"),
                ("P48", "sip.pbx.example:5060"),
                ("P130", "0"),
                ("P57", "9"),
                ("P58", "8"),
                ("P59", "0"),
                ("P84", "25"),
                ("P246", "CET-1CEST,M3.5.0,M10.5.0/3"),
                ("P1362", "nl"),
                ("P193", "1440"),
            ],
        ),
        (
            BrandFile::CiscoSep(MacAddress::parse("00000c000003").unwrap()),
            PhoneVendor::Cisco,
            vec![
                ("authPassword", password),
                ("displayName", display),
                ("authName", "u7k2m"),
                ("featureLabel", "Ann 201"),
                ("proxy", "sip.pbx.example"),
                ("keepAliveTime", "25"),
                ("preferredCodec", "g722"),
                ("timeZone", "W. Europe Standard Time"),
                ("contact", "201"),
            ],
        ),
    ];
    for (file, vendor, expected) in xml_cases {
        let mac = file.mac().unwrap().bare();
        let template = template_for(&file, vendor).unwrap();
        let text = renderer
            .render(template, &context(vendor, &mac, true))
            .unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{template} is not XML: {e}\n{text}"));
        for (key, value) in expected {
            assert_eq!(
                xml_value(&doc, key).as_deref(),
                Some(value),
                "{template} {key}"
            );
        }
    }

    // Yealink: INI lines key = value.
    let text = renderer
        .render(
            "yealink/mac.cfg",
            &context(PhoneVendor::Yealink, "001565aabbcc", true),
        )
        .unwrap();
    assert!(text.starts_with("#!version:1.0.0.1\n"));
    let ini: BTreeMap<&str, &str> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            line.split_once(" = ")
                .unwrap_or_else(|| panic!("not key = value: {line}"))
        })
        .collect();
    for (key, value) in [
        ("account.1.password", password),
        ("account.1.display_name", display),
        ("account.1.auth_name", "u7k2m"),
        ("account.1.user_name", "201"),
        ("account.1.label", "Ann 201"),
        ("account.1.outbound_proxy.1.address", "sip.pbx.example"),
        ("account.1.sip_server.1.transport_type", "0"),
        ("account.1.nat.udp_update_time", "25"),
        ("account.1.codec.g722.priority", "1"),
        ("account.1.codec.pcmu.priority", "3"),
        ("local_time.time_zone", "+1"),
        ("local_time.time_zone_name", "Netherlands(Amsterdam)"),
        ("lang.gui", "Dutch"),
        ("auto_provision.repeat.minutes", "1440"),
    ] {
        assert_eq!(ini.get(key).copied(), Some(value), "yealink {key}");
    }

    // Common files render without a device; per-phone templates refuse to.
    for (name, _) in TEMPLATES {
        let result = renderer.render(name, &context(PhoneVendor::Yealink, "", false));
        assert_eq!(result.is_ok(), !render::needs_line(name), "{name}");
    }
    let master = renderer
        .render(
            "polycom/master.cfg",
            &context(PhoneVendor::Polycom, "", false),
        )
        .unwrap();
    let doc = roxmltree::Document::parse(&master).unwrap();
    assert_eq!(
        xml_value(&doc, "CONFIG_FILES").as_deref(),
        Some("[PHONE_MAC_ADDRESS]-phone.cfg, cloudpbx-common.cfg")
    );
    let master = renderer
        .render(
            "polycom/master.cfg",
            &context(PhoneVendor::Polycom, "0004f2000001", false),
        )
        .unwrap();
    assert!(master.contains("CONFIG_FILES=\"0004f2000001-phone.cfg, cloudpbx-common.cfg\""));
}

#[test]
fn overrides_replace_shipped_templates_and_broken_ones_fail_at_load() {
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "grandstream/mac.xml".to_owned(),
        "<gs>{{ line.extension }} {{ tenant.slug }}</gs>".to_owned(),
    );
    let renderer = Renderer::new(&overrides).unwrap();
    assert_eq!(renderer.overridden(), ["grandstream/mac.xml"]);
    let text = renderer
        .render(
            "grandstream/mac.xml",
            &context(PhoneVendor::Grandstream, "000b82000004", true),
        )
        .unwrap();
    assert_eq!(text, "<gs>201 acme</gs>\n");
    overrides.insert("cisco/sep.xml".to_owned(), "{% if %}".to_owned());
    let error = Renderer::new(&overrides).unwrap_err();
    assert!(error.to_string().contains("cisco/sep.xml"), "{error}");
    // A name the context lacks fails at render time (strict undefined), not silently empty.
    overrides.remove("cisco/sep.xml");
    overrides.insert(
        "snom/mac.xml".to_owned(),
        "{{ line.no_such_field }}".to_owned(),
    );
    let renderer = Renderer::new(&overrides).unwrap();
    assert!(
        renderer
            .render(
                "snom/mac.xml",
                &context(PhoneVendor::Snom, "000413000002", true)
            )
            .is_err()
    );
    // The checked constructor (used at start and on reload) finds it before any phone does.
    let error = Renderer::checked(&overrides).unwrap_err();
    assert!(error.to_string().contains("snom/mac.xml"), "{error}");
    assert!(Renderer::checked(&BTreeMap::new()).is_ok());
}

#[test]
fn a_replaced_template_set_goes_live_and_a_broken_one_keeps_the_previous() {
    let renderer = Renderer::checked(&BTreeMap::new()).unwrap();
    let gs = |r: &Renderer| {
        r.render(
            "grandstream/mac.xml",
            &context(PhoneVendor::Grandstream, "000b82000004", true),
        )
        .unwrap()
    };
    let shipped = gs(&renderer);
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "grandstream/mac.xml".to_owned(),
        "<gs v=\"2\">{{ line.extension }}</gs>".to_owned(),
    );
    assert_eq!(
        renderer.replace(&overrides).unwrap(),
        ["grandstream/mac.xml"]
    );
    assert_eq!(gs(&renderer), "<gs v=\"2\">201</gs>\n");
    // Does not compile, or compiles but names a value that does not exist: refused whole.
    for broken in ["<gs>{% if %}</gs>", "<gs>{{ line.extensoin }}</gs>"] {
        overrides.insert("grandstream/mac.xml".to_owned(), broken.to_owned());
        let error = renderer.replace(&overrides).unwrap_err();
        assert!(error.to_string().contains("grandstream/mac.xml"), "{error}");
        assert_eq!(gs(&renderer), "<gs v=\"2\">201</gs>\n", "previous set kept");
    }
    assert!(renderer.replace(&BTreeMap::new()).unwrap().is_empty());
    assert_eq!(gs(&renderer), shipped);
}

#[test]
fn the_template_directory_is_polled_at_most_once_per_interval() {
    let dir = std::env::temp_dir().join(format!("pbx-provision-poll-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("yealink")).unwrap();
    let watch = render::TemplateDir::new(&dir, std::time::Duration::from_secs(10));
    let renderer = Renderer::checked(&render::load_overrides(&dir).unwrap()).unwrap();
    let common = |r: &Renderer| {
        r.render(
            "yealink/common.cfg",
            &context(PhoneVendor::Yealink, "", false),
        )
        .unwrap()
    };
    let shipped = common(&renderer);
    assert!(matches!(
        watch.poll(&renderer, 1_000),
        Some(render::TemplateReload::Unchanged)
    ));
    std::fs::write(dir.join("yealink/common.cfg"), "v1 {{ family }}").unwrap();
    // Not due yet: nothing is looked at.
    assert!(watch.poll(&renderer, 5_000).is_none());
    assert_eq!(common(&renderer), shipped);
    match watch.poll(&renderer, 11_000) {
        Some(render::TemplateReload::Reloaded(names)) => assert_eq!(names, ["yealink/common.cfg"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(common(&renderer), "v1 28\n");
    // A broken edit is reported once and the previous template keeps serving.
    std::fs::write(dir.join("yealink/common.cfg"), "v2 {{ family").unwrap();
    match watch.poll(&renderer, 21_000) {
        Some(render::TemplateReload::Failed(error)) => {
            assert!(error.to_string().contains("yealink/common.cfg"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(common(&renderer), "v1 28\n");
    assert!(matches!(
        watch.poll(&renderer, 31_000),
        Some(render::TemplateReload::Unchanged)
    ));
    // Removing the override brings the shipped template back; a forced reload needs no
    // interval.
    std::fs::remove_file(dir.join("yealink/common.cfg")).unwrap();
    assert!(matches!(
        watch.reload(&renderer, false),
        render::TemplateReload::Reloaded(names) if names.is_empty()
    ));
    assert_eq!(common(&renderer), shipped);
    // Interval zero: polling is off.
    let off = render::TemplateDir::new(&dir, std::time::Duration::ZERO);
    assert!(off.poll(&renderer, u64::MAX - 1).is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn overrides_load_from_a_directory() {
    let dir = std::env::temp_dir().join(format!("pbx-provision-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("yealink")).unwrap();
    std::fs::write(dir.join("yealink/common.cfg"), "custom {{ family }}").unwrap();
    std::fs::write(dir.join("unrelated.txt"), "x").unwrap();
    let overrides = render::load_overrides(&dir).unwrap();
    assert_eq!(overrides.keys().collect::<Vec<_>>(), ["yealink/common.cfg"]);
    let renderer = Renderer::new(&overrides).unwrap();
    assert_eq!(
        renderer
            .render(
                "yealink/common.cfg",
                &context(PhoneVendor::Yealink, "", false)
            )
            .unwrap(),
        "custom 28\n"
    );
    // An empty override (a file caught half-written) is refused, not served empty.
    std::fs::write(dir.join("yealink/common.cfg"), " \n").unwrap();
    let error = render::load_overrides(&dir).unwrap_err();
    assert!(error.to_string().contains("is empty"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(render::load_overrides(&dir).unwrap().is_empty());
}
