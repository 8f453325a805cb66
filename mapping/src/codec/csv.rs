//! CSV with a header row: each row becomes an object of strings keyed by the header. IP
//! Office batch exports come from old Windows tools, so the input may be Latin-1 text with
//! TCVN3 fields, or TCVN3 throughout.

use super::{DecodeError, KeyOrder};
use crate::text::{self, Legacy};
pub use crate::wire::TextEncoding;
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub encoding: TextEncoding,
    pub max_bytes: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            encoding: TextEncoding::Utf8,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Turn input bytes into text according to `encoding`.
pub fn to_text(input: &[u8], encoding: TextEncoding) -> Result<String, DecodeError> {
    match encoding {
        TextEncoding::Utf8 => {
            let s = std::str::from_utf8(input).map_err(|e| DecodeError::Encoding {
                message: format!(
                    "input is not valid UTF-8 at byte {} (`lienthong mapping detect FILE` tells which encoding it is; declare it as [input] encoding = \"tcvn3\", \"vni\", \"windows-1258\" or \"latin1\")",
                    e.valid_up_to()
                ),
            })?;
            Ok(s.strip_prefix('\u{feff}').unwrap_or(s).to_string())
        }
        TextEncoding::Latin1 => Ok(input.iter().map(|b| *b as char).collect()),
        TextEncoding::Tcvn3 => Ok(text::decode_legacy_bytes(input, Legacy::Tcvn3)),
        TextEncoding::Vni => Ok(text::decode_legacy_bytes(input, Legacy::Vni)),
        TextEncoding::Windows1258 => {
            let (text, _) = encoding_rs::WINDOWS_1258.decode_without_bom_handling(input);
            Ok(text::nfc(&text))
        }
    }
}

/// Most columns a header row may have: legacy exports have tens, a few hundred at most;
/// a header of hundreds of thousands is an attack on the decoder, refused before any row.
pub const MAX_COLUMNS: usize = 2_048;
/// Longest row, in bytes of its fields.
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

pub fn decode(input: &[u8], opts: &CsvOptions) -> Result<Vec<Value>, DecodeError> {
    if input.len() > opts.max_bytes {
        return Err(DecodeError::too_large(input.len(), opts.max_bytes));
    }
    let text = to_text(input, opts.encoding)?;
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(DecodeError::Shape {
            message: "the CSV has no header row".into(),
        });
    }
    if headers.len() > MAX_COLUMNS {
        return Err(DecodeError::Shape {
            message: format!(
                "the header row has {} columns; at most {MAX_COLUMNS} are taken",
                headers.len()
            ),
        });
    }
    // One pass with a set: the cost grows with the header's length, not its square.
    let mut seen = std::collections::HashSet::with_capacity(headers.len());
    if let Some(dup) = headers.iter().find(|h| !seen.insert(h.as_str())) {
        return Err(DecodeError::Shape {
            message: format!("column `{dup}` appears twice in the header row"),
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&e))?;
        if record.as_byte_record().as_slice().len() > MAX_ROW_BYTES {
            return Err(DecodeError::Syntax {
                line: record.position().map_or(0, |p| p.line() as usize),
                column: 1,
                message: format!("the row is longer than {MAX_ROW_BYTES} bytes"),
            });
        }
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let mut row = Map::with_capacity(headers.len());
        for (h, v) in headers.iter().zip(record.iter()) {
            row.insert(h.clone(), Value::String(v.to_string()));
        }
        rows.push(Value::Object(row));
    }
    Ok(rows)
}

/// The line each record [`decode`] gives starts on (1 is the header row), for naming a
/// refused record's place in the file. Read again only when something is refused.
pub fn record_lines(input: &[u8], opts: &CsvOptions) -> Vec<usize> {
    let Ok(text) = to_text(input, opts.encoding) else {
        return Vec::new();
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    if reader.headers().is_err() {
        return Vec::new();
    }
    // Where the reader stands before a record is where that record starts. Lines are
    // counted here: old exports end lines with a bare CR, which the reader's own count
    // (of LFs) does not see.
    let mut lines = Vec::new();
    let mut record = ::csv::StringRecord::new();
    let (mut counted_to, mut line) = (0usize, 1usize);
    loop {
        let bytes = text.as_bytes();
        let mut at = (reader.position().byte() as usize).min(text.len());
        // Blank lines before a record are skipped by the reader: the record starts after.
        while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
            at += 1;
        }
        for (i, b) in bytes[counted_to..at].iter().enumerate() {
            let next = bytes.get(counted_to + i + 1);
            if *b == b'\n' || *b == b'\r' && next != Some(&b'\n') {
                line += 1;
            }
        }
        counted_to = at;
        match reader.read_record(&mut record) {
            Ok(true) if record.iter().all(|f| f.trim().is_empty()) => {}
            Ok(true) => lines.push(line),
            _ => break,
        }
    }
    lines
}

