//! The mapping studio at `/anh-xa` (operators): pick a route's mapping, paste or upload a
//! sample of the unit's export in any supported format and encoding, and see what the
//! mapping makes of it — the output, the schema check, the field-by-field trace (the same
//! as `lienthong mapping explain`), the encoding `mapping detect` finds, and the difference
//! from the expected output of one of the mapping's cases. The sample and its output can
//! be downloaded as a new case's files. Server-rendered, plain forms, no script.
//!
//! The upload is bounded (`MAX_SAMPLE_BYTES`) and read only for a signed-in operator.

use super::view::layout;
use super::{AdminState, csrf_ok, csrf_token, forbidden, session_ids, session_of};
use crate::config::AdminRole;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lienthong_mapping::Mapping;
use lienthong_mapping::codec::csv::TextEncoding;
use lienthong_mapping::explain::{Explanation, FieldOutcome};
use lienthong_mapping::fixtures::{self, Expect};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// The largest sample the studio reads (a sample, not a batch).
pub const MAX_SAMPLE_BYTES: usize = 1024 * 1024;

#[derive(Deserialize, Default)]
pub(super) struct StudioQuery {
    /// `unit/flow/target`.
    tuyen: Option<String>,
}

/// What the form sent.
#[derive(Default)]
struct Submitted {
    route: String,
    encoding: String,
    pasted: String,
    uploaded: Vec<u8>,
    uploaded_name: String,
    case: String,
    csrf: String,
}

/// The routes with a mapping, as `unit/flow/target`.
fn route_keys(s: &AdminState) -> Vec<String> {
    s.mappings
        .routes()
        .into_iter()
        .map(|(u, f, t, _)| format!("{u}/{f}/{t}"))
        .collect()
}

fn mapping_of(s: &AdminState, key: &str) -> Option<Arc<Mapping>> {
    let mut parts = key.splitn(3, '/');
    let (u, f, t) = (parts.next()?, parts.next()?, parts.next()?);
    s.mappings.for_delivery(u, f, t)
}

/// Only operators (they can change what the bus sends) use the studio: the refusal for
/// anyone else.
fn refuse_unless_operator(s: &AdminState, headers: &HeaderMap) -> Option<Response> {
    match session_of(s, headers) {
        None => Some(super::view::login_page(None, StatusCode::UNAUTHORIZED)),
        Some(h) if h.role != AdminRole::Operator => Some(forbidden(
            "Xưởng ánh xạ dành cho quản trị viên vận hành (operator).",
        )),
        Some(_) => None,
    }
}

fn csrf_of(s: &AdminState, headers: &HeaderMap) -> String {
    session_ids(headers)
        .find(|id| s.sessions.find(id).is_some())
        .map(csrf_token)
        .unwrap_or_default()
}

pub(super) async fn page(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<StudioQuery>,
) -> Response {
    if let Some(refused) = refuse_unless_operator(&s, &headers) {
        return refused;
    }
    let chosen = q.tuyen.unwrap_or_default();
    let form = Submitted {
        route: chosen,
        encoding: "mapping".into(),
        ..Default::default()
    };
    render(&s, &csrf_of(&s, &headers), &form, None)
}

