//! Fees and notices through the shipped configuration: each unit's payment link, outcome
//! and receipt in its own format (the IP Office's as a TCVN3 file), and a citizen told of
//! a supplement request and of a fee due, with its link.

use super::*;

#[tokio::test]
async fn the_ip_office_gets_its_payment_link_as_a_tcvn3_file_in_its_import_folder() {
    let s = ShippedBus::start().await;
    // An IP Office fee notice, as its CSV export writes it (TCVN3 bytes).
    let csv = std::fs::read("mappings/ipo/tests/fee_request/01-patent-exam-fee.input.csv").unwrap();
    let resp = support::client()
        .post(s.url("/api/v1/units/ipo/events?flow=fee_request"))
        .bearer_auth(&s.keys["ipo"])
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    // The mock IP Office's import job reads the file and moves it to processed/.
    let mut received = Value::Null;
    for _ in 0..150 {
        received = get_json(format!("http://{}/_mock/units/ipo/received", s.mocks)).await;
        if received["received"].as_array().is_some_and(|r| {
            r.iter().any(|m| {
                m["channel"]
                    .as_str()
                    .unwrap()
                    .starts_with("file:payment_link-")
            })
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let link = received["received"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["channel"]
                .as_str()
                .unwrap()
                .starts_with("file:payment_link-")
        })
        .unwrap_or_else(|| panic!("no payment link file: {received}"))
        .clone();
    let body = link["body"].as_str().unwrap();
    assert!(
        body.contains("Phí thẩm định nội dung đơn sáng chế"),
        "{body}"
    );
    assert!(body.contains("https://thanhtoan.mock/pay/GD"), "{body}");
    // On disk: TCVN3 bytes (one byte per letter, not UTF-8), and no half-written file.
    let folder = support::ipo_drop_dir(s.dir.path());
    let name = link["channel"]
        .as_str()
        .unwrap()
        .trim_start_matches("file:");
    let bytes = std::fs::read(folder.join("processed").join(name)).unwrap();
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the file is TCVN3, not UTF-8"
    );
    assert_eq!(
        lienthong_mapping::text::decode_legacy_bytes(
            &bytes,
            lienthong_mapping::text::Legacy::Tcvn3
        ),
        body
    );
    let leftovers: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn stameq_and_varans_fees_get_their_link_outcome_and_receipt_in_each_units_format() {
    // Reconciliation rounds often, so the receipts (GET_BILL) come soon after the payment.
    let s = ShippedBus::start_with(|cfg| {
        let payment = cfg.targets.get_mut("payment").unwrap();
        payment.payment.as_mut().unwrap().reconcile_every = Duration::from_millis(100);
    })
    .await;
    // STAMEQ's fee notice, a SOAP operation of its own.
    let soap = std::fs::read("mappings/stameq/tests/fee_request/01-two-fees.input.xml").unwrap();
    let resp = support::client()
        .post(s.url("/soap/stameq"))
        .bearer_auth(&s.keys["stameq"])
        .header("content-type", "text/xml; charset=utf-8")
        .body(soap)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let varans: Value = serde_json::from_slice(
        &std::fs::read("mappings/varans/tests/fee_request/01-licence-fees.input.json").unwrap(),
    )
    .unwrap();
    s.send("varans", "fee_request", &varans).await;
    wait_until(
        Duration::from_secs(20),
        "links and outcomes at both units",
        || {
            let stameq = at_sink(&s, "stameq_inbox");
            let varans = at_sink(&s, "varans_inbox");
            stameq.iter().any(|b| b.contains("<KetQuaThanhToan"))
                && stameq.iter().any(|b| b.contains("<ThongTinThanhToan"))
                && varans.iter().any(|b| b.contains("PAYMENT_RESULT"))
                && varans.iter().any(|b| b.contains("PAYMENT_LINK"))
                && stameq.iter().any(|b| b.contains("<BienLaiThanhToan"))
                && varans.iter().any(|b| b.contains("PAYMENT_RECEIPT"))
        },
    )
    .await;
    let stameq = at_sink(&s, "stameq_inbox");
    let link = stameq
        .iter()
        .find(|b| b.contains("<ThongTinThanhToan"))
        .unwrap();
    assert!(
        link.contains("<DuongDanThanhToan>https://thanhtoan.mock/pay/GD"),
        "{link}"
    );
    assert!(
        link.contains("<SoHoSo>STAMEQ-2024-000123</SoHoSo>"),
        "{link}"
    );
    let outcome = stameq
        .iter()
        .find(|b| b.contains("<KetQuaThanhToan"))
        .unwrap();
    assert!(
        outcome.contains("<KetQua>DA_THANH_TOAN</KetQua>"),
        "{outcome}"
    );
    let varans = at_sink(&s, "varans_inbox");
    let result: Value = serde_json::from_str(
        varans
            .iter()
            .find(|b| b.contains("PAYMENT_RESULT"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(result["state"], 1, "{result}");
    assert_eq!(result["reference"], "ATBX24000298-01");
    // The receipts, fetched by the bus once the fees were paid, in each unit's format.
    let receipt = stameq
        .iter()
        .find(|b| b.contains("<BienLaiThanhToan"))
        .unwrap();
    assert!(receipt.contains("<SoBienLai>"), "{receipt}");
    assert!(
        receipt.contains("<MaThamChieu>TDC24000123-01</MaThamChieu>"),
        "{receipt}"
    );
    let receipt: Value = serde_json::from_str(
        varans
            .iter()
            .find(|b| b.contains("PAYMENT_RECEIPT"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(receipt["reference"], "ATBX24000298-01", "{receipt}");
    assert!(receipt["receipt"]["number"].is_string(), "{receipt}");
    // The payment platform got both INITs with the units' own codes and accounts.
    let tx = get_json(format!("http://{}/_mock/payment/transactions", s.mocks)).await;
    assert_eq!(tx["transactions"].as_array().unwrap().len(), 2, "{tx}");
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_citizen_hears_of_a_supplement_request_and_a_fee_due_with_its_link() {
    let s = ShippedBus::start().await;
    // NAFOSTED asks for documents, the applicant wants Zalo: a YC_BO_SUNG template message.
    let step = |status: &str, applicant: Value| {
        json!({"dossierCode": "NAFOSTED-2024-00042", "step": {"officer": "Đỗ Văn Nam",
            "at": "2024-03-08T14:05:00+07:00", "note": "Bổ sung lý lịch khoa học", "status": status},
            "applicant": applicant})
    };
    let asked = s
        .send(
            "nafosted",
            "dossier_progress",
            &step(
                "needs_supplement",
                json!({"phone": "0983456789", "notifyBy": "zalo"}),
            ),
        )
        .await;
    // Other steps, and a request without a phone, send nothing and are not even stored
    // for the notification target.
    let reviewing = s
        .send(
            "nafosted",
            "dossier_progress",
            &step("under_review", json!({"phone": "0983456789"})),
        )
        .await;
    let no_phone = s
        .send(
            "nafosted",
            "dossier_progress",
            &step("needs_supplement", json!({"notifyBy": "sms"})),
        )
        .await;
    // STAMEQ's fee notice with the payer's phone: an SMS with the amount and the link.
    let soap = std::fs::read_to_string("mappings/stameq/tests/fee_request/01-two-fees.input.xml")
        .unwrap()
        .replace(
            "</NguoiNop>",
            "<DienThoai>+84 912 000 111</DienThoai></NguoiNop>",
        );
    assert!(
        soap.contains("+84 912 000 111"),
        "the fixture names its payer"
    );
    let resp = support::client()
        .post(s.url("/soap/stameq"))
        .bearer_auth(&s.keys["stameq"])
        .header("content-type", "text/xml; charset=utf-8")
        .body(soap)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let mut zalo = Vec::new();
    let mut sms = Vec::new();
    for _ in 0..200 {
        zalo = sent_to(&s, "0983456789").await;
        sms = sent_to(&s, "0912000111").await;
        if !zalo.is_empty() && !sms.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(zalo.len(), 1, "one message for the one request: {zalo:?}");
    assert_eq!(zalo[0]["template_id"], "YC_BO_SUNG", "{zalo:?}");
    assert_eq!(zalo[0]["params"]["ma_ho_so"], "NAFOSTED-2024-00042");
    assert_eq!(sms.len(), 1, "{sms:?}");
    let text = sms[0]["text"].as_str().unwrap();
    assert!(text.contains("https://thanhtoan.mock/pay/GD"), "{text}");
    assert!(text.contains("STAMEQ-2024-000123"), "{text}");
    // The steps that concern no citizen went to the portal and the ministry only.
    for (id, expected) in [
        (&asked, vec!["ministry", "notify", "portal"]),
        (&reviewing, vec!["ministry", "portal"]),
        (&no_phone, vec!["ministry", "portal"]),
    ] {
        let (code, m) = s
            .admin(&format!("/api/v1/messages/{id}"), support::SHIPPED_OPERATOR)
            .await;
        assert_eq!(code, 200, "{m}");
        let mut targets: Vec<&str> = m["deliveries"]
            .as_array()
            .unwrap_or_else(|| panic!("{m}"))
            .iter()
            .map(|d| d["target"].as_str().unwrap())
            .collect();
        targets.sort();
        assert_eq!(targets, expected, "{m}");
    }
    s.bus.shutdown().await.unwrap();
}
