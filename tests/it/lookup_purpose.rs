//! Citizens' data only for a dossier's purpose: on the shipped config against the mocks as
//! real servers, every shipped lookup fixture is answered for a dossier of its unit that
//! names the person, and refused (403, its own code, audited) without a purpose, without a
//! dossier, for a dossier the unit never sent, another unit's dossier, or a person the
//! dossier does not name. A documented exception waives the dossier, never the purpose.
//! Each unit has its own share of a platform and a daily ceiling (429, `Retry-After`).

use crate::support;

use lienthong_mocks::MockSettings;
use lienthong_mocks::units::Traffic;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Shipped {
    bus: lienthong::app::Bus,
    mocks: std::net::SocketAddr,
    keys: BTreeMap<String, String>,
    _dir: tempfile::TempDir,
}

/// The shipped config on the mocks, `vars` overriding it.
async fn shipped(vars: &[(&str, &str)]) -> Shipped {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(listener, MockSettings::default()));
    let dir = tempfile::tempdir().unwrap();
    let (cfg, keys) = support::shipped_config_with(dir.path(), mocks, mocks, vars);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys.clone(), listener)
        .await
        .unwrap();
    Shipped {
        bus,
        mocks,
        keys,
        _dir: dir,
    }
}

/// Send a new dossier of `unit` naming `person` (its applicant); its code.
async fn open_dossier(s: &Shipped, traffic: &mut Traffic, unit: &str, person: &str) -> String {
    let event = traffic.dossier_naming(unit, "Người Thử Nghiệm", person);
    send_event(s, unit, &event).await;
    event.dossier
}

/// Send a unit's generated event.
async fn send_event(s: &Shipped, unit: &str, event: &lienthong_mocks::units::UnitEvent) {
    let event = event.clone();
    let resp = support::client()
        .post(format!(
            "http://{}/api/v1/units/{unit}/events?flow={}",
            s.bus.addr, event.flow
        ))
        .bearer_auth(&s.keys[unit])
        .header("content-type", event.content_type)
        .body(event.body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 202, "{unit}: {}", resp.text().await.unwrap());
}

