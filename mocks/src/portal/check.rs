//! The portal mock's checks of a call's body, before it looks at what it holds: a
//! `DongBoHoSoMC` row whole and with known fields only, codes and dates in the portal's
//! forms, a progress step naming its dossier. [`check_request`] is also what the suite
//! holds every shipped mapping's expected output to.

use serde_json::Value;

pub(super) fn status_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `yyyyMMddHHmmss` with plausible ranges.
pub(super) fn valid_portal_date(s: &str) -> bool {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let n = |a: usize, b: usize| s[a..b].parse::<u32>().unwrap_or(99);
    (1..=12).contains(&n(4, 6))
        && (1..=31).contains(&n(6, 8))
        && n(8, 10) < 24
        && n(10, 12) < 60
        && n(12, 14) < 60
}

/// The fields of a `DongBoHoSoMC` row the portal knows (national-formats.md: the field
/// list of provincial clients, and the newer fields of opencps-v2 and the C# one-stop
/// system): anything else is refused, as a strict JSON binder would.
const ROW_FIELDS: &[&str] = &[
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "MaLinhVuc",
    "TenLinhVuc",
    "SoBienNhan",
    "ChuHoSo",
    "LoaiDoiTuong",
    "MaDoiTuong",
    "ThongTinKhac",
    "Email",
    "Fax",
    "SoDienThoai",
    "TrichYeuHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayTra",
    "NgayKetThucXuLy",
    "TrangThaiHoSo",
    "ThongTinTra",
    "HinhThuc",
    "DonViXuLy",
    "GhiChu",
    "TaiLieuNop",
    "DanhSachLePhi",
    "DanhSachTepDinhKemKhac",
    "DanhSachHoSoBoSung",
    "DanhSachGiayToKetQua",
    "KenhThucHien",
    "NgayNopHoSo",
    "NgayTuChoi",
    "NoiNopHoSo",
    "SoGiayToChuHoSo",
    "HoSoCoThanhPhanSoHoa",
    "TaiKhoanDuocXacThucVoiVNeID",
    "DuocThanhToanTrucTuyen",
    "DinhDanhCHS",
    "DSKetNoiCSDL",
];

/// The fields of a result document (`DanhSachGiayToKetQua[]`): `MaGiayToKetQua` is the
/// procedure's result-type code, `SoKyHieu` the document's own number.
const RESULT_FIELDS: &[&str] = &[
    "TenGiayTo",
    "MaThanhPhanHoSo",
    "GiayToId",
    "DuongDanTepTinKetQua",
    "MaGiayToKetQua",
    "SoKyHieu",
];

/// The fields of a submitted document (`TaiLieuNop[]`). `DuocTaiSuDung`: 0 not reused,
/// 1 reused, 2 reused in place of an earlier result, whose result code is then
/// `MaKetQuaThayThe`; `DuocLayTuKhoDMQG`: taken from the citizen's store on the portal.
const DOCUMENT_FIELDS: &[&str] = &[
    "TepDinhKemId",
    "TenTepDinhKem",
    "IsDeleted",
    "MaThanhPhanHoSo",
    "DuongDanTaiTepTin",
    "DuocSoHoa",
    "DuocTaiSuDung",
    "DuocLayTuKhoDMQG",
    "MaKetQuaThayThe",
];

/// A submitted document's check: known fields, and a reuse code the portal knows.
fn check_document(doc: &Value, at: &str) -> Result<(), String> {
    if let Some(unknown) = unknown_field(doc, DOCUMENT_FIELDS) {
        return Err(format!("{at}.{unknown}: trường không được hỗ trợ"));
    }
    match doc.get("DuocTaiSuDung").and_then(status_of) {
        None | Some(0 | 1) => Ok(()),
        Some(2)
            if doc["MaKetQuaThayThe"]
                .as_str()
                .is_some_and(|c| !c.trim().is_empty()) =>
        {
            Ok(())
        }
        Some(2) => Err(format!(
            "{at}.MaKetQuaThayThe là bắt buộc khi DuocTaiSuDung là 2 (dùng thay kết quả trước)"
        )),
        Some(_) => Err(format!("{at}.DuocTaiSuDung phải là 0, 1 hoặc 2")),
    }
}

