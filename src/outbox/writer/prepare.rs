//! An enqueue prepared off the writer thread: records encoded, KPI facts read, chunk
//! compressed; the writer only assigns ids and writes.

use super::*;

/// An enqueue with its records already encoded, off the writer thread: the writer only
/// assigns ids and writes.
pub struct PreparedEnqueue {
    pub(super) unit: String,
    /// The request's flow: a unit's `Idempotency-Key` is its flow's ([`keys::scoped_idempotency`]).
    pub(super) flow: String,
    pub(super) idempotency_key: Option<String>,
    pub(super) events: Vec<PreparedEvent>,
    /// All messages of the request in one `m` chunk.
    pub(super) chunk: Vec<u8>,
    pub(super) deliveries: u64,
    pub(super) bytes: u64,
    /// Admitted over the pending cap ([`EnqueueRequest::from_reply`]).
    pub(super) from_reply: bool,
}

pub(super) struct PreparedEvent {
    pub(super) pending: Vec<u8>,
    /// The pending record of the deliveries to `tally_targets` (it names the dossier
    /// they settle in the KPIs).
    pub(super) tally_pending: Option<(Vec<u8>, DeliveryInfo)>,
    pub(super) tally_targets: Vec<String>,
    pub(super) facts: Option<Facts>,
    /// The ordering key (the dossier), for the dossier index.
    pub(super) key: Option<String>,
    /// Where this event goes (the request's targets, or fewer: [`NewEvent::targets`]).
    pub(super) targets: Vec<String>,
    /// Everything but the id, which the writer assigns.
    pub(super) info: DeliveryInfo,
}

impl PreparedEnqueue {
    pub fn new(req: EnqueueRequest, finder: Option<&dyn FactFinder>) -> PreparedEnqueue {
        let mut bytes = 0u64;
        let mut deliveries = 0u64;
        let mut messages = Vec::with_capacity(req.events.len());
        let events: Vec<PreparedEvent> = req
            .events
            .into_iter()
            .map(|event| {
                let targets = event.targets.unwrap_or_else(|| req.targets.clone());
                let payload_len = event.payload.get().len() as u32;
                bytes += payload_len as u64 * targets.len() as u64;
                deliveries += targets.len() as u64;
                let key_hash = if req.ordered {
                    event.key.as_deref().map(|k| key_hash(&req.unit, k))
                } else {
                    None
                };
                let pending = PendingRecord {
                    key_hash,
                    block_on_dead: req.block_on_dead,
                    attempts: 0,
                    next_due_ms: 0,
                    payload_len,
                    errors: Vec::new(),
                    unit: req.unit.clone(),
                    tally: None,
                };
                let facts = finder.and_then(|f| {
                    f.facts(
                        &req.unit,
                        &req.flow,
                        event.key.as_deref(),
                        &targets,
                        &event.payload,
                    )
                });
                let (tally_pending, tally_targets) = match &facts {
                    Some(Facts::Dossier(f)) if !f.sync_targets.is_empty() => {
                        let rec = PendingRecord {
                            tally: Some(tally::dossier_id(&req.unit, &f.dossier)),
                            ..pending.clone()
                        };
                        let info = DeliveryInfo::from_record(MessageId(uuid::Uuid::nil()), &rec);
                        (Some((rec.to_bytes(), info)), f.sync_targets.clone())
                    }
                    _ => (None, Vec::new()),
                };
                let dossier = event.key.clone();
                let message = MessageRecord {
                    unit: req.unit.clone(),
                    flow: req.flow.clone(),
                    key: event.key,
                    trace_id: req.trace_id.clone(),
                    idempotency_key: req.idempotency_key.clone(),
                    targets: targets.clone(),
                    payload: event.payload,
                };
                messages.push(encode(&message));
                PreparedEvent {
                    pending: pending.to_bytes(),
                    tally_pending,
                    tally_targets,
                    facts,
                    key: dossier,
                    targets,
                    info: DeliveryInfo::from_record(MessageId(uuid::Uuid::nil()), &pending),
                }
            })
            .collect();
        PreparedEnqueue {
            deliveries,
            unit: req.unit,
            flow: req.flow,
            idempotency_key: req.idempotency_key,
            events,
            chunk: compress_chunk(&encode_chunk(&messages)),
            bytes,
            from_reply: req.from_reply,
        }
    }
}