pub(super) async fn run(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    if let Some(refused) = refuse_unless_operator(&s, &headers) {
        return refused;
    }
    let mut form = Submitted::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad_request(&format!("Biểu mẫu không đọc được: {e}")),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return bad_request(&format!(
                    "Tệp mẫu quá lớn hoặc hỏng ({e}); tối đa {} KiB.",
                    MAX_SAMPLE_BYTES / 1024
                ));
            }
        };
        // The body limit leaves room for the form's other fields and the multipart framing;
        // the sample itself is held to MAX_SAMPLE_BYTES, the other fields to a few KiB.
        let most = match name.as_str() {
            "tep" | "mau" => MAX_SAMPLE_BYTES,
            _ => 4 * 1024,
        };
        if bytes.len() > most {
            return bad_request(&format!(
                "Tệp mẫu quá lớn: tối đa {} KiB.",
                MAX_SAMPLE_BYTES / 1024
            ));
        }
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "tuyen" => form.route = text(),
            "ma_hoa" => form.encoding = text(),
            "mau" => form.pasted = text(),
            "ca" => form.case = text(),
            "csrf" => form.csrf = text(),
            "tep" => {
                form.uploaded = bytes.to_vec();
                form.uploaded_name = file_name.unwrap_or_default();
            }
            _ => {}
        }
    }
    if !csrf_ok(&s, &headers, &form.csrf) {
        return forbidden("Thiếu mã chống giả mạo của phiên; hãy tải lại trang rồi thử lại.");
    }
    let csrf = csrf_of(&s, &headers);
    let Some(mapping) = mapping_of(&s, &form.route) else {
        return render(
            &s,
            &csrf,
            &form,
            Some(html! { p.bad #loi-studio { "Chọn một tuyến có ánh xạ." } }),
        );
    };
    let result = tokio::task::spawn_blocking({
        let mapping = Arc::clone(&mapping);
        let sample = if form.uploaded.is_empty() {
            form.pasted.clone().into_bytes()
        } else {
            form.uploaded.clone()
        };
        let encoding = form.encoding.clone();
        let case = form.case.clone();
        move || try_sample(&mapping, &sample, &encoding, &case)
    })
    .await;
    let shown = match result {
        Ok(r) => r,
        Err(e) => html! { p.bad { "Lỗi nội bộ: " (e.to_string()) } },
    };
    render(&s, &csrf, &form, Some(shown))
}

/// Decode the sample as chosen, map its first record, and show everything about it.
fn try_sample(mapping: &Mapping, sample: &[u8], encoding: &str, case: &str) -> Markup {
    if sample.is_empty() {
        return html! { p.bad #loi-studio { "Dán nội dung mẫu hoặc chọn một tệp." } };
    }
    let detected = lienthong_mapping::detect::detect(sample);
    let mut opts = mapping.decode_options().clone();
    let chosen = match encoding {
        "auto" => Some(detected.encoding.text_encoding()),
        "utf-8" => Some(TextEncoding::Utf8),
        "tcvn3" => Some(TextEncoding::Tcvn3),
        "vni" => Some(TextEncoding::Vni),
        "windows-1258" => Some(TextEncoding::Windows1258),
        _ => None,
    };
    if let Some(e) = chosen {
        opts.csv.encoding = e;
    }
    let records = match lienthong_mapping::codec::decode_records(sample, &opts) {
        Ok(r) => r,
        Err(e) => {
            return html! {
                (detection(&detected))
                p.bad #loi-studio { "Không đọc được mẫu (" (mapping.input_format().name()) "): " (e.to_string()) }
            };
        }
    };
    let Some(record) = records.first() else {
        return html! { (detection(&detected)) p.bad #loi-studio { "Mẫu không có bản ghi nào." } };
    };
    let explained = mapping.explain(record);
    let output = match &explained.result {
        Ok(v) => match mapping.output_format() {
            lienthong_mapping::Format::Json => {
                Ok(serde_json::to_string_pretty(v).unwrap_or_default())
            }
            _ => mapping
                .encode_value(v)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let ext = mapping.input_format().extension();
    let out_ext = mapping.output_format().extension();
    html! {
        (detection(&detected))
        @if records.len() > 1 {
            p.muted { "Mẫu có " (records.len()) " bản ghi; dưới đây là bản ghi đầu tiên." }
        }
        section #ket-qua {
            h2 { "Kết quả" }
            @match &output {
                Ok(text) => {
                    p.ok #kiem-tra-luoc-do {
                        @match &explained.schema {
                            Some(s) => { "Đạt lược đồ " (s) "." }
                            None => { "Ánh xạ không khai báo lược đồ đích." }
                        }
                    }
                    pre #dau-ra { (text) }
                    (download("Tải đầu vào làm ca mẫu", &format!("01-mau.input.{ext}"), sample))
                    (download("Tải kết quả làm tệp mong đợi", &format!("01-mau.expected.{out_ext}"), text.as_bytes()))
                }
                Err(e) => { p.bad #kiem-tra-luoc-do { (e) } }
            }
        }
        (door_verdict(mapping, &records))
        (trace_table(&explained))
        (case_diff(mapping, case, output.as_ref().ok()))
    }
}

/// What the bus's door says of the sample: the same check as on `POST .../events`, every
/// record, every problem.
fn door_verdict(mapping: &Mapping, records: &[serde_json::Value]) -> Markup {
    let many = records.len() > 1;
    let problems: Vec<(String, String)> = records
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            mapping.check_record(r).into_iter().map(move |p| {
                let at = if many {
                    format!("bản ghi {}: ", i + 1)
                } else {
                    String::new()
                };
                let field = match p.pointer() {
                    f if f.is_empty() => "/".to_string(),
                    f => f,
                };
                (format!("{at}{field}"), p.reason)
            })
        })
        .collect();
    html! {
        section #cong-tiep-nhan {
            h2 { "Ở cổng tiếp nhận" }
            @if problems.is_empty() {
                p.ok { "Bus sẽ nhận mẫu này (202): mọi bản ghi đều chuyển được." }
            } @else {
                p.bad {
                    "Bus sẽ từ chối mẫu này (400 invalid_event), không lưu gì: "
                    (problems.len()) " lỗi. Sửa dữ liệu xuất rồi gửi lại."
                }
                table {
                    thead { tr { th { "Trường" } th { "Lỗi" } } }
                    tbody {
                        @for (field, reason) in &problems {
                            tr { td { code { (field) } } td { (reason) } }
                        }
                    }
                }
            }
        }
    }
}

fn detection(d: &lienthong_mapping::detect::Detection) -> Markup {
    html! {
        p.muted #ma-hoa-phat-hien {
            "Bảng mã phát hiện: " strong { (d.encoding.name()) }
            " (" (d.evidence.first().cloned().unwrap_or_default()) "); trong ánh xạ: "
            code { "[input] " (d.input_option()) }
        }
    }
}