/// The fields of a round of supplements (`DanhSachHoSoBoSung[]`), with its dates.
const SUPPLEMENT_FIELDS: &[&str] = &[
    "HoSoBoSungId",
    "NguoiYeuCauBoSung",
    "NoiDungBoSung",
    "NgayBoSung",
    "NguoiTiepNhanBoSung",
    "ThongTinTiepNhan",
    "NgayTiepNhanBoSung",
    "TrangThaiBoSung",
    "DanhSachGiayToBoSung",
    "DanhSachLePhiBoSung",
    "NgayHenTraTruoc",
    "NgayHenTraMoi",
];

/// A round of supplements' check: known fields, an id, and dates in the portal's form.
fn check_supplement(round: &Value, at: &str) -> Result<(), String> {
    if let Some(unknown) = unknown_field(round, SUPPLEMENT_FIELDS) {
        return Err(format!("{at}.{unknown}: trường không được hỗ trợ"));
    }
    if round["HoSoBoSungId"]
        .as_str()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(format!("{at}.HoSoBoSungId là bắt buộc"));
    }
    for date in [
        "NgayBoSung",
        "NgayTiepNhanBoSung",
        "NgayHenTraTruoc",
        "NgayHenTraMoi",
    ] {
        if let Some(s) = round[date].as_str().filter(|s| !s.is_empty())
            && !valid_portal_date(s)
        {
            return Err(format!("{at}.{date} phải có dạng yyyyMMddHHmmss"));
        }
    }
    Ok(())
}

/// The first field of `object` not in `known`, if any.
fn unknown_field<'a>(object: &'a Value, known: &[&str]) -> Option<&'a str> {
    object
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|k| !known.contains(k))
}

/// A dossier item: its code and status. Every row is whole, an update as much as a new
/// dossier: it names the procedure, applicant, intake date and status, because the
/// portal replaces the row it holds with the one it is sent (the real clients re-send
/// the full row: opencps-v2 keeps it and sends it again; a partial row would blank the
/// rest). Fields the portal does not know are refused.
pub(super) fn validate_dossier(item: &Value, at: usize) -> Result<(String, Option<i64>), String> {
    let field = |name: &str| format!("data[{at}].{name}");
    let code = item["MaHoSo"].as_str().filter(|s| !s.trim().is_empty());
    let code = code.ok_or_else(|| format!("{} là bắt buộc", field("MaHoSo")))?;
    if let Some(unknown) = unknown_field(item, ROW_FIELDS) {
        return Err(format!("{}: trường không được hỗ trợ", field(unknown)));
    }
    for required in ["MaTTHC", "ChuHoSo", "NgayTiepNhan"] {
        if item[required].as_str().is_none_or(|s| s.trim().is_empty()) {
            return Err(format!(
                "{} là bắt buộc (mỗi lần đồng bộ gửi cả hồ sơ)",
                field(required)
            ));
        }
    }
    let status = Some(
        item.get("TrangThaiHoSo")
            .and_then(status_of)
            .filter(|s| (1..=10).contains(s))
            .ok_or_else(|| format!("{} phải là mã trạng thái 1–10", field("TrangThaiHoSo")))?,
    );
    for (j, doc) in item["TaiLieuNop"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        check_document(doc, &field(&format!("TaiLieuNop[{j}]")))?;
    }
    let rounds = item["DanhSachHoSoBoSung"].as_array().into_iter().flatten();
    for (j, round) in rounds.enumerate() {
        check_supplement(round, &field(&format!("DanhSachHoSoBoSung[{j}]")))?;
    }
    if let Some(docs) = item.get("DanhSachGiayToKetQua").and_then(Value::as_array) {
        for (j, doc) in docs.iter().enumerate() {
            if let Some(unknown) = unknown_field(doc, RESULT_FIELDS) {
                return Err(format!(
                    "{}: trường không được hỗ trợ",
                    field(&format!("DanhSachGiayToKetQua[{j}].{unknown}"))
                ));
            }
            for required in ["TenGiayTo", "GiayToId"] {
                if doc[required].as_str().is_none_or(|s| s.trim().is_empty()) {
                    return Err(format!(
                        "{} là bắt buộc",
                        field(&format!("DanhSachGiayToKetQua[{j}].{required}"))
                    ));
                }
            }
        }
    }
    for date in [
        "NgayTiepNhan",
        "NgayHenTra",
        "NgayTra",
        "NgayKetThucXuLy",
        "NgayNopHoSo",
        "NgayTuChoi",
    ] {
        if let Some(s) = item[date].as_str().filter(|s| !s.is_empty())
            && !valid_portal_date(s)
        {
            return Err(format!("{} phải có dạng yyyyMMddHHmmss", field(date)));
        }
    }
    if let Some(kind) = item.get("LoaiDoiTuong").filter(|v| !v.is_null()) {
        // 1 citizen, 2 enterprise, 3 state agency, 4 other organisation; one vendor
        // documents 0/1/2, so 0 is accepted too.
        if !matches!(status_of(kind), Some(0..=4)) {
            return Err(format!(
                "{} phải là 1 (công dân), 2 (doanh nghiệp), 3 (cơ quan nhà nước) hoặc 4 (tổ chức khác)",
                field("LoaiDoiTuong")
            ));
        }
    }
    // HinhThuc is how the result is handed over (1 by post), KenhThucHien how the dossier
    // came in: a channel code in HinhThuc is refused, as the portal's codes have it.
    let codes: [(&str, &[&str], &str); 2] = [
        (
            "HinhThuc",
            &["0", "1"],
            "0 hoặc 1 (1: trả kết quả qua bưu chính)",
        ),
        (
            "KenhThucHien",
            &["1", "2", "3"],
            "1 (trực tiếp), 2 (trực tuyến) hoặc 3 (bưu chính)",
        ),
    ];
    for (name, allowed, meaning) in codes {
        let given = match item.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if !allowed.contains(&given.as_str()) {
            return Err(format!("{} phải là {meaning}", field(name)));
        }
    }
    Ok((code.to_string(), status))
}

