//! Spans over OTLP (`[telemetry]`): an OTLP/HTTP receiver running in this test takes what
//! the bus exports. A unit's `traceparent` sets the trace of every span of its message:
//! the accepted request, the outbox write inside it, each delivery attempt; a lookup is a
//! span of its own request's trace. Export off (the default) sends nothing.

use crate::support;

use axum::Json;
use axum::extract::State;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{ShippedBus, client};

/// The spans received, flattened (OTLP/JSON: `resourceSpans[].scopeSpans[].spans[]`).
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Value>>>);

async fn traces(State(r): State<Received>, Json(body): Json<Value>) -> Json<Value> {
    let mut spans = r.0.lock().unwrap();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        let service = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .map(|a| a["value"]["stringValue"].clone())
            .unwrap_or(Value::Null);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                let mut span = span.clone();
                span["service"] = service.clone();
                spans.push(span);
            }
        }
    }
    Json(serde_json::json!({}))
}

async fn receiver() -> (std::net::SocketAddr, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, received)
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn spans_named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

/// Send NAFOSTED's `event` with the unit's `traceparent`; it must be accepted.
async fn send_traced(bus: &ShippedBus, traceparent: &str, event: &Value) {
    let r = client()
        .post(bus.url("/api/v1/units/nafosted/events/dossier_sync"))
        .bearer_auth(&bus.keys["nafosted"])
        .header("traceparent", traceparent)
        .json(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_units_trace_runs_through_ingress_outbox_deliveries_and_lookups() {
    let (addr, received) = receiver().await;
    let bus = ShippedBus::start_with(|cfg| {
        support::checked_at_delivery(cfg);
        cfg.telemetry.otlp_endpoint = Some(format!("http://{addr}"));
        cfg.telemetry.otlp_protocol = "http/json".into();
        cfg.telemetry.service_name = "lienthong-test".into();
        cfg.telemetry.export_every = Duration::from_millis(100);
    })
    .await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let unit_span = "00f067aa0ba902b7";
    let mut event = support::nafosted_dossier("NAF-OTLP-1", "submitted", "online");
    // Its applicant is the person the lookup below asks about (a lookup is for a dossier
    // naming the person).
    event["applicant"]["idNumber"] = "001040144502".into();
    send_traced(&bus, &format!("00-{trace}-{unit_span}-01"), &event).await;

    // A dossier its mapping refuses: a dead letter at once, its attempt a failed span.
    let dead_trace = "5cf92f3577b34da6a3ce929d0e0e4799";
    let refused = support::nafosted_dossier("NAF-OTLP-DEAD", "no-such-status", "online");
    send_traced(&bus, &format!("00-{dead_trace}-{unit_span}-01"), &refused).await;

    let lookup_trace = "0af7651916cd43dd8448eb211c80319c";
    let request = std::fs::read(
        "mappings/nafosted/tests/citizen_lookup_request/01-full-birth-date.input.json",
    )
    .unwrap();
    let r = client()
        .post(bus.url(
            "/api/v1/units/nafosted/lookup/citizen?dossier=NAF-OTLP-1&purpose=xac-minh-nguoi-nop",
        ))
        .bearer_auth(&bus.keys["nafosted"])
        .header("content-type", "application/json")
        .header(
            "traceparent",
            format!("00-{lookup_trace}-b7ad6b7169203331-01"),
        )
        .body(request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Wait for the portal's delivery attempt and the lookup to arrive at the receiver.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = received.0.lock().unwrap().clone();
        let portal_attempt = spans_named(&spans, "delivery.attempt")
            .into_iter()
            .any(|s| {
                s["traceId"] == trace
                    && attribute(s, "lienthong.target").map(|v| &v["stringValue"])
                        == Some(&Value::from("portal"))
            });
        let dead_attempt = spans_named(&spans, "delivery.attempt")
            .into_iter()
            .any(|s| s["traceId"] == dead_trace);
        if portal_attempt && dead_attempt && !spans_named(&spans, "lookup").is_empty() {
            break spans;
        }
        if std::time::Instant::now() > deadline {
            let state: Value = client()
                .get(bus.url("/api/v1/units/nafosted/dossiers/NAF-OTLP-1"))
                .bearer_auth(&bus.keys["nafosted"])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            panic!(
                "the dossier: {state}\nspans so far: {}",
                serde_json::to_string_pretty(&spans).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let accept = spans_named(&spans, "ingress.accept");
    let accept = accept
        .iter()
        .find(|s| s["traceId"] == trace)
        .expect("the accepted request's span in the unit's trace");
    assert_eq!(
        accept["parentSpanId"], unit_span,
        "a child of the unit's span"
    );
    assert_eq!(accept["service"], "lienthong-test");
    let write = spans_named(&spans, "outbox.write")
        .into_iter()
        .find(|s| s["traceId"] == trace)
        .expect("the outbox write");
    assert_eq!(
        write["parentSpanId"], accept["spanId"],
        "inside the request's span"
    );
    let attempts: Vec<&Value> = spans_named(&spans, "delivery.attempt")
        .into_iter()
        .filter(|s| s["traceId"] == trace)
        .collect();
    let targets: Vec<&Value> = attempts
        .iter()
        .filter_map(|s| attribute(s, "lienthong.target"))
        .map(|v| &v["stringValue"])
        .collect();
    assert!(targets.contains(&&Value::from("portal")), "{targets:?}");
    assert!(targets.contains(&&Value::from("ministry")), "{targets:?}");
    let dead = spans_named(&spans, "delivery.attempt")
        .into_iter()
        .find(|s| s["traceId"] == dead_trace)
        .unwrap();
    assert_eq!(dead["status"]["code"], 2, "an error status: {dead}");
    assert_eq!(
        attribute(dead, "lienthong.outcome").map(|v| v["stringValue"].clone()),
        Some(Value::from("dead"))
    );
    let lookup = spans_named(&spans, "lookup")[0];
    assert_eq!(lookup["traceId"], lookup_trace);
    assert_eq!(
        attribute(lookup, "lienthong.outcome").map(|v| v["stringValue"].clone()),
        Some(Value::from("found"))
    );
    // No personal data in any span: the citizen's id number and name appear nowhere.
    let text = serde_json::to_string(&spans).unwrap();
    let input: Value = serde_json::from_str(
        &std::fs::read_to_string(
            "mappings/nafosted/tests/citizen_lookup_request/01-full-birth-date.input.json",
        )
        .unwrap(),
    )
    .unwrap();
    let id = input["citizen"]["idNumber"]
        .as_str()
        .unwrap_or("000000000000");
    assert!(!text.contains(id), "a span carries the id number");
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_export_off_nothing_is_sent() {
    let (addr, received) = receiver().await;
    // The receiver listens, but the shipped config names none.
    let bus = ShippedBus::start().await;
    let id = bus
        .send(
            "nafosted",
            "dossier_sync",
            &support::nafosted_dossier("NAF-OTLP-2", "submitted", "online"),
        )
        .await;
    assert!(!id.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    bus.bus.shutdown().await.unwrap();
    assert!(received.0.lock().unwrap().is_empty(), "{addr} got spans");
}
