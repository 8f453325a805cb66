//! The door check on small mappings: what it names, and where.
use super::*;
use serde_json::json;

fn mapping(toml: &str) -> crate::Mapping {
    crate::compile_str(
        toml,
        std::path::Path::new("door-test.toml"),
        std::path::Path::new("."),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

const DOSSIER: &str = r#"
[mapping]
description = "door test"
[input]
format = "json"
[tables.status]
values = { moi = "1", xong = "10" }
[[field]]
to = "MaHoSo"
from = "code"
required = true
[[field]]
to = "NgayNop"
from = "submittedAt"
required = true
date = { from = ["dd/MM/yyyy", "iso8601"], to = "yyyyMMddHHmmss" }
[[field]]
to = "HoTen"
from = "applicant.name"
required = true
[[field]]
to = "TrangThai"
from = "status"
table = "status"
"#;

fn fields(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(Problem::pointer).collect()
}

#[test]
fn every_missing_and_misplaced_field_is_named_at_once() {
    let m = mapping(DOSSIER);
    let found = m.check_record(&json!({"applicant": "Lan", "status": "moi"}));
    assert_eq!(
        fields(&found),
        ["/applicant", "/code", "/submittedAt"],
        "{found:?}"
    );
    assert!(found[1].reason.contains("required, missing"));
    // Blank and null are no value, as the mapping reads them.
    let found =
        m.check_record(&json!({"code": "  ", "submittedAt": null, "applicant": {"name": "Lan"}}));
    assert_eq!(fields(&found), ["/code", "/submittedAt"], "{found:?}");
    assert!(found[0].reason.contains("blank"), "{found:?}");
}

#[test]
fn a_json_record_is_held_to_every_keyword_of_the_published_schema() {
    let m = mapping(DOSSIER);
    // Each of the mapping's date formats, on a day only some months have.
    for date in ["30/04/2024", "2024-02-29T08:30:00+07:00", "31/12/2024"] {
        let ok = json!({"code": "42", "submittedAt": date, "applicant": {"name": "Lan"}, "status": "moi"});
        assert_eq!(m.check_record(&ok), [], "{date}");
    }
    // A number is read as its text.
    let number = json!({"code": 42, "submittedAt": "2024-04-30", "applicant": {"name": "Lan"}});
    assert_eq!(m.check_record(&number), []);
    // The document says text, a code list and a date: a list, an unknown code and an
    // impossible day are each named, all at once.
    let found = m.check_record(&json!({"code": ["A"], "submittedAt": "31/04/2024", "applicant": {"name": "Lan"}, "status": "??"}));
    assert_eq!(
        fields(&found),
        ["/code", "/status", "/submittedAt"],
        "{found:?}"
    );
    assert!(
        found[0].reason.contains("text or a number expected"),
        "{found:?}"
    );
    assert!(
        found[1].reason.contains("not one of the codes"),
        "{found:?}"
    );
    assert!(found[2].reason.contains("is not a date"), "{found:?}");
}

#[test]
fn a_text_record_is_held_to_its_schema_read_as_text() {
    // A CSV record is text throughout: the door reads it as its document describes the
    // body (text that reads as a number is one, an empty value is none), every keyword.
    let m = mapping(&DOSSIER.replace("format = \"json\"", "format = \"csv\""));
    let ok = json!({"code": "42", "submittedAt": "05/03/2024", "applicant": {"name": "Lan"}, "status": "moi"});
    assert_eq!(m.check_record(&ok), []);
    let blank_optional = json!({"code": "42", "submittedAt": "05/03/2024", "applicant": {"name": "Lan"}, "status": ""});
    assert_eq!(m.check_record(&blank_optional), []);
    let late = json!({"code": "A", "submittedAt": "31/02/2024", "applicant": {"name": "Lan"}});
    let found = m.check_record(&late);
    assert_eq!(fields(&found), ["/submittedAt"], "{found:?}");
    assert!(found[0].reason.contains("is not a date"), "{found:?}");
    let unknown = json!({"code": "A", "submittedAt": "05/03/2024", "applicant": {"name": "Lan"}, "status": "??"});
    let found = m.check_record(&unknown);
    assert_eq!(fields(&found), ["/status"]);
    assert!(
        found[0].reason.contains("not one of the codes"),
        "{found:?}"
    );
    let blank_required =
        json!({"code": "A", "submittedAt": "05/03/2024", "applicant": {"name": " "}});
    let found = m.check_record(&blank_required);
    assert_eq!(fields(&found), ["/applicant/name"], "{found:?}");
    assert!(found[0].reason.contains("required, blank"), "{found:?}");
}

#[test]
fn what_only_the_mapping_knows_is_its_first_refusal_at_the_input_path() {
    // The door's second step alone: the mapping run dry names its refusal by the input
    // path it read and the output field it feeds.
    let m = mapping(DOSSIER);
    let late = json!({"code": "A", "submittedAt": "2024-02-31", "applicant": {"name": "Lan"}});
    let found = m.dry_run(&late);
    assert_eq!(fields(&found), ["/submittedAt"], "{found:?}");
    assert!(found[0].reason.contains("NgayNop"), "{found:?}");
}

#[test]
fn the_published_mode_reads_every_keyword() {
    let m = mapping(DOSSIER);
    let found = m.check_against_schema(&json!({"code": ["A"], "submittedAt": "05/03/2024", "applicant": {"name": "Lan"}, "status": "xx"}));
    let fields = fields(&found);
    assert!(
        fields.contains(&"/code".to_string()),
        "a list is not text: {found:?}"
    );
    assert!(
        fields.contains(&"/status".to_string()),
        "not a code: {found:?}"
    );
    assert!(!fields.contains(&"/submittedAt".to_string()), "{found:?}");
}

#[test]
fn a_source_inside_a_list_is_named_with_its_index() {
    let m = mapping(
        r#"
[mapping]
description = "each"
[input]
format = "json"
[[field]]
to = "Tep"
each = "files"
with = "file"
[[sub.file]]
to = "Ten"
from = "name"
required = true
"#,
    );
    let found = m.check_record(&json!({"files": [{"name": "a"}, {"name": {"x": 1}}]}));
    assert_eq!(fields(&found), ["/files/1/name"], "{found:?}");
    // Found by the mapping (an element's presence is not in the schema): the same path.
    let found = m.check_record(&json!({"files": [{"name": "a"}, {}, {"name": "c"}]}));
    assert_eq!(fields(&found), ["/files/1/name"], "{found:?}");
    assert!(found[0].reason.contains("required"), "{found:?}");
}

#[test]
fn a_field_needed_only_when_a_condition_holds_is_required_only_then() {
    let m = mapping(
        r#"
[mapping]
description = "when"
[input]
format = "json"
[[field]]
to = "kenh"
from = "channel"
[[field]]
to = "so"
template = "GCN {certificate}"
required = true
when = { path = "channel", equals = "zalo", ignore_case = true }
"#,
    );
    let schema = m.input_schema().to_string();
    assert!(
        schema.contains("\"if\"") && schema.contains("[zZ][aA][lL][oO]"),
        "{schema}"
    );
    assert_eq!(m.check_record(&json!({"channel": "sms"})), []);
    let found = m.check_record(&json!({"channel": "ZALO"}));
    assert_eq!(fields(&found), ["/certificate"], "{found:?}");
    assert!(found[0].reason.contains("required"), "{found:?}");
    let found = m.check_record(&json!({"channel": "Zalo", "certificate": " "}));
    assert_eq!(fields(&found), ["/certificate"], "{found:?}");
    assert_eq!(
        m.check_record(&json!({"channel": "zalo", "certificate": "A-1"})),
        []
    );
}

#[test]
fn an_element_written_without_its_attributes_is_its_text() {
    // `<LinhVuc ma="G14">Tiêu chuẩn</LinhVuc>` and `<LinhVuc>Tiêu chuẩn</LinhVuc>`: the
    // second decodes as text alone, and both the door and the mapping read it as `#text`.
    let m = mapping(
        r##"
[mapping]
description = "text beside attributes"
[input]
format = "xml"
[[field]]
to = "Ma"
from = "r.LinhVuc.@ma"
[[field]]
to = "Ten"
from = "r.LinhVuc.#text"
required = true
"##,
    );
    for (input, ma) in [
        (
            r#"<r><LinhVuc ma="G14">Tiêu chuẩn</LinhVuc></r>"#,
            Some("G14"),
        ),
        ("<r><LinhVuc>Tiêu chuẩn</LinhVuc></r>", None),
    ] {
        let input = input.as_bytes();
        assert_eq!(verdict(&m, input), Vec::<String>::new());
        let record = &m.decode(input).unwrap()[0];
        let body: Value = serde_json::from_slice(&m.render_checked(record).unwrap()).unwrap();
        assert_eq!(body["Ten"], "Tiêu chuẩn", "{body}");
        assert_eq!(body["Ma"].as_str(), ma, "{body}");
    }
    // Blank text is no name: the door says it is required.
    let found = verdict(&m, b"<r><LinhVuc ma=\"G14\"/></r>");
    assert_eq!(found, ["/r/LinhVuc/#text: required, missing"], "{found:?}");
}
