//! RFC 4475 §3.3.7 (regaut01): an Authorization header in an unknown scheme.

use std::path::PathBuf;

use pbx_sip_auth::{Answer, AuthError, AuthRole, Credentials, ParseError};

fn corpus_dir() -> Option<PathBuf> {
    // Relative paths (the env var's and the default) are relative to the repository root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join(
        std::env::var_os("CLOUDPBX_CONFORMANCE_DIR")
            .map_or_else(|| PathBuf::from("../shared/conformance"), PathBuf::from),
    );
    if dir.join("rfc4475").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "conformance corpus missing at {} (CI=true)",
        dir.display()
    );
    eprintln!("skip: conformance corpus not found at {}", dir.display());
    None
}

/// The value of the first header named `name` in a raw SIP message (no unfolding needed here).
fn header_value<'m>(message: &'m [u8], name: &str) -> Option<&'m [u8]> {
    message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (field, rest) = line.split_at(colon);
            let field = std::str::from_utf8(field).ok()?.trim();
            field
                .eq_ignore_ascii_case(name)
                .then(|| rest[1..].trim_ascii())
        })
}

#[test]
fn rfc4475_regaut01_unknown_scheme_gets_a_challenge() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    // Reading a test fixture; the sans-IO ban on file I/O is for library code.
    let message = std::fs::read_to_string(dir.join("rfc4475/regaut01.dat")).unwrap();
    let value = header_value(message.as_bytes(), "Authorization").unwrap();
    assert_eq!(value, b"NoOneKnowsThisScheme opaque-data=here");
    assert_eq!(
        Credentials::parse(value),
        Err(ParseError::UnsupportedScheme)
    );
    let error = AuthError::from(Credentials::parse(value).unwrap_err());
    assert_eq!(error, AuthError::UnsupportedScheme);
    assert_eq!(
        error.answer(AuthRole::Www),
        Answer::Challenge {
            status: 401,
            stale: false
        }
    );
}

#[test]
// Reads test fixtures; the sans-IO ban on file I/O is for library code.
#[allow(clippy::disallowed_methods)]
fn rfc4475_messages_never_panic_the_auth_parser() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(dir.join("rfc4475")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "dat") {
            continue;
        }
        let message = std::fs::read(&path).unwrap();
        // Every header value of every torture message, fed to both parsers.
        for line in message.split(|&b| b == b'\n') {
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                let value = &line[colon + 1..];
                let _ = Credentials::parse(value);
                let _ = pbx_sip_auth::Challenge::parse_list(value);
            }
        }
        seen += 1;
    }
    assert!(seen >= 50, "read {seen} messages");
}
