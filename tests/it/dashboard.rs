//! The dashboard in headless Chromium (Debian's `chromium` through `chromedriver`) against a
//! running bus with traffic: sign-in, the page's backlog, dead-letter and KPI figures agree
//! with the admin API, the dossier search answers, and the replay button replays a dead
//! letter (confirmed through the API). A screenshot is saved as an artifact of the run:
//! `target/artifacts/dashboard.png`.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::webdriver::Browser;
use support::{
    SHIPPED_OPERATOR, SHIPPED_VIEWER, ShippedBus, client, nafosted_dossier, send_kpi_traffic,
    wait_until,
};

/// `66,7 %` → 66.7
fn percent_in(text: &str) -> Option<f64> {
    let t = text.split('%').next()?.trim().replace(',', ".");
    t.parse().ok()
}

#[tokio::test]
async fn the_dashboard_agrees_with_the_api_and_replays_a_dead_letter() {
    // The 24-hour charts sample every 100 ms here (every 5 minutes as shipped).
    let s = ShippedBus::start_with(|c| {
        c.admin.history_every = Duration::from_millis(100);
        support::checked_at_delivery(c);
    })
    .await;
    send_kpi_traffic(&s).await;
    // A dead letter an operator can fix by replaying: the portal refuses this dossier for
    // good (error code 3) until its data is corrected on the portal's side.
    s.set_faults(json!([{"service": "portal", "operation": "DongBoHoSoMC",
                "business_error_rate": 1.0, "business_code": "3"}]))
        .await;
    let replay_id = s
        .send(
            "nafosted",
            "dossier_sync",
            &nafosted_dossier("HS-REPLAY-1", "submitted", "online"),
        )
        .await;
    let outbox = s.bus.outbox.clone();
    wait_until(
        Duration::from_secs(20),
        "the refused dossier to die",
        // HS-KPI-C's bad event at the portal and the ministry, HS-REPLAY-1 at the portal.
        || outbox.stats().dead == 3,
    )
    .await;
    s.set_faults(json!([])).await;
    // The KPI snapshot the page will show.
    let (_, kpis) = s.admin("/api/v1/kpis?refresh=true", SHIPPED_VIEWER).await;
    // The status the page will show, once the deliveries still under way have settled (a
    // retry finishing between this read and the page's would make them differ).
    let pending = |status: &serde_json::Value| {
        status["units"].as_array().map(|units| {
            units
                .iter()
                .map(|u| u["pending"].clone())
                .collect::<Vec<_>>()
        })
    };
    let mut status = s.admin("/api/v1/status", SHIPPED_VIEWER).await.1;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let again = s.admin("/api/v1/status", SHIPPED_VIEWER).await.1;
        let settled = pending(&again) == pending(&status);
        status = again;
        if settled {
            break;
        }
    }

    let browser = Browser::start().await;
    browser.goto(&s.url("/")).await;
    // Not signed in: the sign-in form; a wrong token is refused with a message.
    let token = browser.find("#token").await;
    browser.type_into(&token, "not-a-token").await;
    browser.click(&browser.find("#dang-nhap").await).await;
    assert!(
        browser
            .text_of("#loi-dang-nhap")
            .await
            .contains("không đúng")
    );
    let token = browser.find("#token").await;
    browser.type_into(&token, SHIPPED_OPERATOR).await;
    browser.click(&browser.find("#dang-nhap").await).await;
    browser.find("#don-vi").await;

    // Backlog and dead letters per unit, as the API counts them.
    for u in status["units"].as_array().unwrap() {
        let name = u["unit"].as_str().unwrap();
        assert_eq!(
            browser.text_of(&format!("#unit-{name}-pending")).await,
            u["pending"].to_string(),
            "pending of {name}"
        );
        assert_eq!(
            browser.text_of(&format!("#unit-{name}-dead")).await,
            u["dead"].to_string(),
            "dead letters of {name}"
        );
    }
    assert_eq!(browser.text_of("#unit-nafosted-dead").await, "3");
    // Platform health: the portal answers, but the refused dossiers block their later
    // events there, which the page says instead of "working well".
    let portal = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "portal")
        .unwrap();
    let blocked = portal["blocked_dossiers"].as_u64().unwrap();
    let expected = if blocked > 0 {
        format!("Có {blocked} hồ sơ bị chặn")
    } else {
        "Hoạt động tốt".to_string()
    };
    assert_eq!(browser.text_of("#target-portal-health").await, expected);
    // The route map shows the same figures on the portal's box.
    assert_eq!(
        browser.text_of("#map-target-portal-pending").await,
        portal["pending"].to_string()
    );
    assert_eq!(
        browser.text_of("#map-target-portal-dead").await,
        portal["dead"].to_string()
    );
    assert_eq!(browser.text_of("#map-unit-nafosted-dead").await, "3");
    // KPIs per unit and overall, as the API computed them.
    for u in kpis["units"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&kpis["overall"]])
    {
        let name = u["unit"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or("tong");
        assert_eq!(
            browser.text_of(&format!("#kpi-{name}-dossiers")).await,
            u["dossiers"].to_string()
        );
        // Decision 766's payment group, as numerator/denominator under its percentage.
        let pay = &u["index_766"]["payment"];
        let shown = browser.text_of(&format!("#i766-{name}-payment")).await;
        match pay["percent"].as_f64() {
            None => assert_eq!(shown, "—", "{name}"),
            Some(_) => assert!(
                shown.contains(&format!("{}/{}", pay["numerator"], pay["denominator"])),
                "{name}: {shown}"
            ),
        }
        // The form 06a's row: total, carried over, online, direct, finished.
        let f = &u["form_06a"];
        for (i, key) in [
            "total",
            "carried_over",
            "received_online",
            "received_direct",
            "finished",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(
                browser.text_of(&format!("#b06a-{name}-{i}")).await,
                f[key].to_string(),
                "{name} {key}"
            );
        }
        for id in [
            "dvc_toan_trinh",
            "tich_hop",
            "truc_tuyen",
            "thanh_toan_truc_tuyen",
            "so_hoa",
            "dong_bo_ket_qua",
            "dong_bo",
        ] {
            let shown = browser.text_of(&format!("#kpi-{name}-{id}")).await;
            let r = &u["kpis"][id];
            match r["percent"].as_f64() {
                None => assert_eq!(shown, "—", "{name} {id}"),
                Some(p) => {
                    assert_eq!(percent_in(&shown), Some(p), "{name} {id}: {shown}");
                    assert!(
                        shown.contains(&format!("{}/{}", r["numerator"], r["denominator"])),
                        "{name} {id}: {shown}"
                    );
                }
            }
        }
    }
    // The charts: this month's bar of each traffic target (the dossiers were seen this
    // month), and each platform's last day drawn from its samples.
    for id in [
        "truc_tuyen",
        "thanh_toan_truc_tuyen",
        "so_hoa",
        "dong_bo_ket_qua",
    ] {
        let chart = browser.find(&format!("#bieu-do-{id}")).await;
        let _ = chart;
        assert!(
            browser
                .try_find(&format!("#bieu-do-{id} rect.bar"))
                .await
                .is_some(),
            "{id}: no bar for this month"
        );
    }
    assert!(
        browser
            .try_find("#dien-bien-portal-ton-dong polyline")
            .await
            .is_some(),
        "the portal's backlog over the last day is drawn"
    );
    // HS-KPI-C is past its due date without a result.
    assert_eq!(browser.text_of("#kpi-nafosted-overdue").await, "1");
    let naf_sync = browser.text_of("#kpi-nafosted-dong_bo").await;
    assert!(naf_sync.starts_with("50,0 %"), "{naf_sync}");
    // The definitions are on the page.
    let page = browser.source().await;
    assert!(page.contains("Tỷ lệ thanh toán trực tuyến") && page.contains("MaLoi = 00"));

    // Another period: the page shows the period's figures and offers its report.
    browser.goto(&s.url("/?ky=2020-Q1")).await;
    assert_eq!(browser.text_of("#kpi-nafosted-dossiers").await, "0");
    assert_eq!(browser.text_of("#kpi-nafosted-truc_tuyen").await, "—");
    let csv_link = browser
        .attribute(&browser.find("#tai-csv").await, "href")
        .await;
    assert!(
        csv_link.ends_with("/bao-cao?ky=2020-Q1&dinh_dang=csv"),
        "{csv_link}"
    );
    browser.goto(&s.url("/")).await;

    let artifact = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("artifacts")
        .join("dashboard.png");
    browser.screenshot(&artifact).await;
    assert!(std::fs::metadata(&artifact).unwrap().len() > 10_000);

    // Search by MaHoSo.
    let search = browser.find("#ma-ho-so").await;
    browser.type_into(&search, "HS-KPI-A").await;
    browser.click(&browser.find("#tra-cuu").await).await;
    assert_eq!(browser.text_of("#ho-so-dong-bo").await, "Đã đồng bộ");
    // A dossier link from the dead letters opens the same view.
    browser.goto(&s.url("/?ma_ho_so=HS-REPLAY-1")).await;
    assert_eq!(browser.text_of("#ho-so-dong-bo").await, "Chưa đồng bộ");

    // The replay button: the dead letter goes back to the portal, which now takes it.
    browser
        .click(&browser.find(&format!("#replay-{replay_id}")).await)
        .await;
    assert!(browser.text_of("#thong-bao").await.contains("Đã gửi lại"),);
    let mut delivered = false;
    for _ in 0..200 {
        let (_, m) = s
            .admin(&format!("/api/v1/messages/{replay_id}"), SHIPPED_VIEWER)
            .await;
        let portal = m["deliveries"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["target"] == "portal"))
            .cloned()
            .unwrap_or_default();
        if portal["delivery"]["state"] == "delivered" {
            // Its journey keeps the refusal before the replay.
            assert!(
                portal["delivery"]["errors"][0]["error"].as_str().is_some(),
                "{m}"
            );
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "the replayed dead letter was delivered");
    let (_, dl) = s.admin("/api/v1/dead-letters", SHIPPED_VIEWER).await;
    assert_eq!(
        dl["count"], 2,
        "only HS-KPI-C's bad event is left, at the portal and the ministry: {dl}"
    );

    // A viewer sees dead letters but no replay button.
    browser.quit().await;
    let session = support::dashboard_sign_in(&s.url(""), SHIPPED_VIEWER).await;
    let session = session.split(';').next().unwrap().to_string();
    let viewer_page = client()
        .get(s.url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(viewer_page.contains("cần quyền vận hành"));
    assert!(!viewer_page.contains("id=\"replay-"));
    // The report for the period, as a file, with the same figures as the API.
    let csv = client()
        .get(s.url("/bao-cao?ky=all&dinh_dang=csv"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("bao-cao-chi-tieu-all.csv")
    );
    let csv = csv.text().await.unwrap();
    let naf = kpis["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "nafosted")
        .unwrap();
    let r = &naf["kpis"]["truc_tuyen"];
    let line = format!(
        "Toàn bộ thời gian,Quỹ Phát triển khoa học và công nghệ quốc gia,2,Tỷ lệ hồ sơ trực tuyến,{},{},",
        r["numerator"], r["denominator"]
    );
    assert!(csv.contains(&line), "{line} not in {csv}");
    // Decision 766's groups follow the plan's targets, without a target of their own.
    let pay = &naf["index_766"]["payment"];
    let line = format!(
        "Quỹ Phát triển khoa học và công nghệ quốc gia,QĐ 766,Chỉ số QĐ 766: Thanh toán trực tuyến (hồ sơ có thu phí),{},{},",
        pay["numerator"], pay["denominator"]
    );
    assert!(csv.contains(&line), "{line} not in {csv}");
    // For Excel in a Vietnamese locale: the same line with `;`.
    let vn = client()
        .get(s.url("/bao-cao?ky=all&dinh_dang=csv-vn"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(vn.contains(&line.replace(',', ";")), "{vn}");
    let xlsx = client()
        .get(s.url("/bao-cao?ky=all&dinh_dang=xlsx"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&xlsx[..2], b"PK");
    let pdf = client()
        .get(s.url("/bao-cao?ky=all&dinh_dang=pdf"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    // The form 06a of the same period: NAFOSTED's row as the API counts it.
    let form = client()
        .get(s.url("/bao-cao?bieu=06a&ky=all&dinh_dang=csv"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert!(
        form.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("bieu-06a-all.csv")
    );
    let form = form.text().await.unwrap();
    let f = &naf["form_06a"];
    let line = format!(
        "Toàn bộ thời gian,Quỹ Phát triển khoa học và công nghệ quốc gia,{},{},{},{},{},",
        f["total"], f["carried_over"], f["received_online"], f["received_direct"], f["finished"]
    );
    assert!(form.contains(&line), "{line} not in {form}");
    assert!(form.contains("đi qua trục liên thông"), "{form}");
    // Without a session: the sign-in page, not the report.
    let anonymous = client().get(s.url("/bao-cao?ky=all")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    s.bus.shutdown().await.unwrap();
}

/// The mapping studio in headless Chromium: an operator opens it from the dashboard, picks
/// the IP Office's fee route, uploads the office's TCVN3 CSV export and sees the Unicode
/// output, the schema check, the encoding found, the same field-by-field trace as
/// `lienthong mapping explain`, and no difference from the route's first case.
#[tokio::test]
async fn the_mapping_studio_maps_an_uploaded_tcvn3_csv_and_explains_each_field() {
    let s = ShippedBus::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("mappings/ipo/tests/fee_request/01-patent-exam-fee.input.csv");
    assert!(
        std::str::from_utf8(&std::fs::read(&sample).unwrap()).is_err(),
        "the sample is a legacy-encoded file"
    );

    let browser = Browser::start().await;
    browser.goto(&s.url("/")).await;
    let token = browser.find("#token").await;
    browser.type_into(&token, SHIPPED_OPERATOR).await;
    browser.click(&browser.find("#dang-nhap").await).await;
    browser.click(&browser.find("#den-studio").await).await;
    browser
        .click(
            &browser
                .find("#chon-tuyen option[value='ipo/fee_request/payment']")
                .await,
        )
        .await;
    browser.click(&browser.find("#xem-ca").await).await;
    browser
        .wait_for_text("#tuyen-da-chon", "ipo/fee_request/payment")
        .await;
    let upload = browser.find("#tep").await;
    browser.type_into(&upload, sample.to_str().unwrap()).await;
    browser
        .click(&browser.find("#ca option[value='01-patent-exam-fee']").await)
        .await;
    browser.click(&browser.find("#chay-thu").await).await;

    let output = browser.text_of("#dau-ra").await;
    assert!(
        output.contains("\"HoTenNguoiNop\": \"Nguyễn Văn Thành\""),
        "{output}"
    );
    assert!(
        browser
            .text_of("#kiem-tra-luoc-do")
            .await
            .contains("Đạt lược đồ payment/Init"),
    );
    assert!(browser.text_of("#ma-hoa-phat-hien").await.contains("TCVN3"));
    // The door's verdict, as on POST .../events: this export would be taken.
    assert!(
        browser
            .text_of("#cong-tiep-nhan")
            .await
            .contains("Bus sẽ nhận mẫu này")
    );
    assert!(
        browser
            .text_of("#so-sanh")
            .await
            .contains("Giống hệt kết quả mong đợi")
    );
    // The same trace as `mapping explain`: every field, its source and final value.
    let trace = browser.text_of("#giai-thich").await;
    let mapping = lienthong_mapping::Mapping::load(
        &root.join("mappings/ipo/fee_request.toml"),
        &root.join("mappings"),
    )
    .unwrap();
    let record = mapping
        .decode(&std::fs::read(&sample).unwrap())
        .unwrap()
        .remove(0);
    let explained = mapping.explain(&record);
    assert!(explained.fields.len() > 5);
    for t in &explained.fields {
        assert!(
            trace.contains(&t.field),
            "{} missing from\n{trace}",
            t.field
        );
        assert!(
            trace.contains(&t.source),
            "{} missing from\n{trace}",
            t.source
        );
        if let lienthong_mapping::explain::FieldOutcome::Written(v) = &t.outcome {
            assert!(trace.contains(&v.to_string()), "{v} missing from\n{trace}");
        }
    }
    assert!(trace.contains("tcvn3 → \"Nguyễn Văn Thành\""), "{trace}");
    std::fs::create_dir_all("target/artifacts").unwrap();
    browser
        .screenshot(std::path::Path::new("target/artifacts/mapping-studio.png"))
        .await;
    browser.quit().await;
    s.bus.shutdown().await.unwrap();
}

/// The studio is for operators; what it reads is bounded and needs the session's
/// anti-forgery token.
#[tokio::test]
async fn the_mapping_studio_is_for_operators_and_bounds_its_upload() {
    let s = ShippedBus::start().await;
    let cookie = |set: String| set.split(';').next().unwrap().to_string();
    let viewer = cookie(support::dashboard_sign_in(&s.url(""), SHIPPED_VIEWER).await);
    let operator = cookie(support::dashboard_sign_in(&s.url(""), SHIPPED_OPERATOR).await);
    let get = |c: &str| {
        client()
            .get(s.url("/anh-xa"))
            .header("cookie", c.to_string())
    };
    assert_eq!(get(&viewer).send().await.unwrap().status(), 403);
    assert_eq!(
        client()
            .get(s.url("/anh-xa"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let page = get(&operator).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("ipo/fee_request/payment"), "{page}");

    let multipart = |fields: &[(&str, &[u8])]| {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--B\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--B--\r\n");
        body
    };
    let post = |body: Vec<u8>| {
        client()
            .post(s.url("/anh-xa"))
            .header("cookie", operator.clone())
            .header("content-type", "multipart/form-data; boundary=B")
            .body(body)
    };
    // No anti-forgery token: refused, nothing run.
    let r = post(multipart(&[
        ("tuyen", b"nafosted/dossier_sync/portal"),
        ("mau", b"{}"),
    ]))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    // Over the limit: refused with a message, before anything is mapped.
    let big = vec![b'a'; 2 * 1024 * 1024];
    let r = post(multipart(&[("tuyen", b"x"), ("mau", &big)]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Within the body limit's room for the framing, but over the sample's own 1 MiB: still
    // refused, by the sample's size.
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let over = vec![b'a'; 1024 * 1024 + 32 * 1024];
    let r = post(multipart(&[
        ("csrf", csrf.as_bytes()),
        ("tuyen", b"nafosted/dossier_sync/portal"),
        ("mau", &over),
    ]))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("quá lớn"));
    s.bus.shutdown().await.unwrap();
}
