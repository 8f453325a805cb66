//! The mock population database over real HTTP: SOAP lookups and verifications against
//! the seeded population, prefixes chosen by the client, and SOAP Faults for bad input.

use lienthong_mocks::population::{Population, parse_request};

fn request(op: &str, fields: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:d="http://dancuquocgia.bca">
  <s:Header/>
  <s:Body><d:{op}><d:MaYeuCau>REQ-1</d:MaYeuCau><d:MaCanBo>CB-01</d:MaCanBo>{fields}</d:{op}></s:Body>
</s:Envelope>"#
    )
}

fn person_fields(id: &str, name: &str, birth: &str) -> String {
    format!(
        "<d:SoDinhDanh>{id}</d:SoDinhDanh><d:HoVaTen>{name}</d:HoVaTen><d:NgayThangNamSinh><d:NgayThangNam>{birth}</d:NgayThangNam></d:NgayThangNamSinh>"
    )
}

async fn start(population: &Population) -> (reqwest::Client, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = population.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (
        lienthong_mocks::http_client().no_proxy().build().unwrap(),
        format!("http://{addr}/population"),
    )
}

async fn call(c: &reqwest::Client, url: &str, body: String) -> (u16, String) {
    let r = c
        .post(url)
        .header("content-type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[test]
fn the_population_is_seeded_and_plausible() {
    let a = Population::generate(3, 10_000);
    assert_eq!(a.len(), 10_000);
    assert!(a.all().eq(Population::generate(3, 10_000).all()));
    assert!(!a.all().eq(Population::generate(4, 10_000).all()));
    for c in a.all() {
        assert_eq!(c.so_dinh_danh.len(), 12);
        assert!(c.so_dinh_danh.starts_with(&c.ma_tinh));
        // The 4th digit encodes century and sex; digits 5–6 the birth year.
        assert_eq!(&c.so_dinh_danh[4..6], &c.ngay_sinh[2..4]);
        let female = c.gioi_tinh == "Nữ";
        let d: u32 = c.so_dinh_danh[3..4].parse().unwrap();
        assert_eq!(d % 2 == 1, female);
    }
}

#[tokio::test]
async fn lookup_and_verify_over_soap() {
    let population = Population::generate(3, 10_000);
    let who = population.all().nth(1234).unwrap().clone();
    let (c, url) = start(&population).await;

    let (status, xml) = call(
        &c,
        &url,
        request(
            "TraCuuThongTinCongDan",
            &person_fields(&who.so_dinh_danh, &who.ho_va_ten(), &who.ngay_sinh),
        ),
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("http://www.mic.gov.vn/dancu/1.0"));
    assert!(xml.contains(&format!("<Ten>{}</Ten>", who.ten)), "{xml}");
    assert!(xml.contains(&format!("<NgayThangNam>{}</NgayThangNam>", who.ngay_sinh)));

    let (_, xml) = call(
        &c,
        &url,
        request(
            "XacThucThongTinCongDan",
            &person_fields(&who.so_dinh_danh, &who.ho_va_ten(), &who.ngay_sinh),
        ),
    )
    .await;
    assert!(xml.contains("<TonTai>true</TonTai>"), "{xml}");
    // A wrong birth date: not verified, and a lookup finds nobody.
    let (_, xml) = call(
        &c,
        &url,
        request(
            "XacThucThongTinCongDan",
            &person_fields(&who.so_dinh_danh, &who.ho_va_ten(), "19000101"),
        ),
    )
    .await;
    assert!(xml.contains("<TonTai>false</TonTai>"), "{xml}");
    let (_, xml) = call(
        &c,
        &url,
        request(
            "TraCuuThongTinCongDan",
            &person_fields(&who.so_dinh_danh, "Người Khác Tên", &who.ngay_sinh),
        ),
    )
    .await;
    assert!(
        xml.contains("<CongdanCollection></CongdanCollection>"),
        "{xml}"
    );
}

#[tokio::test]
async fn malformed_requests_get_soap_faults() {
    let population = Population::generate(3, 10_000);
    let (c, url) = start(&population).await;
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><lolz>&lol;</lolz>"#
        .to_string();
    for (body, expected) in [
        ("not xml at all <".to_string(), "not well-formed XML"),
        (
            "<a>just xml</a>".to_string(),
            "no operation inside soap:Body",
        ),
        (bomb, "DOCTYPE"),
        (
            request(
                "XoaCongDan",
                &person_fields("001099012345", "A", "19990101"),
            ),
            "unknown operation",
        ),
        (
            request(
                "TraCuuThongTinCongDan",
                &person_fields("12345", "A", "19990101"),
            ),
            "SoDinhDanh must be 12 digits",
        ),
        (
            request(
                "TraCuuThongTinCongDan",
                "<d:SoDinhDanh>001099012345</d:SoDinhDanh>",
            ),
            "HoVaTen is required",
        ),
    ] {
        let (status, xml) = call(&c, &url, body).await;
        assert_eq!(status, 500, "{xml}");
        assert!(xml.contains("<faultcode>soap:Client</faultcode>"), "{xml}");
        assert!(xml.contains(expected), "expected {expected:?} in {xml}");
    }
}

#[test]
fn the_body_is_found_by_namespace_not_prefix() {
    let xml = r#"<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body><TraCuuThongTinCongDan xmlns="http://dancuquocgia.bca"><SoDinhDanh>001099012345</SoDinhDanh><HoVaTen>Lê Văn &amp; An</HoVaTen></TraCuuThongTinCongDan></env:Body></env:Envelope>"#;
    let r = parse_request(xml).unwrap();
    assert_eq!(r.operation, "TraCuuThongTinCongDan");
    assert_eq!(r.fields["HoVaTen"], "Lê Văn & An");
    let wrong_ns = xml.replace("http://schemas.xmlsoap.org/soap/envelope/", "urn:other");
    assert!(parse_request(&wrong_ns).is_err());
}
