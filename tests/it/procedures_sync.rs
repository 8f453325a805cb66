//! `lienthong procedures sync` against the portal mock as a real server (issue 34): each
//! unit's catalogue checked with `LayThuTuc`, a procedure the portal names otherwise or
//! does not list flagged, the confirmed ones marked `source = "portal (…)"` in place.

use crate::support;
use lienthong_mocks::MockSettings;
use std::path::Path;

#[tokio::test]
async fn the_catalogue_is_checked_against_the_portal_and_the_confirmed_entries_marked() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(listener, MockSettings::default()));
    let data = tempfile::tempdir().unwrap();
    let (mut cfg, _) = support::shipped_config_on(data.path(), mocks, mocks);
    // The catalogues, copied: the command writes to them.
    let catalogues = tempfile::tempdir().unwrap();
    for unit in cfg.units.keys() {
        let from = lienthong::procedures::Catalogue::file(Path::new("mappings"), unit);
        let to = lienthong::procedures::Catalogue::file(catalogues.path(), unit);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    cfg.mappings.dir = catalogues.path().to_path_buf();

    let (report, differs) = lienthong::cli::procedures::sync(&cfg, true).await.unwrap();
    assert!(differs, "{report}");
    // A line per procedure, counted as it goes.
    assert_eq!(report.matches("] ").count(), 14, "{report}");
    assert!(report.contains("[1/14] "), "{report}");
    assert!(
        report
            .contains("ipo 1.005140 Đăng ký sáng chế: confirmed; 18 tháng, main result KQ-SHTT-SC"),
        "{report}"
    );
    assert!(
        report.contains("ipo 1.005163 Ghi nhận thay đổi thông tin chủ văn bằng bảo hộ: NOT in the portal's catalogue"),
        "{report}"
    );
    assert!(
        report.contains("stameq 1.000436 Phê duyệt mẫu phương tiện đo: DIFFERS: the portal names it \"Phê duyệt mẫu phương tiện đo nhóm 2\""),
        "{report}"
    );
    // Confirmed entries are marked as checked at the portal; flagged ones stay assumed;
    // the unit's comments stay.
    let ipo = lienthong::procedures::Catalogue::file(catalogues.path(), "ipo");
    let text = std::fs::read_to_string(&ipo).unwrap();
    assert!(
        text.starts_with("# The IP Office's administrative procedures"),
        "{text}"
    );
    let list = lienthong::procedures::Catalogue::parse(&text).unwrap();
    let source = |code: &str| list[code].source.clone().unwrap_or_default();
    assert!(
        source("1.005140").starts_with("portal (LayThuTuc, 20"),
        "{text}"
    );
    assert!(source("1.005163").starts_with("assumed"), "{text}");
    // The bus still reads every catalogue.
    let units: Vec<&str> = cfg.units.keys().map(String::as_str).collect();
    lienthong::procedures::Catalogue::load(catalogues.path(), units).unwrap();
}
