//! The mock unit systems' traffic: events written the way each unit's own system does —
//! STAMEQ SOAP, NAFOSTED JSON, IP Office CSV and XML exports in TCVN3, VARANS JSON with PDF
//! results — for dossiers going through their whole life.
//!
//! A dossier's life, in the order a unit reports it: received (status 1), accepted (2),
//! processing (4), sometimes additional documents requested (5) and processing again, fee
//! due (6, with a fee request when the dossier was submitted online), paid and processing
//! again (4), done (9, with the result document: STAMEQ, VARANS, IP Office), result
//! returned (10). Each status change is a `dossier_sync` event and a `dossier_progress`
//! step. A share of events is deliberately bad (an unknown status word, an impossible
//! date, a missing identity number), as real systems produce now and then; the bus must
//! dead-letter them with a clear reason and go on.

use base64::Engine;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use wording::{soap, status_word, tcvn3_bytes, tcvn3_chars, unit_name, xml_escape};

mod wording;

/// One event as a unit system posts it to the bus.
#[derive(Clone, Debug)]
pub struct UnitEvent {
    pub unit: &'static str,
    pub flow: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The dossier it belongs to.
    pub dossier: String,
    /// Deliberately wrong: its mapping must refuse it.
    pub bad: bool,
}

/// A step of a dossier's life: the portal status and what the officer wrote.
#[derive(Clone, Copy)]
struct Step {
    status: u8,
    note: &'static str,
}

const SURNAMES: [&str; 8] = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"];
const MIDDLE: [&str; 6] = ["Văn", "Thị", "Đức", "Minh", "Thu", "Quang"];
const GIVEN: [&str; 8] = ["An", "Bình", "Cường", "Dũng", "Hà", "Lan", "Nam", "Trang"];
const OFFICERS: [&str; 4] = [
    "Trần Quang Vinh",
    "Đỗ Văn Nam",
    "Vũ Thị Thanh",
    "Phạm Thị Hồng",
];
const COMPANIES: [(&str, &str); 3] = [
    ("0100308695", "Công ty TNHH Kiểm định Chất lượng Sao Mai"),
    ("0100440633", "Công ty cổ phần Thực phẩm Sen Vàng"),
    ("0100631043", "Công ty cổ phần Bệnh viện Hồng Ngọc"),
];

/// A deterministic generator of unit traffic (same seed, same events).
pub struct Traffic {
    rng: StdRng,
    bad_share: f64,
    next: u64,
    /// Seconds since the epoch of the current simulated day's start, for realistic dates.
    clock: i64,
}

