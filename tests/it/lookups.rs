//! Lookups for units against the population and business mocks as real servers: each
//! unit's own request format in, the mapped reply out, not-found in the unit's format,
//! bad requests named, audit records without personal data, business replies cached.

use crate::support;

use lienthong_mocks::MockSettings;
use serde_json::Value;
use std::path::PathBuf;
use support::{NAFOSTED_KEY, STAMEQ_KEY};

async fn setup() -> (lienthong::app::Bus, std::net::SocketAddr, tempfile::TempDir) {
    setup_with("").await
}

/// The bus on the mocks, `head` added before the first table.
async fn setup_with(head: &str) -> (lienthong::app::Bus, std::net::SocketAddr, tempfile::TempDir) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(listener, MockSettings::default()));
    let dir = tempfile::tempdir().unwrap();
    let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let extra = format!(
        r#"
[mappings]
dir = "{mappings}"
watch = false
[lookups.population]
url = "http://{mocks}/population"
timeout = "2s"
[lookups.business]
url = "http://{mocks}/business/TraCuuThongTinDoanhNghiep"
timeout = "2s"
cache_ttl = "1min"
{EXCEPTIONS}
{head}
"#,
        mappings = mappings.display()
    );
    let (cfg, keys) = support::parse_config(&support::config_text(dir.path(), mocks, &extra));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys, listener)
        .await
        .unwrap();
    (bus, mocks, dir)
}

/// These tests are about each unit's format; the purpose check has
/// `tests/lookup_purpose.rs`.
const EXCEPTIONS: &str = r#"
[[lookups.purpose.exceptions]]
name = "format-tests"
unit = "nafosted"
lookups = ["citizen", "residence"]
reason = "tests of the lookups' formats, not of their purpose"
[[lookups.purpose.exceptions]]
name = "format-tests-stameq"
unit = "stameq"
lookups = ["citizen"]
reason = "tests of the lookups' formats, not of their purpose"
"#;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("mappings")
            .join(path),
    )
    .unwrap()
}

