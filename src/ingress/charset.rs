//! Which text encoding a unit's CSV body is read in: the mapping's legacy one, or UTF-8
//! when the body says so or plainly is.

use super::ApiError;
use axum::http::{HeaderMap, StatusCode, header};

/// The text encoding of a CSV body: the mapping's, unless the body is UTF-8 text, which
/// is read as such: a unit that converted its legacy (TCVN3, VNI, Windows-1258) export to
/// Unicode, or a client sending the OpenAPI document's example, which is the same export
/// as text. A body is taken as UTF-8 when it says `charset=utf-8`, or when it is valid
/// UTF-8 with letters beyond ASCII (a real legacy export essentially never is: its
/// accented letters are single bytes that do not form UTF-8 sequences). Another charset
/// than UTF-8 or the mapping's own is refused.
pub(super) fn csv_encoding(
    headers: &HeaderMap,
    mapping: lienthong_mapping::codec::csv::TextEncoding,
    body: &[u8],
) -> Result<lienthong_mapping::codec::csv::TextEncoding, ApiError> {
    use lienthong_mapping::codec::csv::TextEncoding;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let charset = ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    });
    match charset.as_deref() {
        Some("utf-8" | "utf8") => Ok(TextEncoding::Utf8),
        Some(c)
            if c == mapping.option_name()
                || (c == "cp1258" && mapping == TextEncoding::Windows1258) =>
        {
            Ok(mapping)
        }
        Some(c) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "charset `{c}`: this flow reads {} (as its mapping says) or utf-8",
                mapping.option_name()
            ),
        )
        .field("content-type")),
        None if mapping != TextEncoding::Utf8
            && !body.is_ascii()
            && std::str::from_utf8(body).is_ok() =>
        {
            Ok(TextEncoding::Utf8)
        }
        None => Ok(mapping),
    }
}
