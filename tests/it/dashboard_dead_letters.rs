//! The dead-letter page and the message search in headless Chromium (issue 38): 320 dead
//! letters of two units filtered, paged, dropped and replayed in bulk; a blocked dossier's
//! later event found by its id says what it waits behind.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::wait_until;
use support::webdriver::Browser;

/// Issue 38: dead letters at scale on the dashboard. 300 of one unit and 20 of another:
/// 50 to a page with a next page, filtered by unit, two selected and dropped with a
/// reason after a confirmation, then every one of the first unit replayed in bulk.
#[tokio::test]
async fn three_hundred_dead_letters_filtered_paged_and_handled_in_bulk() {
    use lienthong_mocks::Faults;
    use serde_json::Value;
    use support::dead_letters::{OPERATOR, admin_tokens, three_hundred_and_twenty_dead_letters};
    let h = support::Harness::start(Faults::default(), &admin_tokens()).await;
    three_hundred_and_twenty_dead_letters(&h, "UI").await;
    let rows = |source: &str| source.matches("class=\"dong-thu-chet\"").count();

    let base = format!("http://{}", h.bus().addr);
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    browser
        .type_into(&browser.find("#token").await, OPERATOR)
        .await;
    browser.click(&browser.find("#dang-nhap").await).await;
    browser.click(&browser.find("#tat-ca-thu-chet").await).await;
    browser.wait_for_text("#trang-so-thu", "50").await;
    assert_eq!(rows(&browser.source().await), 50);
    let first_page = browser.source().await;
    browser.click(&browser.find("#trang-sau").await).await;
    browser.find("#trang-dau").await;
    let second_page = browser.source().await;
    assert_eq!(rows(&second_page), 50);
    let first_row = |page: &str| {
        page.split("id=\"dead-")
            .nth(1)
            .map(|r| r[..36].to_string())
            .unwrap()
    };
    assert_ne!(
        first_row(&first_page),
        first_row(&second_page),
        "the next page moves on"
    );

    // Filtered by unit: STAMEQ's 20 on one page, no next page.
    browser
        .click(&browser.find("#loc-don-vi option[value=stameq]").await)
        .await;
    browser.click(&browser.find("#loc-ap-dung").await).await;
    browser.wait_for_text("#trang-so-thu", "20").await;
    assert!(browser.try_find("#trang-sau").await.is_none());
    // Two selected and dropped, after a confirmation that asks why.
    browser.click(&browser.find("input.chon").await).await;
    browser
        .click(
            &browser
                .find("tr.dong-thu-chet:nth-of-type(3) input.chon")
                .await,
        )
        .await;
    browser.click(&browser.find("#huy-da-chon").await).await;
    assert_eq!(
        browser.text_of("#xac-nhan-viec").await,
        "Hủy 2 thư chết đã chọn?"
    );
    browser
        .type_into(&browser.find("#ly-do-huy").await, "dữ liệu thử")
        .await;
    browser.click(&browser.find("#xac-nhan-dong-y").await).await;
    browser
        .wait_for_text("#thong-bao", "Đã hủy 2 thư chết.")
        .await;
    browser.wait_for_text("#trang-so-thu", "18").await;

    // A later event of a dossier blocked behind its dead letter, found by its id in the
    // search box: it says what it waits behind, and the link opens that message.
    let r = h
        .post(
            "nafosted",
            Some("dossier_sync"),
            &json!({"dossierCode": "HS-UI-0-000", "note": "next step"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let waiting_id = r.json::<Value>().await.unwrap()["accepted"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    browser.goto(&format!("{base}/")).await;
    browser
        .type_into(&browser.find("#ma-ho-so").await, &waiting_id)
        .await;
    browser.click(&browser.find("#tra-cuu").await).await;
    let said = browser.text_of("#tin .cho-sau").await;
    assert!(said.starts_with("đang chờ sau tin"), "{said}");
    assert!(said.contains("thư chết từ"), "{said}");
    browser.click(&browser.find("#tin .cho-sau a").await).await;
    let heading = browser.text_of("#tin h2").await;
    assert!(
        heading.starts_with("Tin ") && !heading.contains(&waiting_id),
        "{heading}"
    );
    assert!(browser.text_of("#tin").await.contains("Nền tảng trả lời"));

    // The platform is fixed: all of NAFOSTED's replayed in one go, confirmed first.
    h.sink.set_target_faults("a", Faults::default());
    browser
        .goto(&format!("{base}/thu-chet?don_vi=nafosted"))
        .await;
    browser.click(&browser.find("#gui-lai-tat-ca").await).await;
    assert!(
        browser
            .text_of("#xac-nhan-viec")
            .await
            .starts_with("Gửi lại tất cả thư chết khớp bộ lọc")
    );
    browser.click(&browser.find("#xac-nhan-dong-y").await).await;
    browser
        .wait_for_text("#thong-bao", "Đã gửi lại 300 thư chết.")
        .await;
    let outbox = h.bus().outbox.clone();
    wait_until(
        Duration::from_secs(30),
        "NAFOSTED's delivered, STAMEQ's 18 left",
        || {
            let s = outbox.stats();
            s.dead == 18 && s.pending == 0
        },
    )
    .await;
    browser.quit().await;
    h.shutdown().await;
}
