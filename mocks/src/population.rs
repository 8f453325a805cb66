//! Mock of the national population database (CSDL quốc gia về dân cư): SOAP 1.1 at
//! `POST /population` with the operations `TraCuuThongTinCongDan` (lookup),
//! `XacThucThongTinCongDan` (verify) and `XacMinhThongTinNoiOHienTai` (is this where the
//! person lives now?), request namespace `http://dancuquocgia.bca`, over a
//! synthetic population generated deterministically from a seed (at least 10,000 people;
//! 12-digit identity numbers: 3-digit province code, a century/sex digit, two digits of
//! the birth year, six more).
//!
//! A person is named by `SoDinhDanh` (12 digits) or, for those who still hold one, the
//! old identity card number `SoCMND` (9 digits; people born before 1995 here). A lookup
//! answers `CongdanCollection/CongDan` (namespace `http://www.mic.gov.vn/dancu/1.0`) with
//! the identity, permanent residence (`ThuongTru`), current residence (`NoiOHienTai`), the
//! household head (`ChuHo {QuanHe, HoVaTen, SoDinhDanh}`) and the household book number
//! (`SoSoHoKhau`) when the number, `HoVaTen` and the birth date all match, an empty
//! collection otherwise; a verification answers `TonTai` true or false; a residence check
//! (`NoiOHienTai {MaTinhThanh, ChiTiet}` as the citizen declared it) answers `KetQua` true
//! when it is where the person lives, compared without regard to case and spacing (the
//! reply's shape is ASSUMED: only the operation's name is public). Malformed requests — not XML,
//! a DOCTYPE or entity declaration, no SOAP Body, an unknown operation, a missing or
//! malformed field — get a SOAP Fault (HTTP 500, `soap:Client`) naming the problem.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const REQUEST_NS: &str = "http://dancuquocgia.bca";
pub const REPLY_NS: &str = "http://www.mic.gov.vn/dancu/1.0";

/// One synthetic citizen.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Citizen {
    pub so_dinh_danh: String,
    pub ho: String,
    pub chu_dem: String,
    pub ten: String,
    /// `yyyyMMdd`.
    pub ngay_sinh: String,
    pub gioi_tinh: String,
    pub ma_tinh: String,
    pub que_quan: String,
    /// The old 9-digit identity card number, for people born before 1995.
    pub so_cmnd: Option<String>,
    /// Permanent and current residence: (province code, address detail).
    pub thuong_tru: (String, String),
    pub noi_o_hien_tai: (String, String),
    /// The household head: (relation to this person, name, identity number).
    pub chu_ho: (String, String, String),
    pub so_ho_khau: String,
}

impl Citizen {
    pub fn ho_va_ten(&self) -> String {
        format!("{} {} {}", self.ho, self.chu_dem, self.ten)
    }
}

const PROVINCES: [(&str, &str); 8] = [
    ("001", "Thành phố Hà Nội"),
    ("031", "Thành phố Hải Phòng"),
    ("048", "Thành phố Đà Nẵng"),
    ("079", "Thành phố Hồ Chí Minh"),
    ("022", "Tỉnh Quảng Ninh"),
    ("040", "Tỉnh Nghệ An"),
    ("046", "Tỉnh Thừa Thiên Huế"),
    ("092", "Thành phố Cần Thơ"),
];
const STREETS: [&str; 6] = [
    "Láng Hạ",
    "Trần Hưng Đạo",
    "Lê Lợi",
    "Nguyễn Trãi",
    "Hai Bà Trưng",
    "Quang Trung",
];
const RELATIONS: [&str; 3] = ["Vợ", "Chồng", "Con"];
const FAMILY: [&str; 10] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
];
const MIDDLE_M: [&str; 5] = ["Văn", "Đức", "Minh", "Quang", "Hữu"];
const MIDDLE_F: [&str; 5] = ["Thị", "Thu", "Ngọc", "Thanh", "Minh"];
const GIVEN_M: [&str; 8] = ["An", "Bình", "Cường", "Dũng", "Hải", "Khoa", "Nam", "Tuấn"];
const GIVEN_F: [&str; 8] = ["Anh", "Chi", "Dung", "Hà", "Hương", "Lan", "Mai", "Trang"];

/// The synthetic population.
#[derive(Clone)]
pub struct Population {
    by_id: Arc<BTreeMap<String, Citizen>>,
    /// Old identity card number → identity number.
    by_cmnd: Arc<BTreeMap<String, String>>,
}

