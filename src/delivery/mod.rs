//! The delivery core: one attempt at delivering one message to one target, the same on a
//! single node and in a cluster.
//!
//! # Design
//!
//! ```text
//!  relay (single node)          cluster worker
//!  claims a lease from          takes a delivery from
//!  the outbox                   a partition queue
//!         └──────────┬─────────────────┘
//!                    ▼
//!   permission::wait_for_permission   pause, breaker, rate limit; gives up on stop
//!   attempt: render (mapping) → connector.deliver → breaker hears the verdict
//!   decide: Delivered | Forwarded | Retry { delay } | Dead { reason }
//!                    │
//!         ┌──────────┴─────────────────┐
//!  applies it to the outbox     applies it to the broker
//!  (delivered / retry / dead)   (ack / delay queue / dead letter)
//! ```
//!
//! Everything between taking a delivery and knowing its outcome lives here, so the two
//! paths cannot drift apart: permission waiting, rendering through the mapping, the
//! connector call, the breaker's feedback, the retry decision and the error kept for the
//! message's history ([`push_error`]). What differs stays with each caller: where a
//! delivery is kept, how order per dossier is held (the outbox's queue; the worker's
//! parked set), and batching (the relay's). Whether a target's runtime delivers to the
//! platform or forwards to the broker is its [`DeliveryMode`], not a property of its
//! connector.

pub mod activity;
pub mod breaker;
/// The delivery policy sections, as the config reads them.
pub use crate::config::delivery as config;
pub mod exchange;
pub mod latency;
pub mod permission;
pub mod ratings;
pub mod rendered;
pub mod replies;
pub mod retry;
mod runtime;
pub mod settlements;

/// Add an attempt's error to a delivery's history (the outbox keeps the same history).
pub use crate::outbox::records::push_error;
pub use replies::Replies;
pub use runtime::{DeliveryMode, TargetRuntime, TargetStats, paused_note};

use crate::connector::Verdict;
use crate::envelope::{Envelope, UnitTag};
use crate::mappings::{MappingSet, Outbound};
use crate::outbox::AttemptError;
use crate::time::now_ms;
use activity::Outcome as Activity;
use retry::RetryDecision;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The platform has it.
    Delivered,
    /// The broker has it (forward mode): a worker will deliver it.
    Forwarded,
    /// Try again after `delay`; `error` is this attempt's, for the history.
    Retry {
        delay: Duration,
        error: AttemptError,
    },
    /// A dead letter: no attempt will do better (mapping failed, refused by the platform,
    /// or retries exhausted).
    Dead { reason: String, error: AttemptError },
}

/// The message in the target's format. Forwarding carries it unmapped (the worker maps).
/// A message its mapping cannot translate is dead at once.
pub fn render(
    target: &TargetRuntime,
    mappings: &MappingSet,
    envelope: &Envelope,
) -> Result<Outbound, Outcome> {
    if target.mode == DeliveryMode::Forward {
        return Ok(Outbound {
            content_type: "application/json",
            body: bytes::Bytes::new(),
        });
    }
    // A retry sends the body its first attempt rendered (same mappings generation).
    let generation = mappings.generation();
    if let Some(kept) = target.stats.rendered.get(envelope.id, generation) {
        return Ok(kept);
    }
    // A first attempt sends the body the door rendered before the event was stored.
    if let Some(from_door) = target.stats.from_door.take(
        &envelope.unit,
        &envelope.flow,
        envelope.payload.get(),
        generation,
    ) {
        return Ok(from_door);
    }
    target.stats.renders.fetch_add(1, Ordering::Relaxed);
    let rendered = mappings
        .render(envelope, &target.name)
        .and_then(|outbound| match &target.procedures {
            Some(catalogue) => catalogue
                .check_portal_body(&envelope.unit, &outbound.body)
                .map(|()| outbound),
            None => Ok(outbound),
        });
    rendered.map_err(|reason| {
        tracing::warn!(target_system = %target.name, id = %envelope.id, %reason, "mapping failed: dead letter");
        let error = AttemptError {
            at_ms: now_ms(),
            error: reason.clone(),
            status: None,
        };
        Outcome::Dead { reason, error }
    })
}

/// Keep the body the door rendered from `unit`'s `flow` event (its JSON as stored), with
/// mappings of `generation`, for the event's first attempt at `target`. Only where this
/// node delivers, and only a body the delivery's own checks would let through (a portal's
/// procedure catalogue): one they refuse is rendered again at delivery and becomes the
/// dead letter it is today.
pub fn keep_from_door(target: &TargetRuntime, written: &DoorWritten<'_>, body: &Outbound) {
    if target.mode != DeliveryMode::Direct {
        return;
    }
    if let Some(catalogue) = &target.procedures
        && catalogue
            .check_portal_body(written.unit, &body.body)
            .is_err()
    {
        return;
    }
    let DoorWritten {
        unit,
        flow,
        event,
        generation,
    } = *written;
    target
        .stats
        .from_door
        .keep(unit, flow, event, generation, body);
}

