//! Charts drawn by the bus itself, as inline SVG (no scripts, nothing fetched from
//! elsewhere): each target counted from traffic, month by month, against its 2024 target;
//! and each platform's backlog, oldest pending and delivery rate over the last 24 hours.

use super::super::history::Sample;
use super::super::kpi::{KPIS, MonthKpis};
use maud::{Markup, html};

const W: f64 = 260.0;
const H: f64 = 90.0;
/// The 24-hour lines are lower: three per platform.
const SH: f64 = 40.0;

/// One target by month: a bar per month (green when the target is met, red when not, a
/// tick when there was nothing to count) and the target as a dashed line.
pub fn monthly_target(id: &str, name: &str, target: f64, months: &[MonthKpis]) -> Markup {
    let n = months.len().max(1) as f64;
    let slot = W / n;
    let y_of = |p: f64| H - p.clamp(0.0, 100.0) / 100.0 * H;
    html! {
        figure.chart #{"bieu-do-" (id)} {
            figcaption { (name) " — theo tháng, chỉ tiêu " (target) " %" }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (H + 14.0)} width=(W) height=(H + 14.0) role="img" aria-label=(name) {
                @for (i, (month, kpis)) in months.iter().enumerate() {
                    @let x = i as f64 * slot + 2.0;
                    @match kpis.get(id).and_then(|r| r.percent) {
                        Some(p) => {
                            rect.bar x=(x) y=(y_of(p)) width=(slot - 4.0) height=(H - y_of(p))
                                fill=(if p >= target { "#2e7d32" } else { "#c62828" }) {
                                title { (month) ": " (p) " %" }
                            }
                        }
                        None => {
                            rect x=(x) y=(H - 1.0) width=(slot - 4.0) height="1" fill="#999" {
                                title { (month) ": chưa có số liệu" }
                            }
                        }
                    }
                    @if i % 3 == 2 || months.len() <= 4 {
                        // 2024-07 → 07/24
                        text x=(x) y=(H + 12.0) font-size="9" fill="#555" {
                            (month.get(5..7).unwrap_or(month)) "/" (month.get(2..4).unwrap_or(""))
                        }
                    }
                }
                line x1="0" x2=(W) y1=(y_of(target)) y2=(y_of(target)) stroke="#333" stroke-dasharray="4 3" {}
            }
        }
    }
}

/// The charts of every target counted from traffic.
pub fn monthly_targets(months: &[MonthKpis]) -> Markup {
    html! {
        div.charts #xu-huong-chi-tieu {
            @for d in KPIS.iter().filter(|d| matches!(d.plan_item, "2" | "3" | "4a" | "4b")) {
                (monthly_target(d.id, &format!("{}. {}", d.plan_item, d.name), d.target_percent, months))
            }
        }
    }
}

