//! Platforms that answer HTTP 200 and put their verdict in the body as a code (the
//! national portal's `error_code`, the payment platform's `MaLoi`): one classifier, told
//! each platform's codes. Anything but a 200 is judged by HTTP status as usual.

use super::{HttpStatusClassifier, RawOutcome, RetryClassifier, Verdict, snippet};
use serde_json::Value;

/// What a platform's code means.
pub enum CodeMeans {
    Delivered,
    /// The platform refuses this message as it is: a dead letter.
    Permanent,
    /// Worth another attempt; the text is a hint for the operator (may be empty).
    Retry(&'static str),
    /// Worth another attempt, but the platform answered properly about this message
    /// (e.g. "not found": it has not arrived yet): not held against the platform's health.
    NotYet(&'static str),
}

/// One platform's reply codes.
pub struct ReplyCodes {
    /// How reasons name the platform, e.g. `portal`.
    pub platform: &'static str,
    /// The field holding the code, as reasons name it, e.g. `error_code`.
    pub field: &'static str,
    /// The code of a reply, as text, if it has one.
    pub code: fn(&Value) -> Option<String>,
    /// The platform's own words about it.
    pub message: fn(&Value) -> &str,
    pub means: fn(&str) -> CodeMeans,
}

impl ReplyCodes {
    pub fn classify(&self, outcome: &RawOutcome) -> Verdict {
        let RawOutcome::Response {
            status: 200, body, ..
        } = outcome
        else {
            return HttpStatusClassifier.classify(outcome);
        };
        let reply: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let (platform, field) = (self.platform, self.field);
        let Some(code) = (self.code)(&reply) else {
            return Verdict::Retryable {
                reason: format!("{platform} reply without {field}{}", snippet(body)),
                status: Some(200),
                retry_after: None,
                target_fault: true,
            };
        };
        let message = (self.message)(&reply);
        match (self.means)(&code) {
            CodeMeans::Delivered => Verdict::Delivered,
            CodeMeans::Permanent => Verdict::Permanent {
                reason: format!("{platform} rejected the message: {field} {code}: «{message}»"),
                status: Some(200),
            },
            CodeMeans::Retry(hint) => Verdict::Retryable {
                reason: format!("{platform} {field} {code}: «{message}»{hint}"),
                status: Some(200),
                retry_after: None,
                target_fault: true,
            },
            CodeMeans::NotYet(hint) => Verdict::Retryable {
                reason: format!("{platform} {field} {code}: «{message}»{hint}"),
                status: Some(200),
                retry_after: None,
                target_fault: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODES: ReplyCodes = ReplyCodes {
        platform: "platform",
        field: "Ma",
        code: |v| v["Ma"].as_str().map(str::to_string),
        message: |v| v["Msg"].as_str().unwrap_or_default(),
        means: |c| match c {
            "00" => CodeMeans::Delivered,
            "01" => CodeMeans::Permanent,
            "04" => CodeMeans::NotYet(" (not there yet)"),
            _ => CodeMeans::Retry(" (try later)"),
        },
    };

    fn reply(status: u16, body: &str) -> RawOutcome {
        RawOutcome::Response {
            status,
            retry_after: None,
            body: body.into(),
        }
    }

    #[test]
    fn codes_inside_a_200_decide_and_other_statuses_are_http() {
        assert_eq!(
            CODES.classify(&reply(200, r#"{"Ma":"00"}"#)),
            Verdict::Delivered
        );
        assert!(matches!(
            CODES.classify(&reply(200, r#"{"Ma":"01","Msg":"sai"}"#)),
            Verdict::Permanent { reason, .. } if reason.contains("Ma 01: «sai»")
        ));
        assert!(matches!(
            CODES.classify(&reply(200, r#"{"Ma":"99"}"#)),
            Verdict::Retryable { reason, .. } if reason.ends_with("(try later)")
        ));
        assert!(matches!(
            CODES.classify(&reply(200, r#"{"Ma":"04"}"#)),
            Verdict::Retryable {
                target_fault: false,
                ..
            }
        ));
        assert!(matches!(
            CODES.classify(&reply(200, r#"{"Ma":"99"}"#)),
            Verdict::Retryable {
                target_fault: true,
                ..
            }
        ));
        assert!(matches!(
            CODES.classify(&reply(200, "not json")),
            Verdict::Retryable { reason, .. } if reason.contains("without Ma")
        ));
        assert!(matches!(
            CODES.classify(&reply(503, "")),
            Verdict::Retryable {
                status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            CODES.classify(&reply(400, "")),
            Verdict::Permanent { .. }
        ));
    }
}
