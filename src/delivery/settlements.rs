//! Requests that wait for their deliveries to end. Under `[amqp] acknowledge =
//! "replicated"` an ingress node answers a unit only once the relay has forwarded each of
//! the request's events and the broker confirmed it into its quorum queue (on disk on a
//! majority of the broker's nodes): losing the ingress node with its disk then loses
//! nothing the unit was told was accepted.
//!
//! The relay reports every forward that ended ([`Settlements::settled`]); a request
//! registers what it waits for after the outbox stored its events. The relay may forward
//! an event before its request registers, so the last settlements are kept for a while
//! (a bounded ring) and a registration looks there first, under the same lock.

use crate::envelope::MessageId;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// How a forward ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The broker confirmed it.
    Forwarded,
    /// It became a dead letter on this node (not replicated).
    Dead(String),
}

/// What a request waited for and did not get.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsettled {
    #[error("{waiting} of the request's deliveries not confirmed by the broker in {timeout:?}")]
    TimedOut { waiting: usize, timeout: Duration },
    #[error("message {id} became a dead letter before the broker took it: {reason}")]
    Dead { id: MessageId, reason: String },
}

/// One delivery: a message to a target.
type Item = (MessageId, String);

/// Most settlements remembered for requests that register after the relay was faster.
const RECENT: usize = 65_536;

#[derive(Default)]
struct State {
    recent: HashMap<Item, Settled>,
    order: VecDeque<Item>,
    waiting: HashMap<Item, Vec<oneshot::Sender<Settled>>>,
}

/// The meeting point of the relay (which settles forwards) and the requests waiting.
#[derive(Default)]
pub struct Settlements {
    state: Mutex<State>,
}

impl Settlements {
    pub fn new() -> Settlements {
        Settlements::default()
    }

    /// A forward ended: wake whoever waits for it, and remember it for a request that has
    /// not registered yet.
    pub fn settled(&self, id: MessageId, target: &str, outcome: Settled) {
        let item = (id, target.to_string());
        let mut s = self.state.lock().expect("settlements");
        if let Some(waiters) = s.waiting.remove(&item) {
            for w in waiters {
                let _ = w.send(outcome.clone());
            }
        }
        if s.recent.insert(item.clone(), outcome).is_none() {
            s.order.push_back(item);
        }
        while s.order.len() > RECENT {
            if let Some(old) = s.order.pop_front() {
                s.recent.remove(&old);
            }
        }
    }

    /// Wait until every delivery in `items` was forwarded, at most `timeout` in all. The
    /// first dead letter among them, or the timeout, is the answer otherwise.
    pub async fn wait(
        &self,
        items: &[(MessageId, &str)],
        timeout: Duration,
    ) -> Result<(), Unsettled> {
        let mut pending = Vec::new();
        {
            let mut s = self.state.lock().expect("settlements");
            for (id, target) in items {
                let item = (*id, target.to_string());
                match s.recent.get(&item) {
                    Some(Settled::Forwarded) => {}
                    Some(Settled::Dead(reason)) => {
                        return Err(Unsettled::Dead {
                            id: *id,
                            reason: reason.clone(),
                        });
                    }
                    None => {
                        let (tx, rx) = oneshot::channel();
                        s.waiting.entry(item).or_default().push(tx);
                        pending.push((*id, rx));
                    }
                }
            }
        }
        let all = async {
            for (id, rx) in pending.iter_mut() {
                match rx.await {
                    Ok(Settled::Forwarded) => {}
                    Ok(Settled::Dead(reason)) => return Err(Unsettled::Dead { id: *id, reason }),
                    // Never: a sender is only dropped after it sent.
                    Err(_) => {}
                }
            }
            Ok(())
        };
        let result = match tokio::time::timeout(timeout, all).await {
            Ok(r) => r,
            Err(_) => Err(Unsettled::TimedOut {
                waiting: pending.len(),
                timeout,
            }),
        };
        if result.is_err() {
            // Those that gave up leave no waiter behind.
            drop(pending);
            let mut s = self.state.lock().expect("settlements");
            s.waiting.retain(|_, ws| {
                ws.retain(|w| !w.is_closed());
                !ws.is_empty()
            });
        }
        result
    }

    /// Deliveries some request waits for now.
    pub fn waiting(&self) -> usize {
        self.state.lock().expect("settlements").waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId::from_bytes([n; 16])
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_every_forward_and_finds_those_settled_before_it_asked() {
        let s = std::sync::Arc::new(Settlements::new());
        // The relay was faster for one of the two.
        s.settled(id(1), "portal", Settled::Forwarded);
        let waiter = {
            let s = std::sync::Arc::clone(&s);
            tokio::spawn(async move {
                s.wait(
                    &[(id(1), "portal"), (id(2), "portal")],
                    Duration::from_secs(10),
                )
                .await
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(s.waiting(), 1);
        s.settled(id(2), "portal", Settled::Forwarded);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(s.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forward_that_never_comes_times_out_and_leaves_no_waiter() {
        let s = Settlements::new();
        let r = s.wait(&[(id(3), "portal")], Duration::from_secs(5)).await;
        assert_eq!(
            r,
            Err(Unsettled::TimedOut {
                waiting: 1,
                timeout: Duration::from_secs(5)
            })
        );
        assert_eq!(s.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_forward_is_the_answer() {
        let s = Settlements::new();
        s.settled(id(4), "portal", Settled::Dead("too old".into()));
        let r = s.wait(&[(id(4), "portal")], Duration::from_secs(5)).await;
        assert!(matches!(r, Err(Unsettled::Dead { .. })), "{r:?}");
    }

    #[test]
    fn the_memory_of_settled_forwards_is_bounded() {
        let s = Settlements::new();
        for i in 0..(RECENT as u32 + 10) {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&i.to_be_bytes());
            s.settled(MessageId::from_bytes(b), "portal", Settled::Forwarded);
        }
        let st = s.state.lock().unwrap();
        assert_eq!(st.recent.len(), RECENT);
        assert_eq!(st.order.len(), RECENT);
    }
}
