//! The API's own counters and the Prometheus text exposition served at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use pbx_domain::DirectorySnapshot;

/// Status classes counted separately.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters updated by the request middleware and the handlers. Cheap to share (`Arc`).
#[derive(Debug, Default)]
pub struct ApiMetrics {
    responses: [AtomicU64; 5],
    auth_failures: AtomicU64,
    writes: AtomicU64,
}

impl ApiMetrics {
    /// Counts one response with `status`.
    pub fn record_response(&self, status: u16) {
        let class = usize::from(status / 100).saturating_sub(1).min(4);
        if let Some(counter) = self.responses.get(class) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one request refused for want of a valid token.
    pub fn record_auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one successful write (each also leaves an audit event).
    pub fn record_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Responses counted so far with a status in `class` (`"4xx"`).
    pub fn responses(&self, class: &str) -> u64 {
        CLASSES
            .iter()
            .position(|known| *known == class)
            .and_then(|index| self.responses.get(index))
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
    }

    /// Renders the counters and the directory sizes in the Prometheus text format (0.0.4).
    pub fn render(&self, directory: &DirectorySnapshot) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str(
            "# HELP cloudpbx_api_responses_total HTTP responses of the management API by status class.\n\
             # TYPE cloudpbx_api_responses_total counter\n",
        );
        for (class, counter) in CLASSES.iter().zip(&self.responses) {
            let _ = writeln!(
                out,
                "cloudpbx_api_responses_total{{class=\"{class}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        counter(
            &mut out,
            "cloudpbx_api_auth_failures_total",
            "Requests refused for a missing, unknown, revoked or expired token.",
            self.auth_failures.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "cloudpbx_api_writes_total",
            "Successful configuration writes through the API (each is audited).",
            self.writes.load(Ordering::Relaxed),
        );
        let (tenants, users, credentials) = directory.counts();
        for (name, help, value) in [
            (
                "cloudpbx_directory_tenants",
                "Tenants in the live directory.",
                tenants,
            ),
            (
                "cloudpbx_directory_users",
                "Users in the live directory.",
                users,
            ),
            (
                "cloudpbx_directory_credentials",
                "SIP credentials in the live directory.",
                credentials,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP cloudpbx_directory_generation Store change counter the live directory reflects.\n\
             # TYPE cloudpbx_directory_generation gauge\ncloudpbx_directory_generation {}",
            directory.generation()
        );
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}
