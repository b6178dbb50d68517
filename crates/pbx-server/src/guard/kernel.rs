//! The kernel drop set follows the guard's active bans.
//!
//! Every banned source (IPv4 address or IPv6 prefix) is also installed in a socket filter on
//! the SIP UDP listeners ([`pbx_sip_net::kernel_drop`]), so a flood from it is dropped by
//! the kernel before it is queued to our socket: no wake-up, no `recvfrom`, no lookup. The
//! userspace check in [`SecurityGuard::admit`] stays authoritative (bans beyond
//! `security.kernel_drop_max_entries`, TCP/TLS, the moments between a ban and its
//! installation). A lifted or expired ban leaves the kernel set within a second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pbx_policy::SourceKey;
use pbx_sip_net::TransportHandle;
use pbx_sip_net::kernel_drop::{DropEntry, MAX_INSTRUCTIONS};
use tokio_util::sync::CancellationToken;

use super::{SecurityGuard, unix_ms};

/// How often the set is checked for expired bans when nothing else changes.
const RECHECK: Duration = Duration::from_secs(1);

impl SecurityGuard {
    /// The bans the kernel drop set should hold now: active ones, the longest-running
    /// first, at most `max`.
    pub fn kernel_drop_wanted(&self, now: u64, max: usize) -> Vec<DropEntry> {
        let mut active: Vec<(SourceKey, u64)> = self
            .read_bans()
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(key, until)| (*key, *until))
            .collect();
        active.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        active
            .into_iter()
            .take(max)
            .map(|(key, _)| match key {
                SourceKey::V4 { addr } => DropEntry::v4(addr),
                SourceKey::V6 { prefix, len } => DropEntry::v6(prefix, len),
            })
            .collect()
    }

    /// Bans installed in the kernel drop set now.
    pub fn kernel_drop_entries(&self) -> usize {
        self.kernel_entries.load(Ordering::Relaxed)
    }

    /// Datagrams the kernel dropped on the SIP UDP listeners (the drop set's drops plus
    /// receive-buffer overflows), when known.
    pub fn kernel_drops(&self) -> Option<u64> {
        self.kernel_transports
            .get()
            .and_then(TransportHandle::udp_kernel_drops)
    }

    /// The SIP transports' counters, once the transports are known.
    pub fn transport_stats(&self) -> Option<pbx_sip_net::TransportStats> {
        self.kernel_transports.get().map(TransportHandle::stats)
    }
}

/// Keep the kernel drop set of `transports` equal to the active bans until `stop`.
pub async fn run(guard: Arc<SecurityGuard>, transports: TransportHandle, stop: CancellationToken) {
    let _ = guard.kernel_transports.set(transports.clone());
    let max = guard.settings.kernel_drop_max_entries;
    if max == 0 || !guard.settings.enabled {
        return;
    }
    let mut installed: Vec<DropEntry> = Vec::new();
    loop {
        let wanted = guard.kernel_drop_wanted(unix_ms(), max);
        if wanted != installed {
            match transports.set_kernel_drop_set(&wanted, MAX_INSTRUCTIONS) {
                Ok(count) => {
                    tracing::debug!(entries = count, "kernel drop set updated");
                    guard.kernel_entries.store(count, Ordering::Relaxed);
                    installed = wanted;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Unsupported => {
                    tracing::info!("no kernel drop set on this platform; bans drop in userspace");
                    return;
                }
                Err(error) => {
                    // Bans still hold in userspace; try again at the next change or tick.
                    tracing::warn!(%error, "kernel drop set not updated");
                }
            }
        }
        tokio::select! {
            () = guard.bans_changed.notified() => {}
            () = tokio::time::sleep(RECHECK) => {}
            () = stop.cancelled() => break,
        }
    }
}