/// What a `DongBoHoSoMC` call carries once checked: whether it updates, and each
/// dossier's code and status.
pub(super) type CheckedSync = (bool, Vec<(String, Option<i64>)>);

/// The portal's check of a `DongBoHoSoMC` body, before it looks at what it holds.
pub(super) fn check_sync(body: &Value) -> Result<CheckedSync, String> {
    let updating = match body["isUpdating"].as_str() {
        Some("True") | Some("true") => true,
        Some("False") | Some("false") => false,
        _ => return Err("isUpdating phải là \"True\" hoặc \"False\"".into()),
    };
    let Some(items) = body["data"].as_array().filter(|d| !d.is_empty()) else {
        return Err("data phải là danh sách hồ sơ".into());
    };
    // Validate everything first: a call is taken whole or not at all.
    let checked = items
        .iter()
        .enumerate()
        .map(|(i, item)| validate_dossier(item, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((updating, checked))
}

/// The portal's check of a `CapNhatTienDoHoSoMC` body, before it looks at what it holds.
pub(super) fn check_progress(body: &Value) -> Result<&Vec<Value>, String> {
    let Some(items) = body["data"].as_array().filter(|d| !d.is_empty()) else {
        return Err("data phải là danh sách bước xử lý".into());
    };
    for (i, item) in items.iter().enumerate() {
        if item["MaHoSo"].as_str().is_none() {
            return Err(format!("data[{i}].MaHoSo là bắt buộc"));
        }
        if let Some(s) = item["ThoiDiemXuLy"].as_str()
            && !valid_portal_date(s)
        {
            return Err(format!(
                "data[{i}].ThoiDiemXuLy phải có dạng yyyyMMddHHmmss"
            ));
        }
        if !item["TrangThai"].is_null()
            && status_of(&item["TrangThai"]).is_none_or(|s| !(1..=10).contains(&s))
        {
            return Err(format!("data[{i}].TrangThai phải là mã trạng thái 1–10"));
        }
    }
    Ok(items)
}

/// The portal's own check of a call's body (what the bus's mapping produces, before the
/// connector adds the session and unit code): the suite applies it to every mapping's
/// expected output for the portal and the ministry's system (modelled on it).
pub fn check_request(body: &Value) -> Result<(), String> {
    match body["service"].as_str().unwrap_or_default() {
        "DongBoHoSoMC" => check_sync(body).map(|_| ()),
        "CapNhatTienDoHoSoMC" => check_progress(body).map(|_| ()),
        "TraCuuHoSo" | "LayThuTuc" => Ok(()),
        other => Err(format!("service `{other}` không được hỗ trợ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn portal_dates() {
        assert!(valid_portal_date("20261128083000"));
        assert!(!valid_portal_date("2026-11-28 08:30"));
        assert!(!valid_portal_date("20261328083000"));
    }

    #[test]
    fn a_channel_code_in_hinh_thuc_is_refused() {
        let row = |extra: Value| {
            let mut item = json!({"MaHoSo": "HS-1", "MaTTHC": "1.005140", "ChuHoSo": "A",
                "NgayTiepNhan": "20261128083000", "TrangThaiHoSo": 2});
            item.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            validate_dossier(&item, 0)
        };
        assert!(row(json!({"HinhThuc": "1", "KenhThucHien": "2"})).is_ok());
        let err = row(json!({"HinhThuc": "2"})).unwrap_err();
        assert!(err.contains("data[0].HinhThuc"), "{err}");
        assert!(row(json!({"KenhThucHien": "4"})).is_err());
    }

    #[test]
    fn a_round_of_supplements_has_its_id_known_fields_and_portal_dates() {
        let row = |round: Value| {
            json!({"MaHoSo": "HS-1", "MaTTHC": "1.008433", "ChuHoSo": "A",
                "NgayTiepNhan": "20261128083000", "TrangThaiHoSo": 5, "DanhSachHoSoBoSung": [round]})
        };
        let ok = json!({"HoSoBoSungId": "BS-1", "NgayBoSung": "20261201090000", "NgayHenTraMoi": "20261210170000"});
        assert!(validate_dossier(&row(ok), 0).is_ok());
        let bad_date = json!({"HoSoBoSungId": "BS-1", "NgayHenTraMoi": "10/12/2026"});
        let err = validate_dossier(&row(bad_date), 0).unwrap_err();
        assert!(
            err.contains("data[0].DanhSachHoSoBoSung[0].NgayHenTraMoi"),
            "{err}"
        );
        let err = validate_dossier(&row(json!({"NgayBoSung": "20261201090000"})), 0).unwrap_err();
        assert!(err.contains("HoSoBoSungId"), "{err}");
        let err = validate_dossier(&row(json!({"HoSoBoSungId": "x", "Han": 1})), 0).unwrap_err();
        assert!(err.contains("DanhSachHoSoBoSung[0].Han"), "{err}");
    }

    #[test]
    fn a_document_reused_in_place_of_a_result_names_that_result() {
        let row = |doc: Value| {
            json!({"MaHoSo": "HS-1", "MaTTHC": "1.008433", "ChuHoSo": "A",
                "NgayTiepNhan": "20261128083000", "TrangThaiHoSo": 2, "TaiLieuNop": [doc]})
        };
        let ok = row(json!({"TepDinhKemId": "f", "DuocTaiSuDung": "2", "MaKetQuaThayThe": "KQ"}));
        assert!(validate_dossier(&ok, 0).is_ok());
        let err = validate_dossier(&row(json!({"DuocTaiSuDung": "2"})), 0).unwrap_err();
        assert!(
            err.contains("data[0].TaiLieuNop[0].MaKetQuaThayThe"),
            "{err}"
        );
        let err = validate_dossier(&row(json!({"DuocTaiSuDung": 3})), 0).unwrap_err();
        assert!(err.contains("DuocTaiSuDung"), "{err}");
        let err = validate_dossier(&row(json!({"TaiSuDung": 1})), 0).unwrap_err();
        assert!(err.contains("data[0].TaiLieuNop[0].TaiSuDung"), "{err}");
    }

    #[test]
    fn a_partial_row_and_unknown_fields_are_refused() {
        let partial = json!({"MaHoSo": "HS-1", "DanhSachGiayToKetQua": []});
        let err = validate_dossier(&partial, 0).unwrap_err();
        assert!(err.contains("data[0].MaTTHC"), "{err}");
        let mut row = json!({"MaHoSo": "HS-1", "MaTTHC": "1.005140", "ChuHoSo": "A",
            "NgayTiepNhan": "20261128083000", "TrangThaiHoSo": 10, "DanhSachGiayToKetQua": [
                {"TenGiayTo": "Bằng", "GiayToId": "K-1", "MaGiayToKetQua": "KQ.1.005140",
                 "SoKyHieu": "1-0045678", "DuongDanTepTinKetQua": "http://x"}]});
        assert!(validate_dossier(&row, 0).is_ok());
        row["DanhSachGiayToKetQua"][0]["TenTepDinhKem"] = json!("a.pdf");
        let err = validate_dossier(&row, 0).unwrap_err();
        assert!(
            err.contains("data[0].DanhSachGiayToKetQua[0].TenTepDinhKem"),
            "{err}"
        );
        row["DanhSachGiayToKetQua"][0]
            .as_object_mut()
            .unwrap()
            .remove("TenTepDinhKem");
        row["TenTep"] = json!("x");
        let err = validate_dossier(&row, 0).unwrap_err();
        assert!(err.contains("data[0].TenTep"), "{err}");
    }
}
