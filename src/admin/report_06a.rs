//! The report form 06a (Biểu số 06a/VPCP/KSTT: tình hình, kết quả giải quyết thủ tục hành
//! chính tại cơ quan, đơn vị) for a period: one row per unit and one for the ministry,
//! the dossiers carried over and received (online, directly or by post), finished early,
//! on time or late, and still open in time or late, as CSV, Excel or a PDF to sign. Built
//! from the KPI document (`form_06a` of each unit), like the plan's report, so the
//! command, the dashboard and the API give the same figures. The figures the portal
//! scores but the form does not ask (channel unknown, finished without dates, refused or
//! withdrawn, waiting for the citizen) follow the form's columns.

use super::kpi::Form06a;
use super::report::{ReportFormat, csv_field};
use serde_json::Value;

/// The column headings: the form's, then the bus's own.
pub const HEADINGS: [&str; 17] = [
    "Kỳ báo cáo",
    "Đơn vị",
    "Tổng số hồ sơ nhận giải quyết",
    "Từ kỳ trước chuyển qua",
    "Mới tiếp nhận trực tuyến",
    "Mới tiếp nhận trực tiếp, dịch vụ bưu chính",
    "Đã giải quyết",
    "Trả trước hạn",
    "Trả đúng thời hạn",
    "Trả quá hạn",
    "Đang giải quyết",
    "Đang giải quyết trong hạn",
    "Đang giải quyết quá hạn",
    "Mới tiếp nhận không rõ kênh (chưa đồng bộ đủ)",
    "Đã giải quyết thiếu ngày hẹn trả hoặc ngày kết thúc",
    "Không tiếp nhận, rút, dừng xử lý",
    "Đang chờ công dân bổ sung, nộp phí (hiện tại)",
];

/// The PDF's headings, in lines short enough for their columns.
const PDF_HEADINGS: [&str; 16] = [
    "Đơn vị",
    "Tổng\nsố",
    "Kỳ trước\nchuyển qua",
    "Trực\ntuyến",
    "Trực tiếp,\nbưu chính",
    "Đã giải\nquyết",
    "Trước\nhạn",
    "Đúng\nhạn",
    "Quá\nhạn",
    "Đang giải\nquyết",
    "Trong\nhạn",
    "Quá\nhạn",
    "Không rõ\nkênh",
    "Thiếu\nngày",
    "Không TN,\nrút, dừng",
    "Chờ\ncông dân",
];

/// The PDF's column positions (mm).
const PDF_COLUMNS: [f32; 16] = [
    10.0, 56.0, 70.0, 87.0, 101.0, 118.0, 133.0, 146.0, 159.0, 172.0, 187.0, 200.0, 213.0, 229.0,
    244.0, 263.0,
];

/// One row: the period in words, the unit's name, its figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub period: String,
    pub unit: String,
    pub form: Form06a,
}

impl Row {
    /// The figures in the order of [`HEADINGS`] (after the period and the unit).
    pub fn figures(&self) -> [u64; 15] {
        let f = &self.form;
        let open = f.open_in_time + f.open_late;
        [
            f.total,
            f.carried_over,
            f.received_online,
            f.received_direct,
            f.finished,
            f.finished_early,
            f.finished_on_time,
            f.finished_late,
            open,
            f.open_in_time,
            f.open_late,
            f.received_channel_unknown,
            f.finished_undated,
            f.closed_otherwise,
            f.paused_now,
        ]
    }
}

/// The rows of a KPI document (`GET /api/v1/kpis`): every unit, then the ministry.
pub fn rows(kpis: &Value) -> Vec<Row> {
    let period = crate::admin::words::period_words(kpis["period"].as_str().unwrap_or("all"));
    let units = kpis["units"].as_array().cloned().unwrap_or_default();
    units
        .iter()
        .chain(std::iter::once(&kpis["overall"]))
        .map(|u| Row {
            period: period.clone(),
            unit: match u["unit"].as_str() {
                Some("") | None => "Toàn Bộ".to_string(),
                Some(id) => crate::admin::words::unit_name(id).to_string(),
            },
            form: serde_json::from_value(u["form_06a"].clone()).unwrap_or_default(),
        })
        .collect()
}

