//! Payments a citizen can complete even when a callback is lost: the reconciliation of
//! open fee requests with `QUERY`, and the receipts fetched with `GET_BILL`, sent to the
//! units through their routes. (The notes it reads are the payment connector's,
//! [`crate::connector::payment::reconcile`].)
//!
//! # Design
//!
//! Each `INIT` the connector sends leaves a note `payment-open/<MaThamChieu>` naming the
//! unit and the time ([`OpenPayment`]). Then one of these settles it:
//!
//! ```text
//!  CONFIRM callback ── paid ──► note marked paid ──► next round: GET_BILL ──► payment_receipt event
//!                  └─ failed/expired ──► note removed
//!  no callback after `query_after` ──► QUERY: TrangThaiGD 1 ──► payment_confirm event (as a callback)
//!                                           │                   + note marked paid (receipt next round)
//!                                           ├ 4 ──► payment_confirm event "01", note removed
//!                                           ├ 3 ──► left open; after `give_up_after`: "02" expired
//!                                           └ 04 not found (the INIT never reached it) ──► note removed
//! ```
//!
//! - An outcome found by `QUERY` goes to the unit through the same route as a callback
//!   (`<unit>/payment_confirm`) under the same idempotency key (`payment-confirm/<ref>`):
//!   a callback that comes late after all is a duplicate, not a second payment.
//! - A round reads at most [`PER_ROUND`] notes, continuing where the last one stopped:
//!   its cost is bounded by the open payments, never by the outbox.
//! - Receipts go as flow `payment_receipt` when the unit routes it; otherwise a paid
//!   payment is simply settled.
//! - A settled payment leaves a mark `payment-settled/<ref>` (kept for
//!   `outbox.note_retention`) and its open note is removed.
//!
//! **In a cluster** (`transport = "amqp"`) the notes are the cluster's: the worker that
//! sent the `INIT`, the node that took the callback and the reconciler are often three
//! different nodes. Every open note, paid mark and settled mark is published to every
//! node ([`crate::transport::status::ClusterNotes`]), and a node takes what comes from the
//! others by [`take_shared`], which never moves a payment backwards (a paid note does not
//! become unpaid again, a settled one is not reopened), whatever order the notes arrive
//! in. One node at a time reconciles: the holder of the cluster lock `payment-reconciler`
//! ([`crate::transport::leader`]). What it finds goes into its own outbox and through the
//! broker to the unit like anything else.

use crate::connector::payment::reconcile::{OpenPayment, ReconcileSettings, settle};
use crate::connector::payment::{
    OPEN_PREFIX, PaymentCredentials, QUERY_FIELDS, field_text, open_note, settled_note, signature,
};
use crate::outbox::{EnqueueRequest, NewEvent, Notes, Outbox};
use crate::route::Router;
use crate::time::now_ms;
use crate::transport::leader::ClusterLock;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Open payments looked at per round.
pub const PER_ROUND: usize = 500;

/// The flow a receipt goes to the unit as.
pub use crate::route::PAYMENT_RECEIPT_FLOW as RECEIPT_FLOW;

/// Store a payment outcome for the unit as its `payment_confirm` event. `Ok(true)`: it
/// was already stored (a repeated callback, or a callback after a `QUERY`).
pub async fn relay_outcome(
    outbox: &Outbox,
    router: &Router,
    unit: &str,
    reference: &str,
    message: &Value,
) -> Result<bool, String> {
    let route = router
        .resolve(unit, Some(crate::route::PAYMENT_CONFIRM_FLOW))
        .map_err(|e| format!("no payment_confirm route for unit `{unit}`: {e}"))?;
    let idempotency_key = format!("payment-confirm/{reference}");
    store_for_unit(outbox, route, reference, idempotency_key, message, false).await
}

