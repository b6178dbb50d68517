//! Locating and reading the shared SIP conformance corpora (`../shared/conformance/` beside
//! the repository, or `$CLOUDPBX_CONFORMANCE_DIR`). The corpora are read in place, never
//! copied into the repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Environment variable naming the conformance directory explicitly.
pub const DIR_ENV: &str = "CLOUDPBX_CONFORMANCE_DIR";

/// The conformance directory: `$CLOUDPBX_CONFORMANCE_DIR` if set, else
/// `<workspace root>/../shared/conformance`; `None` when that directory does not exist.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os(DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root()
            .join("..")
            .join("shared")
            .join("conformance"),
    };
    dir.is_dir().then_some(dir)
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// The corpus sub-directory `name` (e.g. `"rfc4475"`), or `None` after printing a clear
/// skip notice when it is absent.
///
/// # Panics
/// When the corpus is absent and env `CI=true`: on CI a missing corpus is a failure.
pub fn require_or_skip(name: &str) -> Option<PathBuf> {
    let found = conformance_dir()
        .map(|d| d.join(name))
        .filter(|d| d.is_dir());
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        let msg = format!(
            "conformance corpus `{name}` not found (set {DIR_ENV} or place it at \
             <repo>/../shared/conformance/{name})"
        );
        // Tests must fail loudly on CI rather than skip.
        #[allow(clippy::panic)]
        if ci {
            panic!("{msg}; CI=true, failing");
        }
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// One row of an `index.tsv`, by column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    fields: HashMap<String, String>,
}

impl IndexRow {
    /// The value of column `column` (empty string when absent).
    pub fn get(&self, column: &str) -> &str {
        self.fields.get(column).map_or("", String::as_str)
    }

    /// The first three-digit SIP status code mentioned in `expected_response`, if any.
    pub fn expected_status(&self) -> Option<u16> {
        let text = self.get("expected_response");
        let bytes = text.as_bytes();
        (0..bytes.len().saturating_sub(2)).find_map(|i| {
            let window = &bytes[i..i + 3];
            // "(no 400)" names a status that must NOT be sent: skip it.
            let negated = text[..i].ends_with("no ");
            let before_ok = !negated && (i == 0 || !bytes[i - 1].is_ascii_digit());
            let after_ok = bytes.get(i + 3).is_none_or(|b| !b.is_ascii_digit());
            (window.iter().all(u8::is_ascii_digit) && before_ok && after_ok)
                .then(|| text[i..i + 3].parse().ok())
                .flatten()
                .filter(|code| (100..700).contains(code))
        })
    }
}

/// Reads `<corpus>/index.tsv` into rows keyed by the `file` column.
pub fn read_index(corpus: &Path) -> std::io::Result<HashMap<String, IndexRow>> {
    let text = std::fs::read_to_string(corpus.join("index.tsv"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let mut rows = HashMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: HashMap<String, String> = header
            .iter()
            .zip(line.split('\t'))
            .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
            .collect();
        let row = IndexRow { fields };
        rows.insert(row.get("file").to_owned(), row);
    }
    Ok(rows)
}

/// Reads one corpus file as bytes (never as text: line ends and NULs are significant).
pub fn read_bytes(corpus: &Path, file: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(corpus.join(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_status_finds_first_code() {
        let row = |s: &str| IndexRow {
            fields: [("expected_response".to_owned(), s.to_owned())]
                .into_iter()
                .collect(),
        };
        assert_eq!(row("400 Bad Request").expected_status(), Some(400));
        assert_eq!(
            row("UDP: 400 Bad Request; TCP: close").expected_status(),
            Some(400)
        );
        assert_eq!(row("normal processing (no 400)").expected_status(), None);
        assert_eq!(row("silently discard; no crash").expected_status(), None);
        assert_eq!(row("4294967301").expected_status(), None);
    }

    #[test]
    fn workspace_root_has_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
    }
}
