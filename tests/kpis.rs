//! The procedure catalogue's part in the KPIs, on the shipped config and mappings with the
//! bundled mock platforms as real servers: a dossier whose `MaTTHC` is not in its unit's
//! catalogue is counted apart (the default) or, with `[procedures] unknown = "reject"`,
//! becomes a dead letter naming the field; the others are delivered either way.

mod support;

use lienthong::procedures::UnknownProcedure;
use std::time::Duration;
use support::{SHIPPED_VIEWER, ShippedBus, nafosted_dossier, wait_until};

fn unit<'a>(kpis: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    kpis["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == name)
        .unwrap()
}

#[tokio::test]
async fn an_unknown_procedure_is_counted_by_default_and_refused_when_asked() {
    for mode in [UnknownProcedure::Warn, UnknownProcedure::Reject] {
        let s = ShippedBus::start_with(|c| c.procedures.unknown = mode).await;
        s.send(
            "nafosted",
            "dossier_sync",
            &nafosted_dossier("HS-CAT-1", "submitted", "online"),
        )
        .await;
        let mut stray = nafosted_dossier("HS-CAT-2", "submitted", "online");
        stray["procedureCode"] = serde_json::json!("9.999999");
        s.send("nafosted", "dossier_sync", &stray).await;
        let outbox = s.bus.outbox.clone();
        let want_dead = u64::from(mode == UnknownProcedure::Reject);
        wait_until(Duration::from_secs(20), "both dossiers settled", || {
            let st = outbox.stats();
            st.pending == 0 && st.dead == want_dead
        })
        .await;
        let (_, k) = s.admin("/api/v1/kpis?refresh=true", SHIPPED_VIEWER).await;
        let naf = unit(&k, "nafosted");
        assert_eq!(naf["dossiers"], 2, "{naf}");
        assert_eq!(naf["unknown_procedure"], 1, "{mode:?}: {naf}");
        let (_, dead) = s.admin("/api/v1/dead-letters", SHIPPED_VIEWER).await;
        let dead = dead["dead_letters"].as_array().cloned().unwrap_or_default();
        match mode {
            UnknownProcedure::Warn => {
                assert!(dead.is_empty(), "{dead:?}");
                assert_eq!(naf["kpis"]["dong_bo"]["numerator"], 2, "{naf}");
            }
            UnknownProcedure::Reject => {
                assert_eq!(dead.len(), 1, "{dead:?}");
                let reason = dead[0]["reason"].as_str().unwrap();
                assert!(
                    reason.contains("field MaTTHC") && reason.contains("9.999999"),
                    "{reason}"
                );
                assert_eq!(dead[0]["key"], "HS-CAT-2");
                assert_eq!(naf["kpis"]["dong_bo"]["numerator"], 1, "{naf}");
            }
        }
        s.bus.shutdown().await.unwrap();
    }
}
