//! Masking of personal data in log output: every formatted log line passes through
//! [`mask`] on its way to stderr (see [`MaskingWriter`]), whatever the level, so a payload
//! or a platform's error text that slips into a log message is masked there too.
//!
//! What is masked:
//! - the values of fields that name a person, an address or a contact (`HoTen`,
//!   `fullName`, `DiaChi`, `SoDienThoai`, ... in JSON, XML and `key=value` form);
//! - identity, phone and tax numbers: runs of 9 to 12 digits (and `+84...`);
//! - e-mail addresses;
//! - the values the mapping engine quotes in its errors (`` `...` is not a date ``).
//!
//! Masked values keep their first and last characters at most, so operators can still tell
//! two log lines apart. The logs' own structure (ids, target names, counts) is untouched.

use regex::{Captures, Regex};
use std::io::Write;
use std::sync::LazyLock;

/// Field names (lowercase, without separators) whose values are personal data.
const PERSONAL_FIELDS: &str = "hoten|hovaten|fullname|name|ten|tencongdan|tennguoinop|\
tennguoinhan|chuhoso|nguoinop|nguoinhan|applicantname|diachi|diachithuongtru|diachilienhe|\
noiohientai|address|street|sodienthoai|dienthoai|phone|mobile|email|thudientu|ngaysinh|\
dateofbirth|birthdate|sodinhdanh|socmnd|socccd|cccd|cmnd|idnumber|identitynumber|hochieu|\
passport|owner|text|noidung|trichyeu|trichyeuhoso|summary|title|tieude|dob";

/// Parts of compound field names that make them personal wherever they stand
/// (`tenChuDon`, `HoTenNguoiNop`, `ownerName`, `DiaChiThuongTru`, `applicantPhone`,
/// `oldIdNumber`, `SoSoHoKhau`).
const PERSONAL_PARTS: &str = "hoten|hovaten|fullname|chudon|nguoinop|nguoinhan|chuhoso|\
congdan|owner|applicant|diachi|address|dienthoai|phone|mobile|email|ngaysinh|birth|\
dinhdanh|cccd|cmnd|idnumber|hochieu|passport|trichyeu|hokhau|chuho";

/// A field name that is personal: one of [`PERSONAL_FIELDS`] (after an optional
/// `prefix_` or `prefix.`), or any name holding one of [`PERSONAL_PARTS`]; in either, the
/// words may be joined by `_` or `-` (`ten_chu_don`, `dien-thoai`) or not at all.
fn personal_name() -> String {
    format!(
        "(?:(?:[a-z0-9_]*[_.])?(?:{})|[a-z0-9_.-]*(?:{})[a-z0-9_-]*)",
        separable(PERSONAL_FIELDS),
        separable(PERSONAL_PARTS)
    )
}

/// `a|bc` → `a|b[_-]?c`: each alternative's letters may be separated by `_` or `-`.
fn separable(alternatives: &str) -> String {
    alternatives
        .split('|')
        .map(|word| {
            let mut out = String::new();
            for (i, c) in word.chars().enumerate() {
                if i > 0 {
                    out.push_str("[_-]?");
                }
                out.push(c);
            }
            out
        })
        .collect::<Vec<_>>()
        .join("|")
}

static JSON_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    // `"HoTen": "..."`, also escaped inside a quoted string (`\"HoTen\":\"...\"`).
    Regex::new(&format!(
        r#"(?i)(\\?"{}\\?"\s*:\s*\\?")((?:[^"\\]|\\[^"])*)(\\?")"#,
        personal_name()
    ))
    .expect("valid regex")
});

static XML_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)(<(?:[a-z0-9_]+:)?{}(?:\s[^>]*)?>)([^<]*)(<)",
        personal_name()
    ))
    .expect("valid regex")
});

static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)(\b{}=)("[^"]*"|[^\s,;&]+)()"#,
        personal_name()
    ))
    .expect("valid regex")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+").expect("valid regex")
});

/// 9-12 digit runs not part of a longer token (ids, timestamps in ms, UUID segments).
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^0-9A-Za-z_.:-])(\+84[0-9]{9,10}|[0-9]{9,12})($|[^0-9A-Za-z_-])")
        .expect("valid regex")
});

/// Values quoted by the mapping engine's errors.
static QUOTED_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^`|[\s(:]\s?`)([^`]*)(` (?:is not|matches none|does not match|has extra))")
        .expect("valid regex")
});