impl Population {
    pub fn generate(seed: u64, people: usize) -> Population {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut by_id = BTreeMap::new();
        while by_id.len() < people {
            let (ma_tinh, province) = PROVINCES[rng.random_range(0..PROVINCES.len())];
            let year: u32 = rng.random_range(1940..2008);
            let female = rng.random::<bool>();
            // Century and sex: 0/1 for 1900–1999 (male/female), 2/3 for 2000–2099.
            let century_sex = (if year >= 2000 { 2 } else { 0 }) + u32::from(female);
            let id = format!(
                "{ma_tinh}{century_sex}{:02}{:06}",
                year % 100,
                rng.random_range(0..1_000_000u32)
            );
            if by_id.contains_key(&id) {
                continue;
            }
            let pick =
                |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
            let (middle, given) = if female {
                (&MIDDLE_F, &GIVEN_F)
            } else {
                (&MIDDLE_M, &GIVEN_M)
            };
            let citizen = Citizen {
                so_dinh_danh: id.clone(),
                ho: pick(&mut rng, &FAMILY).into(),
                chu_dem: pick(&mut rng, middle).into(),
                ten: pick(&mut rng, given).into(),
                ngay_sinh: format!(
                    "{year}{:02}{:02}",
                    rng.random_range(1..13),
                    rng.random_range(1..29)
                ),
                gioi_tinh: if female { "Nữ" } else { "Nam" }.into(),
                ma_tinh: ma_tinh.into(),
                que_quan: province.into(),
                so_cmnd: None,
                thuong_tru: Default::default(),
                noi_o_hien_tai: Default::default(),
                chu_ho: Default::default(),
                so_ho_khau: String::new(),
            };
            by_id.insert(id, with_household(citizen, year));
        }
        let by_cmnd = by_id
            .values()
            .filter_map(|c| Some((c.so_cmnd.clone()?, c.so_dinh_danh.clone())))
            .collect();
        Population {
            by_id: Arc::new(by_id),
            by_cmnd: Arc::new(by_cmnd),
        }
    }

    pub fn get(&self, so_dinh_danh: &str) -> Option<&Citizen> {
        self.by_id.get(so_dinh_danh)
    }

    /// The person holding the old identity card number `so_cmnd`.
    pub fn by_cmnd(&self, so_cmnd: &str) -> Option<&Citizen> {
        self.by_id.get(self.by_cmnd.get(so_cmnd)?)
    }

    pub fn all(&self) -> impl Iterator<Item = &Citizen> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/population", post(soap))
            .with_state(self.clone())
    }
}

/// Residence, household and the old identity card of a generated person, drawn from a
/// generator seeded by the person's identity number: the people of a seed stay the same
/// as before these fields existed.
fn with_household(mut c: Citizen, year: u32) -> Citizen {
    let mut rng = StdRng::seed_from_u64(c.so_dinh_danh.parse::<u64>().unwrap_or(0) ^ 0x5eed);
    if year < 1995 {
        c.so_cmnd = Some(format!(
            "{:09}",
            rng.random_range(10_000_000..1_000_000_000u64)
        ));
    }
    let street = STREETS[rng.random_range(0..STREETS.len())];
    let address = format!(
        "Số {} {street}, {}",
        rng.random_range(1..300u32),
        c.que_quan
    );
    c.thuong_tru = (c.ma_tinh.clone(), address.clone());
    // One in five lives somewhere else than their permanent residence.
    c.noi_o_hien_tai = if rng.random_bool(0.2) {
        let (code, province) = PROVINCES[rng.random_range(0..PROVINCES.len())];
        let street = STREETS[rng.random_range(0..STREETS.len())];
        (
            code.to_string(),
            format!("Số {} {street}, {province}", rng.random_range(1..300u32)),
        )
    } else {
        (c.ma_tinh.clone(), address)
    };
    // Half are the head of their household.
    c.chu_ho = if rng.random_bool(0.5) {
        ("Chủ hộ".into(), c.ho_va_ten(), c.so_dinh_danh.clone())
    } else {
        let relation = RELATIONS[rng.random_range(0..RELATIONS.len())];
        let head = format!(
            "{} {} {}",
            c.ho,
            MIDDLE_M[rng.random_range(0..MIDDLE_M.len())],
            GIVEN_M[rng.random_range(0..GIVEN_M.len())]
        );
        let head_id = format!(
            "{}0{:02}{:06}",
            c.ma_tinh,
            rng.random_range(40..90u32),
            rng.random_range(0..1_000_000u32)
        );
        (relation.to_string(), head, head_id)
    };
    c.so_ho_khau = format!("{:09}", rng.random_range(0..1_000_000_000u64));
    c
}

