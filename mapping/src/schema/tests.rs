//! The schema check: kinds, formats, lengths and paths named in its errors.

use super::*;
use serde_json::json;

#[test]
fn formats() {
    // "%PDF-1.4", "%PDF-2.0" in base64; a zip ("PK") and HTML are not PDFs.
    assert!(TextFormat::PdfBase64.check("JVBERi0xLjQK"));
    assert!(TextFormat::PdfBase64.check("JVBERi0yLjA="));
    assert!(!TextFormat::PdfBase64.check("UEsDBA=="));
    assert!(!TextFormat::PdfBase64.check("PGh0bWw+"));
    assert!(!TextFormat::PdfBase64.check("JVBERi"));
    assert!(TextFormat::SoDinhDanh.check("001203004567"));
    assert!(!TextFormat::SoDinhDanh.check("00120300456"));
    assert!(TextFormat::MaSoDoanhNghiep.check("0100107123"));
    assert!(TextFormat::MaSoDoanhNghiep.check("0100107123-001"));
    assert!(!TextFormat::MaSoDoanhNghiep.check("0100107123-01"));
    assert!(TextFormat::Phone.check("0912345678"));
    assert!(TextFormat::Phone.check("+84912345678"));
    assert!(TextFormat::Phone.check("84912345678"));
    assert!(TextFormat::Phone.check("02437562345"));
    assert!(!TextFormat::Phone.check("091234567"));
    assert!(!TextFormat::Phone.check("00912345678"));
    assert!(TextFormat::MobilePhone.check("0912345678"));
    assert!(TextFormat::MobilePhone.check("+84383456789"));
    assert!(!TextFormat::MobilePhone.check("02437562345"), "a landline");
    assert!(
        !TextFormat::MobilePhone.check("0212345678"),
        "no mobile starts 02"
    );
    assert!(TextFormat::DateTime14.check("20240229235959"));
    assert!(!TextFormat::DateTime14.check("20230229235959"));
    assert!(TextFormat::Email.check("a@b.vn"));
    assert!(!TextFormat::Email.check("a@b"));
}

#[test]
fn schema_names_the_concrete_path() {
    let s = Schema::compile(
        "t",
        r#"description = "t"
        [fields."data[].MaHoSo"]
        required = true
        [fields."data[].Ma"]
        format = ["so_dinh_danh", "ma_so_doanh_nghiep"]
        [fields."data[].TrangThai"]
        enum = [1, 2]
        [fields."ref"]
        max_len = 3"#,
    )
    .unwrap();
    assert!(
        s.check(&json!({"data": [{"MaHoSo": "a", "Ma": "0100107123", "TrangThai": 1}]}))
            .is_ok()
    );
    let e = s
        .check(&json!({"data": [{"MaHoSo": "a"}, {"Ma": "0100107123"}]}))
        .unwrap_err();
    assert_eq!(e.field, "data[1].MaHoSo");
    let e = s
        .check(&json!({"data": [{"MaHoSo": "a", "Ma": "123"}]}))
        .unwrap_err();
    assert!(e.reason.contains("số định danh or"), "{e}");
    let e = s
        .check(&json!({"data": [{"MaHoSo": "a", "TrangThai": 11}]}))
        .unwrap_err();
    assert!(e.reason.contains("not one of 1, 2"), "{e}");
    assert!(
        s.check(&json!({"data": [], "ref": "abcd"}))
            .unwrap_err()
            .reason
            .contains("at most 3")
    );
    assert!(Schema::compile("t", "description = \"x\"\n[fields.a]\nformat = \"nope\"").is_err());
}
