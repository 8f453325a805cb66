//! The JSON error every ingress and admin endpoint answers with:
//! `{"error": {"code", "message", "field"?, "line"?, "column"?, "problems"?}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Seconds a client is told to wait when the bus is busy.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// Every problem of a refused request, each at its field (`invalid_event`): the
    /// first is also `field` and starts `message`.
    /// Boxed: most errors have none, and every `Result<_, ApiError>` pays for its size.
    #[serde(skip_serializing_if = "Problems::is_empty")]
    pub problems: Problems,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// The problems of a refused request (none for most errors: nothing allocated).
#[derive(Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Problems(Option<Box<[FieldProblem]>>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|p| p.is_empty())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, FieldProblem> {
        self.0.as_deref().map_or([].iter(), |p| p.iter())
    }
}

impl From<Vec<FieldProblem>> for Problems {
    fn from(list: Vec<FieldProblem>) -> Self {
        Problems((!list.is_empty()).then(|| list.into_boxed_slice()))
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a FieldProblem;
    type IntoIter = std::slice::Iter<'a, FieldProblem>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One field of a request and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FieldProblem {
    /// In the unit's own terms: `[3]/applicant/idNumber` (JSON pointer, after the batch
    /// index), the same for an XML record's elements, a CSV record's column name.
    pub field: String,
    pub problem: String,
    /// For a CSV record: the line it starts on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            line: None,
            column: None,
            problems: Problems::default(),
            retry_after: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn position(mut self, line: usize, column: usize) -> Self {
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.line = Some(small(line));
        self.column = Some(small(column));
        self
    }

    /// 503 with `Retry-After`: nothing was stored, the client should send again later.
    /// Tell the sender when to try again (`Retry-After`, seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn busy(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
        e.retry_after = Some(BUSY_RETRY_AFTER_SECS);
        e
    }

    fn to_response(&self) -> Response {
        let mut resp = (self.status, Json(serde_json::json!({ "error": self }))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}