/// Ask a lookup; status and the answer's body.
async fn lookup(s: &Shipped, unit: &str, kind: &str, query: &str, file: &Path) -> (u16, String) {
    let ct = if file.extension().is_some_and(|e| e == "json") {
        "application/json"
    } else {
        "text/xml; charset=utf-8"
    };
    let resp = support::client()
        .post(format!(
            "http://{}/api/v1/units/{unit}/lookup/{kind}{query}",
            s.bus.addr
        ))
        .bearer_auth(&s.keys[unit])
        .header("content-type", ct)
        .body(std::fs::read(file).unwrap())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Every shipped citizen and residence lookup fixture the mapping accepts: unit, kind,
/// input file, and the person it asks about (from its expected request).
fn shipped_fixtures() -> Vec<(String, String, PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let mut out = Vec::new();
    for unit in ["stameq", "nafosted", "ipo", "varans"] {
        for kind in ["citizen", "residence"] {
            let dir = root
                .join(unit)
                .join("tests")
                .join(format!("{kind}_lookup_request"));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            files.sort();
            for expected in files
                .iter()
                .filter(|f| f.to_string_lossy().ends_with(".expected.xml"))
            {
                let text = std::fs::read_to_string(expected).unwrap();
                let person = ["SoDinhDanh>", "SoCMND>"]
                    .iter()
                    .find_map(|tag| {
                        let at = text.find(tag)? + tag.len();
                        Some(text[at..].split('<').next()?.to_string())
                    })
                    .unwrap();
                let stem = expected
                    .to_string_lossy()
                    .replace(".expected.xml", ".input.");
                let input = files
                    .iter()
                    .find(|f| f.to_string_lossy().starts_with(&stem))
                    .unwrap()
                    .clone();
                out.push((unit.to_string(), kind.to_string(), input, person));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_shipped_lookup_fixture_is_answered_for_a_dossier_of_its_unit_naming_the_person() {
    let s = shipped(&[]).await;
    let mut traffic = Traffic::new(7, 0.0);
    let fixtures = shipped_fixtures();
    assert!(fixtures.len() >= 10, "{fixtures:?}");
    let units: std::collections::BTreeSet<&str> =
        fixtures.iter().map(|(u, ..)| u.as_str()).collect();
    assert_eq!(units.len(), 4, "every unit's lookups are tried: {units:?}");
    for (unit, kind, input, person) in &fixtures {
        let dossier = open_dossier(&s, &mut traffic, unit, person).await;
        let query = format!("?dossier={dossier}&purpose=xac-minh-nguoi-nop");
        let (status, body) = lookup(&s, unit, kind, &query, input).await;
        assert_eq!(status, 200, "{unit} {kind} {}: {body}", input.display());
        // The same lookup with no dossier, or for a dossier naming someone else, is refused.
        let (status, body) = lookup(&s, unit, kind, "?purpose=xac-minh", input).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("dossier_missing"), "{body}");
        let other = open_dossier(&s, &mut traffic, unit, "001099000001").await;
        let query = format!("?dossier={other}&purpose=xac-minh-nguoi-nop");
        let (status, body) = lookup(&s, unit, kind, &query, input).await;
        assert_eq!(status, 403, "{unit} {kind}: {body}");
        assert!(body.contains("person_not_in_dossier"), "{body}");
    }
    s.bus.shutdown().await.unwrap();
}

/// The `personal_data_lookup` audit records' details, oldest first.
fn audited(s: &Shipped) -> Vec<Value> {
    std::fs::read_to_string(s.bus.audit.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["event"] == "personal_data_lookup")
        .map(|r| r["details"].clone())
        .collect()
}

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("mappings")
        .join(path)
}

#[tokio::test]
async fn each_failed_condition_is_refused_with_its_own_code_and_audited_and_nobody_is_asked() {
    let s = shipped(&[]).await;
    let mut traffic = Traffic::new(11, 0.0);
    let request = fixture("nafosted/tests/citizen_lookup_request/01-full-birth-date.input.json");
    let person = "001040144502";
    let ours = open_dossier(&s, &mut traffic, "nafosted", person).await;
    // Another unit's dossier naming the same person: not NAFOSTED's to look up for.
    let theirs = open_dossier(&s, &mut traffic, "varans", person).await;
    let cases = [
        (format!("?dossier={ours}"), "purpose_missing"),
        (format!("?dossier={ours}&purpose=%20"), "purpose_missing"),
        ("?purpose=xac-minh".to_string(), "dossier_missing"),
        (
            "?dossier=NOT-A-REAL-DOSSIER&purpose=xac-minh".to_string(),
            "dossier_unknown",
        ),
        (
            format!("?dossier={theirs}&purpose=xac-minh"),
            "dossier_unknown",
        ),
    ];
    for (query, code) in &cases {
        let (status, body) = lookup(&s, "nafosted", "citizen", query, &request).await;
        assert_eq!(status, 403, "{query}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], *code, "{query}: {body}");
        assert!(
            !body.contains("Lê Hữu An"),
            "the person's data left: {body}"
        );
    }
    // The population mock was never asked: the only records are the refusals, each with
    // its code and status, and none holds the person's number.
    let records = audited(&s);
    assert_eq!(records.len(), cases.len());
    for (record, (_, code)) in records.iter().zip(&cases) {
        assert_eq!(record["outcome"], *code);
        assert_eq!(record["status"], 403);
    }
    let trail = std::fs::read_to_string(s.bus.audit.path()).unwrap();
    assert!(!trail.contains(person), "{trail}");
    // Business lookups (public register data) need no dossier.
    let business = fixture("nafosted/tests/business_lookup_request/01-tax-code.input.json");
    let (status, body) = lookup(&s, "nafosted", "business", "", &business).await;
    assert_eq!(status, 200, "{body}");
    // And the right dossier is answered.
    let query = format!("?dossier={ours}&purpose=xac-minh");
    let (status, body) = lookup(&s, "nafosted", "citizen", &query, &request).await;
    assert_eq!(status, 200, "{body}");
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_units_share_of_the_platform_and_its_daily_ceiling_are_each_a_429_saying_when() {
    let s = shipped(&[
        (
            "LIENTHONG_LOOKUPS__POPULATION__UNIT_SHARES",
            "{ nafosted = 1 }",
        ),
        ("LIENTHONG_LOOKUPS__POPULATION__UNIT_DAILY_QUOTA", "2"),
    ])
    .await;
    let mut traffic = Traffic::new(13, 0.0);
    let request = fixture("nafosted/tests/citizen_lookup_request/01-full-birth-date.input.json");
    let dossier = open_dossier(&s, &mut traffic, "nafosted", "001040144502").await;
    let ask = || async {
        let resp = support::client()
            .post(format!(
                "http://{}/api/v1/units/nafosted/lookup/citizen?dossier={dossier}&purpose=xac-minh",
                s.bus.addr
            ))
            .bearer_auth(&s.keys["nafosted"])
            .header("content-type", "application/json")
            .body(std::fs::read(&request).unwrap())
            .send()
            .await
            .unwrap();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        (
            status,
            retry,
            v["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(ask().await.0, 200);
    // One per second is NAFOSTED's share: at once again is too soon.
    let (status, retry, code) = ask().await;
    assert_eq!((status, code.as_str()), (429, "unit_rate_exceeded"));
    assert!(retry.is_some_and(|r| (1..=2).contains(&r)), "{retry:?}");
    // Another unit's share is its own.
    let business_free = open_dossier(&s, &mut traffic, "varans", "001040144502").await;
    let varans = fixture("varans/tests/citizen_lookup_request/01-worker.input.json");
    let (status, body) = lookup(
        &s,
        "varans",
        "citizen",
        &format!("?dossier={business_free}&purpose=xac-minh"),
        &varans,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(ask().await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Two a day: the third waits for midnight (Asia/Ho_Chi_Minh).
    let (status, retry, code) = ask().await;
    assert_eq!((status, code.as_str()), (429, "unit_daily_quota_exceeded"));
    assert!(
        retry.is_some_and(|r| (1..=86_400).contains(&r)),
        "{retry:?}"
    );
    let outcomes: Vec<String> = audited(&s)
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes,
        [
            "found",
            "unit_rate_exceeded",
            "found",
            "found",
            "unit_daily_quota_exceeded"
        ]
    );
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_documented_exception_waives_the_dossier_never_the_purpose_and_is_in_its_audit_record() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(listener, MockSettings::default()));
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[mappings]
dir = "{}"
watch = false
[lookups.population]
url = "http://{mocks}/population"
timeout = "2s"
[[lookups.purpose.exceptions]]
name = "stameq-kiem-tra-truoc-ho-so"
unit = "stameq"
lookups = ["citizen"]
reason = "Kiểm tra người nộp trước khi lập hồ sơ (Quyết định 12/QĐ-TĐC)"
"#,
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("mappings")
            .display()
    );
    let (cfg, keys) = support::parse_config(&support::config_text(dir.path(), mocks, &extra));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys.clone(), listener)
        .await
        .unwrap();
    let s = Shipped {
        bus,
        mocks,
        keys,
        _dir: dir,
    };
    let stameq = fixture("stameq/tests/citizen_lookup_request/01-lookup.input.xml");
    let (status, body) = lookup(&s, "stameq", "citizen", "?purpose=kiem-tra", &stameq).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = lookup(&s, "stameq", "citizen", "", &stameq).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("purpose_missing"), "{body}");
    // NAFOSTED has no exception.
    let nafosted = fixture("nafosted/tests/citizen_lookup_request/01-full-birth-date.input.json");
    let (status, body) = lookup(&s, "nafosted", "citizen", "?purpose=kiem-tra", &nafosted).await;
    assert_eq!(status, 403, "{body}");
    let records = audited(&s);
    assert_eq!(records[0]["exception"], "stameq-kiem-tra-truoc-ho-so");
    assert_eq!(records[0]["outcome"], "found");
    assert!(records[1]["exception"].is_null() && records[2]["exception"].is_null());
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn lookups_per_unit_and_officer_and_refusals_by_reason_show_on_the_api_the_dashboard_and_metrics()
 {
    let s = shipped(&[]).await;
    let mut traffic = Traffic::new(17, 0.0);
    let request = fixture("nafosted/tests/citizen_lookup_request/01-full-birth-date.input.json");
    let dossier = open_dossier(&s, &mut traffic, "nafosted", "001040144502").await;
    let ok = format!("?dossier={dossier}&purpose=xac-minh");
    for query in [
        ok.as_str(),
        ok.as_str(),
        "?dossier=NOT-A-REAL-DOSSIER&purpose=xac-minh",
    ] {
        lookup(&s, "nafosted", "citizen", query, &request).await;
    }
    let viewer = "dev-only-viewer-token-change-me";
    let v: Value = support::client()
        .get(format!("http://{}/api/v1/lookups", s.bus.addr))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let naf = &v["units"]["nafosted"];
    assert_eq!(naf["asked"]["citizen"], 2, "{v}");
    assert_eq!(naf["refused"]["dossier_unknown"], 1, "{v}");
    assert_eq!(naf["officers"]["naf.cb01"], 3, "{v}");
    assert_eq!(v["exceptions"], serde_json::json!([]), "{v}");
    // Another day is empty; a day that is not one is a 400 naming the field.
    let other = support::client()
        .get(format!(
            "http://{}/api/v1/lookups?day=2024-02-30",
            s.bus.addr
        ))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    assert!(other.text().await.unwrap().contains("\"field\":\"day\""));
    // /metrics, for the alert rule on a unit asking far more than usual.
    let metrics = support::client()
        .get(format!("http://{}/metrics", s.bus.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"lienthong_lookups_total{unit="nafosted",kind="citizen",outcome="asked"} 2"#,
        r#"lienthong_lookups_total{unit="nafosted",kind="citizen",outcome="dossier_unknown"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    // The dashboard's page, in words.
    let base = format!("http://{}", s.bus.addr);
    let cookie = support::dashboard_sign_in(&base, viewer).await;
    let page = support::browser()
        .get(format!("{base}/tra-cuu"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("hồ sơ đơn vị chưa gửi"), "{page}");
    assert!(page.contains("naf.cb01"), "{page}");
    assert!(page.contains(r#"<td class="cong-dan">2</td>"#), "{page}");
    s.bus.shutdown().await.unwrap();
}

/// Issue 34: the portal's service index counts dossiers whose data came from the national
/// databases (`DSKetNoiCSDL`). A citizen lookup made for a dossier is noted, and the
/// dossier's next row at the portal names the population database.
#[tokio::test]
async fn a_lookup_made_for_a_dossier_reaches_the_portal_as_a_database_consulted() {
    let s = shipped(&[]).await;
    let mut traffic = Traffic::new(11, 0.0);
    let (unit, kind, input, person) = shipped_fixtures()
        .into_iter()
        .find(|(u, k, ..)| u == "nafosted" && k == "citizen")
        .unwrap();
    let event = traffic.dossier_naming(&unit, "Người Thử Nghiệm", &person);
    send_event(&s, &unit, &event).await;
    let query = format!("?dossier={}&purpose=xac-minh-nguoi-nop", event.dossier);
    let (status, body) = lookup(&s, &unit, &kind, &query, &input).await;
    assert_eq!(status, 200, "{body}");
    // The unit syncs the dossier again (its next status, here the same row once more).
    send_event(&s, &unit, &event).await;
    let url = format!("http://{}/_mock/portal/dossiers", s.mocks);
    let mut row = Value::Null;
    for _ in 0..150 {
        row = support::get_json(url.clone()).await["dossiers"][&event.dossier]["fields"].clone();
        if row["DSKetNoiCSDL"].is_array() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        row["DSKetNoiCSDL"],
        serde_json::json!([{"MaCSDL": lienthong::connector::portal::consulted::POPULATION}]),
        "{row}"
    );
    s.bus.shutdown().await.unwrap();
}