/// Store `message` (about payment `reference`) as one event of `route`, once per
/// `idempotency_key`. `Ok(true)`: it was already stored.
async fn store_for_unit(
    outbox: &Outbox,
    route: &crate::route::Route,
    reference: &str,
    idempotency_key: String,
    message: &Value,
    from_reply: bool,
) -> Result<bool, String> {
    let payload = serde_json::value::RawValue::from_string(message.to_string())
        .expect("serialised JSON is valid");
    let request = EnqueueRequest {
        from_reply,
        unit: route.unit.clone(),
        flow: route.flow.clone(),
        trace_id: uuid::Uuid::now_v7().simple().to_string(),
        idempotency_key: Some(idempotency_key),
        targets: route.targets.clone(),
        ordered: route.ordered,
        block_on_dead: route.block_on_dead,
        events: vec![NewEvent {
            key: route.ordered.then(|| reference.to_string()),
            targets: route.targets_for_event(&payload),
            payload,
        }],
    };
    let accepted = outbox.enqueue(request).await.map_err(|e| e.to_string())?;
    Ok(accepted.first().is_some_and(|a| a.duplicate))
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    pub looked_at: usize,
    pub settled: usize,
    pub receipts: usize,
    pub still_open: usize,
    pub errors: usize,
}

/// Asks the platform about open payments and fetches receipts.
pub struct Reconciler {
    client: reqwest::Client,
    url: reqwest::Url,
    creds: PaymentCredentials,
    /// Where the open payments are read, and outcomes and receipts stored.
    outbox: Outbox,
    /// Where paid and settled marks are written (the cluster's notes in a cluster).
    notes: Arc<dyn Notes>,
    router: Arc<Router>,
    settings: ReconcileSettings,
    /// Where the last round stopped.
    cursor: Option<String>,
    /// In a cluster, rounds run only while this node holds the lock.
    lock: Option<ClusterLock>,
}

/// Where a reconciler keeps what it learns.
pub struct ReconcileStores {
    pub outbox: Outbox,
    pub notes: Arc<dyn Notes>,
    pub router: Arc<Router>,
}

impl Reconciler {
    pub fn new(
        url: &str,
        timeout: Duration,
        creds: PaymentCredentials,
        stores: ReconcileStores,
        settings: ReconcileSettings,
        tls: Option<&crate::connector::client::TlsConfig>,
    ) -> Result<Reconciler, String> {
        Ok(Reconciler {
            client: crate::connector::client::client(timeout, tls)?,
            url: reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?,
            creds,
            outbox: stores.outbox,
            notes: stores.notes,
            router: stores.router,
            settings,
            cursor: None,
            lock: None,
        })
    }

    /// Run rounds only while this node holds `lock` (one reconciler per cluster).
    pub fn holding(mut self, lock: ClusterLock) -> Reconciler {
        self.lock = Some(lock);
        self
    }