/// What a body at the door was written from.
#[derive(Clone, Copy)]
pub struct DoorWritten<'a> {
    pub unit: &'a str,
    pub flow: &'a str,
    /// The event's JSON as the outbox stores it.
    pub event: &'a str,
    /// The mappings' generation that wrote it.
    pub generation: u64,
}

/// Keep a body whose delivery will be retried; let it go when the delivery ended.
pub fn keep_for_retry(
    target: &TargetRuntime,
    envelope: &Envelope,
    generation: u64,
    body: &Outbound,
    outcome: &Outcome,
) {
    if target.mode == DeliveryMode::Forward {
        return;
    }
    match outcome {
        Outcome::Retry { .. } => target.stats.rendered.keep(envelope.id, generation, body),
        _ => target.stats.rendered.forget(envelope.id),
    }
}

/// Tell the breaker how a call went (once per permit).
pub fn judge(target: &TargetRuntime, verdict: &Verdict) {
    match verdict {
        // A permanent refusal is the message's fault, not the target's.
        Verdict::Delivered | Verdict::Permanent { .. } => target.breaker.on_success(),
        // "Not there yet" and the like: the target is well, this message must wait.
        Verdict::Retryable {
            target_fault: false,
            ..
        } => target.breaker.on_success(),
        Verdict::Retryable { reason, .. } => target.breaker.on_failure(reason),
    }
}

/// What a verdict means for a delivery making its `attempts`-th attempt (1-based).
pub fn decide(
    target: &TargetRuntime,
    envelope: &Envelope,
    attempts: u32,
    verdict: Verdict,
) -> Outcome {
    let now = now_ms();
    match verdict {
        Verdict::Delivered => match target.mode {
            DeliveryMode::Direct => Outcome::Delivered,
            DeliveryMode::Forward => Outcome::Forwarded,
        },
        Verdict::Retryable {
            reason,
            status,
            retry_after,
            ..
        } => {
            let error = AttemptError {
                at_ms: now,
                error: reason.clone(),
                status,
            };
            let age = Duration::from_millis(now.saturating_sub(envelope.received_ms));
            match retry::decide(
                &target.retry,
                attempts,
                age,
                retry_after,
                rand::random::<f64>(),
            ) {
                RetryDecision::RetryAfter(delay) => Outcome::Retry { delay, error },
                RetryDecision::GiveUp => Outcome::Dead {
                    reason: format!("gave up after {attempts} attempts: {reason}"),
                    error,
                },
            }
        }
        // The target answered properly; it is the message that is wrong. It passed the
        // bus's own checks (the door, or its mapping at delivery, and the platform's
        // published schema): the dead letter says so, so that nobody looks for the fault
        // in the mapping first.
        Verdict::Permanent { reason, status } => Outcome::Dead {
            error: AttemptError {
                at_ms: now,
                error: reason.clone(),
                status,
            },
            reason: format!(
                "refused by the platform after passing every check the bus can make (the \
                 door, the mapping, the platform's published schema): {reason}"
            ),
        },
    }
}

/// One attempt, with the permit held: render, call, let the breaker hear it, decide.
pub async fn attempt(
    target: &TargetRuntime,
    mappings: &MappingSet,
    replies: Option<&dyn Replies>,
    envelope: &Envelope,
    attempts: u32,
) -> Outcome {
    let span = attempt_span(target, envelope, attempts.saturating_sub(1));
    let generation = mappings.generation();
    let outcome = match render(target, mappings, envelope) {
        Ok(body) => {
            let outcome = send_traced(target, replies, envelope, &body, attempts).await;
            keep_for_retry(target, envelope, generation, &body, &outcome);
            outcome
        }
        Err(dead) => {
            // Nothing was sent: the permit goes back unused.
            target.breaker.on_neutral();
            dead
        }
    };
    end_attempt_span(span, &outcome);
    outcome
}

/// Send a rendered body (the permit held), let the breaker hear it and decide; when the
/// message's route passes this target's reply on, store the reply event first
/// ([`replies`]).
pub async fn send(
    target: &TargetRuntime,
    replies: Option<&dyn Replies>,
    envelope: &Envelope,
    body: &Outbound,
    attempts: u32,
) -> Outcome {
    let span = attempt_span(target, envelope, attempts.saturating_sub(1));
    let outcome = send_traced(target, replies, envelope, body, attempts).await;
    end_attempt_span(span, &outcome);
    outcome
}

