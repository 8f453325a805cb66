//! The payment callback's guard against forgeries from the internet: forged callbacks
//! counted (`lienthong_payment_callbacks_forged_total`), and a source address with too
//! many failed signatures in a window turned away before its body is parsed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failed signature checks a source address may make per [`GUARD_WINDOW`].
const MAX_FAILURES: u32 = 20;
const GUARD_WINDOW: Duration = Duration::from_secs(600);
/// Addresses remembered at most (the table is cleared of old windows, then whole, beyond).
const MAX_ADDRESSES: usize = 10_000;

/// Counts forged callbacks, and the failures per source address in a window.
#[derive(Default)]
pub struct CallbackGuard {
    pub forged_total: AtomicU64,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl CallbackGuard {
    /// How long `ip` must wait, when it has failed too often.
    pub(crate) fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let g = self.failures.lock().unwrap();
        let (since, n) = g.get(&ip)?;
        let left = GUARD_WINDOW.checked_sub(since.elapsed())?;
        (*n >= MAX_FAILURES).then_some(left)
    }

    pub(crate) fn failed(&self, ip: Option<IpAddr>) {
        self.forged_total.fetch_add(1, Ordering::Relaxed);
        let Some(ip) = ip else { return };
        let mut g = self.failures.lock().unwrap();
        if g.len() >= MAX_ADDRESSES && !g.contains_key(&ip) {
            g.retain(|_, (since, _)| since.elapsed() < GUARD_WINDOW);
            if g.len() >= MAX_ADDRESSES {
                g.clear();
            }
        }
        let entry = g.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= GUARD_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}