    /// A round every `every`, until the bus stops (a background task).
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.settings.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(lock) = &mut self.lock
                && !lock.hold().await
            {
                // Another node reconciles; start from the beginning if this one takes over.
                self.cursor = None;
                continue;
            }
            let report = self.round().await;
            if report.settled + report.receipts + report.errors > 0 {
                tracing::info!(?report, "payment reconciliation round");
            }
        }
    }

    /// One round: up to [`PER_ROUND`] open payments, from where the last round stopped.
    pub async fn round(&mut self) -> RoundReport {
        let mut report = RoundReport::default();
        let notes = match self
            .outbox
            .notes_after(OPEN_PREFIX, self.cursor.as_deref(), PER_ROUND)
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open payments");
                report.errors += 1;
                return report;
            }
        };
        // A short page means the end: the next round starts from the beginning.
        self.cursor = (notes.len() == PER_ROUND)
            .then(|| notes.last().map(|(n, _)| n.clone()))
            .flatten();
        for (name, bytes) in notes {
            let reference = name.trim_start_matches(OPEN_PREFIX).to_string();
            let Some(open) = OpenPayment::decode(&bytes) else {
                let _ = self.outbox.remove_note(&name);
                continue;
            };
            // Settled already (on another node, or by a callback that came meanwhile).
            if matches!(self.outbox.get_note(&settled_note(&reference)), Ok(Some(_))) {
                let _ = self.outbox.remove_note(&name);
                continue;
            }
            report.looked_at += 1;
            let done = if open.paid {
                self.fetch_receipt(&reference, &open).await.map(|()| {
                    report.receipts += 1;
                    true
                })
            } else if now_ms().saturating_sub(open.since_ms)
                >= self.settings.query_after.as_millis() as u64
            {
                self.query(&reference, &open).await.map(|settled| {
                    report.settled += usize::from(settled);
                    false
                })
            } else {
                Ok(false)
            };
            match done {
                Ok(true) => {
                    if let Err(e) =
                        settle(self.notes.as_ref(), &self.outbox, &reference, &open.unit)
                    {
                        tracing::warn!(reference = %reference, error = %e, "cannot mark a payment settled");
                    }
                }
                Ok(false) => report.still_open += 1,
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!(reference = %reference, error = %e, "payment reconciliation: will try again next round");
                }
            }
        }
        report
    }

    /// A signed `QUERY` or `GET_BILL` for `reference`; the platform's JSON reply.
    async fn ask(&self, kind: &str, reference: &str) -> Result<Value, String> {
        let mut request = json!({
            "LoaiBanTin": kind, "PhienBan": "1.0.6", "MaDoiTac": self.creds.partner_code,
            "MaThamChieu": reference,
            "ThoiGianGD": crate::time::vn_compact(now_ms()),
        });
        request["MaXacThuc"] = json!(signature(&request, &QUERY_FIELDS, &self.creds.shared_key));
        let reply = self
            .client
            .post(self.url.clone())
            .json(&request)
            .send()
            .await
            .map_err(|e| format!("{kind}: {}", crate::connector::client::error_chain(&e)))?;
        if !reply.status().is_success() {
            return Err(format!("{kind}: HTTP {}", reply.status().as_u16()));
        }
        let text = reply.text().await.map_err(|e| format!("{kind}: {e}"))?;
        serde_json::from_str(&text).map_err(|_| format!("{kind}: the reply is not JSON"))
    }

    /// `QUERY` an open payment; relay a final outcome. `Ok(true)`: settled now.
    async fn query(&self, reference: &str, open: &OpenPayment) -> Result<bool, String> {
        let reply = self.ask("QUERY", reference).await?;
        let name = open_note(reference);
        match field_text(&reply["MaLoi"]).as_str() {
            "00" => {}
            "04" => {
                // The platform never took the INIT: nothing to settle.
                settle(self.notes.as_ref(), &self.outbox, reference, &open.unit)
                    .map_err(|e| e.to_string())?;
                return Ok(false);
            }
            other => return Err(format!("QUERY answered MaLoi {other}")),
        }
        let state = field_text(&reply["TrangThaiGD"]);
        let age = Duration::from_millis(now_ms().saturating_sub(open.since_ms));
        let code = match state.as_str() {
            "1" => "00",
            "4" => "01",
            "3" if age >= self.settings.give_up_after => "02",
            "3" => return Ok(false),
            other => return Err(format!("QUERY answered TrangThaiGD {other}")),
        };
        let outcome = json!({
            "LoaiBanTin": "CONFIRM", "MaLoi": code, "MaThamChieu": reference,
            "MaGiaoDich": reply["MaGiaoDich"], "SoTien": field_text(&reply["SoTien"]),
            "NguonXacNhan": "QUERY",
        });
        relay_outcome(&self.outbox, &self.router, &open.unit, reference, &outcome).await?;
        tracing::info!(reference, unit = %open.unit, code, "payment settled by QUERY (its callback never came)");
        let result = if code == "00" {
            let paid = OpenPayment {
                paid: true,
                ..open.clone()
            };
            self.notes.put_note(&name, &paid.encode())
        } else {
            settle(self.notes.as_ref(), &self.outbox, reference, &open.unit)
        };
        result.map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// `GET_BILL` a paid payment and send the receipt to its unit.
    async fn fetch_receipt(&self, reference: &str, open: &OpenPayment) -> Result<(), String> {
        let Ok(route) = self.router.resolve(&open.unit, Some(RECEIPT_FLOW)) else {
            return Ok(()); // The unit takes no receipts.
        };
        let reply = self.ask("GET_BILL", reference).await?;
        let code = field_text(&reply["MaLoi"]);
        if code != "00" {
            return Err(format!("GET_BILL answered MaLoi {code}"));
        }
        // A receipt is the platform's answer to the bus: taken even over the pending cap.
        let idempotency_key = format!("payment-receipt/{reference}");
        store_for_unit(
            &self.outbox,
            route,
            reference,
            idempotency_key,
            &reply,
            true,
        )
        .await?;
        Ok(())
    }
}
