//! The text formats a schema field may require (`format = "..."`): identity numbers,
//! phone numbers, the portal's dates, e-mail, a PDF in base64.

use crate::datetime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    SoDinhDanh,
    Cmnd,
    MaSoDoanhNghiep,
    Phone,
    /// A mobile number, which SMS and Zalo reach (a landline, 02x…, is a `Phone`).
    MobilePhone,
    DateTime14,
    Date8,
    Digits,
    Email,
    /// A PDF in base64: its first bytes are the PDF magic `%PDF-`.
    PdfBase64,
}

impl TextFormat {
    pub fn parse(s: &str) -> Result<TextFormat, String> {
        Ok(match s {
            "so_dinh_danh" => TextFormat::SoDinhDanh,
            "cmnd" => TextFormat::Cmnd,
            "ma_so_doanh_nghiep" => TextFormat::MaSoDoanhNghiep,
            "phone" => TextFormat::Phone,
            "mobile_phone" => TextFormat::MobilePhone,
            "datetime14" => TextFormat::DateTime14,
            "date8" => TextFormat::Date8,
            "digits" => TextFormat::Digits,
            "email" => TextFormat::Email,
            "pdf_base64" => TextFormat::PdfBase64,
            other => {
                return Err(format!(
                    "unknown format `{other}` (so_dinh_danh, cmnd, ma_so_doanh_nghiep, phone, mobile_phone, datetime14, date8, digits, email, pdf_base64)"
                ));
            }
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            TextFormat::SoDinhDanh => "a 12-digit số định danh",
            TextFormat::Cmnd => "a 9-digit CMND number",
            TextFormat::MaSoDoanhNghiep => {
                "a 10-digit mã số doanh nghiệp (optionally -NNN for a branch)"
            }
            TextFormat::Phone => {
                "a Vietnamese phone number (0 and 9 or 10 digits, or +84 instead of the 0)"
            }
            TextFormat::MobilePhone => {
                "a Vietnamese mobile number (0 and 9 digits, or +84 instead of the 0; SMS and Zalo reach no landline)"
            }
            TextFormat::DateTime14 => "a date-time yyyyMMddHHmmss",
            TextFormat::Date8 => "a date yyyyMMdd",
            TextFormat::Digits => "digits only",
            TextFormat::Email => "an e-mail address",
            TextFormat::PdfBase64 => "a PDF in base64 (its bytes start with %PDF-)",
        }
    }

    pub fn check(self, s: &str) -> bool {
        let all_digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
        match self {
            TextFormat::SoDinhDanh => all_digits(s, 12),
            TextFormat::Cmnd => all_digits(s, 9),
            TextFormat::MaSoDoanhNghiep => match s.split_once('-') {
                None => all_digits(s, 10),
                Some((main, branch)) => all_digits(main, 10) && all_digits(branch, 3),
            },
            // Mobiles are 0 + 9 digits; landlines 0 + 2x area code + 8 digits.
            TextFormat::Phone => {
                let rest = s
                    .strip_prefix("+84")
                    .or_else(|| {
                        s.strip_prefix("84")
                            .filter(|r| r.len() >= 9 && !r.starts_with('0'))
                    })
                    .or_else(|| s.strip_prefix('0'));
                rest.is_some_and(|r| !r.starts_with('0') && (all_digits(r, 9) || all_digits(r, 10)))
            }
            TextFormat::MobilePhone => {
                let rest = s.strip_prefix("+84").or_else(|| s.strip_prefix('0'));
                rest.is_some_and(|r| {
                    all_digits(r, 9) && matches!(r.as_bytes()[0], b'3' | b'5' | b'7'..=b'9')
                })
            }
            TextFormat::DateTime14 => all_digits(s, 14) && datetime::valid_compact(s),
            TextFormat::Date8 => all_digits(s, 8) && datetime::valid_compact(s),
            TextFormat::Digits => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
            // base64 of "%PDF-" then any byte: "JVBERi" and 0..3 (the low bits of '-').
            TextFormat::PdfBase64 => {
                s.starts_with("JVBERi") && matches!(s.as_bytes().get(6), Some(b'0'..=b'3'))
            }
            TextFormat::Email => s.split_once('@').is_some_and(|(u, d)| {
                !u.is_empty()
                    && d.contains('.')
                    && !d.starts_with('.')
                    && !d.ends_with('.')
                    && !s.contains(char::is_whitespace)
            }),
        }
    }
}
