//! The third round of hostile probes (issue 31), one test per finding, on the shipped
//! config: admin-token guessing is slowed per address and recorded within seconds, and a
//! link cannot put its own text in the operator's notice box.

mod support;

use serde_json::Value;
use support::{SHIPPED_OPERATOR, SHIPPED_VIEWER, ShippedBus, client};

#[tokio::test]
async fn wrong_admin_tokens_from_one_address_get_429_and_are_recorded_at_once() {
    let s = ShippedBus::start().await;
    let status = |token: &'static str| {
        let url = s.url("/api/v1/status");
        async move {
            let r = client().get(url).bearer_auth(token).send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry)
        }
    };
    assert_eq!(status(SHIPPED_VIEWER).await.0, 200);
    for i in 0..10 {
        assert_eq!(status("not-a-token-0123456789").await.0, 401, "guess {i}");
    }
    // The eleventh guess, and anything else from this address, waits out the window.
    let (code, retry) = status("not-a-token-0123456789").await;
    assert_eq!(code, 429);
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    assert_eq!(status(SHIPPED_VIEWER).await.0, 429);
    // The first refusal is in the audit trail already (the others at the window's end).
    let trail = std::fs::read_to_string(s.bus.audit.path()).unwrap();
    let refused: Vec<Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"] == "admin_login_failed")
        .collect();
    assert_eq!(refused.len(), 1, "{trail}");
    assert!(
        !trail.contains("not-a-token"),
        "the token itself is never kept"
    );
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_notice_is_shown_only_when_the_dashboard_itself_sealed_it() {
    let s = ShippedBus::start().await;
    let cookie = support::dashboard_sign_in(&s.url(""), SHIPPED_OPERATOR).await;
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = |path: &str| {
        let (url, cookie) = (s.url(path), cookie.clone());
        async move {
            let r = client()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            r.text().await.unwrap()
        }
    };
    let lure = "Phien+het+han%3A+dang+nhap+lai+tai+evil.example";
    for path in [
        format!("/?thong_bao={lure}"),
        format!("/?thong_bao={lure}&ma=00112233445566778899aabbccddeeff"),
        format!("/thu-chet?thong_bao={lure}"),
    ] {
        let text = page(&path).await;
        assert!(!text.contains("evil.example"), "{path}: the lure is shown");
    }
    // A replay of a dead letter that is not there: the dashboard's own notice is shown.
    let csrf = page("/")
        .await
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let r = support::browser()
        .post(s.url(&format!(
            "/thu-chet/portal/{}/gui-lai",
            uuid::Uuid::now_v7()
        )))
        .header("cookie", cookie.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.contains("&ma="), "{to}");
    let text = page(&to).await;
    assert!(text.contains("Thư chết này không còn"), "{text}");
    s.bus.shutdown().await.unwrap();
}
