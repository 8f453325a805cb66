//! Decision 766's satisfaction group from the portal's ratings, on the shipped config with
//! the bundled mock portal as a real server: the bus pulls `LayDanhSachDanhGia` on its
//! timer and counts each rated dossier once, a changed rating replacing the old.

use crate::support;

use std::time::Duration;
use support::{SHIPPED_VIEWER, ShippedBus, client, nafosted_dossier, wait_until};

/// The satisfaction group of NAFOSTED, as (satisfied, rated).
async fn satisfaction(s: &ShippedBus) -> (u64, u64) {
    let (_, k) = s.admin("/api/v1/kpis?refresh=true", SHIPPED_VIEWER).await;
    let naf = k["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "nafosted")
        .unwrap()
        .clone();
    let r = &naf["index_766"]["satisfaction"];
    (
        r["numerator"].as_u64().unwrap(),
        r["denominator"].as_u64().unwrap(),
    )
}

/// A citizen rates a dossier on the mock portal, now.
async fn rate(s: &ShippedBus, dossier: &str, level: u8) {
    let reply: serde_json::Value = client()
        .post(format!("http://{}/_mock/portal/ratings", s.mocks))
        .json(&serde_json::json!({"MaHoSo": dossier, "MucDoHaiLong": level}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["ok"], true, "the portal holds {dossier}: {reply}");
}

#[tokio::test]
async fn the_portals_ratings_are_pulled_and_counted_once_per_dossier() {
    let s = ShippedBus::start_with(|c| {
        let portal = c.targets.get_mut("portal").unwrap();
        portal.portal.as_mut().unwrap().ratings_every = Some(Duration::from_millis(200));
    })
    .await;
    for code in ["HS-RATE-A", "HS-RATE-B", "HS-RATE-C"] {
        s.send(
            "nafosted",
            "dossier_sync",
            &nafosted_dossier(code, "result_delivered", "online"),
        )
        .await;
    }
    let outbox = s.bus.outbox.clone();
    wait_until(Duration::from_secs(20), "the dossiers delivered", || {
        outbox.stats().pending == 0
    })
    .await;
    assert_eq!(satisfaction(&s).await, (0, 0), "nothing rated yet");

    // A very satisfied, B not satisfied, C not rated: 1 of 2.
    rate(&s, "HS-RATE-A", 1).await;
    rate(&s, "HS-RATE-B", 3).await;
    let mut seen = (0, 0);
    for _ in 0..100 {
        seen = satisfaction(&s).await;
        if seen == (1, 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, (1, 2), "A satisfied of A and B rated");
    // Pulled again and again: still counted once each.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(satisfaction(&s).await, (1, 2));

    // B changes their mind: satisfied.
    rate(&s, "HS-RATE-B", 2).await;
    for _ in 0..100 {
        seen = satisfaction(&s).await;
        if seen == (2, 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, (2, 2), "B's new rating replaced the old");
    s.bus.shutdown().await.unwrap();
}
