//! A first mapping from a sample export: `lienthong mapping new`. Every field of the target
//! schema is listed (required ones first), each with the sample's field that matches it by
//! name (through `mappings/_studio/synonyms.toml`) or, failing that, by the shape of its
//! value; dates get the format read off the sample's value; fields with a fixed set of
//! codes get a code-table stub listing the sample's values. What could not be matched is
//! marked `TODO` in a way that makes `mapping test` fail until someone fills it in.

use crate::codec::csv::CsvOptions;
use crate::codec::{DecodeOptions, Format};
use crate::detect::{self, Detection};
use crate::schema::{FieldRule, Schema, TextFormat};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

/// Where the synonyms table lives, under the mappings directory.
pub const SYNONYMS: &str = "_studio/synonyms.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SynonymsFile {
    #[serde(default)]
    fields: BTreeMap<String, Vec<String>>,
}

/// What `mapping new` needs.
pub struct Request<'a> {
    pub unit: &'a str,
    pub flow: &'a str,
    /// A schema under `_schemas/`, e.g. `portal/DongBoHoSoMC`.
    pub schema: &'a str,
    pub sample: &'a [u8],
    /// The sample's file name (its extension says the format).
    pub sample_name: &'a str,
}

/// The first mapping, and what was found for it.
pub struct Scaffold {
    pub toml: String,
    pub format: Format,
    pub encoding: Option<Detection>,
    /// Output fields and the sample path found for each.
    pub matched: Vec<(String, String)>,
    /// Required output fields no sample field matched.
    pub todo: Vec<String>,
}

/// Normalised name for matching: lower case, no accents, letters and digits only.
fn norm(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfd()
        .filter(|c| c.is_alphanumeric() && c.is_ascii() || *c == 'đ' || *c == 'Đ')
        .map(|c| if c == 'đ' || c == 'Đ' { 'd' } else { c })
        .collect::<String>()
        .to_lowercase()
}

/// The sample's fields with a value: (path in mapping syntax, value). Lists are read
/// through their first element.
fn leaves(v: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                leaves(c, &p, out);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                leaves(first, &format!("{at}[0]"), out);
            }
        }
        Value::Null => {}
        scalar => {
            if !scalar.as_str().is_some_and(str::is_empty) {
                out.push((at.to_string(), scalar.clone()));
            }
        }
    }
}

fn last_segment(path: &str) -> &str {
    let seg = path.rsplit('.').next().unwrap_or(path);
    let seg = seg.split('[').next().unwrap_or(seg);
    seg.trim_start_matches('@')
}

/// The date format of a sample value, in the mapping language's spelling.
pub fn date_format_of(s: &str) -> Option<&'static str> {
    let candidates = [
        "iso8601",
        "yyyy-MM-dd HH:mm:ss",
        "yyyy-MM-dd",
        "dd/MM/yyyy HH:mm:ss",
        "dd/MM/yyyy HH:mm",
        "dd/MM/yyyy",
        "dd-MM-yyyy",
        "yyyyMMddHHmmss",
        "yyyyMMdd",
    ];
    let s = s.trim();
    if s.len() < 8 || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    candidates.into_iter().find(|spec| {
        crate::datetime::DateFormat::parse(spec)
            .is_ok_and(|f| crate::datetime::parse(s, &f, crate::datetime::Zone::VIETNAM).is_ok())
    })
}

/// The CSV delimiter of a sample: whichever of `,` `;` tab and `|` its header line holds
/// most (Excel in a Vietnamese locale writes `;`).
pub fn csv_delimiter_of(sample: &[u8]) -> u8 {
    let header = sample.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |d: u8| header.iter().filter(|b| **b == d).count();
    [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| (count(*d), *d == b','))
        .unwrap_or(b',')
}

/// The sample as the new mapping reads it.
struct Sample {
    format: Format,
    encoding: Option<Detection>,
    /// The CSV delimiter when it is not a comma.
    delimiter: Option<u8>,
    /// Every record (the first is matched against the schema; all give code values).
    records: Vec<Value>,
}