/// The report as a file of `format`, with `notes` (what the figures cannot see) under it.
pub fn render(rows: &[Row], notes: &[String], format: ReportFormat) -> Result<Vec<u8>, String> {
    match format {
        ReportFormat::Csv => Ok(csv(rows, notes, ',')),
        ReportFormat::CsvVn => Ok(csv(rows, notes, ';')),
        ReportFormat::Xlsx => {
            xlsx(rows, notes).map_err(|e| format!("cannot write the workbook: {e}"))
        }
        ReportFormat::Pdf => pdf(rows, notes),
    }
}

fn csv(rows: &[Row], notes: &[String], sep: char) -> Vec<u8> {
    let sep_text = sep.to_string();
    // The byte-order mark: Excel then reads the file as UTF-8 (Vietnamese accents).
    let mut out = String::from("\u{feff}");
    let headings: Vec<String> = HEADINGS.iter().map(|h| csv_field(h, sep)).collect();
    out.push_str(&headings.join(&sep_text));
    out.push_str("\r\n");
    for r in rows {
        let mut line = vec![csv_field(&r.period, sep), csv_field(&r.unit, sep)];
        line.extend(r.figures().iter().map(u64::to_string));
        out.push_str(&line.join(&sep_text));
        out.push_str("\r\n");
    }
    super::report::csv_notes(&mut out, notes, sep);
    out.into_bytes()
}

fn xlsx(rows: &[Row], notes: &[String]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Bieu 06a")?;
    let heading = Format::new().set_bold().set_text_wrap();
    for (c, h) in HEADINGS.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &heading)?;
        sheet.set_column_width(c as u16, if c < 2 { 24.0 } else { 13.0 })?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, &r.period)?;
        sheet.write_string(row, 1, &r.unit)?;
        for (c, v) in r.figures().iter().enumerate() {
            sheet.write_number(row, c as u16 + 2, *v as f64)?;
        }
    }
    for (i, note) in notes.iter().enumerate() {
        sheet.write_string(rows.len() as u32 + 2 + i as u32, 0, note)?;
    }
    book.save_to_buffer()
}

fn pdf(rows: &[Row], notes: &[String]) -> Result<Vec<u8>, String> {
    let period = rows.first().map_or("—", |r| r.period.as_str());
    let name = "Biểu số 06a: Tình hình, kết quả giải quyết thủ tục hành chính";
    let cells = rows.iter().map(|r| {
        let mut cells = vec![r.unit.chars().take(30).collect::<String>()];
        cells.extend(r.figures().iter().map(u64::to_string));
        cells
    });
    super::report_pdf::table_pdf(&super::report_pdf::Table {
        name: name.to_string(),
        title: format!("{name} — {period}"),
        columns: PDF_COLUMNS.to_vec(),
        headings: PDF_HEADINGS.iter().map(|h| h.to_string()).collect(),
        rows: cells.collect(),
        notes: notes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_per_unit_and_the_ministry_in_the_forms_columns() {
        let doc = json!({
            "period": "2024-03",
            "units": [{"unit": "nafosted", "form_06a": {"carried_over": 2, "received_online": 2,
                "received_direct": 3, "received_channel_unknown": 1, "total": 8, "finished": 3,
                "finished_early": 1, "finished_on_time": 1, "finished_late": 1,
                "closed_otherwise": 1, "open_in_time": 2, "open_late": 2, "paused_now": 1}}],
            "overall": {"unit": "", "form_06a": {"total": 8}}
        });
        let rows = rows(&doc);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].unit, "Toàn Bộ");
        let notes = ["Số liệu chỉ gồm hồ sơ đi qua trục.".to_string()];
        let csv = String::from_utf8(render(&rows, &notes, ReportFormat::Csv).unwrap()).unwrap();
        assert!(
            csv.starts_with("\u{feff}Kỳ báo cáo,Đơn vị,Tổng số hồ sơ"),
            "{csv}"
        );
        assert!(
            csv.contains("Tháng 03/2024,Quỹ Phát triển khoa học và công nghệ quốc gia,8,2,2,3,3,1,1,1,4,2,2,1,0,1,1\r\n"),
            "{csv}"
        );
        assert!(csv.contains("Số liệu chỉ gồm hồ sơ đi qua trục."), "{csv}");
        let xlsx = render(&rows, &notes, ReportFormat::Xlsx).unwrap();
        assert_eq!(&xlsx[..2], b"PK");
        let pdf = render(&rows, &notes, ReportFormat::Pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
}
