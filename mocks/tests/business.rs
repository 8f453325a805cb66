//! The mock business register: seeded, deterministic, with branches and dissolved
//! enterprises, looked up over real HTTP.

use lienthong_mocks::business::{self, Registry};
use serde_json::Value;

#[test]
fn the_register_is_deterministic_from_its_seed_and_varied() {
    let a = Registry::generate(7, 5_000);
    let b = Registry::generate(7, 5_000);
    let c = Registry::generate(8, 5_000);
    assert!(a.all().eq(b.all()), "same seed, same register");
    assert!(!a.all().eq(c.all()), "another seed, another register");
    let heads = a.all().filter(|e| !e.code.contains('-')).count();
    assert!(heads >= 5_000, "{heads} head offices");
    assert!(
        a.all().filter(|e| e.code.contains('-')).count() > 100,
        "branches"
    );
    assert!(
        a.all().filter(|e| e.status == business::DISSOLVED).count() > 100,
        "dissolved ones"
    );
    assert!(a.all().all(|e| business::valid_code(&e.code)));
}

#[tokio::test]
async fn lookups_over_http() {
    let registry = Registry::generate(7, 5_000);
    let branch = registry
        .all()
        .find(|e| e.code.contains('-'))
        .unwrap()
        .clone();
    let dissolved = registry
        .all()
        .find(|e| e.status == business::DISSOLVED)
        .unwrap()
        .clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = registry.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let c = lienthong_mocks::http_client().no_proxy().build().unwrap();
    let get = |code: String| {
        let c = c.clone();
        async move {
            c.get(format!(
                "http://{addr}/business/TraCuuThongTinDoanhNghiep?MaSoDoanhNghiep={code}"
            ))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
        }
    };
    let r = get(branch.code.clone()).await;
    assert_eq!(r["Status"], "SUCCESS");
    assert_eq!(r["ResultObject"]["ENTERPRISE_GDT_CODE"], branch.code);
    assert_eq!(r["ResultObject"]["NAME"], branch.name);
    assert_eq!(
        r["ResultObject"]["Representatives"][0]["FULL_NAME"],
        branch.representative
    );
    let r = get(dissolved.code.clone()).await;
    assert_eq!(
        r["ResultObject"]["ENTERPRISE_STATUS_NAME"],
        business::DISSOLVED
    );
    let r = get("9999999999".into()).await;
    assert_eq!(
        (r["StatusCode"].as_i64(), r["Status"].as_str()),
        (Some(404), Some("NOT_FOUND"))
    );
    let r = get("12345".into()).await;
    assert_eq!(
        (r["Status"].as_str(), r["ThrowException"].as_bool()),
        (Some("ERROR"), Some(true))
    );
}
