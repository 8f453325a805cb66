//! The periodic report the action plan asks units to send: one row per unit and target
//! with its numerator, denominator, percentage, 2024 target and whether it is met, in
//! Vietnamese (units by name, the period in words), as CSV (UTF-8 with a byte-order mark,
//! so Excel reads the accents; `csv-vn` separates with `;` and writes decimal commas, as
//! Excel in a Vietnamese locale expects), as an Excel workbook, or as a PDF to print and
//! sign (place and date, signature blocks). Built from the KPI document the admin API serves, so `lienthong report`
//! (which asks a running bus) and the dashboard's download give the same rows.

use serde_json::Value;

/// The report's formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    /// CSV for Excel in a Vietnamese locale: `;` between fields, decimal commas.
    CsvVn,
    Xlsx,
    Pdf,
}

impl ReportFormat {
    pub fn parse(text: &str) -> Option<ReportFormat> {
        match text {
            "csv" => Some(ReportFormat::Csv),
            "csv-vn" => Some(ReportFormat::CsvVn),
            "xlsx" => Some(ReportFormat::Xlsx),
            "pdf" => Some(ReportFormat::Pdf),
            _ => None,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            ReportFormat::Csv | ReportFormat::CsvVn => "text/csv; charset=utf-8",
            ReportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ReportFormat::Pdf => "application/pdf",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            ReportFormat::Csv | ReportFormat::CsvVn => "csv",
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Pdf => "pdf",
        }
    }
}

/// Which report: the action plan's targets (Phụ lục I of Decision 1205) or the
/// government's form 06a ([`super::report_06a`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportForm {
    /// The action plan's targets, per unit (Phụ lục I).
    #[default]
    #[value(name = "plan")]
    Plan,
    /// Biểu số 06a: dossiers carried over, received, finished early / on time / late,
    /// open in time / late.
    #[value(name = "06a")]
    Form06a,
}

impl ReportForm {
    pub fn parse(text: &str) -> Option<ReportForm> {
        match text {
            "plan" | "phu-luc-1" => Some(ReportForm::Plan),
            "06a" => Some(ReportForm::Form06a),
            _ => None,
        }
    }

    /// The file's name without its extension.
    pub fn file_stem(&self, period: &str) -> String {
        match self {
            ReportForm::Plan => format!("bao-cao-chi-tieu-{period}"),
            ReportForm::Form06a => format!("bieu-06a-{period}"),
        }
    }

    /// The report of a KPI document (`GET /api/v1/kpis`) as a file of `format`, and how
    /// many rows it has.
    pub fn render(&self, kpis: &Value, format: ReportFormat) -> Result<(Vec<u8>, usize), String> {
        let notes = notes(kpis);
        match self {
            ReportForm::Plan => {
                let rows = rows(kpis);
                Ok((render(&rows, &notes, format)?, rows.len()))
            }
            ReportForm::Form06a => {
                let rows = super::report_06a::rows(kpis);
                Ok((
                    super::report_06a::render(&rows, &notes, format)?,
                    rows.len(),
                ))
            }
        }
    }
}

/// What the figures cannot see, as the KPI document says it (`limits`): printed under
/// every report.
pub fn notes(kpis: &Value) -> Vec<String> {
    kpis["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

/// `notes` under a CSV table: an empty line, then a line each (one field).
pub fn csv_notes(out: &mut String, notes: &[String], sep: char) {
    if notes.is_empty() {
        return;
    }
    out.push_str("\r\n");
    for n in notes {
        out.push_str(&csv_field(n, sep));
        out.push_str("\r\n");
    }
}

/// The column headings.
pub const HEADINGS: [&str; 9] = [
    "Kỳ báo cáo",
    "Đơn vị",
    "Mục (Phụ lục I)",
    "Chỉ tiêu",
    "Tử số",
    "Mẫu số",
    "Tỷ lệ (%)",
    "Chỉ tiêu năm 2024 (%)",
    "Đánh giá",
];

/// One line of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    pub period: String,
    pub unit: String,
    pub plan_item: String,
    pub name: String,
    pub numerator: u64,
    pub denominator: u64,
    pub percent: Option<f64>,
    /// The 2024 target; None for a figure the plan sets none for (Decision 766's groups).
    pub target_percent: Option<f64>,
}

impl ReportRow {
    /// "Đạt" (met), "Chưa đạt" (not met), "Chưa có số liệu" (nothing to count), or "" for
    /// a figure without a target.
    pub fn assessment(&self) -> &'static str {
        match (self.percent, self.target_percent) {
            (None, _) => "Chưa có số liệu",
            (_, None) => "",
            (Some(p), Some(t)) if p >= t => "Đạt",
            (Some(_), Some(_)) => "Chưa đạt",
        }
    }

    /// The target as the report prints it ("" when there is none).
    pub fn target_text(&self) -> String {
        self.target_percent
            .map(|t| format!("{t:.0}"))
            .unwrap_or_default()
    }
}