async fn ask(
    bus: &lienthong::app::Bus,
    unit: &str,
    kind: &str,
    ct: &str,
    body: Vec<u8>,
) -> (u16, String, String) {
    let key = if unit == "stameq" {
        STAMEQ_KEY
    } else {
        NAFOSTED_KEY
    };
    let resp = support::client()
        .post(format!(
            "http://{}/api/v1/units/{unit}/lookup/{kind}?dossier=HS-42&purpose=verify-applicant",
            bus.addr
        ))
        .bearer_auth(key)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn no_lookup_answer_is_given_when_its_audit_record_cannot_be_written() {
    // /dev/full takes the open and refuses every write, as a full disk does.
    let (bus, _mocks, _dir) = setup_with("[audit]\npath = \"/dev/full\"").await;
    let (status, _, body) = ask(
        &bus,
        "stameq",
        "citizen",
        "text/xml",
        fixture("stameq/tests/citizen_lookup_request/01-lookup.input.xml"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("audit_unavailable"), "{body}");
    assert!(!body.contains("Cường"), "the person's data left: {body}");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn citizen_lookups_answer_in_the_units_format_and_are_audited() {
    let (bus, _mocks, _dir) = setup().await;
    // STAMEQ asks in SOAP and gets SOAP back.
    let (status, ct, body) = ask(
        &bus,
        "stameq",
        "citizen",
        "text/xml",
        fixture("stameq/tests/citizen_lookup_request/01-lookup.input.xml"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("text/xml"), "{ct}");
    assert!(
        body.contains("<TimThay>true</TimThay>")
            && body.contains("<HoTen>Nguyễn Đức Cường</HoTen>"),
        "{body}"
    );
    // NAFOSTED asks in JSON; an unknown person is a clear not-found in its format.
    let unknown = br#"{"requestId": "NAF-LK-9", "officer": "naf.cb01", "citizen": {"idNumber": "001099999999", "fullName": "Khong Co Ai", "dateOfBirth": "1990-01-01"}}"#.to_vec();
    let (status, ct, body) = ask(&bus, "nafosted", "citizen", "application/json", unknown).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/json");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["found"], false);
    // A bad request names the field, and is audited too.
    let bad = br#"{"requestId": "NAF-LK-10", "officer": "naf.cb01", "citizen": {"idNumber": "123", "fullName": "A", "yearOfBirth": 1990}}"#.to_vec();
    let (status, _, body) = ask(&bus, "nafosted", "citizen", "application/json", bad).await;
    assert_eq!(status, 400);
    assert!(body.contains("12-digit số định danh"), "{body}");
    // Refused at the door, each problem at the unit's own field.
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["error"]["code"], "invalid_lookup", "{body}");
    assert_eq!(
        refusal["error"]["problems"][0]["field"], "/citizen/idNumber",
        "{body}"
    );

    // Each lookup is in the hash-chained audit trail, and the chain verifies; the refused
    // request asked nobody, so it is not a lookup and has no record.
    let text = std::fs::read_to_string(bus.audit.path()).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["event"] == "personal_data_lookup")
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["actor"], "unit:stameq");
    let d: Vec<&Value> = records.iter().map(|r| &r["details"]).collect();
    assert_eq!(d[0]["officer"], "tdc.kiemtra01");
    assert_eq!(d[0]["dossier"], "HS-42");
    assert_eq!(d[0]["purpose"], "verify-applicant");
    assert_eq!(d[0]["outcome"], "found");
    assert_eq!(d[1]["outcome"], "not_found");
    assert_eq!(
        lienthong::audit::verify(bus.audit.path(), |_| {})
            .unwrap()
            .records,
        2
    );
    // No personal data in the audit trail.
    assert!(
        !text.contains("001040621374") && !text.contains("Cường") && !text.contains("001099999999"),
        "{text}"
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn business_lookups_are_mapped_and_cached() {
    let (bus, mocks, _dir) = setup().await;
    let request = fixture("stameq/tests/business_lookup_request/01-company.input.xml");
    let (status, _, body) = ask(&bus, "stameq", "business", "text/xml", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<TimThay>true</TimThay>") && body.contains("SAO MAI"),
        "{body}"
    );
    let (status, _, again) = ask(&bus, "stameq", "business", "text/xml", request).await;
    assert_eq!(status, 200);
    assert_eq!(again, body);
    let seen: Value = support::client()
        .get(format!("http://{mocks}/_mock/business/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["requests"].as_array().unwrap().len(),
        1,
        "the second answer came from the cache"
    );
    // Not in the register: the unit's own not-found.
    let (status, _, body) = ask(
        &bus,
        "nafosted",
        "business",
        "application/json",
        br#"{"taxCode": "0100000000"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["found"], false);
    assert!(v["reason"].as_str().unwrap().contains("0100000000"));
    // An unknown lookup kind and a wrong key.
    let (status, _, _) = ask(
        &bus,
        "nafosted",
        "vehicle",
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    let resp = support::client()
        .post(format!(
            "http://{}/api/v1/units/nafosted/lookup/business",
            bus.addr
        ))
        .bearer_auth(STAMEQ_KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    bus.shutdown().await.unwrap();
}

/// Lookups go through the data-sharing gateway with its credential, as targets do: the
/// bus sends the configured key, and a gateway that does not get it refuses (and the unit
/// hears a clear 502, not a silent pass).
#[tokio::test]
async fn lookups_carry_the_gateway_credential_their_config_names() {
    use axum::http::{HeaderMap, StatusCode};
    const GATEWAY_KEY: &str = "gateway-key-0123456789";
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = upstream.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(upstream, MockSettings::default()));
    // The gateway: checks the key, then passes the call on to the population mock.
    let gateway = axum::Router::new().route(
        "/population",
        axum::routing::post(
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                if headers.get("x-gateway-key").and_then(|v| v.to_str().ok()) != Some(GATEWAY_KEY) {
                    return (StatusCode::UNAUTHORIZED, String::from("no key")).into_response();
                }
                let resp = support::client()
                    .post(format!("http://{mocks}/population"))
                    .header("content-type", "text/xml; charset=utf-8")
                    .header("soapaction", "\"TraCuuThongTinCongDan\"")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                (status, resp.text().await.unwrap()).into_response()
            },
        ),
    );
    use axum::response::IntoResponse;
    let gw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = gw.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(gw, gateway).await.unwrap() });

    let start = |auth: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let extra = format!(
            "[mappings]\ndir = \"{}\"\nwatch = false\n[lookups.population]\n\
             url = \"http://{gw_addr}/population\"\ntimeout = \"2s\"\n{auth}\n{EXCEPTIONS}",
            mappings.display()
        );
        let (cfg, keys) = support::parse_config(&support::config_text(dir.path(), mocks, &extra));
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let bus = lienthong::app::Bus::start(cfg, keys, listener)
                .await
                .unwrap();
            (bus, dir)
        }
    };
    let request = || fixture("stameq/tests/citizen_lookup_request/01-lookup.input.xml");
    let (bus, _dir) = start(&format!(
        "auth = {{ kind = \"api_key\", header = \"X-Gateway-Key\", key_env = \"TEST_UNSET_GW\", dev_key = \"{GATEWAY_KEY}\" }}"
    ))
    .await;
    let (status, _, body) = ask(&bus, "stameq", "citizen", "text/xml", request()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<HoTen>Nguyễn Đức Cường</HoTen>"), "{body}");
    bus.shutdown().await.unwrap();

    let (bus, _dir) = start("").await;
    let (status, _, body) = ask(&bus, "stameq", "citizen", "text/xml", request()).await;
    assert_eq!(status, 502, "{body}");
    bus.shutdown().await.unwrap();
}

/// A bus whose lookups go through the mocks' data-sharing gateway with OAuth 2.0 client
/// credentials (`secret` as the client secret).
async fn through_gateway(
    secret: &str,
) -> (lienthong::app::Bus, std::net::SocketAddr, tempfile::TempDir) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(listener, MockSettings::default()));
    let dir = tempfile::tempdir().unwrap();
    let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let auth = format!(
        r#"{{ kind = "oauth2", token_url = "http://{mocks}/oauth/token", client_id = "lienthong", client_secret_env = "TEST_UNSET_GATEWAY_SECRET", dev_client_secret = "{secret}", token_header = "lgspaccesstoken" }}"#
    );
    let extra = format!(
        r#"
[mappings]
dir = "{mappings}"
watch = false
[lookups.population]
url = "http://{mocks}/population"
timeout = "2s"
auth = {auth}
[lookups.business]
url = "http://{mocks}/business/TraCuuThongTinDoanhNghiep"
timeout = "2s"
auth = {auth}
{EXCEPTIONS}
"#,
        mappings = mappings.display()
    );
    let (cfg, keys) = support::parse_config(&support::config_text(dir.path(), mocks, &extra));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys, listener)
        .await
        .unwrap();
    (bus, mocks, dir)
}