/// The same address, whatever the case and spacing.
fn same_place(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

/// A parsed request: the operation and its fields (`NgayThangNamSinh/NgayThangNam` is
/// flattened to `NgayThangNam`, `.../Nam` to `Nam`).
#[derive(Debug, PartialEq, Eq)]
pub struct SoapRequest {
    pub operation: String,
    pub fields: HashMap<String, String>,
}

/// Read a SOAP 1.1 request, finding Body and the operation by namespace, not by prefix.
pub fn parse_request(xml: &str) -> Result<SoapRequest, String> {
    let mut reader = NsReader::from_str(xml);
    let mut path: Vec<(String, bool)> = Vec::new(); // (local name, in the SOAP namespace)
    let mut operation: Option<String> = None;
    let mut fields = HashMap::new();
    let mut text = String::new();
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        let soap = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == SOAP_NS);
        let request_ns = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == REQUEST_NS);
        match event {
            Event::DocType(_) => {
                return Err("DOCTYPE and entity declarations are not accepted".into());
            }
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                let depth = path.len();
                let in_body = depth == 2
                    && path[0] == ("Envelope".into(), true)
                    && path[1] == ("Body".into(), true);
                if in_body {
                    if !request_ns {
                        return Err(format!(
                            "operation `{name}` is not in namespace {REQUEST_NS}"
                        ));
                    }
                    operation = Some(name.clone());
                }
                path.push((name, soap));
                text.clear();
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                if path.len() == 2 && path[1] == ("Body".into(), true) {
                    operation = Some(name);
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c.into_inner()),
            Event::GeneralRef(r) => {
                let reference = format!("&{};", r.xml10_content());
                let resolved =
                    unescape(&reference).map_err(|_| format!("unknown entity {reference}"))?;
                text.push_str(&resolved);
            }
            Event::End(_) => {
                if let Some((name, _)) = path.pop() {
                    // Fields are the operation's children and grandchildren.
                    if path.len() >= 3 && operation.is_some() {
                        let value = text.trim().to_string();
                        if !value.is_empty() {
                            fields.insert(name, value);
                        }
                    }
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err("unclosed elements".into());
    }
    let operation =
        operation.ok_or("no operation inside soap:Body (is this a SOAP 1.1 envelope?)")?;
    Ok(SoapRequest { operation, fields })
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

fn fault(message: &str) -> Response {
    let body = envelope(&format!(
        "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>{}</faultstring></soap:Fault>",
        escape(message)
    ));
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn ok(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        envelope(&body),
    )
        .into_response()
}

/// The citizen the request names, if its name and birth date match too.
fn matching<'p>(
    population: &'p Population,
    f: &HashMap<String, String>,
) -> Result<Option<&'p Citizen>, String> {
    let digits = |v: &str, n: usize| v.len() == n && v.bytes().all(|b| b.is_ascii_digit());
    let person = match (f.get("SoDinhDanh"), f.get("SoCMND")) {
        (Some(id), _) if digits(id, 12) => population.get(id),
        (Some(id), _) => {
            return Err(format!(
                "SoDinhDanh must be 12 digits, got {} characters",
                id.chars().count()
            ));
        }
        (None, Some(cmnd)) if digits(cmnd, 9) => population.by_cmnd(cmnd),
        (None, Some(cmnd)) => {
            return Err(format!(
                "SoCMND must be 9 digits, got {} characters",
                cmnd.chars().count()
            ));
        }
        (None, None) => {
            return Err("SoDinhDanh (12 digits) or SoCMND (9 digits) is required".into());
        }
    };
    let name = f.get("HoVaTen").ok_or("HoVaTen is required")?;
    let birth = f
        .get("NgayThangNam")
        .or_else(|| f.get("Nam"))
        .ok_or("NgayThangNamSinh is required (NgayThangNam yyyyMMdd, or Nam)")?;
    Ok(person.filter(|c| {
        let same_name = c.ho_va_ten().to_lowercase()
            == name
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
        let same_birth = if birth.len() == 4 {
            c.ngay_sinh.starts_with(birth.as_str())
        } else {
            &c.ngay_sinh == birth
        };
        same_name && same_birth
    }))
}

