//! The relay (single node): for each target, a pool of workers that claim deliveries from
//! the outbox and put each through the delivery core ([`crate::delivery`]), then record its
//! outcome in the outbox (delivered, forwarded, retry later, dead letter). Order per
//! dossier is the outbox queue's: only the oldest unfinished delivery of a key is claimed.
//! Batching (several deliveries merged into one call, for targets whose connector can) is
//! the relay's own.

use crate::delivery::{self, DeliveryMode, Outcome, Replies, TargetRuntime, permission};
use crate::envelope::Envelope;
use crate::mappings::{MappingSet, Outbound};
use crate::outbox::{Lease, Outbox};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The running worker pools.
pub struct Relay {
    workers: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Relay {
    pub fn start(
        outbox: Outbox,
        targets: Vec<Arc<TargetRuntime>>,
        mappings: Arc<MappingSet>,
        replies: Option<Arc<dyn Replies>>,
    ) -> Relay {
        let (stop, stop_rx) = watch::channel(false);
        let mut workers = JoinSet::new();
        for target in targets {
            for _ in 0..target.concurrency {
                let w = Worker {
                    outbox: outbox.clone(),
                    mappings: Arc::clone(&mappings),
                    replies: replies.clone(),
                    target: Arc::clone(&target),
                    stop: stop_rx.clone(),
                };
                workers.spawn(w.run());
            }
        }
        Relay { workers, stop }
    }

    /// Stop claiming, let in-flight attempts finish within `grace`, then abort the rest.
    /// Call [`Outbox::close`] first so idle workers wake up and leave.
    pub async fn drain(mut self, grace: Duration) -> usize {
        let _ = self.stop.send(true);
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.workers.join_next() => if next.is_none() { return 0 },
                _ = &mut deadline => {
                    let left = self.workers.len();
                    self.workers.abort_all();
                    while self.workers.join_next().await.is_some() {}
                    return left;
                }
            }
        }
    }
}

/// A claimed delivery, loaded and in the target's format.
type Prepared = (Lease, Envelope, Outbound);

struct Worker {
    outbox: Outbox,
    mappings: Arc<MappingSet>,
    /// Routes that pass a target's reply on ([`crate::delivery::replies`]); none when
    /// this relay only forwards to the broker.
    replies: Option<Arc<dyn Replies>>,
    target: Arc<TargetRuntime>,
    stop: watch::Receiver<bool>,
}

impl Worker {
    async fn run(mut self) {
        loop {
            if !permission::wait_while_paused(&self.target, &mut self.stop).await {
                break;
            }
            let Some(lease) = self.outbox.claim(&self.target.name).await else {
                break;
            };
            if self.target.paused.load(Ordering::Relaxed) {
                // Paused while waiting for work: put it back.
                drop(lease);
                continue;
            }
            if !permission::wait_for_permission(&self.target, &mut self.stop).await {
                // Shutting down: dropping the lease puts the delivery back to pending.
                drop(lease);
                break;
            }
            if self.target.batch > 1 {
                let mut leases = vec![lease];
                while leases.len() < self.target.batch {
                    match self.outbox.try_claim(&self.target.name) {
                        Some(l) => leases.push(l),
                        None => break,
                    }
                }
                if leases.len() > 1 && self.target.mode == DeliveryMode::Forward {
                    self.forward_batch(leases).await;
                } else if leases.len() > 1 {
                    self.attempt_batch(leases).await;
                } else {
                    self.attempt(leases.pop().expect("one lease")).await;
                }
            } else {
                self.attempt(lease).await;
            }
            if *self.stop.borrow() {
                break;
            }
        }
    }

    /// Load a claimed delivery's message. One that cannot be read is a dead letter at once.
    fn load(&self, lease: Lease) -> Option<(Lease, Envelope)> {
        match self.outbox.load(&lease) {
            Ok(e) => Some((lease, e)),
            Err(e) => {
                tracing::error!(target_system = %self.target.name, id = %lease.info.id, error = %e, "cannot load message");
                self.outbox
                    .dead(lease, None, format!("message unreadable: {e}"));
                None
            }
        }
    }

    /// One delivery, with the permit already held.
    async fn attempt(&self, lease: Lease) {
        let Some((lease, envelope)) = self.load(lease) else {
            self.target.breaker.on_neutral();
            return;
        };
        let attempts = lease.info.attempts + 1;
        let outcome = delivery::attempt(
            &self.target,
            &self.mappings,
            self.replies.as_deref(),
            &envelope,
            attempts,
        )
        .await;
        self.apply(lease, &envelope, outcome);
    }

    /// Several deliveries handed to the broker together (forward mode: one message per
    /// partition), each with its own outcome; the permit is held for the lot. A connector
    /// that cannot deliver them together gets them one at a time.
    async fn forward_batch(&mut self, leases: Vec<Lease>) {
        let t = Arc::clone(&self.target);
        let (leases, envelopes): (Vec<Lease>, Vec<Envelope>) =
            leases.into_iter().filter_map(|l| self.load(l)).unzip();
        let Some(sending) = t.connector.deliver_each(&envelopes) else {
            drop(envelopes);
            return self.attempt_batch(leases).await;
        };
        let verdicts = sending.await;
        // The breaker hears the call once: it failed if any message could not go.
        match verdicts
            .iter()
            .find(|v| {
                matches!(
                    v,
                    crate::connector::Verdict::Retryable {
                        target_fault: true,
                        ..
                    }
                )
            })
            .or(verdicts.first())
        {
            Some(verdict) => delivery::judge(&t, verdict),
            None => t.breaker.on_neutral(),
        }
        for ((lease, envelope), verdict) in leases.into_iter().zip(&envelopes).zip(verdicts) {
            let attempts = lease.info.attempts + 1;
            let outcome = delivery::decide(&t, envelope, attempts, verdict);
            self.apply(lease, envelope, outcome);
        }
    }