/// The span of one attempt to deliver `envelope` (exported when `[telemetry]` is on).
pub fn attempt_span(
    target: &TargetRuntime,
    envelope: &Envelope,
    attempts: u32,
) -> crate::otlp::SpanHandle {
    use opentelemetry::KeyValue;
    // The hot path pays nothing for the attributes when export is off.
    if !target.spans.enabled() {
        return crate::otlp::SpanHandle::none();
    }
    target.spans.start_span(
        "delivery.attempt",
        opentelemetry::trace::SpanKind::Client,
        &envelope.trace_id,
        None,
        vec![
            KeyValue::new("lienthong.target", target.name.clone()),
            KeyValue::new("lienthong.unit", envelope.unit.clone()),
            KeyValue::new("lienthong.flow", envelope.flow.clone()),
            KeyValue::new("lienthong.message_id", envelope.id.to_string()),
            KeyValue::new("lienthong.attempt", i64::from(attempts) + 1),
        ],
    )
}

/// End an attempt's span with its outcome.
pub fn end_attempt_span(span: crate::otlp::SpanHandle, outcome: &Outcome) {
    let (name, failure) = match outcome {
        Outcome::Delivered => ("delivered", None),
        Outcome::Forwarded => ("forwarded", None),
        Outcome::Retry { error, .. } => ("retry", Some(error.error.as_str())),
        Outcome::Dead { reason, .. } => ("dead", Some(reason.as_str())),
    };
    span.set(opentelemetry::KeyValue::new("lienthong.outcome", name));
    if let Some(why) = failure {
        span.fail(why);
    }
}

async fn send_traced(
    target: &TargetRuntime,
    replies: Option<&dyn Replies>,
    envelope: &Envelope,
    body: &Outbound,
    attempts: u32,
) -> Outcome {
    let onward = replies
        .filter(|r| target.mode == DeliveryMode::Direct && r.goes_on(envelope, &target.name));
    let mut exchanged = exchange::exchange(target, envelope, body, onward.is_some()).await;
    let verdict = exchanged.verdict.clone();
    judge(target, &verdict);
    let mut outcome = decide(target, envelope, attempts, verdict);
    if let Some(replies) = onward
        && outcome == Outcome::Delivered
    {
        let reply = exchanged.reply.take().unwrap_or_default();
        outcome = replies::outcome_of_passing_on(replies, envelope, &target.name, &reply).await;
    }
    exchanged.log(target, body, [(envelope, attempts, Some(&outcome))]);
    outcome
}

/// Count an outcome in the target's figures and log it. The node that made the attempt
/// does this; in a cluster, the workers' outcomes reach every node's figures through the
/// status exchange instead.
pub fn record(target: &TargetRuntime, unit: UnitTag, envelope: &Envelope, outcome: &Outcome) {
    let stats = &target.stats;
    let now = now_ms();
    match outcome {
        Outcome::Delivered | Outcome::Forwarded => {
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            stats.recent.record(unit, Activity::Delivered, now);
            stats.latency.observe(
                now.saturating_sub(envelope.received_ms),
                Some(&envelope.trace_id),
            );
            tracing::debug!(target_system = %target.name, id = %envelope.id, attempts = envelope.attempts, ?outcome, "delivered");
        }
        Outcome::Retry { delay, error } => {
            stats.retried.fetch_add(1, Ordering::Relaxed);
            stats.recent.record(unit, Activity::Failed, now);
            stats.failed(envelope, &error.error, false, now);
            tracing::debug!(target_system = %target.name, id = %envelope.id, attempts = envelope.attempts, ?delay, reason = %error.error, "retry scheduled");
        }
        Outcome::Dead { reason, .. } => {
            stats.dead.fetch_add(1, Ordering::Relaxed);
            stats.recent.record(unit, Activity::Dead, now);
            stats.failed(envelope, reason, true, now);
            tracing::warn!(target_system = %target.name, id = %envelope.id, attempts = envelope.attempts, %reason, "dead letter");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::records::MAX_KEPT_ERRORS;

    fn error(i: u64) -> AttemptError {
        AttemptError {
            at_ms: i,
            error: format!("attempt {i}"),
            status: None,
        }
    }

    #[test]
    fn the_history_keeps_the_first_error_and_the_latest_ones() {
        let mut errors = Vec::new();
        for i in 0..50 {
            push_error(&mut errors, error(i));
        }
        assert_eq!(errors.len(), MAX_KEPT_ERRORS);
        assert_eq!(errors[0].at_ms, 0, "the first error stays");
        assert_eq!(errors.last().unwrap().at_ms, 49);
        assert_eq!(errors[1].at_ms, 50 - MAX_KEPT_ERRORS as u64 + 1);
    }
}
