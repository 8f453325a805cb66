//! `lienthong report`: the plan's KPI report, the form 06a, or the daily reconciliation of
//! a period, asked of a running bus and written to a file.

use super::cli::{AdminTarget, connect};
use std::path::PathBuf;

/// What `lienthong report` writes.
#[derive(Clone, Debug, clap::Args)]
pub struct ReportArgs {
    /// A month (2024-07), a quarter (2024-Q3), a year (2024), ytd or all.
    #[arg(long, default_value = "ytd")]
    pub period: String,
    /// csv (opens in Excel), xlsx (Excel) or pdf (to print and sign).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: crate::admin::report::ReportFormat,
    /// Which report: plan (the action plan's targets, Phụ lục I) or 06a (Biểu số 06a:
    /// carried over, received, finished early / on time / late, open in time / late).
    #[arg(long, value_enum, default_value = "plan")]
    pub form: crate::admin::report::ReportForm,
    /// Only this unit (the ministry's total stays).
    #[arg(long)]
    pub unit: Option<String>,
    /// Where to write (default: bao-cao-chi-tieu-<period>.<format>, bieu-06a-<period>.<format>
    /// or doi-soat-<from>-<to>.<format>, in this directory).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The daily reconciliation per unit instead of the KPIs: events received and, per
    /// target, delivered, dead and pending, with the message log's chain head (csv or xlsx).
    #[arg(long)]
    pub reconciliation: bool,
    /// The reconciliation's first day, YYYY-MM-DD (today when absent).
    #[arg(long, requires = "reconciliation")]
    pub from: Option<String>,
    /// The reconciliation's last day, YYYY-MM-DD (`--from` when absent).
    #[arg(long, requires = "reconciliation")]
    pub to: Option<String>,
}

/// The KPI report of a period, from a running bus, written to a file: the file's path
/// and what it holds.
pub async fn report(t: &AdminTarget, args: ReportArgs) -> Result<String, String> {
    if args.reconciliation {
        return reconciliation(t, args).await;
    }
    let period = crate::admin::period::Period::parse(&args.period)?;
    let c = connect(t, false)?;
    let mut path = format!("/api/v1/kpis?period={}&refresh=true", period.id());
    if let Some(u) = &args.unit {
        path.push_str(&format!("&unit={u}"));
    }
    let kpis = c.call(reqwest::Method::GET, &path, None).await?;
    let (bytes, rows) = args.form.render(&kpis, args.format)?;
    let file = args.output.unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}.{}",
            args.form.file_stem(&period.id()),
            args.format.extension()
        ))
    });
    std::fs::write(&file, &bytes).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let what = match args.form {
        crate::admin::report::ReportForm::Plan => {
            let met = crate::admin::report::rows(&kpis)
                .iter()
                .filter(|r| r.assessment() == "Đạt")
                .count();
            format!("{rows} rows (units × the plan's targets and Decision 766's groups), {met} met")
        }
        crate::admin::report::ReportForm::Form06a => {
            format!("{rows} rows (form 06a: each unit, then the ministry)")
        }
    };
    Ok(format!(
        "{}: {what}, period {}\n",
        file.display(),
        period.id()
    ))
}

/// The daily reconciliation of `--from`..`--to`, from a running bus, written to a file.
async fn reconciliation(t: &AdminTarget, args: ReportArgs) -> Result<String, String> {
    use crate::admin::report::ReportFormat;
    let c = connect(t, false)?;
    let mut path = "/api/v1/reconciliation?".to_string();
    for (name, value) in [("from", &args.from), ("to", &args.to)] {
        if let Some(v) = value {
            path.push_str(&format!("{name}={v}&"));
        }
    }
    let doc = c.call(reqwest::Method::GET, &path, None).await?;
    let bytes = match args.format {
        ReportFormat::Csv => crate::admin::reconciliation::csv(&doc, ','),
        ReportFormat::CsvVn => crate::admin::reconciliation::csv(&doc, ';'),
        ReportFormat::Xlsx => crate::admin::reconciliation::xlsx(&doc)?,
        ReportFormat::Pdf => {
            return Err("the reconciliation is written as csv, csv-vn or xlsx".into());
        }
    };
    let (from, to) = (
        doc["from"].as_str().unwrap_or(""),
        doc["to"].as_str().unwrap_or(""),
    );
    let file = args.output.unwrap_or_else(|| {
        PathBuf::from(format!("doi-soat-{from}-{to}.{}", args.format.extension()))
    });
    std::fs::write(&file, &bytes).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(format!(
        "{}: {} lines (unit, day and target), {from} to {to}\n",
        file.display(),
        crate::admin::reconciliation::table(&doc).len()
    ))
}
