//! `POST /callbacks/payment`: the payment platform's `Confirm` callback. Its signature is
//! checked with the shared key (a forged or altered callback gets 401 and is logged and
//! noted), the unit is the one whose fee request used the `MaThamChieu`, and the callback
//! goes through the outbox to the unit (route `<unit>/payment_confirm`, mapped to the
//! unit's own format). A repeated callback for the same `MaThamChieu` is answered like the
//! first and stored once. The platform is answered as it expects: `{"MaLoi": "00"}` when
//! taken, `"99"` otherwise (it then sends again).

use super::IngressState;
use crate::connector::payment::{field_text, reference_note, verify_confirm};
use crate::outbox::{EnqueueRequest, NewEvent, Notes};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "MaLoi": code, "MoTaLoi": message }))).into_response()
}

pub async fn payment_callback(State(state): State<Arc<IngressState>>, body: Bytes) -> Response {
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
    if message["LoaiBanTin"] != "Confirm" {
        return answer(StatusCode::BAD_REQUEST, "99", "LoaiBanTin must be Confirm");
    }
    let reference = field_text(&message["MaThamChieu"]);
    if !verify_confirm(&message, &creds.shared_key) {
        tracing::warn!(reference = %reference, "payment callback with a wrong MaXacThuc refused");
        let note = format!("payment-forged/{}", uuid::Uuid::now_v7());
        let record = json!({"MaThamChieu": reference, "at_ms": crate::time::now_ms()});
        if let Err(e) = state.outbox.put_note(&note, record.to_string().as_bytes()) {
            tracing::error!(error = %e, "cannot record the refused callback");
        }
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
    let route = match state
        .router
        .resolve(&unit, Some(crate::route::PAYMENT_CONFIRM_FLOW))
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%unit, error = %e, "no payment_confirm route for the unit; the platform will send again");
            return answer(StatusCode::SERVICE_UNAVAILABLE, "99", "thử lại sau");
        }
    };
    let payload = serde_json::value::RawValue::from_string(message.to_string())
        .expect("serialised JSON is valid");
    let request = EnqueueRequest {
        unit: unit.clone(),
        flow: route.flow.clone(),
        trace_id: uuid::Uuid::now_v7().simple().to_string(),
        // Repeated callbacks are one event.
        idempotency_key: Some(format!("payment-confirm/{reference}")),
        targets: route.targets.clone(),
        ordered: route.ordered,
        block_on_dead: route.block_on_dead,
        events: vec![NewEvent {
            key: route.ordered.then(|| reference.clone()),
            payload,
        }],
    };
    match state.outbox.enqueue(request).await {
        Ok(accepted) => {
            tracing::info!(%unit, reference = %reference, duplicate = accepted[0].duplicate, "payment callback taken");
            answer(StatusCode::OK, "00", "Thành công")
        }
        Err(e) => {
            tracing::error!(%unit, error = %e, "cannot store the payment callback");
            answer(StatusCode::SERVICE_UNAVAILABLE, "99", "thử lại sau")
        }
    }
}
