//! Process limits a PBX needs: enough open files for every media socket and SIP connection.

/// Open files the server may need besides the media sockets and SIP connections (database,
/// HTTP clients, TFTP, logs, listeners).
const SLACK: u64 = 1024;

/// Raises the soft open-file limit to the hard one (as most servers and Go's runtime do; a
/// systemd service starts at 1024) and warns when even that is below what the configuration
/// can use: every port of the RTP range (a pair's sockets stay open once used) plus
/// `max_connections` SIP connections. Returns the soft limit in effect (`None`: unlimited).
pub(crate) fn raise_open_files(rtp_ports: (u16, u16), max_connections: usize) -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let needed =
        u64::from(rtp_ports.1.saturating_sub(rtp_ports.0)) + 1 + max_connections as u64 + SLACK;
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%error, "cannot raise the open-file limit");
        }
    }
    let current = getrlimit(Resource::Nofile).current;
    if let Some(current) = current
        && current < needed
    {
        tracing::warn!(
            limit = current,
            needed,
            "the open-file limit is below what the RTP port range and SIP connections can use; \
             raise it (LimitNOFILE= for systemd, ulimit -n) or calls will fail with 503 under load"
        );
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let hard = getrlimit(Resource::Nofile).maximum;
        // Start below the hard limit, as a systemd service does (1,024 soft).
        let lowered = Rlimit {
            current: Some(hard.map_or(1024, |hard| hard.min(1024))),
            maximum: hard,
        };
        setrlimit(Resource::Nofile, lowered).unwrap();
        let current = raise_open_files((10_000, 10_099), 100);
        assert_eq!(current, hard);
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
    }
}
