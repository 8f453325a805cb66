//! The third round of hostile probes (issue 31), one test per finding, on the shipped
//! config: admin-token guessing is slowed per address and recorded within seconds, and a
//! link cannot put its own text in the operator's notice box.

use crate::support;

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

/// Send `head` (request line and headers, no body) and read what the bus answers within 3 s.
async fn answer_to_head(addr: std::net::SocketAddr, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(std::time::Duration::from_secs(3), conn.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => "no answer within 3 s (the bus waited for the body)".into(),
    }
}

#[tokio::test]
async fn a_body_is_not_read_for_no_endpoint_without_the_units_key_or_over_its_declared_limit() {
    let s = ShippedBus::start().await;
    let addr = s.bus.addr;
    let post = |path: &str, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: bus\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n{extra}\r\n"
        )
    };
    let first_line = |text: &str| text.lines().next().unwrap_or("").to_string();
    // No endpoint: 404 at once, the 4 MB never waited for.
    let text = answer_to_head(addr, &post("/nowhere", "")).await;
    assert!(first_line(&text).contains(" 404"), "{text}");
    // A unit's endpoint without its key: 401 at once — before `100 Continue` too.
    let text = answer_to_head(
        addr,
        &post("/api/v1/units/nafosted/events?flow=dossier_sync", ""),
    )
    .await;
    assert!(first_line(&text).contains(" 401"), "{text}");
    let text = answer_to_head(
        addr,
        &post(
            "/api/v1/units/nafosted/events?flow=dossier_sync",
            "Expect: 100-continue\r\nAuthorization: Bearer wrong-key-0123456789\r\n",
        ),
    )
    .await;
    assert!(first_line(&text).contains(" 401"), "{text}");
    // SOAP clients get theirs as a Fault.
    let text = answer_to_head(addr, &post("/soap/stameq", "")).await;
    assert!(
        first_line(&text).contains(" 401") && text.contains("soap:Fault"),
        "{text}"
    );
    // With the key, a declared length over the limit: 413 at once.
    let key = &s.keys["nafosted"];
    let big = format!(
        "POST /api/v1/units/nafosted/events?flow=dossier_sync HTTP/1.1\r\nHost: bus\r\nAuthorization: Bearer {key}\r\nContent-Length: 100000000\r\n\r\n"
    );
    let text = answer_to_head(addr, &big).await;
    assert!(
        first_line(&text).contains(" 413") && text.contains("body_too_large"),
        "{text}"
    );
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn bodies_in_flight_are_held_to_a_budget_and_the_next_is_503_before_it_is_read() {
    let s =
        ShippedBus::start_with(|cfg| cfg.server.max_body_bytes_in_flight = 6 * 1024 * 1024).await;
    let addr = s.bus.addr;
    let key = s.keys["nafosted"].clone();
    let head = format!(
        "POST /api/v1/units/nafosted/events?flow=dossier_sync HTTP/1.1\r\nHost: bus\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n"
    );
    // The first sender declares 4 MB and trickles nothing: it holds 4 MB of the budget.
    use tokio::io::AsyncWriteExt;
    let mut holder = tokio::net::TcpStream::connect(addr).await.unwrap();
    holder.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The second does not fit: 503 with Retry-After, nothing of it read.
    let text = answer_to_head(addr, &head).await;
    assert!(text.lines().next().unwrap_or("").contains(" 503"), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    // A small request still fits, and the bus serves it.
    let ok = client()
        .post(s.url("/api/v1/units/nafosted/events?flow=dossier_sync"))
        .bearer_auth(&key)
        .json(&support::nafosted_dossier(
            "NAF-BUDGET-1",
            "submitted",
            "online",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    drop(holder);
    s.bus.shutdown().await.unwrap();
}

/// Read until the bus closes the connection, for at most `within`; whether it did.
async fn closed_within(conn: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn silent_connections_are_closed_within_the_header_timeout_and_their_number_is_capped() {
    use tokio::io::AsyncWriteExt;
    let s = ShippedBus::start_with(|cfg| {
        cfg.server.header_read_timeout = std::time::Duration::from_secs(2);
        cfg.server.max_connections = 20;
    })
    .await;
    let addr = s.bus.addr;
    let connect = || tokio::net::TcpStream::connect(addr);
    // A connection that never sends a byte.
    let mut silent = connect().await.unwrap();
    assert!(closed_within(&mut silent, std::time::Duration::from_secs(4)).await);
    // One that sent a request and then keeps quiet (keep-alive).
    let mut idle = connect().await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: bus\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut idle, std::time::Duration::from_secs(4)).await);
    // Twenty silent sockets fill the listener; the next ones are the operators': health
    // and admin answer there, a unit's endpoint is 503, and past the reserve a new
    // connection is closed at once.
    let mut crowd = Vec::new();
    for _ in 0..20 {
        crowd.push(connect().await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let raw = |path: &str| {
        let path = path.to_string();
        async move {
            let mut conn = connect().await.unwrap();
            conn.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: bus\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut answer = String::new();
            use tokio::io::AsyncReadExt;
            let _ = conn.read_to_string(&mut answer).await;
            answer
        }
    };
    let health = raw("/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let unit = raw("/api/v1/units/nafosted/dossiers/X").await;
    assert!(
        unit.starts_with("HTTP/1.1 503") && unit.contains("connections_exhausted"),
        "{unit}"
    );
    for _ in 0..lienthong::server::connection::RESERVED_FOR_OPERATIONS {
        crowd.push(connect().await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut extra = connect().await.unwrap();
    assert!(closed_within(&mut extra, std::time::Duration::from_millis(500)).await);
    // Once the crowd is timed out, the bus serves again.
    for conn in &mut crowd {
        assert!(closed_within(conn, std::time::Duration::from_secs(4)).await);
    }
    let r = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_http2_connection_with_no_request_open_is_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = ShippedBus::start_with(|cfg| {
        cfg.server.header_read_timeout = std::time::Duration::from_secs(1);
        cfg.server.h2c = true;
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(s.bus.addr).await.unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame; then the server's SETTINGS are
    // acknowledged, as a client that keeps the connection does, and nothing else is sent.
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut head = [0u8; 9];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 0x4, "the server's SETTINGS first");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).await.unwrap();
    conn.write_all(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
        .await
        .unwrap();
    // From now on only what a live client does: answer the server's PINGs.
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut goaway = false;
    loop {
        let mut head = [0u8; 9];
        match tokio::time::timeout_at(deadline, conn.read_exact(&mut head)).await {
            Err(_) => panic!("an idle HTTP/2 connection stays open"),
            Ok(Err(_)) => break, // closed
            Ok(Ok(_)) => {}
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        if conn.read_exact(&mut payload).await.is_err() {
            break;
        }
        match (head[3], head[4]) {
            (0x7, _) => goaway = true,
            (0x6, 0) => {
                let mut ack = vec![0, 0, 8, 0x6, 0x1, 0, 0, 0, 0];
                ack.extend_from_slice(&payload);
                let _ = conn.write_all(&ack).await;
            }
            _ => {}
        }
    }
    assert!(goaway, "closed with a GOAWAY");
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    s.bus.shutdown().await.unwrap();
}