fn citizen_xml(c: &Citizen) -> String {
    format!(
        "<CongDan><SoDinhDanh>{}</SoDinhDanh>{}<HoVaTen><Ho>{}</Ho><ChuDem>{}</ChuDem><Ten>{}</Ten></HoVaTen>\
<GioiTinh>{}</GioiTinh><NgayThangNamSinh><Nam>{}</Nam><NgayThangNam>{}</NgayThangNam></NgayThangNamSinh>\
<QueQuan><MaTinhThanh>{}</MaTinhThanh><ChiTiet>{}</ChiTiet><QuocGia>VN</QuocGia></QueQuan>\
<ThuongTru><MaTinhThanh>{}</MaTinhThanh><ChiTiet>{}</ChiTiet><QuocGia>VN</QuocGia></ThuongTru>\
<NoiOHienTai><MaTinhThanh>{}</MaTinhThanh><ChiTiet>{}</ChiTiet><QuocGia>VN</QuocGia></NoiOHienTai>\
<ChuHo><QuanHe>{}</QuanHe><HoVaTen>{}</HoVaTen><SoDinhDanh>{}</SoDinhDanh></ChuHo><SoSoHoKhau>{}</SoSoHoKhau></CongDan>",
        c.so_dinh_danh,
        c.so_cmnd
            .as_ref()
            .map(|n| format!("<SoCMND>{n}</SoCMND>"))
            .unwrap_or_default(),
        escape(c.ho.as_str()),
        escape(c.chu_dem.as_str()),
        escape(c.ten.as_str()),
        c.gioi_tinh,
        &c.ngay_sinh[..4],
        c.ngay_sinh,
        c.ma_tinh,
        escape(c.que_quan.as_str()),
        c.thuong_tru.0,
        escape(c.thuong_tru.1.as_str()),
        c.noi_o_hien_tai.0,
        escape(c.noi_o_hien_tai.1.as_str()),
        escape(c.chu_ho.0.as_str()),
        escape(c.chu_ho.1.as_str()),
        c.chu_ho.2,
        c.so_ho_khau,
    )
}

async fn soap(State(population): State<Population>, body: Bytes) -> Response {
    let Ok(xml) = std::str::from_utf8(&body) else {
        return fault("the request is not UTF-8");
    };
    let request = match parse_request(xml) {
        Ok(r) => r,
        Err(e) => return fault(&e),
    };
    match request.operation.as_str() {
        "TraCuuThongTinCongDan" => match matching(&population, &request.fields) {
            Ok(found) => ok(format!(
                r#"<TraCuuThongTinCongDanResponse xmlns="{REPLY_NS}"><CongdanCollection>{}</CongdanCollection></TraCuuThongTinCongDanResponse>"#,
                found.map(citizen_xml).unwrap_or_default()
            )),
            Err(e) => fault(&e),
        },
        "XacThucThongTinCongDan" => match matching(&population, &request.fields) {
            Ok(found) => ok(format!(
                r#"<XacThucThongTinCongDanResponse xmlns="{REPLY_NS}"><TonTai>{}</TonTai></XacThucThongTinCongDanResponse>"#,
                found.is_some()
            )),
            Err(e) => fault(&e),
        },
        "XacMinhThongTinNoiOHienTai" => {
            let (Some(code), Some(detail)) = (
                request.fields.get("MaTinhThanh"),
                request.fields.get("ChiTiet"),
            ) else {
                return fault(
                    "NoiOHienTai {MaTinhThanh, ChiTiet} is required: the residence to check",
                );
            };
            match matching(&population, &request.fields) {
                Ok(found) => ok(format!(
                    r#"<XacMinhThongTinNoiOHienTaiResponse xmlns="{REPLY_NS}"><KetQua>{}</KetQua></XacMinhThongTinNoiOHienTaiResponse>"#,
                    found.is_some_and(|c| c.noi_o_hien_tai.0.trim_start_matches('0')
                        == code.trim_start_matches('0')
                        && same_place(&c.noi_o_hien_tai.1, detail))
                )),
                Err(e) => fault(&e),
            }
        }
        other => fault(&format!("unknown operation `{other}`")),
    }
}