impl Traffic {
    /// `bad_share` of events (0.0–1.0) are deliberately wrong.
    pub fn new(seed: u64, bad_share: f64) -> Traffic {
        Traffic {
            rng: StdRng::seed_from_u64(seed),
            bad_share,
            next: 1,
            // 2024-03-04 08:00 in Vietnam.
            clock: 1_709_514_000,
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn person(&mut self) -> (String, String, String) {
        let name = format!(
            "{} {} {}",
            self.pick(&SURNAMES),
            self.pick(&MIDDLE),
            self.pick(&GIVEN)
        );
        let id = format!("0010{:08}", self.rng.random_range(0..100_000_000u32));
        let phone = format!("09{:08}", self.rng.random_range(0..100_000_000u32));
        (name, id, phone)
    }

    fn steps(&mut self, with_fee: bool) -> Vec<Step> {
        let mut steps = vec![
            Step {
                status: 1,
                note: "Tiếp nhận hồ sơ trực tuyến",
            },
            Step {
                status: 2,
                note: "Hồ sơ hợp lệ, chuyển xử lý",
            },
            Step {
                status: 4,
                note: "Đang thẩm định hồ sơ",
            },
        ];
        if self.rng.random_bool(0.3) {
            steps.push(Step {
                status: 5,
                note: "Yêu cầu bổ sung giấy tờ",
            });
            steps.push(Step {
                status: 4,
                note: "Đã nhận giấy tờ bổ sung, tiếp tục thẩm định",
            });
        }
        if with_fee {
            steps.push(Step {
                status: 6,
                note: "Thông báo nộp phí, lệ phí",
            });
            steps.push(Step {
                status: 4,
                note: "Đã nhận phí, tiếp tục xử lý",
            });
        }
        steps.push(Step {
            status: 9,
            note: "Đã xử lý xong, ký kết quả",
        });
        steps.push(Step {
            status: 10,
            note: "Đã trả kết quả cho tổ chức, cá nhân",
        });
        steps
    }

    /// A new dossier of `unit` whose applicant is the citizen `name` with identity number
    /// `id` (12-digit số định danh, or a 9-digit CMND, which NAFOSTED sends among the
    /// applicant's identity papers and the others as the applicant's number): the dossier
    /// a unit sends before it may look that person up.
    pub fn dossier_naming(&mut self, unit: &str, name: &str, id: &str) -> UnitEvent {
        let unit = unit_name(unit);
        let n = self.next;
        self.next += 1;
        self.clock += 137;
        let holder = Holder {
            name: name.to_string(),
            id: id.to_string(),
            phone: "0912345678".into(),
            org: false,
        };
        let ctx = Ctx {
            unit,
            n,
            step: Step {
                status: 1,
                note: "Tiếp nhận hồ sơ",
            },
            at: self.clock,
            holder: &holder,
            bad: false,
            officer: OFFICERS[0],
        };
        dossier_event(&ctx)
    }

    /// The whole life of one new dossier of `unit`, in the order the unit sends it.
    pub fn dossier_life(&mut self, unit: &str) -> Vec<UnitEvent> {
        let unit = unit_name(unit);
        let n = self.next;
        self.next += 1;
        self.clock += 137;
        let with_fee = matches!(unit, "nafosted" | "ipo") || self.rng.random_bool(0.2);
        let steps = self.steps(with_fee);
        let (name, id, phone) = self.person();
        let company = *self.pick(&COMPANIES);
        let org = self.rng.random_bool(0.4);
        let holder = Holder {
            name: if org { company.1.to_string() } else { name },
            id: if org { company.0.to_string() } else { id },
            phone,
            org,
        };
        let mut events = Vec::new();
        let mut t = self.clock;
        for (i, step) in steps.iter().enumerate() {
            t += 3_600 * (1 + i as i64 * 5);
            let bad = self.rng.random_bool(self.bad_share.clamp(0.0, 1.0));
            let ctx = Ctx {
                unit,
                n,
                step: *step,
                at: t,
                holder: &holder,
                bad,
                officer: OFFICERS[i % OFFICERS.len()],
            };
            events.push(dossier_event(&ctx));
            events.push(progress_event(&ctx));
            // Fees of online dossiers go through the payment platform; the others are paid
            // at the counter (the finished event says so).
            if step.status == 6 && ctx.channel() == Channel::Online {
                events.push(fee_event(&ctx));
            }
            if step.status == 9 && matches!(unit, "stameq" | "varans" | "ipo") {
                events.push(result_event(&ctx));
            }
        }
        events
    }
}

struct Holder {
    name: String,
    id: String,
    phone: String,
    org: bool,
}

struct Ctx<'a> {
    unit: &'static str,
    n: u64,
    step: Step,
    /// Seconds since the epoch.
    at: i64,
    holder: &'a Holder,
    bad: bool,
    officer: &'static str,
}

/// How a dossier was submitted, fixed per dossier so its events agree: about 60 % online,
/// 35 % at the counter, 5 % by post (the mix the KPIs should show, not all green).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    Online,
    Counter,
    Post,
}