    /// Several deliveries (of different keys, so order per key holds) with the permit held
    /// for the first call. Bodies the connector can merge go in one call; if that call does
    /// not succeed, each is sent on its own so every message gets its own verdict.
    async fn attempt_batch(&mut self, leases: Vec<Lease>) {
        let t = Arc::clone(&self.target);
        // The mappings the bodies below are rendered with (kept for retries under it).
        let generation = self.mappings.generation();
        let mut groups: Vec<(String, Vec<Prepared>)> = Vec::new();
        let mut singles = Vec::new();
        for lease in leases {
            let Some((lease, envelope)) = self.load(lease) else {
                continue;
            };
            let body = match delivery::render(&t, &self.mappings, &envelope) {
                Ok(body) => body,
                Err(dead) => {
                    self.apply(lease, &envelope, dead);
                    continue;
                }
            };
            let item = (lease, envelope, body);
            // A message whose reply goes on is sent alone: a merged call has one reply.
            let alone = self
                .replies
                .as_ref()
                .is_some_and(|r| r.goes_on(&item.1, &t.name));
            match t.connector.batch_group(&item.1, &item.2).filter(|_| !alone) {
                Some(g) => match groups.iter_mut().find(|(k, _)| *k == g) {
                    Some((_, items)) => items.push(item),
                    None => groups.push((g, vec![item])),
                },
                None => singles.push(item),
            }
        }
        let mut permit = true;
        for (_, items) in groups {
            if items.len() == 1 {
                singles.extend(items);
                continue;
            }
            let merged = {
                let bodies: Vec<&Outbound> = items.iter().map(|(_, _, b)| b).collect();
                t.connector.merge(&bodies)
            };
            let Some(merged) = merged else {
                singles.extend(items);
                continue;
            };
            if !permit && !permission::wait_for_permission(&t, &mut self.stop).await {
                return; // Shutting down: the leases go back to pending when dropped.
            }
            permit = false;
            // One span per message (each in its own trace), all covering the one call.
            let spans: Vec<_> = items
                .iter()
                .map(|(lease, envelope, _)| {
                    delivery::attempt_span(&t, envelope, lease.info.attempts)
                })
                .collect();
            let mut exchanged = delivery::exchange::exchange(&t, &items[0].1, &merged, false).await;
            let verdict = exchanged.verdict.clone();
            delivery::judge(&t, &verdict);
            if verdict == crate::connector::Verdict::Delivered {
                tracing::debug!(target_system = %t.name, messages = items.len(), "delivered in one call");
                let outcomes: Vec<Outcome> = items
                    .iter()
                    .map(|(lease, envelope, _)| {
                        delivery::decide(&t, envelope, lease.info.attempts + 1, verdict.clone())
                    })
                    .collect();
                exchanged.log(
                    &t,
                    &merged,
                    items
                        .iter()
                        .zip(&outcomes)
                        .map(|((lease, envelope, _), outcome)| {
                            (envelope, lease.info.attempts + 1, Some(outcome))
                        }),
                );
                for (((lease, envelope, _), span), outcome) in
                    items.into_iter().zip(spans).zip(outcomes)
                {
                    delivery::end_attempt_span(span, &outcome);
                    self.apply(lease, &envelope, outcome);
                }
            } else {
                exchanged.log(
                    &t,
                    &merged,
                    items
                        .iter()
                        .map(|(lease, envelope, _)| (envelope, lease.info.attempts + 1, None)),
                );
                // Sent again one by one below (each with a span of its own); this call's
                // spans say it failed.
                for span in spans {
                    span.fail("the merged call failed; sent one by one");
                }
                singles.extend(items);
            }
        }
        for (lease, envelope, body) in singles {
            if !permit && !permission::wait_for_permission(&t, &mut self.stop).await {
                return;
            }
            permit = false;
            let attempts = lease.info.attempts + 1;
            let outcome =
                delivery::send(&t, self.replies.as_deref(), &envelope, &body, attempts).await;
            delivery::keep_for_retry(&t, &envelope, generation, &body, &outcome);
            self.apply(lease, &envelope, outcome);
        }
        if permit {
            t.breaker.on_neutral();
        }
    }

    /// Record an outcome in the figures and in the outbox.
    fn apply(&self, lease: Lease, envelope: &Envelope, outcome: Outcome) {
        delivery::record(&self.target, lease.info.unit, envelope, &outcome);
        if !matches!(outcome, Outcome::Retry { .. }) {
            // Its delivery ended: a body kept for its retries is let go.
            self.target.stats.rendered.forget(envelope.id);
        }
        if let Some(settlements) = &self.target.settlements {
            use crate::delivery::settlements::Settled;
            match &outcome {
                Outcome::Forwarded => {
                    settlements.settled(envelope.id, &self.target.name, Settled::Forwarded)
                }
                Outcome::Dead { reason, .. } => settlements.settled(
                    envelope.id,
                    &self.target.name,
                    Settled::Dead(reason.clone()),
                ),
                _ => {}
            }
        }
        match outcome {
            Outcome::Delivered => self.outbox.delivered(lease),
            Outcome::Forwarded => self.outbox.forwarded(lease),
            Outcome::Retry { delay, error } => {
                let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                let due = crate::time::now_ms().saturating_add(delay_ms);
                self.outbox.retry(lease, error, due);
            }
            Outcome::Dead { reason, error } => self.outbox.dead(lease, Some(error), reason),
        }
    }
}
