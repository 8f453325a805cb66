//! One exchange with a platform: send, classify, and keep what came back — for a route
//! that passes the reply on, and for the message log ([`crate::evidence`]), which records
//! what was sent and answered with the attempt's outcome.

use super::{DeliveryMode, Outcome, TargetRuntime};
use crate::connector::{Outbound, RawOutcome, Verdict};
use crate::envelope::Envelope;
use crate::evidence::{Answer, Body, Entry};
use crate::time::now_ms;

/// What an exchange gave.
pub struct Exchange {
    pub verdict: Verdict,
    /// The body of a successful reply, when asked for.
    pub reply: Option<String>,
    /// What the platform answered, when the message log is on.
    answer: Option<Answer>,
    sent_ms: u64,
}

/// Send `body` and classify the outcome; `keep_reply`: a successful reply's body is kept.
pub async fn exchange(
    target: &TargetRuntime,
    envelope: &Envelope,
    body: &Outbound,
    keep_reply: bool,
) -> Exchange {
    let logging = target.evidence.enabled() && target.mode == DeliveryMode::Direct;
    let sent_ms = now_ms();
    let raw = if keep_reply || logging {
        target.connector.send_keeping_reply(envelope, body).await
    } else {
        target.connector.send(envelope, body).await
    };
    let verdict = target.connector.classify(&raw);
    let wants_reply = keep_reply && verdict == Verdict::Delivered;
    let (reply, answer) = match raw {
        RawOutcome::Response { status, body, .. } => {
            // Digested here, and the body dropped here (see `crate::evidence::Body`).
            let answer = logging.then(|| Answer {
                status: Some(status),
                body: Some(Body::of(body.as_bytes(), target.evidence.keeps_bodies())),
                missing: None,
            });
            (wants_reply.then_some(body), answer)
        }
        other => (None, logging.then(|| answer_of(&other))),
    };
    Exchange {
        verdict,
        reply,
        answer,
        sent_ms,
    }
}

/// The answer of an exchange that got none (a response is taken apart where it comes).
fn answer_of(raw: &RawOutcome) -> Answer {
    let missing = |why| Answer {
        status: None,
        body: None,
        missing: Some(why),
    };
    match raw {
        RawOutcome::Response { .. } | RawOutcome::Transport(_) => missing("no_answer"),
        RawOutcome::Timeout => missing("timed_out"),
        RawOutcome::Invalid(_) => missing("not_sent"),
    }
}

/// The outcome's name in the message log.
fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Delivered | Outcome::Forwarded => "delivered",
        Outcome::Retry { .. } => "retry",
        Outcome::Dead { .. } => "dead",
    }
}

impl Exchange {
    /// Log the exchange for each message it carried (one, or a merged call's several),
    /// with each one's attempt number and outcome; `None`: the merged call failed and
    /// each message is sent again alone.
    pub fn log<'a>(
        &mut self,
        target: &TargetRuntime,
        body: &Outbound,
        messages: impl IntoIterator<Item = (&'a Envelope, u32, Option<&'a Outcome>)>,
    ) {
        let Some(answer) = self.answer.take() else {
            return;
        };
        let answered_ms = now_ms();
        let request = Body::of_bytes(&body.body, target.evidence.keeps_bodies());
        let entry =
            |(envelope, attempt, outcome): (&Envelope, u32, Option<&Outcome>)| Entry::Attempt {
                sent_ms: self.sent_ms,
                answered_ms,
                unit: envelope.unit.clone(),
                flow: envelope.flow.clone(),
                id: envelope.id,
                dossier: envelope.key.clone(),
                target: target.name.clone(),
                attempt,
                request: request.clone(),
                answer: Answer {
                    status: answer.status,
                    body: answer.body.clone(),
                    missing: answer.missing,
                },
                outcome: outcome.map_or("resent", outcome_name),
            };
        let mut messages = messages.into_iter();
        let first = messages.next();
        match (first, messages.next()) {
            (None, _) => {}
            // The usual case, one message a call: moved to the writer, no vector.
            (Some(one), None) => target.evidence.log_one(entry(one)),
            (Some(one), Some(two)) => {
                let mut entries = vec![entry(one), entry(two)];
                entries.extend(messages.map(entry));
                target.evidence.log(entries);
            }
        }
    }
}