impl Ctx<'_> {
    fn channel(&self) -> Channel {
        // Spread over the dossier numbers, so that a short demo sees every channel.
        match (self.n * 13 + 5) % 20 {
            0 => Channel::Post,
            1..=7 => Channel::Counter,
            _ => Channel::Online,
        }
    }

    /// Three dossiers in four have their components digitised.
    fn digitised(&self) -> bool {
        self.n % 4 != 3
    }

    fn dossier(&self) -> String {
        match self.unit {
            "stameq" => format!("STAMEQ-2024-{:06}", self.n),
            "nafosted" => format!("NAFOSTED-2024-{:05}", self.n),
            "ipo" => format!("4-2024-{:05}", self.n),
            _ => format!("VARANS-2024-{:04}", self.n),
        }
    }

    /// Local (UTC+7) date-time parts.
    fn local(&self) -> (i64, u32, u32, u32, u32) {
        let t = self.at + 7 * 3600;
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (y, m, d) = lienthong_mapping::datetime::civil_from_days(days);
        (y, m, d, (secs / 3600) as u32, (secs / 60 % 60) as u32)
    }

    /// `dd/MM/yyyy HH:mm`, or an impossible date when the event is meant to be bad.
    fn vn_date(&self) -> String {
        let (y, m, d, h, mi) = self.local();
        if self.bad {
            return format!("31/02/{y} {h:02}:{mi:02}");
        }
        format!("{d:02}/{m:02}/{y} {h:02}:{mi:02}")
    }

    /// How the citizen wants to hear from the unit: one in three by Zalo, the rest SMS.
    fn notify_by(&self) -> &'static str {
        if self.n.is_multiple_of(3) {
            "zalo"
        } else {
            "sms"
        }
    }

    fn iso(&self) -> String {
        let (y, m, d, h, mi) = self.local();
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:00+07:00")
    }
}