static READ_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(cannot read `)([^`]*)(`)").expect("valid regex"));

/// Values quoted by schema errors (`"Nguyễn" is not one of [...]`), plain or escaped.
static SCHEMA_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(\\?")((?:[^"\\]|\\[^"])*)(\\?" is not (?:one of|of type|a valid|valid))"#)
        .expect("valid regex")
});

/// What a national platform said back (`«...»`, [`crate::connector`]'s snippets): its
/// words may echo the message, so they are masked whole in the logs (the dashboard and
/// the dead letters, behind a sign-in, keep them).
static TARGET_WORDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"«[^»]*»").expect("valid regex"));

/// `Nguyễn Văn An` → `N***n`: enough to tell values apart, not to read them.
fn masked(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    match chars.len() {
        0 => String::new(),
        1..=4 => "***".into(),
        n => format!("{}***{}", chars[0], chars[n - 1]),
    }
}

fn keep_ends(c: &Captures) -> String {
    format!("{}{}{}", &c[1], masked(&c[2]), &c[3])
}

/// The text with personal data masked.
pub fn mask(text: &str) -> String {
    let t = JSON_FIELD.replace_all(text, keep_ends);
    let t = XML_FIELD.replace_all(&t, keep_ends);
    let t = KEY_VALUE.replace_all(&t, keep_ends);
    let t = QUOTED_VALUE.replace_all(&t, keep_ends);
    let t = READ_VALUE.replace_all(&t, keep_ends);
    let t = SCHEMA_VALUE.replace_all(&t, keep_ends);
    let t = TARGET_WORDS.replace_all(&t, "«…»");
    let t = EMAIL.replace_all(&t, |c: &Captures| masked(&c[0]));
    // Twice: adjacent numbers share the separator between them.
    let t = NUMBER.replace_all(&t, keep_ends).into_owned();
    NUMBER.replace_all(&t, keep_ends).into_owned()
}

/// A writer that masks each chunk written to it (the fmt layer writes one whole event per
/// call) before passing it on.
pub struct MaskingWriter<W: Write>(pub W);

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn personal_fields_are_masked_in_json_xml_and_key_value_form() {
        let line = r#"body {"HoTen":"Nguyễn Văn An","DiaChi":"12 Ngõ Huế","MaHoSo":"HS-1"}"#;
        let m = mask(line);
        assert!(
            !m.contains("Nguyễn Văn An") && !m.contains("Ngõ Huế"),
            "{m}"
        );
        assert!(m.contains("HS-1"), "{m}");
        let escaped = r#"reason="HTTP 400: {\"fullName\":\"Trần Thị Bình\"}""#;
        assert!(
            !mask(escaped).contains("Trần Thị Bình"),
            "{}",
            mask(escaped)
        );
        let xml = "<ns:HoTen>Lê Văn Cường</ns:HoTen><DiaChi a=\"1\">Hà Nội</DiaChi>";
        let m = mask(xml);
        assert!(!m.contains("Lê Văn Cường") && !m.contains("Hà Nội"), "{m}");
        let kv = "lookup name=Phạm_Minh phone=0912345678 unit=ipo";
        let m = mask(kv);
        assert!(!m.contains("Phạm_Minh") && m.contains("unit=ipo"), "{m}");
    }

    #[test]
    fn numbers_and_emails_are_masked_but_ids_and_times_are_not() {
        let m =
            mask("cccd 001099012345, phone +84912345678 or 0912345678; mail an.nguyen@example.vn");
        for secret in [
            "001099012345",
            "84912345678",
            "0912345678",
            "an.nguyen@example.vn",
        ] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        let ids = "id=01a222ed-85d0-7212-ab1c-123456789012 at_ms=1764345600000 took 123ms";
        assert_eq!(mask(ids), ids);
    }

    #[test]
    fn compound_names_schema_errors_and_platform_words_are_masked() {
        let line = r#"{"tenChuDon":"Nguyễn Văn Bình","HoTenNguoiNop":"Trần Thị Hoa","owner":"Lê Minh Châu","TrichYeuHoSo":"Cấp phép cho Phạm Thu","text":"Chào chị Hoa, kết quả đã có","MaHoSo":"HS-9"}"#;
        let m = mask(line);
        for secret in [
            "Nguyễn Văn Bình",
            "Trần Thị Hoa",
            "Lê Minh Châu",
            "Phạm Thu",
            "Chào chị Hoa",
        ] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        assert!(m.contains("HS-9"), "{m}");
        let m = mask(r#"schema: "Đỗ Quang Huy" is not one of ["1","2"]"#);
        assert!(!m.contains("Đỗ Quang Huy"), "{m}");
        let m = mask("HTTP 400: «{\"loi\":\"trùng hồ sơ của Vũ Thị Lan\"}» (attempt 2)");
        assert!(
            !m.contains("Vũ Thị Lan") && m.contains("HTTP 400") && m.contains("attempt 2"),
            "{m}"
        );
    }

    #[test]
    fn values_quoted_by_mapping_errors_are_masked() {
        let m = mask("field `NgaySinh` (from `dob`): `Nguyễn Văn An` is not a date");
        assert!(
            !m.contains("Nguyễn Văn An") && m.contains("`NgaySinh`"),
            "{m}"
        );
        let m = mask("cannot read `12/31/abc` as a date: bad");
        assert!(!m.contains("12/31/abc"), "{m}");
    }
}