/// The per-field trace: the same as `lienthong mapping explain` prints.
fn trace_table(e: &Explanation) -> Markup {
    html! {
        section #giai-thich {
            h2 { "Từng trường" }
            table {
                tr { th { "Trường đích" } th { "Nguồn" } th { "Giá trị đọc" } th { "Biến đổi" } th { "Kết quả" } }
                @for t in &e.fields {
                    tr {
                        td { code { (t.field) } }
                        td { code { (t.source) } }
                        td { @if let Some(v) = &t.read { (v.to_string()) } @else { span.muted { "—" } } }
                        td {
                            @if let Some((c, holds)) = &t.condition {
                                div { (c) ": " (if *holds { "có" } else { "không" }) }
                            }
                            @for (op, r) in &t.steps {
                                div {
                                    (op) " → "
                                    @match r { Ok(v) => { (v.to_string()) } Err(e) => { span.bad { (e) } } }
                                }
                            }
                        }
                        td {
                            @match &t.outcome {
                                FieldOutcome::Written(v) => { (v.to_string()) }
                                FieldOutcome::Default(v) => { (v.to_string()) " (mặc định)" }
                                FieldOutcome::LeftOut => { span.muted { "bỏ qua (không bắt buộc, không có giá trị)" } }
                                FieldOutcome::Skipped => { span.muted { "không áp dụng" } }
                                FieldOutcome::List(n) => { "danh sách " (n) " phần tử" }
                                FieldOutcome::Failed(e) => { span.bad { (e) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The difference from a case's expected output (`-` expected, `+` this sample's).
fn case_diff(mapping: &Mapping, case: &str, output: Option<&String>) -> Markup {
    if case.is_empty() {
        return html! {};
    }
    let cases = fixtures::discover(&mapping.file).unwrap_or_default();
    let Some(c) = cases.iter().find(|c| c.name == case) else {
        return html! { p.bad { "Không có ca kiểm thử " (case) "." } };
    };
    let expected = match &c.expect {
        Expect::Output(p) => std::fs::read_to_string(p).unwrap_or_default(),
        _ => {
            return html! { p.muted { "Ca kiểm thử " (case) " là ca lỗi (dữ liệu phải bị từ chối), không có kết quả mong đợi." } };
        }
    };
    let actual = output.cloned().unwrap_or_default();
    let same = match mapping.output_format() {
        lienthong_mapping::Format::Json => {
            serde_json::from_str::<serde_json::Value>(&expected).ok()
                == serde_json::from_str::<serde_json::Value>(&actual).ok()
        }
        _ => expected.trim() == actual.trim(),
    };
    let expected = match serde_json::from_str::<serde_json::Value>(&expected) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or(expected),
        Err(_) => expected,
    };
    html! {
        section #so-sanh {
            h2 { "So với ca " (case) }
            @if same {
                p.ok { "Giống hệt kết quả mong đợi." }
            } @else {
                pre { (fixtures::diff(&expected, &actual)) }
            }
        }
    }
}

/// A button that downloads `bytes` as `name` (a form: the page runs no script).
fn download(label: &str, name: &str, bytes: &[u8]) -> Markup {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    html! {
        form method="post" action="/anh-xa/tai-ve" style="display:inline" {
            input type="hidden" name="ten" value=(name);
            input type="hidden" name="noi_dung" value=(data);
            button type="submit" { (label) }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct DownloadForm {
    ten: String,
    noi_dung: String,
}

/// Hand a sample or an output back as a file (the studio's download buttons).
pub(super) async fn download_file(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<DownloadForm>,
) -> Response {
    if let Some(refused) = refuse_unless_operator(&s, &headers) {
        return refused;
    }
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(f.noi_dung.trim()) else {
        return bad_request("Nội dung tải về không hợp lệ.");
    };
    let name: String = f
        .ten
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

fn bad_request(text: &str) -> Response {
    let body = html! { main { section { p.bad #loi-studio { (text) } p { a href="/anh-xa" { "Quay lại xưởng ánh xạ" } } } } };
    (StatusCode::BAD_REQUEST, layout("Xưởng ánh xạ", body)).into_response()
}

fn render(s: &AdminState, csrf: &str, form: &Submitted, result: Option<Markup>) -> Response {
    let routes = route_keys(s);
    let cases: Vec<String> = mapping_of(s, &form.route)
        .and_then(|m| fixtures::discover(&m.file).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    let encodings = [
        ("mapping", "Theo ánh xạ"),
        ("auto", "Tự nhận biết"),
        ("utf-8", "UTF-8"),
        ("tcvn3", "TCVN3 (ABC)"),
        ("vni", "VNI"),
        ("windows-1258", "Windows-1258"),
    ];
    let body = html! {
        header {
            h1 { "Xưởng ánh xạ" }
            a href="/" style="color:#fde" { "Về trang giám sát" }
        }
        main {
            section {
                p.muted { "Chọn tuyến, dán hoặc tải lên mẫu dữ liệu xuất từ hệ thống của đơn vị, rồi xem ánh xạ cho ra gì." }
                form method="get" action="/anh-xa" {
                    label for="chon-tuyen" { "Tuyến và nơi nhận " }
                    select #chon-tuyen name="tuyen" {
                        @for r in &routes {
                            option value=(r) selected[*r == form.route] { (r) }
                        }
                    }
                    " "
                    button #xem-ca type="submit" { "Chọn" }
                }
                form method="post" action="/anh-xa" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="tuyen" value=(form.route);
                    p { "Tuyến: " code #tuyen-da-chon { (if form.route.is_empty() { "(chưa chọn)" } else { &form.route }) } }
                    label for="mau" { "Dán mẫu" } br;
                    textarea #mau name="mau" rows="8" cols="100" { (form.pasted) }
                    br;
                    label for="tep" { "hoặc tải tệp lên " }
                    input #tep type="file" name="tep";
                    br;
                    label for="ma-hoa" { "Bảng mã " }
                    select #ma-hoa name="ma_hoa" {
                        @for (v, l) in encodings {
                            option value=(v) selected[v == form.encoding] { (l) }
                        }
                    }
                    " "
                    label for="ca" { "So với ca " }
                    select #ca name="ca" {
                        option value="" { "(không)" }
                        @for c in &cases {
                            option value=(c) selected[*c == form.case] { (c) }
                        }
                    }
                    br;
                    button #chay-thu type="submit" { "Chạy thử" }
                }
            }
            @if let Some(r) = result { (r) }
        }
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        layout("Xưởng ánh xạ", body),
    )
        .into_response()
}
