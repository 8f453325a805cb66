//! The map of the routes (server-rendered SVG): each unit, its flows, the platforms they
//! go to and the mapping on each line, with live figures from the status document
//! (waiting and dead per unit and per platform, the recent error rate, the circuit's
//! state as the platform box's colour). Read with the status page; no script.

use crate::admin::RouteLine;
use maud::{Markup, html};
use serde_json::Value;
use std::collections::BTreeMap;

const ROW: i64 = 28;
const BOX_H: i64 = 22;
const UNIT_X: i64 = 8;
const UNIT_W: i64 = 210;
const FLOW_X: i64 = 300;
const FLOW_W: i64 = 170;
const TARGET_X: i64 = 580;
const TARGET_W: i64 = 390;

/// Where each box sits: its top y.
struct Layout<'a> {
    flows: Vec<(&'a RouteLine, i64)>,
    units: Vec<(&'a str, i64)>,
    targets: BTreeMap<&'a str, i64>,
    height: i64,
}

fn layout(routes: &[RouteLine]) -> Layout<'_> {
    let mut sorted: Vec<&RouteLine> = routes.iter().collect();
    sorted.sort_by(|a, b| (&a.unit, &a.flow).cmp(&(&b.unit, &b.flow)));
    let flows: Vec<(&RouteLine, i64)> = sorted
        .iter()
        .enumerate()
        .map(|(i, r)| (*r, 8 + i as i64 * ROW))
        .collect();
    // A unit sits at the middle of its flows.
    let mut units: Vec<(&str, i64)> = Vec::new();
    for (r, y) in &flows {
        match units.last_mut() {
            Some((u, _)) if *u == r.unit.as_str() => {}
            _ => units.push((r.unit.as_str(), *y)),
        }
    }
    let units = units
        .into_iter()
        .map(|(u, first)| {
            let last = flows
                .iter()
                .filter(|(r, _)| r.unit == u)
                .map(|(_, y)| *y)
                .max()
                .unwrap_or(first);
            (u, (first + last) / 2)
        })
        .collect();
    let mut names: Vec<&str> = routes
        .iter()
        .flat_map(|r| r.targets.iter().map(|(t, _)| t.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let height = (8 + flows.len() as i64 * ROW).max(8 + names.len() as i64 * ROW * 2);
    let spacing = if names.is_empty() {
        ROW
    } else {
        (height - 8) / names.len() as i64
    };
    let targets = names
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, 8 + i as i64 * spacing))
        .collect();
    Layout {
        flows,
        units,
        targets,
        height: height + 8,
    }
}

/// The row of the status document's `targets` or `units` named `name`.
fn row<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|t| t[key] == name))
        .unwrap_or(&Value::Null)
}

/// The box colour of a platform: its circuit, or paused.
fn target_class(t: &Value) -> &'static str {
    if t["paused"] == true {
        "paused"
    } else {
        match t["circuit"].as_str() {
            Some("open") => "open",
            Some("half_open") => "half-open",
            _ => "closed",
        }
    }
}

fn circuit_words(class: &str) -> &'static str {
    match class {
        "paused" => "tạm dừng",
        "open" => "mất kết nối",
        "half-open" => "đang thử lại",
        _ => "kết nối tốt",
    }
}

/// The route map of `routes`, with the figures of `status`.
pub(super) fn route_map(routes: &[RouteLine], status: &Value) -> Markup {
    let l = layout(routes);
    let mid = BOX_H / 2;
    html! {
        section #ban-do {
            h2 { "Bản đồ tuyến: đơn vị → luồng → nơi nhận" }
            p.muted { "Số trên mỗi ô: đang chờ / thư chết; nơi nhận: thêm tỷ lệ lỗi gần đây. Màu ô nơi nhận: xanh kết nối tốt, vàng đang thử lại hoặc tạm dừng, đỏ mất kết nối. Di chuột lên đường nối để xem tệp ánh xạ." }
            svg #ban-do-tuyen xmlns="http://www.w3.org/2000/svg" width=(TARGET_X + TARGET_W + 8) height=(l.height)
                viewBox={"0 0 " (TARGET_X + TARGET_W + 8) " " (l.height)} role="img" aria-label="Bản đồ tuyến" {
                style { "rect{stroke:#8a96a3;fill:#fff} .closed{fill:#e6f4ea;stroke:#1e7d34} .open{fill:#fde8e8;stroke:#b42318} .half-open,.paused{fill:#fff4e0;stroke:#b26b00} line{stroke:#9aa5b1;stroke-width:1.2} text{font:12px system-ui,sans-serif;fill:#1d2733}" }
                @for (r, y) in &l.flows {
                    @let uy = l.units.iter().find(|(u, _)| *u == r.unit.as_str()).map_or(*y, |(_, uy)| *uy);
                    line x1=(UNIT_X + UNIT_W) y1=(uy + mid) x2=(FLOW_X) y2=(y + mid) {}
                    @for (t, mapping) in &r.targets {
                        @let ty = l.targets.get(t.as_str()).copied().unwrap_or(0);
                        line .canh x1=(FLOW_X + FLOW_W) y1=(y + mid) x2=(TARGET_X) y2=(ty + mid) {
                            title { (r.unit) "/" (r.flow) " → " (t) ": " @if mapping.is_empty() { "gửi nguyên văn" } @else { "ánh xạ " (mapping) } }
                        }
                    }
                }
                @for (u, y) in &l.units {
                    @let s = row(&status["units"], "unit", u);
                    g #{"map-unit-" (u)} {
                        rect x=(UNIT_X) y=(y) width=(UNIT_W) height=(BOX_H) rx="4" {}
                        text x=(UNIT_X + 6) y=(y + 15) {
                            tspan font-weight="bold" { (u) }
                            " · chờ " tspan #{"map-unit-" (u) "-pending"} { (s["pending"].as_u64().unwrap_or(0)) }
                            " · chết " tspan #{"map-unit-" (u) "-dead"} { (s["dead"].as_u64().unwrap_or(0)) }
                        }
                    }
                }
                @for (r, y) in &l.flows {
                    rect x=(FLOW_X) y=(y) width=(FLOW_W) height=(BOX_H) rx="10" {}
                    text x=(FLOW_X + 8) y=(y + 15) { (r.flow) }
                }
                @for (t, y) in &l.targets {
                    @let s = row(&status["targets"], "target", t);
                    @let class = target_class(s);
                    @let errors = s["recent"]["error_rate"].as_f64().unwrap_or(0.0) * 100.0;
                    g #{"map-target-" (t)} {
                        rect class=(class) x=(TARGET_X) y=(y) width=(TARGET_W) height=(BOX_H) rx="4" {
                            title { (t) ": " (circuit_words(class)) }
                        }
                        text x=(TARGET_X + 6) y=(y + 15) {
                            tspan font-weight="bold" { (t) }
                            " · chờ " tspan #{"map-target-" (t) "-pending"} { (s["pending"].as_u64().unwrap_or(0)) }
                            " · chết " tspan #{"map-target-" (t) "-dead"} { (s["dead"].as_u64().unwrap_or(0)) }
                            " · lỗi " tspan #{"map-target-" (t) "-errors"} { (super::view::percent(errors)) }
                            " · " tspan #{"map-target-" (t) "-circuit"} { (circuit_words(class)) }
                        }
                    }
                }
            }
        }
    }
}
