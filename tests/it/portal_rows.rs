//! The portal gets every dossier row whole (issue 34): the portal connector against the
//! portal mock as a real server, a result laid over the dossier's kept row or over the
//! portal's own copy, and a result of a dossier never synced refused by name.

use crate::portal::{portal_view, start_mocks};
use crate::support::MemNotes;
use lienthong::connector::portal::rows::KeptRows;
use lienthong_mocks::MockSettings;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A connector to the portal mock at `mocks`, keeping its rows in `notes`.
fn mock_portal_connector(
    mocks: std::net::SocketAddr,
    notes: Arc<MemNotes>,
) -> lienthong::connector::PortalConnector {
    lienthong::connector::PortalConnector::new(
        &format!("http://{mocks}/portal"),
        Duration::from_secs(5),
        lienthong::connector::PortalCredentials {
            username: "lienthong".into(),
            password: "mock-portal-password".into(),
            madonvi: "000.00.01.H22".into(),
            unit_codes: Default::default(),
            dstcode: lienthong_mocks::portal::DSTCODE.into(),
        },
        None,
        KeptRows::new(notes, "portal"),
    )
    .unwrap()
}

/// Issue 34: the portal replaces the row it holds with the one it is sent, and the mock
/// refuses a partial row as the real one would. A result names only the dossier and its
/// documents: the connector lays it over the dossier's last row (kept, or the portal's
/// own copy when none is kept), and a later status keeps the documents.
#[tokio::test]
async fn every_dossier_row_reaches_the_portal_whole_a_result_included() {
    use lienthong::connector::{Connector, Verdict};
    let mocks = start_mocks(MockSettings::default()).await;
    let notes = Arc::new(MemNotes::default());
    let connector = mock_portal_connector(mocks, Arc::clone(&notes));
    let envelope = |code: &str| lienthong::envelope::Envelope {
        id: lienthong::envelope::MessageId(uuid::Uuid::now_v7()),
        unit: "ipo".into(),
        flow: "dossier_sync".into(),
        key: Some(code.into()),
        payload: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
        received_ms: 0,
        trace_id: "t".into(),
        attempts: 1,
        idempotency_key: None,
        targets: vec!["portal".into()],
    };
    let body = |row: Value| lienthong::mappings::Outbound {
        content_type: "application/json",
        body: serde_json::to_vec(
            &serde_json::json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [row]}),
        )
        .unwrap()
        .into(),
    };
    let whole = |status: i64| {
        serde_json::json!({"MaHoSo": "4-2024-01234", "MaTTHC": "1.005140", "ChuHoSo": "Nguyễn Văn A",
            "NgayTiepNhan": "20240305083000", "TrangThaiHoSo": status})
    };
    let result = serde_json::json!({"MaHoSo": "4-2024-01234", "DanhSachGiayToKetQua": [{
        "TenGiayTo": "Bằng độc quyền sáng chế số 1-0045678", "MaGiayToKetQua": "KQ-SHTT-SC",
        "SoKyHieu": "1-0045678", "GiayToId": "KDL-1", "DuongDanTepTinKetQua": "http://kho/KDL-1"}]});
    let send = |row: Value| {
        let connector = &connector;
        let envelope = envelope("4-2024-01234");
        async move { connector.deliver(&envelope, &body(row)).await }
    };
    let held = || async { portal_view(mocks).await["dossiers"]["4-2024-01234"]["fields"].clone() };

    // Sent as it came, a partial row is refused by the portal mock (the check its handler
    // runs): the reason it matters.
    let refused = lienthong_mocks::portal::check_request(
        &serde_json::json!({"service": "DongBoHoSoMC", "isUpdating": "True", "data": [result.clone()]}),
    )
    .unwrap_err();
    assert!(refused.contains("data[0].MaTTHC"), "{refused}");

    assert_eq!(send(whole(9)).await, Verdict::Delivered);
    assert_eq!(send(result.clone()).await, Verdict::Delivered);
    let fields = held().await;
    assert_eq!(fields["MaTTHC"], "1.005140", "{fields}");
    assert_eq!(fields["DanhSachGiayToKetQua"][0]["SoKyHieu"], "1-0045678");
    // The unit's next status names no document: the portal still has it.
    assert_eq!(send(whole(10)).await, Verdict::Delivered);
    let fields = held().await;
    assert_eq!(fields["TrangThaiHoSo"], 10);
    assert_eq!(
        fields["DanhSachGiayToKetQua"][0]["GiayToId"], "KDL-1",
        "{fields}"
    );
    assert_eq!(
        portal_view(mocks).await["dossiers"]["4-2024-01234"]["history"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "9 then 10: the result's row, at the status the portal held, changed no status"
    );

    // A bus that kept no row (a new data directory) builds on the portal's own copy.
    let fresh = mock_portal_connector(mocks, Arc::new(MemNotes::default()));
    let mut second = result.clone();
    second["DanhSachGiayToKetQua"][0]["SoKyHieu"] = "1-0045679".into();
    second["DanhSachGiayToKetQua"][0]["GiayToId"] = "KDL-2".into();
    let verdict = fresh
        .deliver(&envelope("4-2024-01234"), &body(second))
        .await;
    assert_eq!(verdict, Verdict::Delivered);
    let fields = held().await;
    assert_eq!(fields["ChuHoSo"], "Nguyễn Văn A");
    assert_eq!(
        fields["DanhSachGiayToKetQua"].as_array().unwrap().len(),
        2,
        "{fields}"
    );

    // A result of a dossier nobody has synced is not sent: the reason names the dossier.
    let mut orphan = result.clone();
    orphan["MaHoSo"] = "4-2024-09999".into();
    match fresh
        .deliver(&envelope("4-2024-09999"), &body(orphan))
        .await
    {
        Verdict::Permanent { reason, .. } => {
            assert!(reason.contains("dossier 4-2024-09999"), "{reason}");
            assert!(reason.contains("MaTTHC"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(portal_view(mocks).await["dossiers"]["4-2024-09999"].is_null());
    // What was kept is the whole row, written in the background (within 100 ms) as a
    // note, sealed with the outbox in a real bus.
    let name = "portal-row/portal/000.00.01.H22/4-2024-01234";
    let mut row = Value::Null;
    for _ in 0..50 {
        if let Some(bytes) = notes.0.lock().unwrap().get(name) {
            row = serde_json::from_slice(bytes).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(row["TrangThaiHoSo"], 10, "not written: {row}");
}