/// The rows of a KPI document (`GET /api/v1/kpis`): every unit, then the whole ministry,
/// each with the plan's targets (the bus's own sync figure is not part of the plan), then
/// Decision 766's groups the bus sees (item "QĐ 766", no target).
pub fn rows(kpis: &Value) -> Vec<ReportRow> {
    let period = crate::admin::words::period_words(kpis["period"].as_str().unwrap_or("all"));
    let definitions = kpis["definitions"].as_array().cloned().unwrap_or_default();
    let units = kpis["units"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for u in units.iter().chain(std::iter::once(&kpis["overall"])) {
        let unit = match u["unit"].as_str() {
            Some("") | None => "Toàn Bộ".to_string(),
            Some(id) => crate::admin::words::unit_name(id).to_string(),
        };
        for d in &definitions {
            let plan_item = d["plan_item"].as_str().unwrap_or_default();
            if plan_item.is_empty() {
                continue;
            }
            let r = &u["kpis"][d["id"].as_str().unwrap_or_default()];
            out.push(ReportRow {
                period: period.clone(),
                unit: unit.clone(),
                plan_item: plan_item.to_string(),
                name: d["name"].as_str().unwrap_or_default().to_string(),
                numerator: r["numerator"].as_u64().unwrap_or(0),
                denominator: r["denominator"].as_u64().unwrap_or(0),
                percent: r["percent"].as_f64(),
                target_percent: d["target_percent"].as_f64(),
            });
        }
        for (id, name) in crate::admin::kpi::INDEX_766 {
            let r = &u["index_766"][id];
            out.push(ReportRow {
                period: period.clone(),
                unit: unit.clone(),
                plan_item: "QĐ 766".to_string(),
                name: format!("Chỉ số QĐ 766: {name}"),
                numerator: r["numerator"].as_u64().unwrap_or(0),
                denominator: r["denominator"].as_u64().unwrap_or(0),
                percent: r["percent"].as_f64(),
                target_percent: None,
            });
        }
    }
    out
}

/// The report as a file of `format`, with `notes` under it.
pub fn render(
    rows: &[ReportRow],
    notes: &[String],
    format: ReportFormat,
) -> Result<Vec<u8>, String> {
    match format {
        ReportFormat::Csv => Ok(csv(rows, notes, ',')),
        ReportFormat::CsvVn => Ok(csv(rows, notes, ';')),
        ReportFormat::Xlsx => {
            xlsx(rows, notes).map_err(|e| format!("cannot write the workbook: {e}"))
        }
        ReportFormat::Pdf => super::report_pdf::pdf(rows, notes),
    }
}

/// The rows as CSV with `sep` between fields; with `;` the numbers take decimal commas.
/// A CSV field: quoted (inner quotes doubled) when it holds the separator, a quote or a
/// line end. The reports of this module and the reconciliation write fields this way.
pub fn csv_field(s: &str, sep: char) -> String {
    if s.contains([sep, '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(rows: &[ReportRow], notes: &[String], sep: char) -> Vec<u8> {
    let sep_text = sep.to_string();
    let decimal = |p: f64| {
        if sep == ';' {
            crate::admin::words::decimal_vn(p)
        } else {
            format!("{p:.1}")
        }
    };
    let field = |s: &str| csv_field(s, sep);
    // The byte-order mark: Excel then reads the file as UTF-8 (Vietnamese accents).
    let mut out = String::from("\u{feff}");
    out.push_str(&HEADINGS.join(&sep_text));
    out.push_str("\r\n");
    for r in rows {
        let line = [
            field(&r.period),
            field(&r.unit),
            field(&r.plan_item),
            field(&r.name),
            r.numerator.to_string(),
            r.denominator.to_string(),
            r.percent.map(decimal).unwrap_or_default(),
            r.target_text(),
            field(r.assessment()),
        ];
        out.push_str(&line.join(&sep_text));
        out.push_str("\r\n");
    }
    csv_notes(&mut out, notes, sep);
    out.into_bytes()
}

fn xlsx(rows: &[ReportRow], notes: &[String]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Bao cao chi tieu")?;
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.0");
    for (c, h) in HEADINGS.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, &r.period)?;
        sheet.write_string(row, 1, &r.unit)?;
        sheet.write_string(row, 2, &r.plan_item)?;
        sheet.write_string(row, 3, &r.name)?;
        sheet.write_number(row, 4, r.numerator as f64)?;
        sheet.write_number(row, 5, r.denominator as f64)?;
        if let Some(p) = r.percent {
            sheet.write_number_with_format(row, 6, p, &percent)?;
        }
        if let Some(t) = r.target_percent {
            sheet.write_number(row, 7, t)?;
        }
        sheet.write_string(row, 8, r.assessment())?;
    }
    for (c, width) in [12.0, 12.0, 8.0, 70.0, 10.0, 10.0, 10.0, 12.0, 16.0]
        .iter()
        .enumerate()
    {
        sheet.set_column_width(c as u16, *width)?;
    }
    for (i, note) in notes.iter().enumerate() {
        sheet.write_string(rows.len() as u32 + 2 + i as u32, 0, note)?;
    }
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "period": "2024-Q3",
            "definitions": [
                {"id": "truc_tuyen", "plan_item": "2", "name": "Tỷ lệ hồ sơ trực tuyến", "target_percent": 50.0},
                {"id": "dong_bo", "plan_item": "", "name": "vận hành", "target_percent": 100.0}
            ],
            "units": [{"unit": "nafosted", "kpis": {"truc_tuyen": {"numerator": 2, "denominator": 3, "percent": 66.7}}}],
            "overall": {"unit": "", "kpis": {"truc_tuyen": {"numerator": 0, "denominator": 0, "percent": null}}}
        })
    }

    #[test]
    fn rows_name_the_unit_the_target_and_whether_it_is_met() {
        let rows = rows(&doc());
        // Two units' plan target (the operational figure is not one), then 766's groups.
        let plan: Vec<&ReportRow> = rows.iter().filter(|r| r.plan_item != "QĐ 766").collect();
        assert_eq!(plan.len(), 2, "the operational figure is not a plan target");
        assert_eq!(rows.len(), 2 + 2 * crate::admin::kpi::INDEX_766.len());
        let rows: Vec<ReportRow> = plan.into_iter().cloned().collect();
        assert_eq!(rows[0].assessment(), "Đạt");
        assert_eq!(rows[1].unit, "Toàn Bộ");
        assert_eq!(rows[1].assessment(), "Chưa có số liệu");
        let csv = String::from_utf8(render(&rows, &[], ReportFormat::Csv).unwrap()).unwrap();
        assert!(csv.starts_with("\u{feff}Kỳ báo cáo,Đơn vị"), "{csv}");
        assert!(
            csv.contains("Quý III/2024,Quỹ Phát triển khoa học và công nghệ quốc gia,2,Tỷ lệ hồ sơ trực tuyến,2,3,66.7,50,Đạt\r\n"),
            "{csv}"
        );
        // For Excel in a Vietnamese locale: `;` and a decimal comma.
        let vn = String::from_utf8(render(&rows, &[], ReportFormat::CsvVn).unwrap()).unwrap();
        assert!(
            vn.contains("Quý III/2024;Quỹ Phát triển khoa học và công nghệ quốc gia;2;Tỷ lệ hồ sơ trực tuyến;2;3;66,7;50;Đạt\r\n"),
            "{vn}"
        );
        let xlsx = render(&rows, &[], ReportFormat::Xlsx).unwrap();
        assert_eq!(&xlsx[..2], b"PK", "an xlsx file is a zip archive");
        let pdf = render(&rows, &[], ReportFormat::Pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "a PDF file");
        assert!(pdf.len() > 2_000);
    }
}
