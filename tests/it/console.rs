//! The IT Center's console and the unit's own view (issue 38): a pending message says
//! what it waits behind (in the admin API, the unit's API, the dossier and the dashboard),
//! and the dashboard finds a message by its id, with its attempts and the body sent.

use crate::support;

use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Harness, NAFOSTED_KEY, wait_until};

use support::dead_letters::{
    OPERATOR, VIEWER, admin_tokens as tokens, dashboard_page, poison_target_a,
    three_hundred_and_twenty_dead_letters,
};

async fn get(h: &Harness, path: &str, token: &str) -> Value {
    let resp = h
        .client
        .get(h.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

async fn post_event(h: &Harness, body: Value) -> String {
    let r = h.post("nafosted", Some("dossier_sync"), &body).await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    v["accepted"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_message_says_which_dead_letter_it_waits_behind() {
    let h = Harness::start(Faults::default(), &tokens()).await;
    poison_target_a(&h);
    let first = post_event(&h, json!({"dossierCode": "HS-W-1", "note": "POISON"})).await;
    wait_until(Duration::from_secs(10), "the dead letter", || {
        h.bus().outbox.stats().dead == 1
    })
    .await;
    let second = post_event(&h, json!({"dossierCode": "HS-W-1", "note": "next step"})).await;

    // The admin API: the second message waits behind the first, a dead letter.
    let m = get(&h, &format!("/api/v1/messages/{second}"), VIEWER).await;
    let w = &m["deliveries"][0]["waiting_behind"];
    assert_eq!(m["deliveries"][0]["delivery"]["state"], "pending", "{m}");
    assert_eq!(w["id"], first.as_str(), "{m}");
    assert_eq!(w["why"], "dead_letter", "{m}");
    assert!(w["dead_since_ms"].as_u64().is_some(), "{m}");
    assert!(w["reason"].as_str().unwrap().contains("400"), "{m}");
    // The dead letter itself waits behind nothing.
    let d = get(&h, &format!("/api/v1/messages/{first}"), VIEWER).await;
    assert!(d["deliveries"][0]["waiting_behind"].is_null(), "{d}");

    // The unit reads the same with its own key.
    let own = get(
        &h,
        &format!("/api/v1/units/nafosted/messages/{second}"),
        NAFOSTED_KEY,
    )
    .await;
    assert_eq!(
        own["deliveries"][0]["waiting_behind"]["id"],
        first.as_str(),
        "{own}"
    );
    // And the dossier's latest event at the target says it too.
    let dossier = get(&h, "/api/v1/dossiers/HS-W-1", VIEWER).await;
    assert_eq!(
        dossier["targets"][0]["waiting_behind"]["id"],
        first.as_str(),
        "{dossier}"
    );

    // The dashboard: the message found by its id says what it waits for, with a link.
    let page = dashboard_page(&h, &format!("/?ma_ho_so={second}"), VIEWER).await;
    assert!(page.contains("id=\"tin\""), "{page}");
    assert!(page.contains("đang chờ sau tin"), "{page}");
    assert!(
        page.contains(&format!("href=\"/?ma_ho_so={first}\"")),
        "{page}"
    );
    assert!(page.contains("tin này là thư chết từ"), "{page}");
    // The message view shows the body sent to the target.
    assert!(page.contains("Nội dung gửi đi"), "{page}");
    // The dead letter's own view lists its attempt with the platform's answer.
    let page = dashboard_page(&h, &format!("/?ma_ho_so={first}"), VIEWER).await;
    assert!(page.contains("Nền tảng trả lời"), "{page}");
    assert!(page.contains("POISON"), "{page}");

    // The command line says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["message", &second])
        .args([
            "--url",
            &format!("http://{}", h.bus().addr),
            "--token",
            VIEWER,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&format!("waiting behind {first}")), "{said}");
    assert!(said.contains("a dead letter since"), "{said}");
    assert!(
        said.contains(&format!("lienthong dlq replay a {first}")),
        "{said}"
    );

    // Replayed once the target takes it: both go, nothing waits.
    h.sink.set_target_faults("a", Faults::default());
    let r = h
        .client
        .post(h.url(&format!("/api/v1/dead-letters/a/{first}/replay")))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bus = h.bus().outbox.clone();
    wait_until(Duration::from_secs(10), "both delivered", || {
        bus.stats().pending == 0 && bus.stats().dead == 0
    })
    .await;
    let m = get(&h, &format!("/api/v1/messages/{second}"), VIEWER).await;
    assert_eq!(m["deliveries"][0]["delivery"]["state"], "delivered", "{m}");
    assert!(m["deliveries"][0]["waiting_behind"].is_null(), "{m}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_message_behind_one_being_retried_says_so() {
    let h = Harness::start(Faults::default(), &tokens()).await;
    // Target a answers 500 for now: the first message is retried, the second waits.
    h.sink.set_target_faults(
        "a",
        Faults {
            error_ratio: 1.0,
            ..Faults::default()
        },
    );
    let first = post_event(&h, json!({"dossierCode": "HS-W-2", "note": "first"})).await;
    let second = post_event(&h, json!({"dossierCode": "HS-W-2", "note": "second"})).await;
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = get(&h, &format!("/api/v1/messages/{second}"), VIEWER).await;
        if seen["deliveries"][0]["waiting_behind"]["attempts"].as_u64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let w = &seen["deliveries"][0]["waiting_behind"];
    assert_eq!(w["id"], first.as_str(), "{seen}");
    assert_eq!(w["why"], "pending", "{seen}");
    assert!(w["reason"].as_str().unwrap_or("").contains("500"), "{seen}");
    h.sink.set_target_faults("a", Faults::default());
    h.shutdown().await;
}

/// Follow `next` from `first_url` (a path with a query) to the end; every item, in order.
async fn all_pages(h: &Harness, first: &str, token: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut url = first.to_string();
    loop {
        let page = get(h, &url, token).await;
        pages += 1;
        items.extend(page["dead_letters"].as_array().unwrap().iter().cloned());
        let Some(next) = page["next"].as_str() else {
            break;
        };
        let sep = if first.contains('?') { '&' } else { '?' };
        url = format!("{first}{sep}after={next}");
        assert!(pages < 100, "paging does not end");
    }
    (items, pages)
}

/// 300 dead letters of one unit and 20 of another: listed a page at a time (the unit
/// reads only its own, with its own key), filtered, replayed in bulk by the CLI with its
/// progress, and the rest dropped in bulk with a recorded reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_dead_letters_paged_filtered_replayed_and_dropped_in_bulk() {
    let h = Harness::start(Faults::default(), &tokens()).await;
    three_hundred_and_twenty_dead_letters(&h, "BULK").await;

    // The unit's own list, 100 at a time: its 300, none of the other unit's.
    let (own, pages) = all_pages(
        &h,
        "/api/v1/units/nafosted/dead-letters?limit=100",
        NAFOSTED_KEY,
    )
    .await;
    assert_eq!(own.len(), 300);
    assert!(pages >= 3, "{pages} pages");
    assert!(own.iter().all(|d| d["unit"] == "nafosted"));
    let ids: std::collections::BTreeSet<&str> =
        own.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 300, "no dead letter listed twice");
    // Another unit's key reads nothing of it.
    let r = h
        .client
        .get(h.url("/api/v1/units/nafosted/dead-letters"))
        .bearer_auth(support::STAMEQ_KEY)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());
    let (theirs, _) = all_pages(&h, "/api/v1/units/stameq/dead-letters", support::STAMEQ_KEY).await;
    assert_eq!(theirs.len(), 20);
    // A bad parameter is named.
    let r = h
        .client
        .get(h.url("/api/v1/units/nafosted/dead-letters?limit=lots"))
        .bearer_auth(NAFOSTED_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["field"], "limit", "{e}");

    // The IT Center: filtered by unit, paged 50 at a time over all 320.
    let (every, _) = all_pages(&h, "/api/v1/dead-letters?limit=50", VIEWER).await;
    assert_eq!(every.len(), 320);
    let (stameq, _) = all_pages(&h, "/api/v1/dead-letters?unit=stameq&limit=7", VIEWER).await;
    assert_eq!(stameq.len(), 20);

    // The target is fixed; the CLI replays NAFOSTED's 300 a hundred at a time.
    h.sink.set_target_faults("a", Faults::default());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args([
            "dlq", "replay", "--all", "--unit", "nafosted", "--page", "100",
        ])
        .args(["--url", &format!("http://{}", h.bus().addr)])
        .args(["--token", OPERATOR])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("replayed 300 dead letter(s)"), "{stdout}");
    assert!(
        stderr.contains("replayed 100 dead letter(s) so far"),
        "{stderr}"
    );
    assert!(
        stderr.contains("replayed 200 dead letter(s) so far"),
        "{stderr}"
    );
    // The other unit's are dropped in bulk, with the reason recorded.
    let r = h
        .client
        .post(h.url("/api/v1/dead-letters/drop"))
        .bearer_auth(OPERATOR)
        .json(&json!({"unit": "stameq"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a bulk drop needs its why");
    let r = h
        .client
        .post(h.url("/api/v1/dead-letters/drop"))
        .bearer_auth(OPERATOR)
        .json(&json!({"unit": "stameq", "why": "test data, never real dossiers"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["dropped"].as_array().unwrap().len(), 20, "{v}");
    let outbox = h.bus().outbox.clone();
    wait_until(Duration::from_secs(30), "all delivered or dropped", || {
        let s = outbox.stats();
        s.dead == 0 && s.pending == 0
    })
    .await;
    h.shutdown().await;
}

/// Issue 38: a pause is kept in the outbox and outlives a restart; a platform that leaves
/// dossiers blocked is not shown as working well.
#[tokio::test]
async fn a_pause_outlives_a_restart_and_blocked_dossiers_show_in_the_health() {
    let mut h = Harness::start(Faults::default(), &tokens()).await;
    let pause = h
        .client
        .post(h.url("/api/v1/targets/a/pause"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(pause.status(), 200);
    h.restart().await;
    let status = get(&h, "/api/v1/status", VIEWER).await;
    let a = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["paused"], true, "{a}");
    // Nothing goes to a paused target after the restart either.
    post_event(&h, json!({"dossierCode": "HS-P-1", "note": "held"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.sink.delivered_count(), 0, "delivered while paused");
    let resume = h
        .client
        .post(h.url("/api/v1/targets/a/resume"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(resume.status(), 200);
    let sink = h.sink.clone();
    wait_until(Duration::from_secs(10), "delivered once resumed", || {
        sink.delivered_count() == 1
    })
    .await;
    h.restart().await;
    let status = get(&h, "/api/v1/status", VIEWER).await;
    assert!(
        status["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["paused"] == false),
        "{status}"
    );

    // A dossier blocked by a dead letter: the dashboard does not call the target healthy.
    poison_target_a(&h);
    post_event(&h, json!({"dossierCode": "HS-P-2", "note": "POISON"})).await;
    post_event(&h, json!({"dossierCode": "HS-P-2", "note": "after"})).await;
    let outbox = h.bus().outbox.clone();
    wait_until(Duration::from_secs(10), "the dead letter", || {
        outbox.stats().dead == 1
    })
    .await;
    let page = dashboard_page(&h, "/", VIEWER).await;
    let health = page
        .split("id=\"target-a-health\"")
        .nth(1)
        .and_then(|r| r.split_once('>'))
        .and_then(|(_, r)| r.split('<').next())
        .unwrap_or_else(|| panic!("{page}"));
    assert_eq!(health, "Có 1 hồ sơ bị chặn");
    // The route map draws every route with the same figures.
    assert!(page.contains("id=\"ban-do-tuyen\""), "{page}");
    for (id, value) in [
        ("map-target-a-dead", "1"),
        ("map-target-a-pending", "1"),
        ("map-unit-nafosted-dead", "1"),
        ("map-target-b-dead", "0"),
        ("map-unit-stameq-pending", "0"),
    ] {
        assert!(
            page.contains(&format!("id=\"{id}\">{value}<")),
            "{id} = {value}: {page}"
        );
    }
    assert!(page.contains("nafosted/fanout → b"), "{page}");
    h.shutdown().await;
}

/// Issue 38: a unit learns of its new dead letters by polling one feed with a cursor,
/// with its own key; another unit's key reads nothing of it.
#[tokio::test]
async fn a_unit_polls_its_new_dead_letters_by_cursor() {
    let h = Harness::start(Faults::default(), &tokens()).await;
    let feed = "/api/v1/units/nafosted/dead-letters/feed";
    let empty = get(&h, feed, NAFOSTED_KEY).await;
    assert_eq!(empty["events"], json!([]), "{empty}");
    assert!(empty["next"].is_null(), "{empty}");
    poison_target_a(&h);
    let first = post_event(&h, json!({"dossierCode": "HS-F-1", "note": "POISON"})).await;
    let second = post_event(&h, json!({"dossierCode": "HS-F-2", "note": "POISON"})).await;
    let outbox = h.bus().outbox.clone();
    wait_until(Duration::from_secs(10), "two dead letters", || {
        outbox.stats().dead == 2
    })
    .await;
    let page = get(&h, feed, NAFOSTED_KEY).await;
    let events = page["events"].as_array().unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{page}");
    assert!(
        ids.contains(&first.as_str()) && ids.contains(&second.as_str()),
        "{page}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["still_dead"] == true && e["target"] == "a"),
        "{page}"
    );
    assert!(
        events[0]["reason"].as_str().unwrap().contains("400"),
        "{page}"
    );
    let next = page["next"].as_str().unwrap().to_string();
    // Nothing new: the same cursor back.
    let again = get(&h, &format!("{feed}?after={next}"), NAFOSTED_KEY).await;
    assert_eq!(again["events"], json!([]), "{again}");
    assert_eq!(again["next"], next.as_str());
    // A third dies: the poll from the kept cursor returns it alone.
    let third = post_event(&h, json!({"dossierCode": "HS-F-3", "note": "POISON"})).await;
    let outbox = h.bus().outbox.clone();
    wait_until(Duration::from_secs(10), "three dead letters", || {
        outbox.stats().dead == 3
    })
    .await;
    let more = get(&h, &format!("{feed}?after={next}"), NAFOSTED_KEY).await;
    assert_eq!(more["events"].as_array().unwrap().len(), 1, "{more}");
    assert_eq!(more["events"][0]["id"], third.as_str(), "{more}");
    // Another unit's key, and a cursor that is not one, are refused.
    let r = h
        .client
        .get(h.url(feed))
        .bearer_auth(support::STAMEQ_KEY)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());
    let r = h
        .client
        .get(h.url(&format!("{feed}?after=yesterday")))
        .bearer_auth(NAFOSTED_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    h.shutdown().await;
}