fn dossier_event(c: &Ctx<'_>) -> UnitEvent {
    let code = c.dossier();
    let status = status_word(c.unit, c.step.status, c.bad);
    let h = c.holder;
    let (flow, content_type, body) = match c.unit {
        "stameq" => {
            let kind = if h.org { "doanhnghiep" } else { "congdan" };
            let loai = if c.step.status == 1 { "moi" } else { "capnhat" };
            let body = format!(
                r#"<tc:GuiHoSo xmlns:tc="http://stameq.gov.vn/motcua/1.0"><tc:HoSo loai="{loai}"><tc:SoHoSo>{code}</tc:SoHoSo><tc:MaThuTuc>1.000412</tc:MaThuTuc><tc:TenThuTuc>Đăng ký kiểm tra nhà nước về chất lượng hàng hóa nhập khẩu</tc:TenThuTuc><tc:NguoiNop loai="{kind}"><tc:HoTen>{}</tc:HoTen><tc:MaSo>{}</tc:MaSo><tc:DienThoai>{}</tc:DienThoai></tc:NguoiNop><tc:NgayNhan>{}</tc:NgayNhan><tc:TinhTrang>{status}</tc:TinhTrang><tc:HinhThucNop>{}</tc:HinhThucNop></tc:HoSo></tc:GuiHoSo>"#,
                xml_escape(&h.name),
                h.id,
                h.phone,
                c.vn_date(),
                match c.channel() {
                    Channel::Online => "TRUC_TUYEN",
                    Channel::Counter => "TRUC_TIEP",
                    Channel::Post => "BUU_CHINH",
                }
            );
            ("dossier_sync", "text/xml; charset=utf-8", soap(&body))
        }
        "nafosted" => {
            let mut applicant = json!({"type": if h.org { "organization" } else { "individual" }, "fullName": h.name, "phone": h.phone});
            if h.id.len() == 9 {
                // An old CMND: among the identity papers (the applicant's own number is
                // a 12-digit one).
                applicant["identityPapers"] = json!([{"kind": "cmnd", "number": h.id}]);
            } else {
                applicant[if h.org { "taxCode" } else { "idNumber" }] = json!(h.id);
            }
            let channel = match c.channel() {
                Channel::Online => "online",
                Channel::Counter => "counter",
                Channel::Post => "postal",
            };
            let mut body = json!({
                "eventType": "dossier.updated", "dossierCode": code, "procedureCode": "1.008433",
                "procedureName": "Đăng ký đề tài nghiên cứu cơ bản do Quỹ tài trợ",
                "applicant": applicant, "submittedAt": if c.bad { "31/02/2024".to_string() } else { c.iso() },
                "status": status, "channel": channel, "digitised": c.digitised(),
                "fees": [{"code": "LP-NAF-01", "name": "Lệ phí thẩm định hồ sơ", "amount": 500000, "kind": "charge"}]
            });
            // Online dossiers pay through the payment platform (the fee request flow);
            // the others pay at the counter, which the finished event reports.
            if c.step.status >= 9 && c.channel() != Channel::Online {
                body["paidVia"] = json!("counter");
            }
            if c.step.status >= 9 && !c.n.is_multiple_of(3) {
                body["results"] = json!([{"id": format!("kq-{}", c.n), "resultCode": format!("KQ.NAFOSTED.{}", c.n),
                    "title": "Quyết định phê duyệt đề tài", "url": format!("https://nafosted.gov.vn/ket-qua/kq-{}.pdf", c.n)}]);
            }
            (
                "dossier_sync",
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            )
        }
        "ipo" => {
            let (y, m, d, _, _) = c.local();
            let date = if c.bad {
                format!("31/02/{y}")
            } else {
                format!("{d:02}/{m:02}/{y}")
            };
            let text = format!(
                "so_don;ma_tthc;ten_tthc;loai_don;ten_doi_tuong;loai_chu_don;ten_chu_don;ma_chu_don;dien_thoai;email;ngay_nop;ngay_hen_tra;trang_thai;nop_truc_tuyen\r\n{code};1.005146;Đăng ký nhãn hiệu;Nhãn hiệu;Nhãn hiệu cho nhóm 30;{};{};{};{};;{date};;{status};{}\r\n",
                if h.org { "TC" } else { "CN" },
                h.name,
                h.id,
                h.phone,
                // IPAS: 1 online, 0 at the counter, empty for a paper filing.
                match c.channel() {
                    Channel::Online => "1",
                    Channel::Counter => "0",
                    Channel::Post => "",
                }
            );
            ("dossier_sync", "text/csv", tcvn3_bytes(&text))
        }
        _ => {
            let mut applicant = json!({"kind": if h.org { "ORG" } else { "PERSON" }, "name": h.name, "phone": h.phone});
            applicant[if h.org { "taxCode" } else { "personalId" }] = json!(h.id);
            let mut body = json!({
                "dossierId": code, "procedure": {"code": "1.012345", "name": "Cấp giấy phép tiến hành công việc bức xạ"},
                "licenceType": "Sử dụng thiết bị X-quang chẩn đoán y tế", "facility": {"name": "Phòng khám đa khoa"},
                "applicant": applicant, "receivedAt": c.at,
                "submissionChannel": match c.channel() {
                    Channel::Online => "ONLINE",
                    Channel::Counter => "COUNTER",
                    Channel::Post => "POST",
                },
                "state": if c.bad { json!(99) } else { json!(status.parse::<u32>().unwrap()) }
            });
            if c.step.status >= 9 {
                body["licence"] = json!({"number": format!("GP-{}/ATBXHN", c.n)});
                // Two licences in three are issued as files the portal can fetch.
                if !c.n.is_multiple_of(3) {
                    body["licence"]["fileUrl"] =
                        json!(format!("https://varans.vn/giay-phep/GP-{}.pdf", c.n));
                }
            }
            (
                "dossier_sync",
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            )
        }
    };
    UnitEvent {
        unit: unit_name(c.unit),
        flow,
        content_type,
        body,
        dossier: code,
        bad: c.bad,
    }
}