/// One line over the samples of at most the last `span_ms`, scaled to its own maximum.
/// The time axis runs from the first sample kept to the last (a bus started ten minutes
/// ago draws ten minutes across the whole width, not a tick at the right edge).
fn sparkline(id: &str, caption: &str, unit: &str, points: &[(u64, f64)], span_ms: u64) -> Markup {
    let (first, last) = match (points.first(), points.last()) {
        (Some(f), Some(l)) => (f.0, l.0),
        _ => (0, 0),
    };
    let start = last.saturating_sub(span_ms).max(first);
    let points: Vec<(u64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t >= start)
        .collect();
    let covered = last.saturating_sub(start);
    let width_ms = last.saturating_sub(start).max(1) as f64;
    // The highest value shown is the real one; the scale never goes below 1.
    let peak = points.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let max = peak.max(1.0);
    let coords: Vec<String> = points
        .iter()
        .map(|(t, v)| {
            let x = (t - start) as f64 / width_ms * W;
            let y = SH - v / max * (SH - 4.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let latest = points.last().map_or(0.0, |p| p.1);
    html! {
        figure.chart #(id) {
            figcaption { (caption) ": " b { (format!("{latest:.0}")) } " " (unit) span.muted { " (cao nhất " (format!("{peak:.0}")) " trong " (span_words(covered)) " qua)" } }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (SH)} width=(W) height=(SH) role="img" aria-label=(caption) {
                @if coords.len() >= 2 {
                    polyline points=(coords.join(" ")) fill="none" stroke="#1565c0" stroke-width="1.5" {}
                } @else {
                    text x="4" y=(SH / 2.0) font-size="10" fill="#777" { "Chưa đủ mẫu (lấy mẫu định kỳ)." }
                }
            }
        }
    }
}

/// "12 phút", "3 giờ".
fn span_words(ms: u64) -> String {
    let minutes = (ms / 60_000).max(1);
    if minutes < 120 {
        format!("{minutes} phút")
    } else {
        format!("{} giờ", minutes / 60)
    }
}

/// Per platform: backlog, oldest pending and delivery rate over the last day. `live` is
/// the status document the table above is drawn from: its backlog and oldest pending end
/// each line, so the chart's last point is the table's figure.
pub fn platforms_last_day(
    samples: &[Sample],
    targets: &[String],
    live: &serde_json::Value,
) -> Markup {
    let span = super::super::history::SPAN.as_millis() as u64;
    let series = |target: &str, f: fn(&super::super::history::TargetSample) -> f64| {
        samples
            .iter()
            .filter_map(|s| {
                let t = s.targets.iter().find(|t| t.target == target)?;
                Some((s.at_ms, f(t)))
            })
            .collect::<Vec<_>>()
    };
    let now = crate::time::now_ms();
    let with_live = |mut points: Vec<(u64, f64)>, target: &str, field: &str| {
        let row = live["targets"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["target"] == target));
        if let Some(r) = row {
            // Nothing pending: no oldest (null), drawn as 0.
            points.retain(|(t, _)| *t < now);
            points.push((now, r[field].as_f64().unwrap_or(0.0)));
        }
        points
    };
    html! {
        @for t in targets {
            div.charts #{"dien-bien-" (t)} {
                h3 { (t) }
                (sparkline(&format!("dien-bien-{t}-ton-dong"), "Tồn đọng", "giao dịch", &with_live(series(t, |x| x.pending as f64), t, "pending"), span))
                (sparkline(&format!("dien-bien-{t}-cu-nhat"), "Chờ lâu nhất", "giây", &with_live(series(t, |x| x.oldest_s as f64), t, "oldest_pending_age_s"), span))
                (sparkline(&format!("dien-bien-{t}-toc-do"), "Tốc độ chuyển", "giao dịch/phút", &series(t, |x| x.delivered_per_min), span))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::kpi::Ratio;
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn bars_follow_the_percentages_and_months_without_data_are_marked() {
        let months = vec![
            (
                "2024-06".to_string(),
                BTreeMap::from([(
                    "truc_tuyen",
                    Ratio {
                        numerator: 1,
                        denominator: 4,
                        percent: Some(25.0),
                    },
                )]),
            ),
            (
                "2024-07".to_string(),
                BTreeMap::from([(
                    "truc_tuyen",
                    Ratio {
                        numerator: 3,
                        denominator: 4,
                        percent: Some(75.0),
                    },
                )]),
            ),
            ("2024-08".to_string(), BTreeMap::new()),
        ];
        let svg = monthly_target("truc_tuyen", "2. Trực tuyến", 50.0, &months).into_string();
        assert_eq!(svg.matches("class=\"bar\"").count(), 2, "{svg}");
        assert!(svg.contains("#c62828") && svg.contains("#2e7d32"), "{svg}");
        assert!(svg.contains("2024-08: chưa có số liệu"), "{svg}");
        let line = sparkline(
            "x",
            "Tồn đọng",
            "giao dịch",
            &[(0, 0.0), (60_000, 10.0)],
            86_400_000,
        )
        .into_string();
        assert!(line.contains("<polyline"), "{line}");
        // Ten minutes of samples fill the width (they used to be a tick at its right edge).
        let ten = sparkline(
            "x",
            "Tồn đọng",
            "giao dịch",
            &[(1_000_000, 1.0), (1_300_000, 2.0), (1_600_000, 3.0)],
            86_400_000,
        )
        .into_string();
        assert!(ten.contains("points=\"0.0,"), "{ten}");
        assert!(ten.contains(" 260.0,"), "{ten}");
        assert!(ten.contains("trong 10 phút qua"), "{ten}");
    }
}