fn csv_error(e: &::csv::Error) -> DecodeError {
    match e.kind() {
        ::csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => DecodeError::Syntax {
            // The record index counts the header as record 0; a record is one line unless
            // a quoted field spans lines.
            line: pos.as_ref().map_or(0, |p| p.record() as usize + 1),
            column: 1,
            message: format!("row has {len} fields, the header row has {expected_len}"),
        },
        _ => DecodeError::Syntax {
            line: e.position().map_or(0, |p| p.line() as usize),
            column: 1,
            message: e.to_string(),
        },
    }
}

/// Write an object (one row) or an array of objects (rows) with a header row taken from
/// the first row's keys.
pub fn encode(value: &Value, delimiter: u8, order: &KeyOrder) -> Result<Vec<u8>, String> {
    let rows: Vec<&Map<String, Value>> = match value {
        Value::Object(m) => vec![m],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_object().ok_or("CSV rows must be objects"))
            .collect::<Result<_, _>>()?,
        _ => return Err("CSV output needs an object or an array of objects".into()),
    };
    let mut w = ::csv::WriterBuilder::new()
        .delimiter(if delimiter == 0 { b',' } else { delimiter })
        .from_writer(Vec::new());
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let header: Vec<&String> = order.sorted(first).into_iter().map(|(k, _)| k).collect();
    w.write_record(header.iter().map(|h| h.as_str()))
        .map_err(|e| e.to_string())?;
    for row in rows {
        let mut fields = Vec::with_capacity(header.len());
        for h in &header {
            fields.push(match row.get(*h) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(_) | Value::Array(_)) => {
                    return Err(format!("CSV field `{h}` must be a scalar"));
                }
                Some(other) => other.to_string(),
            });
        }
        w.write_record(&fields).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_rows_quotes_and_blank_lines() {
        let rows = decode(
            b"soDon,tenChuDon\r\n4-2024-001,\"Nguy\xe1\xbb\x85n, V\xc4\x83n A\"\r\n\r\n4-2024-002,B\r\n",
            &CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                json!({"soDon": "4-2024-001", "tenChuDon": "Nguyễn, Văn A"}),
                json!({"soDon": "4-2024-002", "tenChuDon": "B"})
            ]
        );
    }

    #[test]
    fn huge_headers_are_refused_by_the_column_cap_and_duplicates_found_in_one_pass() {
        // 300,000 columns (the probe that burned a core for 52 s with a quadratic check).
        let header: Vec<String> = (0..300_000).map(|i| format!("c{i}")).collect();
        let input = format!("{}\n", header.join(","));
        let opts = CsvOptions {
            max_bytes: usize::MAX,
            ..CsvOptions::default()
        };
        let e = decode(input.as_bytes(), &opts).unwrap_err();
        assert!(e.to_string().contains("300000 columns"), "{e}");
        // At the cap, a duplicate at the very end is still named.
        let mut header: Vec<String> = (0..MAX_COLUMNS - 1).map(|i| format!("c{i}")).collect();
        header.push("c7".into());
        let input = format!("{}\n", header.join(","));
        let e = decode(input.as_bytes(), &opts).unwrap_err();
        assert!(e.to_string().contains("`c7` appears twice"), "{e}");
        // A row longer than the cap is refused with its line.
        let input = format!("a\nok\n{}\n", "x".repeat(MAX_ROW_BYTES + 1));
        let e = decode(input.as_bytes(), &opts).unwrap_err();
        assert!(
            e.to_string().contains("line 3") && e.to_string().contains("longer"),
            "{e}"
        );
    }

    #[test]
    fn ragged_rows_and_bad_utf8_name_the_problem() {
        let e = decode(b"a,b\n1,2\n3\n", &CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = decode(b"a\n\xb8\n", &CsvOptions::default()).unwrap_err();
        assert!(e.to_string().contains("latin1"), "{e}");
        let rows = decode(
            b"a\nH\xb5 N\xe9i\n",
            &CsvOptions {
                encoding: TextEncoding::Tcvn3,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(rows, vec![json!({"a": "Hà Nội"})]);
    }

    #[test]
    fn encode_writes_header_and_rows() {
        let mut order = KeyOrder::default();
        order.push("b");
        order.push("a");
        let out = encode(&json!([{"a": "x,y", "b": 1}, {"a": "z"}]), b',', &order).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "b,a\n1,\"x,y\"\n,z\n");
    }
}

#[cfg(test)]
mod record_line_tests {
    #[test]
    fn each_record_is_named_by_the_line_it_starts_on() {
        let opts = super::CsvOptions::default();
        let text = b"a,b\n1,2\n\n\"x\ny\",3\r4,5\r";
        assert_eq!(super::record_lines(text, &opts), [2, 4, 6]);
    }

    #[test]
    fn an_ip_office_export_names_its_first_record_line_two() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings");
        let m = crate::Mapping::load(&root.join("ipo/dossier_sync.toml"), &root).unwrap();
        let input =
            std::fs::read(root.join("ipo/tests/dossier_sync/04-unknown-state.input.csv")).unwrap();
        assert_eq!(super::record_lines(&input, &m.decode_options().csv), [2]);
    }
}
