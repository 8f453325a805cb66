//! `send`, `status` and `dead-letters` talking to a running bus: what was refused, a busy
//! bus waited out, the admin API behind the commands.

use super::*;

#[test]
fn send_posts_files_as_the_unit_and_names_what_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start_quiet_bus(dir.path(), port);
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let out = lienthong()
        .args([
            "send",
            "--unit",
            "ipo",
            "--flow",
            "dossier_sync",
            "--idempotent",
            "--url",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .args([
            "mappings/ipo/tests/dossier_sync/02-two-trademarks.input.csv",
            "mappings/ipo/tests/dossier_sync/03-ragged-row.input.csv",
            "mappings/ipo/tests/dossier_sync/02-two-trademarks.input.csv",
        ])
        .arg(&notes)
        .output()
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait_with_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("[1/4] ") && lines[0].contains("accepted 2 event(s)"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("refused, HTTP 400") && lines[1].contains("[line 2"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("(already had it)"),
        "the same file twice is stored once: {stdout}"
    );
    assert!(lines[3].contains("name it .json, .xml or .csv"), "{stdout}");
}

#[test]
fn status_and_dlq_commands_talk_to_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The shipped config with its routes checking at delivery (the door would refuse
    // the bad event below).
    let config = dir.path().join("lienthong.toml");
    std::fs::write(
        &config,
        config_with_digests(
            &["dev-only-nafosted-key-change-me"],
            &["dev-only-viewer-token-change-me"],
        ),
    )
    .unwrap();
    let child = start_bus_on(&config, dir.path(), port);
    // An event its mapping refuses: a dead letter at once.
    let bad = r#"{"dossierCode": "NAFOSTED-DLQ-1", "procedureCode": "1.008433", "applicant": {"type": "individual", "fullName": "A", "idNumber": "001203004567"}, "submittedAt": "31/02/2024", "status": "submitted"}"#;
    let reply = http(|c| {
        c.post(format!(
            "http://127.0.0.1:{port}/api/v1/units/nafosted/events?flow=dossier_sync"
        ))
        .bearer_auth("dev-only-nafosted-key-change-me")
        .header("content-type", "application/json")
        .body(bad)
    });
    assert_eq!(reply.status(), 202);
    let id = reply.json().unwrap()["accepted"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let out = lienthong()
            .args(args)
            .args(["--url", &url])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let mut listed = String::new();
    // Dead at both targets of the route: the portal and the ministry's system.
    for _ in 0..100 {
        let (_, out, _) = run(&["dlq", "list"]);
        if out.starts_with("2 dead letter(s)") {
            listed = out;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        listed.starts_with("2 dead letter(s)") && listed.contains("NgayTiepNhan"),
        "{listed}"
    );
    let (code, out, _) = run(&["status"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("2 dead letters")
            && out.contains("TARGET")
            && out.lines().any(|l| l.starts_with("portal"))
            && out.lines().any(|l| l.starts_with("ministry"))
            && out.contains("UNIT")
            && out
                .lines()
                .any(|l| l.starts_with("nafosted") && l.split_whitespace().nth(3) == Some("2")),
        "{out}"
    );
    let (_, out, _) = run(&["dlq", "show", "portal", &id]);
    assert!(out.contains("\"submittedAt\": \"31/02/2024\""), "{out}");
    let (code, _, err) = run(&[
        "dlq",
        "drop",
        "portal",
        &id,
        "--reason",
        "the unit resends it corrected",
        "--token",
        "dev-only-viewer-token-change-me",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("HTTP 403"), "a viewer may not drop: {err}");
    let (code, out, _) = run(&[
        "dlq",
        "drop",
        "portal",
        &id,
        "--reason",
        "the unit resends it corrected",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out, _) = run(&["dlq", "list"]);
    assert!(
        out.starts_with("1 dead letter(s)"),
        "the ministry's is left: {out}"
    );
    let (code, out, _) = run(&[
        "dlq",
        "drop",
        "ministry",
        &id,
        "--reason",
        "the unit resends it corrected",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out, _) = run(&["dlq", "list"]);
    assert!(out.starts_with("0 dead letter(s)"), "{out}");
    // The KPI report of a period, written where asked.
    let report = dir.path().join("report.csv");
    let (code, out, err) = run(&[
        "report",
        "--period",
        "all",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("report.csv") && out.contains("period all"),
        "{out}"
    );
    let csv = std::fs::read_to_string(&report).unwrap();
    // 1a from NAFOSTED's catalogue; its only event could not be mapped, so no dossier
    // is counted for target 2.
    assert!(
        csv.contains(
            "Toàn bộ thời gian,Quỹ Phát triển khoa học và công nghệ quốc gia,1a,Tỷ lệ TTHC cung cấp dịch vụ công trực tuyến toàn trình,2,3,66.7,80,Chưa đạt"
        ) && csv.contains("Toàn bộ thời gian,Quỹ Phát triển khoa học và công nghệ quốc gia,2,Tỷ lệ hồ sơ trực tuyến,0,0,,50,Chưa có số liệu"),
        "{csv}"
    );
    let (code, _, err) = run(&["report", "--period", "2024-Q5"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is not a period"), "{err}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait_with_output();
}

#[test]
fn send_waits_for_a_busy_bus_and_says_when_it_gives_up() {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A bus that is busy (503), then over the unit's rate (429), then takes the file; and
    // after that has the key stored by another node (409), then is busy for good.
    let server = std::thread::spawn(move || {
        let busy = r#"{"error":{"code":"busy","message":"the bus is holding too many undelivered messages; retry later"}}"#;
        for (n, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let (status, json) = match n {
                0 => ("503 Service Unavailable", busy),
                1 => ("429 Too Many Requests", busy),
                2 => (
                    "202 Accepted",
                    r#"{"accepted":[{"id":"0190a5b0-0000-7000-8000-000000000001","duplicate":false}]}"#,
                ),
                3 => (
                    "409 Conflict",
                    r#"{"error":{"code":"idempotency_in_progress","message":"being stored by another node"}}"#,
                ),
                _ => ("503 Service Unavailable", busy),
            };
            write!(
                stream,
                "HTTP/1.1 {status}\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            )
            .unwrap();
            if n == 5 {
                break;
            }
        }
    });
    let file = "mappings/nafosted/tests/dossier_sync/01-new-dossier.input.json";
    assert!(std::path::Path::new(file).exists(), "{file}");
    let out = lienthong()
        .args([
            "send",
            "--unit",
            "nafosted",
            "--flow",
            "dossier_sync",
            "--retries",
            "2",
            "--url",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .args([file, file])
        .output()
        .unwrap();
    server.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        lines[0].starts_with("[1/2] ")
            && lines[0].contains("busy (HTTP 503); sending again in 1 s (retry 1 of 2)"),
        "{stdout}"
    );
    assert!(lines[1].contains("(HTTP 429)"), "{stdout}");
    assert!(lines[2].contains("accepted 1 event(s)"), "{stdout}");
    assert!(lines[3].contains("(HTTP 409)"), "{stdout}");
    assert!(
        lines[5].starts_with("[2/2] ") && lines[5].contains("gave up after 3 attempt(s)"),
        "{stdout}"
    );
    assert!(lines[6].contains("refused, HTTP 503"), "{stdout}");
}