fn progress_event(c: &Ctx<'_>) -> UnitEvent {
    let code = c.dossier();
    let status = status_word(c.unit, c.step.status, false);
    let (content_type, body) = match c.unit {
        "stameq" => {
            let (y, m, d, h, mi) = c.local();
            let body = format!(
                r#"<CapNhatXuLy xmlns="http://stameq.gov.vn/motcua/1.0"><SoHoSo>{code}</SoHoSo><CanBo><HoTen>{}</HoTen><ChucVu>Chuyên viên</ChucVu></CanBo><ThoiDiem>{d:02}/{m:02}/{y} {h:02}:{mi:02}</ThoiDiem><NoiDung>{}</NoiDung><TinhTrang>{status}</TinhTrang><LienHe><DienThoai>{}</DienThoai><KenhNhanTin>{}</KenhNhanTin></LienHe></CapNhatXuLy>"#,
                c.officer, c.step.note, c.holder.phone, c.notify_by()
            );
            ("text/xml; charset=utf-8", soap(&body))
        }
        "nafosted" => (
            "application/json",
            serde_json::to_vec(&json!({"dossierCode": code, "step": {"officer": c.officer, "at": c.iso(), "note": c.step.note, "status": status},
                "applicant": {"phone": c.holder.phone, "notifyBy": c.notify_by()}})).unwrap(),
        ),
        "ipo" => {
            let (y, m, d, h, mi) = c.local();
            let xml = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><NhatKyXuLy><XuLy so_don="{code}"><CanBo>{}</CanBo><ThoiDiem>{d:02}/{m:02}/{y} {h:02}:{mi:02}</ThoiDiem><NoiDung>{}</NoiDung><TrangThai>{status}</TrangThai><DienThoai>{}</DienThoai></XuLy></NhatKyXuLy>"#,
                tcvn3_chars(c.officer),
                tcvn3_chars(c.step.note),
                c.holder.phone
            );
            ("text/xml; charset=utf-8", xml.into_bytes())
        }
        _ => (
            "application/json",
            serde_json::to_vec(&json!({"dossierId": code, "handledBy": {"name": c.officer, "division": "Phòng Cấp phép"}, "at": c.at, "comment": c.step.note, "state": status.parse::<u32>().unwrap(),
                "contact": {"phone": c.holder.phone, "notifyBy": c.notify_by()}})).unwrap(),
        ),
    };
    UnitEvent {
        unit: unit_name(c.unit),
        flow: "dossier_progress",
        content_type,
        body,
        dossier: code,
        bad: false,
    }
}

fn fee_event(c: &Ctx<'_>) -> UnitEvent {
    let code = c.dossier();
    let h = c.holder;
    let (content_type, body) = if c.unit == "stameq" {
        let body = format!(
            r#"<ThongBaoPhi xmlns="http://stameq.gov.vn/motcua/1.0"><SoHoSo>{code}</SoHoSo><MaTTHC>1.000412</MaTTHC><MaThamChieu>TDC{:08}</MaThamChieu><NgayThongBao>{}</NgayThongBao><TongTien>1.500.000</TongTien><NguoiNop><HoTen>{}</HoTen><MaDinhDanh>{}</MaDinhDanh><DienThoai>{}</DienThoai><KenhNhanTin>{}</KenhNhanTin></NguoiNop><KhoanPhi><Ma>PHI-KD</Ma><Ten>Phí kiểm định phương tiện đo</Ten><SoTien>1.200.000</SoTien><Loai>PHI</Loai></KhoanPhi><KhoanPhi><Ma>LP-GCN</Ma><Ten>Lệ phí cấp giấy chứng nhận</Ten><SoTien>300.000</SoTien><Loai>LEPHI</Loai></KhoanPhi></ThongBaoPhi>"#,
            c.n,
            c.iso(),
            xml_escape(&h.name),
            h.id,
            h.phone,
            c.notify_by()
        );
        ("text/xml; charset=utf-8", soap(&body))
    } else if c.unit == "varans" {
        let mut payer = json!({"name": h.name, "phone": h.phone, "notifyBy": c.notify_by()});
        payer[if h.org { "taxCode" } else { "personalId" }] = json!(h.id);
        (
            "application/json",
            serde_json::to_vec(&json!({
                "dossierId": code, "procedure": {"code": "1.012345"},
                "payment": {"reference": format!("ATBX{:08}", c.n), "amount": 2500000,
                    "requestedAt": c.iso(), "payer": payer,
                    "items": [{"code": "PHI-TD", "name": "Phí thẩm định cấp giấy phép", "amount": 2000000, "kind": "FEE"},
                              {"code": "LP-GP", "name": "Lệ phí cấp giấy phép", "amount": 500000, "kind": "CHARGE"}]}
            }))
            .unwrap(),
        )
    } else if c.unit == "nafosted" {
        let mut payer = json!({"fullName": h.name, "phone": h.phone, "notifyBy": c.notify_by()});
        payer[if h.org { "taxCode" } else { "idNumber" }] = json!(h.id);
        (
            "application/json",
            serde_json::to_vec(&json!({
                "dossierCode": code, "procedureCode": "1.008433", "paymentRef": format!("NAF{:08}", c.n),
                "amount": 500000, "requestedAt": c.iso(), "payer": payer,
                "fees": [{"code": "LP-NAF-01", "name": "Lệ phí thẩm định hồ sơ", "amount": 500000, "kind": "charge"}]
            }))
            .unwrap(),
        )
    } else {
        let (y, m, d, _, _) = c.local();
        let mut bytes = b"ma_thong_bao,so_don,ma_tthc,ngay_thong_bao,loai,ma_phi,ten_phi,so_tien,nguoi_nop,ma_nguoi_nop,dia_chi,dien_thoai\r\n".to_vec();
        bytes.extend(
            format!(
                "TB-24-{:06},{code},1.005146,{d:02}/{m:02}/{y},LEPHI,LP-NH-NOP,",
                c.n
            )
            .as_bytes(),
        );
        bytes.extend(tcvn3_bytes("Lệ phí nộp đơn nhãn hiệu"));
        bytes.extend(b",150000,");
        bytes.extend(tcvn3_bytes(&h.name));
        bytes.extend(format!(",{},,{}\r\n", h.id, h.phone).as_bytes());
        ("text/csv", bytes)
    };
    UnitEvent {
        unit: unit_name(c.unit),
        flow: "fee_request",
        content_type,
        body,
        dossier: code,
        bad: false,
    }
}

