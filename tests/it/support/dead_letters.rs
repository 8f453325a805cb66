//! What the console tests share: the viewer and operator tokens of the harness, a target
//! that refuses poisoned events for good, 320 dead letters of two units, and the dashboard
//! page as a signed-in browser reads it.

use super::{Harness, dashboard_sign_in, wait_until};
use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::time::Duration;

pub const VIEWER: &str = "viewer-token-0123456789";
pub const OPERATOR: &str = "operator-token-0123456789";

/// `[[admin.tokens]]` of a viewer (`it-center-screen`) and an operator (`nguyen.operator`).
pub fn admin_tokens() -> String {
    format!(
        r#"
[[admin.tokens]]
name = "it-center-screen"
role = "viewer"
token_env = "TEST_UNSET_VIEWER"
dev_token = "{VIEWER}"
[[admin.tokens]]
name = "nguyen.operator"
role = "operator"
token_env = "TEST_UNSET_OPERATOR"
dev_token = "{OPERATOR}"
"#
    )
}

/// Target `a` refuses every event containing POISON for good.
pub fn poison_target_a(h: &Harness) {
    h.sink.set_target_faults(
        "a",
        Faults {
            reject_containing: Some("POISON".into()),
            ..Faults::default()
        },
    );
}

/// 300 NAFOSTED dossiers (`HS-<tag>-<batch>-<nnn>`) and 20 STAMEQ ones (`ST-<tag>-<nnn>`)
/// that target `a` refuses: returns once all 320 are dead letters.
pub async fn three_hundred_and_twenty_dead_letters(h: &Harness, tag: &str) {
    poison_target_a(h);
    for batch in 0..3 {
        let events: Vec<Value> = (0..100)
            .map(|i| json!({"dossierCode": format!("HS-{tag}-{batch}-{i:03}"), "note": "POISON"}))
            .collect();
        let r = h
            .post("nafosted", Some("dossier_sync"), &Value::Array(events))
            .await;
        assert_eq!(r.status(), 202);
    }
    let events: Vec<Value> = (0..20)
        .map(|i| json!({"SoHoSo": format!("ST-{tag}-{i:03}"), "note": "POISON"}))
        .collect();
    let r = h
        .post("stameq", Some("dossier_sync"), &Value::Array(events))
        .await;
    assert_eq!(r.status(), 202);
    let outbox = h.bus().outbox.clone();
    wait_until(Duration::from_secs(30), "320 dead letters", || {
        outbox.stats().dead == 320
    })
    .await;
}

/// The dashboard at `path`, signed in with `token`.
pub async fn dashboard_page(h: &Harness, path: &str, token: &str) -> String {
    let base = format!("http://{}", h.bus().addr);
    let cookie = dashboard_sign_in(&base, token).await;
    super::browser()
        .get(format!("{base}{path}"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