/// Read the sample the way the new mapping will: format from the file name, encoding and
/// delimiter detected for CSV.
fn read_sample(req: &Request<'_>) -> Result<Sample, String> {
    let ext = Path::new(req.sample_name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let format = match ext.as_str() {
        "json" => Format::Json,
        "xml" => Format::Xml,
        "csv" | "txt" => Format::Csv,
        other => {
            return Err(format!(
                "cannot tell the sample's format from `.{other}`: name it .json, .xml or .csv"
            ));
        }
    };
    let mut opts = DecodeOptions {
        format,
        ..DecodeOptions::default()
    };
    let mut encoding = None;
    let mut delimiter = None;
    if format == Format::Csv {
        let found = detect::detect(req.sample);
        let d = csv_delimiter_of(req.sample);
        opts.csv = CsvOptions {
            encoding: found.encoding.text_encoding(),
            delimiter: d,
            ..CsvOptions::default()
        };
        encoding = Some(found);
        delimiter = (d != b',').then_some(d);
    }
    let records = crate::codec::decode_records(req.sample, &opts)
        .map_err(|e| format!("the sample cannot be read as {}: {e}", format.name()))?;
    if records.is_empty() {
        return Err("the sample holds no record".into());
    }
    Ok(Sample {
        format,
        encoding,
        delimiter,
        records,
    })
}

/// Write a first mapping for `req`. `mappings_root` holds `_schemas/` and `_studio/`.
pub fn scaffold(req: &Request<'_>, mappings_root: &Path) -> Result<Scaffold, String> {
    let schema_path = mappings_root
        .join(crate::compile::SCHEMA_DIR)
        .join(format!("{}.toml", req.schema));
    let schema_text = std::fs::read_to_string(&schema_path).map_err(|e| {
        format!(
            "schema `{}`: cannot read {}: {e}",
            req.schema,
            schema_path.display()
        )
    })?;
    let schema = Schema::compile(req.schema, &schema_text).map_err(|p| p.join("; "))?;
    let synonyms: SynonymsFile = match std::fs::read_to_string(mappings_root.join(SYNONYMS)) {
        Ok(t) => toml::from_str(&t).map_err(|e| format!("{SYNONYMS}: {}", e.message()))?,
        Err(_) => SynonymsFile::default(),
    };
    let Sample {
        format,
        encoding,
        delimiter,
        records,
    } = read_sample(req)?;
    let mut sample = Vec::new();
    leaves(&records[0], "", &mut sample);
    // Every record's values by path, for the code tables.
    let mut seen_values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in &records {
        let mut all = Vec::new();
        leaves(record, "", &mut all);
        for (path, v) in all {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            let list = seen_values.entry(path).or_default();
            if !text.trim().is_empty() && !list.contains(&text) && list.len() < 50 {
                list.push(text);
            }
        }
    }

    // Fields written by the mapping: scalars at the record's level or inside `data[]`;
    // nested lists are left for an `each` rule written by hand.
    let mut rules: Vec<&FieldRule> = schema
        .rules()
        .iter()
        .filter(|r| r.path.matches("[]").count() <= 1 && !r.path.ends_with("[]"))
        .filter(|r| {
            !matches!(
                r.kind,
                Some(crate::schema::Kind::Array | crate::schema::Kind::Object)
            )
        })
        .collect();
    rules.sort_by_key(|r| !r.required);

    let mut used: HashSet<String> = HashSet::new();
    let mut out = String::new();
    let mut tables = String::new();
    let mut matched = Vec::new();
    let mut todo = Vec::new();
    let _ = writeln!(
        out,
        "# {unit} {flow} → {schema}: written by `lienthong mapping new` from {sample}.\n\
         # Check every suggestion; fill in each TODO; then `lienthong mapping test --bless`\n\
         # writes the expected output of the sample case: read it before you commit it.",
        unit = req.unit,
        flow = req.flow,
        schema = req.schema,
        sample = req.sample_name
    );
    let _ = writeln!(
        out,
        "[mapping]\ndescription = \"{} {} → {}\"\nschema = \"{}\"\n\n[input]\nformat = \"{}\"",
        req.unit,
        req.flow,
        req.schema,
        req.schema,
        format.name()
    );
    if let Some(d) = delimiter {
        let _ = writeln!(
            out,
            "delimiter = \"{}\"   # found in the sample's header line",
            (d as char).escape_default()
        );
    }
    if let Some(d) = &encoding
        && d.encoding != detect::Encoding::Ascii
        && d.encoding != detect::Encoding::Utf8
    {
        let _ = writeln!(
            out,
            "# `lienthong mapping detect`: {}\n{}",
            d.evidence.first().cloned().unwrap_or_default(),
            d.input_option()
        );
    }
    for rule in rules {
        let to = rule.path.replace("[]", "[0]");
        let name = last_segment(&rule.path);
        // A field with one allowed value is a constant.
        if let Some(values) = &rule.one_of
            && values.len() == 1
        {
            let _ = writeln!(out, "\n[[field]]\nto = \"{to}\"\nconst = {}", values[0]);
            continue;
        }
        let mut wanted: Vec<String> = vec![norm(name)];
        if let Some(syn) = synonyms.fields.get(name) {
            wanted.extend(syn.iter().map(|s| norm(s)));
        }
        // By name (the synonyms in their order of preference), then by the value's shape.
        let by_name = wanted.iter().find_map(|w| {
            sample
                .iter()
                .filter(|(p, _)| !used.contains(p))
                .filter(|(p, _)| norm(last_segment(p)) == *w)
                .min_by_key(|(p, _)| p.len())
        });
        let by_value = || {
            let fits: Vec<&(String, Value)> = sample
                .iter()
                .filter(|(p, _)| !used.contains(p))
                .filter(|(_, v)| {
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    !rule.formats.is_empty()
                        && !rule.formats.iter().any(|f| {
                            matches!(
                                f,
                                TextFormat::DateTime14 | TextFormat::Date8 | TextFormat::Digits
                            )
                        })
                        && rule.formats.iter().any(|f| f.check(text.trim()))
                })
                .collect();
            (fits.len() == 1).then(|| fits[0])
        };
        let found = by_name.or_else(by_value);
        let Some((path, value)) = found else {
            if rule.required {
                todo.push(to.clone());
                let _ = writeln!(
                    out,
                    "\n# TODO: required by {}; no field of the sample matched `{name}`. Put the\n\
                     # sample's path here (mapping test fails until you do).\n\
                     [[field]]\nto = \"{to}\"\nfrom = \"TODO\"\nrequired = true",
                    req.schema
                );
            } else {
                let _ = writeln!(
                    out,
                    "\n# Optional, not in the sample:\n# [[field]]\n# to = \"{to}\"\n# from = \"\""
                );
            }
            continue;
        };
        used.insert(path.clone());
        matched.push((to.clone(), path.clone()));
        let text = value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let _ = writeln!(
            out,
            "\n[[field]]\nto = \"{to}\"\nfrom = \"{path}\"   # sample: {}",
            Value::String(text.chars().take(60).collect())
        );
        let is_date = rule
            .formats
            .iter()
            .any(|f| matches!(f, TextFormat::DateTime14 | TextFormat::Date8));
        if is_date {
            let to_format = if rule.formats.contains(&TextFormat::Date8) {
                "yyyyMMdd"
            } else {
                "yyyyMMddHHmmss"
            };
            match date_format_of(&text) {
                Some(from) => {
                    let _ = writeln!(out, "date = {{ from = \"{from}\", to = \"{to_format}\" }}");
                }
                None => {
                    let _ = writeln!(
                        out,
                        "# TODO: `{text}` is no date format the studio knows; write its pattern.\ndate = {{ from = \"TODO\", to = \"{to_format}\" }}"
                    );
                    todo.push(to.clone());
                }
            }
        } else if let Some(values) = &rule.one_of {
            let table = norm(name);
            let allowed: Vec<String> = values.iter().map(Value::to_string).collect();
            let _ = writeln!(out, "table = \"{table}\"");
            // Every code the sample's records use, not only the first record's.
            let codes = seen_values
                .get(path.as_str())
                .cloned()
                .unwrap_or_else(|| vec![text.clone()]);
            let quoted: Vec<String> = codes
                .iter()
                .map(|c| Value::String(c.clone()).to_string())
                .collect();
            let stubs: Vec<String> = quoted.iter().map(|c| format!("{c} = \"TODO\"")).collect();
            let _ = writeln!(
                tables,
                "\n# TODO: map each of the unit's codes to what {} accepts in {name}: {}.\n\
                 # Seen in the sample: {}.\n[tables.{table}]\nvalues = {{ {} }}",
                req.schema,
                allowed.join(", "),
                quoted.join(", "),
                stubs.join(", "),
            );
        } else if rule.formats.contains(&TextFormat::Phone)
            || rule.formats.contains(&TextFormat::MobilePhone)
        {
            let _ = writeln!(out, "transform = [\"phone_vn\"]");
        } else if rule.formats.contains(&TextFormat::Email) {
            let _ = writeln!(out, "transform = [\"trim\", \"lower\"]");
        } else if rule.kind == Some(crate::schema::Kind::Integer) {
            let _ = writeln!(out, "type = \"integer\"");
        } else if value.is_string() {
            let _ = writeln!(out, "transform = [\"trim\", \"nfc\"]");
        }
        if rule.required {
            let _ = writeln!(out, "required = true");
        }
    }
    // Tables go before the rules that use them would be nicer to read, but TOML allows
    // either order; they come last so the fields read top to bottom like the schema.
    out.push_str(&tables);
    Ok(Scaffold {
        toml: out,
        format,
        encoding,
        matched,
        todo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_without_accents_or_case() {
        assert_eq!(norm("Ngày tiếp nhận"), "ngaytiepnhan");
        assert_eq!(norm("@SoHoSo"), "sohoso");
        assert_eq!(norm("so_HS"), "sohs");
        assert_eq!(norm("Đơn vị"), "donvi");
    }

    #[test]
    fn dates_are_recognised_by_their_shape() {
        assert_eq!(date_format_of("2024-03-05T08:30:00+07:00"), Some("iso8601"));
        assert_eq!(date_format_of("05/03/2024"), Some("dd/MM/yyyy"));
        assert_eq!(
            date_format_of("05/03/2024 08:30:00"),
            Some("dd/MM/yyyy HH:mm:ss")
        );
        assert_eq!(date_format_of("20240305"), Some("yyyyMMdd"));
        assert_eq!(date_format_of("Hà Nội"), None);
    }

    #[test]
    fn the_csv_delimiter_is_read_off_the_header_line() {
        assert_eq!(csv_delimiter_of(b"a;b;c\n1,5;2;3\n"), b';');
        assert_eq!(csv_delimiter_of(b"a,b,c\n1;2;3\n"), b',');
        assert_eq!(csv_delimiter_of(b"a\tb\n"), b'\t');
        assert_eq!(csv_delimiter_of(b"one column\n"), b',');
    }

    /// Issue 38, bug 5: what Excel writes in a Vietnamese locale (`;`) is read by its
    /// columns, and the code tables list the codes of every record.
    #[test]
    fn a_semicolon_csv_is_matched_and_its_code_tables_list_every_record() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings");
        let sample = "Số HS;Họ và tên;Loại;Mã thủ tục;Ngày nhận;Tình trạng\n\
                      PTN-1;Nguyễn Văn A;canhan;1.001234;05/03/2024;moi\n\
                      PTN-2;Công ty B;tochuc;1.001234;06/03/2024;dang_xu_ly\n";
        let made = scaffold(
            &Request {
                unit: "ptn",
                flow: "dossier_sync",
                schema: "portal/DongBoHoSoMC",
                sample: sample.as_bytes(),
                sample_name: "xuat.csv",
            },
            &root,
        )
        .unwrap();
        assert!(made.toml.contains("delimiter = \";\""), "{}", made.toml);
        assert!(made.matched.len() >= 4, "{:?}", made.matched);
        assert!(
            made.toml
                .contains("\"moi\" = \"TODO\", \"dang_xu_ly\" = \"TODO\""),
            "{}",
            made.toml
        );
        assert!(
            made.toml
                .contains("\"canhan\" = \"TODO\", \"tochuc\" = \"TODO\""),
            "{}",
            made.toml
        );
    }
}
