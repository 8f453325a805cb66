//! The admin API for the IT Center, over real HTTP with viewer and operator tokens: status,
//! a message's journey, dead letters (list, filter, show, replay one and a set, drop with a
//! recorded reason), pause and resume, and `/metrics`.

use crate::support;

use lienthong::outbox::Notes;
use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Harness, wait_until};

use support::dead_letters::{OPERATOR, VIEWER, admin_tokens as extra};

async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = h.client.request(method.parse().unwrap(), h.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn roles_status_journeys_and_dead_letter_operations() {
    let h = Harness::start(Faults::default(), &extra()).await;
    // Target a refuses POISON for good: those become dead letters and block their dossier.
    h.sink.set_target_faults(
        "a",
        Faults {
            reject_containing: Some("POISON".into()),
            ..Faults::default()
        },
    );
    let good = json!({"dossierCode": "HS-OK-1", "note": "fine"});
    let bad1 = json!({"dossierCode": "HS-BAD-1", "note": "POISON"});
    let bad2 = json!({"dossierCode": "HS-BAD-2", "note": "POISON"});
    let mut ids = Vec::new();
    for e in [&good, &bad1, &bad2] {
        let r = h.post("nafosted", Some("dossier_sync"), e).await;
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        ids.push(v["accepted"][0]["id"].as_str().unwrap().to_string());
    }
    wait_until(Duration::from_secs(10), "two dead letters", || {
        h.bus().outbox.stats().dead == 2
    })
    .await;

    // Without a token, with a wrong one, with a viewer's for an operator's action.
    let (s, body) = call(&h, "GET", "/api/v1/status", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        call(
            &h,
            "GET",
            "/api/v1/status",
            Some("nope-nope-nope-nope"),
            None
        )
        .await
        .0,
        401
    );
    let (s, status) = call(&h, "GET", "/api/v1/status", Some(VIEWER), None).await;
    assert_eq!(s, 200);
    assert_eq!(status["dead"], 2);
    let a = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["delivered_since_start"], 1);
    assert_eq!(a["dead_since_start"], 2);
    assert_eq!(a["circuit"], "closed");

    // A message's journey.
    let (s, m) = call(
        &h,
        "GET",
        &format!("/api/v1/messages/{}", ids[1]),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(m["key"], "HS-BAD-1");
    assert_eq!(m["deliveries"][0]["delivery"]["state"], "dead");
    assert!(
        m["deliveries"][0]["delivery"]["reason"]
            .as_str()
            .unwrap()
            .contains("400")
    );
    assert_eq!(
        call(&h, "GET", "/api/v1/messages/not-a-uuid", Some(VIEWER), None)
            .await
            .0,
        400
    );

    // Dead letters: list, filter, show.
    let (_, list) = call(
        &h,
        "GET",
        "/api/v1/dead-letters?target=a",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(list["count"], 2);
    let (_, none) = call(
        &h,
        "GET",
        "/api/v1/dead-letters?unit=stameq",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(none["count"], 0);
    let (s, one) = call(
        &h,
        "GET",
        &format!("/api/v1/dead-letters/a/{}", ids[1]),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(one["payload"]["note"], "POISON");

    // A viewer may not replay; an operator may. After the fix, the replay is delivered.
    let path = format!("/api/v1/dead-letters/a/{}/replay", ids[1]);
    let (s, body) = call(&h, "POST", &path, Some(VIEWER), None).await;
    assert_eq!(s, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("operator")
    );
    h.sink.set_target_faults("a", Faults::default());
    let (s, _) = call(&h, "POST", &path, Some(OPERATOR), None).await;
    assert_eq!(s, 200);
    wait_until(Duration::from_secs(10), "the replay delivered", || {
        h.sink.delivered_count() == 2
    })
    .await;
    // The outbox records the delivery right after the sink answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, m) = call(
            &h,
            "GET",
            &format!("/api/v1/messages/{}", ids[1]),
            Some(VIEWER),
            None,
        )
        .await;
        if m["deliveries"][0]["delivery"]["state"] == "delivered" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Drop needs a reason, which is recorded.
    let drop_path = format!("/api/v1/dead-letters/a/{}/drop", ids[2]);
    assert_eq!(
        call(
            &h,
            "POST",
            &drop_path,
            Some(OPERATOR),
            Some(json!({"reason": ""}))
        )
        .await
        .0,
        400
    );
    let (s, _) = call(
        &h,
        "POST",
        &drop_path,
        Some(OPERATOR),
        Some(json!({"reason": "duplicate of HS-BAD-1, confirmed with the unit"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(h.bus().outbox.stats().dead, 0);
    let notes = h.bus().outbox.notes_with_prefix("dlq-drop/", 10).unwrap();
    let note: Value = serde_json::from_slice(&notes[0].1).unwrap();
    assert_eq!(note["by"], "nguyen.operator");
    assert!(h.bus().outbox.get_note(&notes[0].0).unwrap().is_some());
    assert_eq!(
        call(
            &h,
            "POST",
            &drop_path,
            Some(OPERATOR),
            Some(json!({"reason": "again"}))
        )
        .await
        .0,
        404
    );
    h.shutdown().await;
}

#[tokio::test]
async fn replay_a_filtered_set_pause_resume_and_metrics() {
    let h = Harness::start(Faults::default(), &extra()).await;
    h.sink.set_target_faults(
        "a",
        Faults {
            reject_containing: Some("POISON".into()),
            ..Faults::default()
        },
    );
    for n in 0..3 {
        let e = json!({"dossierCode": format!("HS-SET-{n}"), "note": "POISON"});
        assert_eq!(
            h.post("nafosted", Some("dossier_sync"), &e).await.status(),
            202
        );
    }
    wait_until(Duration::from_secs(10), "three dead letters", || {
        h.bus().outbox.stats().dead == 3
    })
    .await;
    h.sink.set_target_faults("a", Faults::default());
    let (s, r) = call(
        &h,
        "POST",
        "/api/v1/dead-letters/replay",
        Some(OPERATOR),
        Some(json!({"target": "a", "reason": "400"})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["replayed"].as_array().unwrap().len(), 3);
    wait_until(Duration::from_secs(10), "all three delivered", || {
        h.sink.delivered_count() == 3
    })
    .await;

    // Paused: accepted but not delivered; resumed: delivered.
    assert_eq!(
        call(&h, "POST", "/api/v1/targets/a/pause", Some(VIEWER), None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(&h, "POST", "/api/v1/targets/a/pause", Some(OPERATOR), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&h, "POST", "/api/v1/targets/zz/pause", Some(OPERATOR), None)
            .await
            .0,
        404
    );
    assert_eq!(
        h.post(
            "nafosted",
            Some("dossier_sync"),
            &json!({"dossierCode": "HS-P"})
        )
        .await
        .status(),
        202
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.sink.delivered_count(), 3, "nothing goes out while paused");
    let (_, status) = call(&h, "GET", "/api/v1/status", Some(VIEWER), None).await;
    assert!(
        status["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["target"] == "a" && t["paused"] == true)
    );
    assert_eq!(status["healthy"], false);
    // A target's pending is every delivery to it not yet delivered or dead, the same count
    // as the bus's (not only the part the scheduler holds in its window).
    let a = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "a")
        .unwrap();
    assert_eq!(a["pending"], 1, "{a}");
    assert_eq!(status["pending"], 1, "{status}");
    let metrics = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lienthong_target_paused{target=\"a\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lienthong_deliveries_total{target=\"a\",outcome=\"dead\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE lienthong_pending_deliveries gauge"));
    // Three deliveries measured, all under an hour.
    assert!(
        metrics.contains("lienthong_delivery_latency_seconds_count{target=\"a\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lienthong_delivery_latency_seconds_bucket{le=\"+Inf\",target=\"a\"} 3"),
        "{metrics}"
    );
    let a = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "a")
        .unwrap();
    assert!(a["latency_p99_ms"].as_u64().unwrap() >= a["latency_p50_ms"].as_u64().unwrap());
    assert_eq!(
        call(&h, "POST", "/api/v1/targets/a/resume", Some(OPERATOR), None)
            .await
            .0,
        200
    );
    wait_until(
        Duration::from_secs(10),
        "the paused event delivered",
        || h.sink.delivered_count() == 4,
    )
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let h = Harness::start(Faults::default(), &extra()).await;
    let (s, doc) = call(&h, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            // The unit-facing operations are checked in tests/contract.rs.
            if op["tags"][0] != "admin" {
                continue;
            }
            documented += 1;
            let concrete = path
                .replace("{id}", "019ac9b2-0000-7000-8000-000000000000")
                .replace("{target}", "a")
                .replace("{key}", "HS-NONE");
            let body = (method == "post").then(|| json!({"reason": "openapi check"}));
            let resp = h
                .client
                .request(method.to_uppercase().parse().unwrap(), h.url(&concrete))
                .bearer_auth(OPERATOR)
                .json(&body.unwrap_or(json!({})))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            // The router knows the route: not its bare 404 or 405, always a JSON answer.
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                serde_json::from_str::<Value>(&text).is_ok(),
                "{method} {path}: {status} {text}"
            );
            if op.get("x-role").is_some() {
                let (s, body) = call(&h, &method.to_uppercase(), &concrete, None, None).await;
                assert_eq!(s, 401, "{method} {path} needs a token");
                assert_eq!(body["error"]["code"], "unauthorized");
            }
            if op["x-role"] == "operator" {
                let (s, _) = call(
                    &h,
                    &method.to_uppercase(),
                    &concrete,
                    Some(VIEWER),
                    Some(json!({})),
                )
                .await;
                assert_eq!(s, 403, "{method} {path} is for operators");
            }
        }
    }
    assert_eq!(documented, lienthong::admin::api::ROUTES.len());
    h.shutdown().await;
}

/// The dashboard's sign-in opens a session kept on the bus: the cookie holds a random id,
/// never the token; signing out ends the session on the server (the old cookie stops
/// working, not only in that browser); a session idle longer than `session_idle` ends.
#[tokio::test]
async fn dashboard_sessions_hold_no_token_and_end_on_the_server() {
    let config = format!(
        "[admin]\nsession_idle = \"3s\"\nsession_max = \"1h\"\n{}",
        extra()
    );
    let h = Harness::start(Faults::default(), &config).await;
    let browser = support::browser();
    let sign_in = || async {
        let cookie = support::dashboard_sign_in(&h.url(""), OPERATOR).await;
        let id = cookie
            .strip_prefix("lienthong_session=")
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("a session cookie: {cookie}"))
            .to_string();
        (cookie, id)
    };
    let page = |cookie: String| async {
        let resp = browser
            .get(h.url("/"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        // The sign-in form has the token field; a signed-in page names its holder.
        let signed_in = !text.contains("name=\"token\"");
        assert_eq!(signed_in, text.contains("nguyen.operator"), "{text}");
        signed_in
    };

    let (cookie, id) = sign_in().await;
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(
        !cookie.contains(OPERATOR),
        "the token never goes to the browser"
    );
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(page(format!("lienthong_session={id}")).await);
    // The token itself, or a made-up id, is no session.
    assert!(!page(format!("lienthong_session={OPERATOR}")).await);
    assert!(!page(format!("lienthong_admin={OPERATOR}")).await);
    assert!(!page(format!("lienthong_session={}", "0".repeat(64))).await);

    // The page's forms carry the session's anti-forgery token; it is framed by no one and
    // runs no script but its own.
    let resp = browser
        .get(h.url("/"))
        .header("cookie", format!("lienthong_session={id}"))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let text = resp.text().await.unwrap();
    let csrf = text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field: {text}"))
        .to_string();
    // Without the token, or from another site's page: refused, the session stays open.
    let forged = browser
        .post(h.url("/dang-xuat"))
        .header("cookie", format!("lienthong_session={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let cross_site = browser
        .post(h.url("/dang-xuat"))
        .header("cookie", format!("lienthong_session={id}"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert!(page(format!("lienthong_session={id}")).await);

    // Signing out ends it on the server.
    let out = browser
        .post(h.url("/dang-xuat"))
        .header("cookie", format!("lienthong_session={id}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(!page(format!("lienthong_session={id}")).await);
    let replay = browser
        .post(h.url(&format!(
            "/thu-chet/a/{}/gui-lai",
            "019ac9b2-0000-7000-8000-000000000000"
        )))
        .header("cookie", format!("lienthong_session={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "a closed session cannot replay");

    // Idle for longer than session_idle (3 s): gone.
    let (_, id) = sign_in().await;
    assert!(page(format!("lienthong_session={id}")).await);
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    assert!(!page(format!("lienthong_session={id}")).await);
    h.shutdown().await;
}