fn result_event(c: &Ctx<'_>) -> UnitEvent {
    let code = c.dossier();
    let h = c.holder;
    let pdf = format!(
        "%PDF-1.4\n% {code}\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
    let (content_type, body) = if c.unit == "ipo" {
        // The IP Office's grant export: UTF-8 XML with TCVN3 text, like its other exports.
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CapVanBang so_don=\"{code}\"><SoVanBang>4-{:07}</SoVanBang><LoaiVanBang>{}</LoaiVanBang><ChuVanBang><Ten>{}</Ten><MaDinhDanh>{}</MaDinhDanh><DienThoai>{}</DienThoai></ChuVanBang><TepVanBang ten_tep=\"VB-{:07}.pdf\">{b64}</TepVanBang></CapVanBang>\n",
            c.n,
            tcvn3_chars("Giấy chứng nhận đăng ký nhãn hiệu"),
            xml_escape(&tcvn3_chars(&h.name)),
            h.id,
            h.phone,
            c.n
        );
        ("text/xml; charset=utf-8", body.into_bytes())
    } else if c.unit == "stameq" {
        let body = format!(
            r#"<TraKetQua xmlns="http://stameq.gov.vn/motcua/1.0"><SoHoSo>{code}</SoHoSo><ChuSoHuu><MaDinhDanh>{}</MaDinhDanh><DienThoai>{}</DienThoai></ChuSoHuu><GiayChungNhan><SoHieu>TĐC-2024/{:05}</SoHieu><TenTep>GCN-{code}.pdf</TenTep><NoiDung>{b64}</NoiDung></GiayChungNhan></TraKetQua>"#,
            h.id, h.phone, c.n
        );
        ("text/xml; charset=utf-8", soap(&body))
    } else {
        let mut holder = json!({"phone": h.phone});
        holder[if h.org { "taxCode" } else { "personalId" }] = json!(h.id);
        (
            "application/json",
            serde_json::to_vec(&json!({"dossierId": code, "licence": {"number": format!("GP-{}/ATBXHN", c.n), "validUntil": "2029-03-10", "holder": holder, "pdf": {"fileName": format!("GP-{}.pdf", c.n), "base64": b64}}})).unwrap(),
        )
    };
    UnitEvent {
        unit: unit_name(c.unit),
        flow: "result",
        content_type,
        body,
        dossier: code,
        bad: false,
    }
}
