//! `POST /callbacks/payment`: the payment platform's `CONFIRM` callback. Its signature is
//! checked with the shared key; a forged or altered callback gets 401, is counted
//! (`lienthong_payment_callbacks_forged_total`) and logged with its reference cut short,
//! and **stores nothing** (the internet can post here: nothing it sends may cost disk).
//! A source address with too many failed signatures gets 429 for a while, before its
//! body is even parsed (`connector::payment::CallbackGuard`). The unit is the one whose fee request used the
//! `MaThamChieu`, and the callback
//! goes through the outbox to the unit (route `<unit>/payment_confirm`, mapped to the
//! unit's own format). A repeated callback for the same `MaThamChieu` is answered like the
//! first and stored once. The platform is answered as it expects: `{"MaLoi": "00"}` when
//! taken, `"99"` otherwise (it then sends again).

use super::IngressState;
use crate::connector::payment::reconcile::settled_by_callback;
use crate::connector::payment::{field_text, reference_note, verify_confirm};
use crate::outbox::Notes;
use crate::route::payments::relay_outcome;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// At most 32 characters of what a caller sent, for a log line.
fn cut(text: &str) -> String {
    let mut out: String = text.chars().take(32).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "MaLoi": code, "MoTaLoi": message }))).into_response()
}

pub async fn payment_callback(
    State(state): State<Arc<IngressState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    if let Some(wait) = ip.and_then(|ip| state.callbacks.blocked_for(ip)) {
        let mut resp = answer(
            StatusCode::TOO_MANY_REQUESTS,
            "99",
            "quá nhiều lần sai chữ ký; thử lại sau",
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        return resp;
    }
    let Some(creds) = &state.payment else {
        return answer(
            StatusCode::NOT_FOUND,
            "99",
            "no payment platform is configured",
        );
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "99", "the callback is not JSON");
    };
    if !message["LoaiBanTin"]
        .as_str()
        .is_some_and(|k| k.eq_ignore_ascii_case("confirm"))
    {
        return answer(StatusCode::BAD_REQUEST, "99", "LoaiBanTin must be CONFIRM");
    }
    let reference = field_text(&message["MaThamChieu"]);
    if !verify_confirm(&message, &creds.shared_key) {
        state.callbacks.failed(ip);
        tracing::warn!(reference = %cut(&reference), source = ?ip, "payment callback with a wrong MaXacThuc refused; nothing stored");
        return answer(StatusCode::UNAUTHORIZED, "99", "Sai chữ ký MaXacThuc");
    }
    let unit = match state.outbox.get_note(&reference_note(&reference)) {
        Ok(Some(u)) => String::from_utf8_lossy(&u).into_owned(),
        Ok(None) => {
            tracing::warn!(reference = %reference, "payment callback for an unknown MaThamChieu");
            return answer(StatusCode::NOT_FOUND, "99", "MaThamChieu không xác định");
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read payment references");
            return answer(StatusCode::SERVICE_UNAVAILABLE, "99", "thử lại sau");
        }
    };
    let code = field_text(&message["MaLoi"]);
    match relay_outcome(&state.outbox, &state.router, &unit, &reference, &message).await {
        Ok(duplicate) => {
            settled_by_callback(
                state.notes.as_ref(),
                &state.outbox,
                &unit,
                &reference,
                &code,
            );
            tracing::info!(%unit, reference = %reference, duplicate, "payment callback taken");
            answer(StatusCode::OK, "00", "Thành công")
        }
        Err(e) => {
            tracing::error!(%unit, error = %e, "cannot store the payment callback; the platform will send again");
            answer(StatusCode::SERVICE_UNAVAILABLE, "99", "thử lại sau")
        }
    }
}
