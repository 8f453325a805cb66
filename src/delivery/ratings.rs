//! The portal's ratings of the units' dossiers, pulled on a timer
//! (`[targets.<portal>.portal] ratings_every`) and counted in the KPI tally: Decision
//! 766's satisfaction group (`index_766.satisfaction`).
//!
//! Each pull asks the portal for every unit's ratings of each of the last [`DAYS`] days
//! (one call per unit and day, so an answer stays small) and sets each rated dossier's
//! rating in its tally record: a rating pulled again changes nothing, a changed one
//! replaces the old, and a dossier the bus never carried is not counted. The window, not
//! a cursor, makes a pull missed while the bus was down harmless. In a cluster the
//! ratings are journalled like every KPI change, so every node counts them.

use crate::connector::PortalConnector;
use crate::outbox::Outbox;
use crate::outbox::tally::shared::TallyOp;
use std::sync::Arc;
use std::time::Duration;

/// The days asked on every pull, today included.
pub const DAYS: u32 = 31;

/// What one pull did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pulled {
    pub ratings: usize,
    /// Units the portal did not answer for (their days are asked again on the next pull).
    pub failed: usize,
}

/// Pull every `every`, for as long as the bus runs.
pub async fn pull_periodically(
    portal: Arc<PortalConnector>,
    units: Vec<String>,
    outbox: Outbox,
    every: Duration,
) {
    // The first pull a little after start (never at once: a bus that restarts often
    // should not ask the portal on every start), then every `every`.
    let first = tokio::time::Instant::now() + every.min(Duration::from_secs(120));
    let mut tick = tokio::time::interval_at(first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pulled = pull(&portal, &units, &outbox, crate::time::now_ms()).await;
        tracing::info!(
            ratings = pulled.ratings,
            failed = pulled.failed,
            "portal ratings pulled"
        );
    }
}

/// One pull of the last [`DAYS`] days before `now_ms`, counted.
pub async fn pull(
    portal: &PortalConnector,
    units: &[String],
    outbox: &Outbox,
    now_ms: u64,
) -> Pulled {
    let mut out = Pulled::default();
    for unit in units {
        let mut ops = Vec::new();
        for back in 0..DAYS {
            let ms = now_ms.saturating_sub(u64::from(back) * 86_400_000);
            let day = &crate::time::vn_compact(ms)[..8];
            match portal.ratings(unit, day).await {
                Ok(ratings) => ops.extend(ratings.into_iter().map(|r| TallyOp::Rated {
                    unit: unit.clone(),
                    dossier: r.dossier,
                    level: r.level,
                })),
                Err(e) => {
                    // Once per unit and pull: the rest of its days wait for the next pull.
                    tracing::warn!(unit, day, error = %e, "cannot ask the portal for ratings");
                    out.failed += 1;
                    break;
                }
            }
        }
        out.ratings += ops.len();
        if !ops.is_empty()
            && let Err(e) = outbox.count_ratings(ops).await
        {
            tracing::warn!(unit, error = %e, "cannot count the portal's ratings");
        }
    }
    out
}
