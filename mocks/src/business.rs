//! Mock of the national business registration database (CSDL quốc gia về đăng ký doanh
//! nghiệp): `GET /business/TraCuuThongTinDoanhNghiep?MaSoDoanhNghiep=0100107123` over a
//! synthetic register generated deterministically from a seed: at least 5,000 enterprises,
//! some with branches (`-001`…), some dissolved or suspended. Replies follow the gateway's
//! shape: `{StatusCode, Status, ThrowException, Description, ResultObject}`.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One enterprise or branch of the register.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Enterprise {
    /// Mã số doanh nghiệp: 10 digits, `-NNN` for a branch.
    pub code: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub address: String,
    pub representative: String,
}

pub const ACTIVE: &str = "Đang hoạt động";
pub const DISSOLVED: &str = "Đã giải thể";
pub const SUSPENDED: &str = "Tạm ngừng kinh doanh";

const PROVINCES: [(&str, &str); 8] = [
    ("01", "Thành phố Hà Nội"),
    ("02", "Thành phố Hải Phòng"),
    ("03", "Thành phố Hồ Chí Minh"),
    ("04", "Thành phố Đà Nẵng"),
    ("18", "Tỉnh Quảng Ninh"),
    ("23", "Tỉnh Bắc Ninh"),
    ("36", "Tỉnh Nghệ An"),
    ("37", "Thành phố Cần Thơ"),
];
const KINDS: [&str; 3] = ["CÔNG TY TNHH", "CÔNG TY CỔ PHẦN", "DOANH NGHIỆP TƯ NHÂN"];
const WORDS: [&str; 16] = [
    "AN PHÁT",
    "HÒA BÌNH",
    "ĐẠI VIỆT",
    "SAO MAI",
    "THÀNH CÔNG",
    "MINH KHANG",
    "NAM Á",
    "TRƯỜNG SƠN",
    "HỒNG HÀ",
    "PHƯƠNG ĐÔNG",
    "TÂN TIẾN",
    "BÁCH KHOA",
    "KIM LONG",
    "VIỆT HƯNG",
    "LẠC HỒNG",
    "THIÊN AN",
];
const TRADES: [&str; 8] = [
    "CÔNG NGHỆ",
    "THIẾT BỊ ĐO LƯỜNG",
    "KIỂM ĐỊNH CHẤT LƯỢNG",
    "XÂY DỰNG",
    "THƯƠNG MẠI",
    "Y TẾ",
    "CƠ KHÍ",
    "PHẦN MỀM",
];
const FAMILY: [&str; 8] = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"];
const MIDDLE: [&str; 6] = ["Văn", "Thị", "Minh", "Đức", "Thu", "Quang"];
const GIVEN: [&str; 10] = [
    "An", "Bình", "Cường", "Dung", "Giang", "Hà", "Khoa", "Lan", "Nam", "Phúc",
];
const STREETS: [&str; 6] = [
    "Trần Duy Hưng",
    "Lê Lợi",
    "Nguyễn Trãi",
    "Hai Bà Trưng",
    "Láng Hạ",
    "Điện Biên Phủ",
];

/// The synthetic register.
#[derive(Clone)]
pub struct Registry {
    by_code: Arc<BTreeMap<String, Enterprise>>,
}

impl Registry {
    /// `enterprises` head offices (branches come on top), the same for the same seed.
    pub fn generate(seed: u64, enterprises: usize) -> Registry {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut by_code = BTreeMap::new();
        let pick = |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
        let mut heads = 0;
        while heads < enterprises {
            let (prefix, province) = PROVINCES[rng.random_range(0..PROVINCES.len())];
            let code = format!("{prefix}{:08}", rng.random_range(0..100_000_000u32));
            if by_code.contains_key(&code) {
                continue;
            }
            let kind = pick(&mut rng, &KINDS);
            let name = format!(
                "{kind} {} {}",
                pick(&mut rng, &TRADES),
                pick(&mut rng, &WORDS)
            );
            let roll: f64 = rng.random();
            let status = if roll < 0.05 {
                DISSOLVED
            } else if roll < 0.08 {
                SUSPENDED
            } else {
                ACTIVE
            };
            let address = format!(
                "Số {} đường {}, {province}",
                rng.random_range(1..300),
                pick(&mut rng, &STREETS)
            );
            let representative = format!(
                "{} {} {}",
                pick(&mut rng, &FAMILY),
                pick(&mut rng, &MIDDLE),
                pick(&mut rng, &GIVEN)
            );
            let branches = if rng.random::<f64>() < 0.1 {
                rng.random_range(1..4)
            } else {
                0
            };
            for b in 1..=branches {
                by_code.insert(
                    format!("{code}-{b:03}"),
                    Enterprise {
                        code: format!("{code}-{b:03}"),
                        name: format!("CHI NHÁNH {b} - {name}"),
                        kind: "Chi nhánh".into(),
                        status: status.into(),
                        address: address.clone(),
                        representative: representative.clone(),
                    },
                );
            }
            by_code.insert(
                code.clone(),
                Enterprise {
                    code,
                    name,
                    kind: kind.into(),
                    status: status.into(),
                    address,
                    representative,
                },
            );
            heads += 1;
        }
        Registry {
            by_code: Arc::new(by_code),
        }
    }

    pub fn get(&self, code: &str) -> Option<&Enterprise> {
        self.by_code.get(code)
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    pub fn all(&self) -> impl Iterator<Item = &Enterprise> {
        self.by_code.values()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/business/TraCuuThongTinDoanhNghiep", get(lookup))
            .with_state(self.clone())
    }
}

/// 10 digits, optionally `-NNN`.
pub fn valid_code(code: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match code.split_once('-') {
        Some((mst, branch)) => digits(mst, 10) && digits(branch, 3),
        None => digits(code, 10),
    }
}

#[derive(Deserialize)]
struct LookupQuery {
    #[serde(rename = "MaSoDoanhNghiep")]
    code: Option<String>,
}

async fn lookup(State(registry): State<Registry>, Query(q): Query<LookupQuery>) -> Json<Value> {
    let code = q.code.unwrap_or_default();
    if !valid_code(&code) {
        return Json(json!({
            "StatusCode": 400, "Status": "ERROR", "ThrowException": true,
            "Description": "MaSoDoanhNghiep phải gồm 10 chữ số, chi nhánh thêm -NNN",
            "ResultObject": null,
        }));
    }
    match registry.get(&code) {
        None => Json(json!({
            "StatusCode": 404, "Status": "NOT_FOUND", "ThrowException": false,
            "Description": format!("Không tìm thấy doanh nghiệp {code}"), "ResultObject": null,
        })),
        Some(e) => Json(json!({
            "StatusCode": 200, "Status": "SUCCESS", "ThrowException": false, "Description": "",
            "ResultObject": {
                "NAME": e.name,
                "ENTERPRISE_GDT_CODE": e.code,
                "ENTERPRISE_STATUS_NAME": e.status,
                "HO_ADDRESS_FULLTEXT": e.address,
                "MainInformation": {
                    "NAME": e.name, "ENTERPRISE_GDT_CODE": e.code,
                    "ENTERPRISE_TYPE_NAME": e.kind, "ENTERPRISE_STATUS_NAME": e.status,
                },
                "HOAdress": { "AddressFullText": e.address },
                "Representatives": [ { "FULL_NAME": e.representative } ],
            },
        })),
    }
}
