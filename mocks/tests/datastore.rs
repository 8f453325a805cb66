//! The mock data store and notification channel over real HTTP.

use base64::Engine;
use lienthong_mocks::datastore::DataStore;
use serde_json::{Value, json};

async fn start() -> (DataStore, reqwest::Client, String) {
    let store = DataStore::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = store.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = lienthong_mocks::http_client().no_proxy().build().unwrap();
    (store, client, format!("http://{addr}"))
}

async fn post(c: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn uploads_are_idempotent_per_owner_and_content() {
    let (store, c, base) = start().await;
    let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 giay phep");
    let doc = |owner: &str| json!({"owner": owner, "fileName": "giay-phep.pdf", "contentType": "application/pdf", "content": pdf});
    let (s1, a) = post(
        &c,
        format!("{base}/datastore/documents"),
        doc("001099012345"),
    )
    .await;
    let (s2, b) = post(
        &c,
        format!("{base}/datastore/documents"),
        doc("001099012345"),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        a["fileId"], b["fileId"],
        "same content, same owner: same file"
    );
    assert_eq!(a["sha256"].as_str().unwrap().len(), 64);
    let (_, other) = post(
        &c,
        format!("{base}/datastore/documents"),
        doc("0100107123-001"),
    )
    .await;
    assert_ne!(other["fileId"], a["fileId"]);
    assert_eq!(store.documents().len(), 2);
    let listed: Value = c
        .get(format!("{base}/datastore/owners/001099012345/documents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["documents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_uploads_and_messages_name_the_field() {
    let (store, c, base) = start().await;
    for (body, field) in [
        (
            json!({"owner": "12345", "fileName": "a.pdf", "content": "QQ=="}),
            "owner",
        ),
        (
            json!({"owner": "001099012345", "fileName": "", "content": "QQ=="}),
            "fileName",
        ),
        (
            json!({"owner": "001099012345", "fileName": "a.pdf", "content": "%%%"}),
            "content",
        ),
    ] {
        let (status, e) = post(&c, format!("{base}/datastore/documents"), body).await;
        assert_eq!((status, e["error"]["field"].as_str()), (400, Some(field)));
    }
    let (status, e) = post(
        &c,
        format!("{base}/notify/messages"),
        json!({"channel": "sms", "phone": "12345", "text": "x"}),
    )
    .await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("phone")));
    let (status, e) = post(
        &c,
        format!("{base}/notify/messages"),
        json!({"channel": "fax", "phone": "0912345678", "text": "x"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (400, Some("channel"))
    );
    // Zalo sends registered templates with their parameters, never free text.
    for (body, field) in [
        (
            json!({"channel": "zalo", "phone": "+84912345678", "text": "Hồ sơ đã có kết quả"}),
            "text",
        ),
        (
            json!({"channel": "zalo", "phone": "+84912345678", "templateId": "TUY_Y", "params": {}}),
            "templateId",
        ),
        (
            json!({"channel": "zalo", "phone": "+84912345678", "templateId": "KQ_SAN_SANG",
                   "params": {"ma_ho_so": "HS-1"}}),
            "params.so_giay_to",
        ),
    ] {
        let (status, e) = post(&c, format!("{base}/notify/messages"), body).await;
        assert_eq!((status, e["error"]["field"].as_str()), (400, Some(field)));
    }
    let (status, ok) = post(
        &c,
        format!("{base}/notify/messages"),
        json!({"channel": "zalo", "phone": "+84912345678", "templateId": "KQ_SAN_SANG",
               "params": {"ma_ho_so": "HS-1", "so_giay_to": "GCN 12"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(ok["messageId"].as_str().unwrap().starts_with("MSG-"));
    assert_eq!(store.notifications().len(), 1);
    assert_eq!(
        store.notifications()[0].text,
        "Hồ sơ HS-1 đã có kết quả (GCN 12)."
    );
    assert!(store.documents().is_empty());
}
