//! The daily reconciliation per unit: for each unit and day, the events received and, per
//! target, the deliveries made, delivered, forwarded to the cluster, dead, dropped and
//! still pending, with the message log's chain head for the day — the figures a
//! data-exchange platform's operator asks a ministry for, read from the outbox's running
//! counts ([`crate::outbox::ledger`]) and the evidence archive's day files. The same
//! document feeds the admin API, `lienthong report --reconciliation` and the dashboard.

use crate::outbox::ledger::{self, Row};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Most days one document covers.
pub const MAX_DAYS: u32 = 92;

/// The reconciliation of days `from..=to` (Vietnam's days since 1970-01-01; none when
/// `to` is before `from`): one entry
/// per day and unit, oldest first, each with its targets and the day's chain head of the
/// message log in `evidence_dir` (when the log is on).
pub fn document(rows: &[Row], from: u32, to: u32, evidence_dir: Option<&Path>) -> Value {
    let mut days: BTreeMap<(u32, &str), (u64, Vec<Value>)> = BTreeMap::new();
    for r in rows {
        let entry = days.entry((r.day, r.unit.as_str())).or_default();
        if r.target.is_empty() {
            entry.0 = r.counts[ledger::EVENTS];
            continue;
        }
        entry.1.push(json!({
            "target": r.target,
            "deliveries": r.counts[ledger::DELIVERIES],
            "delivered": r.counts[ledger::DELIVERED],
            "forwarded": r.counts[ledger::FORWARDED],
            "dead": r.counts[ledger::DEAD],
            "dropped": r.counts[ledger::DROPPED],
            "pending": r.pending(),
        }));
    }
    let heads: BTreeMap<u32, Option<String>> = days
        .keys()
        .map(|(day, _)| *day)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|day| {
            let head = evidence_dir.and_then(|dir| {
                crate::evidence::archive::day_head(dir, &crate::admin::api::lookups::day_text(day))
            });
            (day, head)
        })
        .collect();
    let entries: Vec<Value> = days
        .into_iter()
        .map(|((day, unit), (events, targets))| {
            json!({
                "day": crate::admin::api::lookups::day_text(day),
                "unit": unit,
                "events": events,
                "targets": targets,
                "evidence_head": heads.get(&day).cloned().flatten(),
            })
        })
        .collect();
    json!({
        "from": crate::admin::api::lookups::day_text(from),
        "to": crate::admin::api::lookups::day_text(to),
        "days": entries,
    })
}

/// The column headings of the flat table (CSV, Excel).
pub const HEADINGS: [&str; 11] = [
    "Ngày",
    "Đơn vị",
    "Sự kiện nhận",
    "Nơi nhận",
    "Lượt gửi",
    "Đã nhận",
    "Đã chuyển vào cụm",
    "Thư chết",
    "Đã hủy",
    "Đang chờ",
    "Đầu chuỗi nhật ký thông điệp",
];

/// One line per day, unit and target (a unit's day without targets: one line).
pub fn table(doc: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for d in doc["days"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let head = [text(&d["day"]), text(&d["unit"]), text(&d["events"])];
        let targets = d["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            let mut line = head.to_vec();
            line.extend(std::iter::repeat_n(String::new(), 7));
            line.push(text(&d["evidence_head"]));
            out.push(line);
        }
        for t in targets {
            let mut line = head.to_vec();
            for k in [
                "target",
                "deliveries",
                "delivered",
                "forwarded",
                "dead",
                "dropped",
                "pending",
            ] {
                line.push(text(&t[k]));
            }
            line.push(text(&d["evidence_head"]));
            out.push(line);
        }
    }
    out
}

/// The table as CSV (UTF-8 with a byte-order mark, so Excel reads the accents).
pub fn csv(doc: &Value, sep: char) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let lines = std::iter::once(HEADINGS.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(table(doc));
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .map(|c| crate::admin::report::csv_field(c, sep))
            .collect();
        out.push_str(&cells.join(&sep.to_string()));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// The table as an Excel workbook (numbers as numbers).
pub fn xlsx(doc: &Value) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| format!("cannot write the workbook: {e}");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Doi soat").map_err(fail)?;
    let bold = Format::new().set_bold();
    for (c, h) in HEADINGS.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *h, &bold)
            .map_err(fail)?;
    }
    for (r, line) in table(doc).iter().enumerate() {
        for (c, cell) in line.iter().enumerate() {
            let (row, col) = (r as u32 + 1, c as u16);
            match cell.parse::<u64>() {
                Ok(n) if c != 0 && c != 1 && c != 3 => {
                    sheet.write_number(row, col, n as f64).map_err(fail)?
                }
                _ => sheet.write_string(row, col, cell).map_err(fail)?,
            };
        }
    }
    book.save_to_buffer().map_err(fail)
}