#[tokio::test]
async fn lookups_authenticate_at_the_gateway_with_a_cached_token_and_a_wrong_secret_is_a_502_naming_it()
 {
    let (bus, mocks, _dir) = through_gateway(lienthong_mocks::oauth::CLIENT_SECRET).await;
    let request = || fixture("stameq/tests/citizen_lookup_request/01-lookup.input.xml");
    for _ in 0..3 {
        let (status, _, body) = ask(&bus, "stameq", "citizen", "text/xml", request()).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<HoTen>Nguyễn Đức Cường</HoTen>"), "{body}");
    }
    // One token for the three calls, sent as a bearer token and again in lgspaccesstoken.
    let tokens: Value = support::client()
        .get(format!("http://{mocks}/_mock/oauth/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["issued"], 1, "the token is cached: {tokens}");
    let seen: Value = support::client()
        .get(format!("http://{mocks}/_mock/population/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = seen.to_string();
    assert!(text.contains("Bearer mock-token-000001"), "{text}");
    assert!(text.contains("lgspaccesstoken"), "{text}");
    bus.shutdown().await.unwrap();

    // A wrong secret: the gateway refuses the token request; the unit gets a 502 that
    // says so, and the population database is never asked.
    let (bus, mocks, _dir) = through_gateway("not-the-secret").await;
    let (status, _, body) = ask(&bus, "stameq", "citizen", "text/xml", request()).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("gateway"), "{body}");
    assert!(body.contains("401"), "{body}");
    let seen: Value = support::client()
        .get(format!("http://{mocks}/_mock/population/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["requests"].as_array().map_or(0, Vec::len), 0, "{seen}");
    bus.shutdown().await.unwrap();
}

/// POST a JSON lookup as `unit` with `key`: (status, body as JSON).
async fn ask_json(
    bus: &lienthong::app::Bus,
    unit: &str,
    key: &str,
    kind: &str,
    body: &Value,
) -> (u16, Value) {
    let resp = support::client()
        .post(format!(
            "http://{}/api/v1/units/{unit}/lookup/{kind}?dossier=HS-43&purpose=residence",
            bus.addr
        ))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn residence_household_and_old_identity_cards_come_from_the_population_database() {
    const VARANS_KEY: &str = "varans-test-key-0001";
    let (bus, _mocks, _dir) = setup_with(&format!(
        "[units.varans]\nkey_env = \"TEST_UNSET_VARANS_KEY\"\ndev_key = \"{VARANS_KEY}\"\n\
         [[lookups.purpose.exceptions]]\nname = \"varans-worker-check\"\nunit = \"varans\"\n\
         lookups = [\"citizen\"]\nreason = \"radiation workers are verified before any dossier\"\n"
    ))
    .await;
    let population =
        lienthong_mocks::population::Population::generate(MockSettings::default().seed, 10_000);
    // Someone who still holds an old identity card and lives away from their permanent
    // residence.
    let person = population
        .all()
        .find(|c| c.so_cmnd.is_some() && c.noi_o_hien_tai != c.thuong_tru)
        .unwrap();
    let cmnd = person.so_cmnd.clone().unwrap();
    let born = format!(
        "{}-{}-{}",
        &person.ngay_sinh[..4],
        &person.ngay_sinh[4..6],
        &person.ngay_sinh[6..]
    );
    // Read by the old card's 9 digits: residence and household come back.
    let (status, v) = ask_json(
        &bus,
        "nafosted",
        NAFOSTED_KEY,
        "citizen",
        &serde_json::json!({"requestId": "NAF-LK-20", "officer": "naf.cb01",
            "citizen": {"oldIdNumber": cmnd, "fullName": person.ho_va_ten(), "dateOfBirth": born}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["found"], true, "{v}");
    let c = &v["citizen"];
    assert_eq!(c["idNumber"], person.so_dinh_danh.as_str(), "{v}");
    assert_eq!(c["oldIdNumber"], cmnd.as_str());
    assert_eq!(c["currentAddress"], person.noi_o_hien_tai.1.as_str());
    assert_eq!(c["permanentAddress"], person.thuong_tru.1.as_str());
    assert_eq!(c["household"]["head"]["fullName"], person.chu_ho.1.as_str());
    assert_eq!(c["household"]["bookNumber"], person.so_ho_khau.as_str());
    // The residence the citizen declared is checked instead of asking for paper proof:
    // where they live now (written differently) is confirmed, the permanent one is not.
    let declared = |(code, address): &(String, String)| {
        serde_json::json!({"requestId": "NAF-CT-20", "officer": "naf.cb01",
            "citizen": {"idNumber": person.so_dinh_danh, "fullName": person.ho_va_ten(), "dateOfBirth": born},
            "declaredResidence": {"provinceCode": code, "address": format!("  {}", address.to_uppercase())}})
    };
    let (status, v) = ask_json(
        &bus,
        "nafosted",
        NAFOSTED_KEY,
        "residence",
        &declared(&person.noi_o_hien_tai),
    )
    .await;
    assert_eq!((status, &v["confirmed"]), (200, &Value::Bool(true)), "{v}");
    let (status, v) = ask_json(
        &bus,
        "nafosted",
        NAFOSTED_KEY,
        "residence",
        &declared(&person.thuong_tru),
    )
    .await;
    assert_eq!((status, &v["confirmed"]), (200, &Value::Bool(false)), "{v}");
    // A residence check without the address names the field.
    let (status, v) = ask_json(
        &bus,
        "nafosted",
        NAFOSTED_KEY,
        "residence",
        &serde_json::json!({"requestId": "NAF-CT-21", "officer": "naf.cb01",
            "citizen": {"idNumber": person.so_dinh_danh, "fullName": person.ho_va_ten(), "dateOfBirth": born},
            "declaredResidence": {"provinceCode": "001"}}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"]["problems"][0]["field"], "/declaredResidence/address",
        "{v}"
    );
    // VARANS only verifies its workers: yes or no, nothing about the person.
    let worker = |name: &str| {
        serde_json::json!({"checkId": "W-1", "requestedBy": "varans.capphep03",
            "worker": {"personalId": person.so_dinh_danh, "name": name, "born": born}})
    };
    let (status, v) = ask_json(
        &bus,
        "varans",
        VARANS_KEY,
        "citizen",
        &worker(&person.ho_va_ten()),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, serde_json::json!({"verified": true}));
    let (_, v) = ask_json(&bus, "varans", VARANS_KEY, "citizen", &worker("Người Khác")).await;
    assert_eq!(v, serde_json::json!({"verified": false}));
    // Every one of them audited, under its kind.
    let text = std::fs::read_to_string(bus.audit.path()).unwrap();
    assert!(text.contains("\"kind\":\"residence\""), "{text}");
    bus.shutdown().await.unwrap();
}
