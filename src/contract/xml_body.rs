//! An XML body as OpenAPI describes one: the event schema turned into the document a unit
//! writes, with OpenAPI's `xml` object naming the root element, its namespace, which
//! fields are attributes and how lists repeat, so that a body generated from the document
//! is one the bus takes.
//!
//! How the bus reads XML (`lienthong_mapping::codec::xml`) fixes the rules:
//! * `"@name"` fields are attributes (`xml.attribute`, `xml.name` without the `@`);
//! * `"#text"` is the element's own text beside its attributes (OpenAPI has no word for
//!   it; the field's description says so);
//! * a list is its element repeated, not wrapped (one element is a list of one), so a
//!   list the event requires has at least one item, and an empty list is no list;
//! * everything is text: an empty element is no value, so an optional field (a value,
//!   an object or a list) also takes empty text or null, and an object the event requires has at least one field to write;
//! * a body of several events (the mapping's `records` path) is the root holding the
//!   record element repeated; otherwise the event is the document, its one property the
//!   root element.

use serde_json::{Map, Value, json};

/// The schema of an XML body carrying events of `event`: `records` is the mapping's path
/// to the record elements (root first), `namespace` the one its example is written in.
/// `None` when the event is not one document (not a single root element).
pub(super) fn xml_body(
    event: &Value,
    records: Option<&[String]>,
    max_batch: usize,
    namespace: Option<&str>,
) -> Option<Value> {
    let mut body = match records {
        Some([root, inner @ ..]) if !inner.is_empty() => {
            let mut record = as_xml(event, true);
            record.as_object_mut()?.remove("xml");
            let mut node = json!({
                "type": "array", "minItems": 1, "maxItems": max_batch,
                "description": format!("One event each (at most {max_batch}); all are stored or none"),
                "items": record,
            });
            for name in inner.iter().rev() {
                node = json!({"type": "object", "required": [name], "properties": {name: node}});
            }
            node["xml"] = json!({"name": root});
            node
        }
        Some(_) => return None,
        None => {
            let props = event.get("properties")?.as_object()?;
            let [root] = props.keys().collect::<Vec<_>>()[..] else {
                return None;
            };
            let mut body = as_xml(&root_schema(event, root), true);
            body["xml"] = json!({"name": root});
            body
        }
    };
    if let Some(ns) = namespace {
        body["xml"]["namespace"] = json!(ns);
    }
    Some(body)
}

/// The schema of the root element `root`: the event's one property, with the event's own
/// conditions and alternatives (`allOf`, `anyOf`, `if`/`then`, which name the root first)
/// moved inside it.
fn root_schema(event: &Value, root: &str) -> Value {
    let mut out = event["properties"][root].clone();
    let inner = descend(event, root);
    if let (Some(out), Some(inner)) = (out.as_object_mut(), inner.as_object()) {
        for key in ["allOf", "anyOf"] {
            if let Some(Value::Array(list)) = inner.get(key) {
                let mine = out.entry(key).or_insert_with(|| json!([]));
                if let Some(mine) = mine.as_array_mut() {
                    mine.extend(list.iter().cloned());
                }
            }
        }
    }
    out
}

/// What `schema` (about the event) says of its root element `root`.
fn descend(schema: &Value, root: &str) -> Value {
    let mut out = Map::new();
    let Some(o) = schema.as_object() else {
        return Value::Object(out);
    };
    if let Some(Value::Object(of_root)) = o.get("properties").and_then(|p| p.get(root)) {
        out = of_root.clone();
    }
    for key in ["if", "then", "else"] {
        if let Some(sub) = o.get(key) {
            out.insert(key.into(), descend(sub, root));
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = o.get(key) {
            let list = list.iter().map(|s| descend(s, root)).collect();
            out.insert(key.into(), Value::Array(list));
        }
    }
    Value::Object(out)
}

/// `schema` (one field of the event) as XML carries it; `required` when the field must
/// be there.
fn as_xml(schema: &Value, required: bool) -> Value {
    let Some(o) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = o.clone();
    // An element with text beside its attributes may be written with its text alone
    // (`<LinhVuc>Tiêu chuẩn</LinhVuc>`), where no attribute is required.
    let mut text_alone = None;
    if let Some(Value::Object(props)) = o.get("properties") {
        let needed: Vec<&str> = o
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut written = Map::new();
        for (name, sub) in props {
            let mut field = as_xml(sub, needed.contains(&name.as_str()));
            if let Some(attribute) = name.strip_prefix('@') {
                field["xml"] = json!({"name": attribute, "attribute": true});
            } else if name == TEXT {
                let said = field["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                field["description"] = json!(format!(
                    "The element's own text, beside its attributes{}",
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ));
            }
            written.insert(name.clone(), field);
        }
        if needed.iter().all(|n| *n == TEXT) {
            text_alone = written.get(TEXT).cloned();
        }
        out.insert("properties".into(), Value::Object(written));
        // `<Field/>` is no value: an object that must be there has something to write.
        if required && needed.is_empty() {
            out.insert("minProperties".into(), json!(1));
        }
    }
    if let Some(items) = o.get("items") {
        // Each item is an element of its own, so it must be there.
        out.insert("items".into(), as_xml(items, true));
        if required {
            let least = o
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .max(1);
            out.insert("minItems".into(), json!(least));
        }
    }
    let container = o.contains_key("properties") || o.contains_key("items");
    if !container {
        // A value in XML is text: a number is written as its text.
        if let Some(Value::Array(types)) = o.get("type")
            && types.contains(&json!("string"))
        {
            out.insert("type".into(), json!("string"));
        }
        if !required && optional_text(&mut out) {
            return Value::Object(out);
        }
    }
    let mut alternatives = vec![Value::Object(out)];
    alternatives.extend(text_alone);
    if !required {
        // An empty element is the field not given, whatever its form (a value, an
        // object, a list).
        alternatives.push(if container {
            json!({"type": ["string", "null"], "maxLength": 0})
        } else {
            json!({"type": "string", "maxLength": 0})
        });
    }
    match alternatives.len() {
        1 => alternatives.remove(0),
        _ => json!({ "anyOf": alternatives }),
    }
}

/// The field of an element's own text (`lienthong_mapping::path::TEXT_KEY`).
const TEXT: &str = "#text";

/// An optional text value that also takes empty text, said in its own keywords where
/// they allow it (an attribute is only ever text, so no `anyOf` offers it a list).
fn optional_text(leaf: &mut Map<String, Value>) -> bool {
    let plain = leaf.get("type") == Some(&json!("string"))
        && !["anyOf", "allOf", "oneOf", "minLength", "const"]
            .iter()
            .any(|k| leaf.contains_key(*k));
    if !plain {
        return false;
    }
    if let Some(Value::Array(codes)) = leaf.get_mut("enum")
        && !codes.contains(&json!(""))
    {
        codes.push(json!(""));
    }
    if let Some(Value::String(p)) = leaf.get_mut("pattern")
        && !p.starts_with("^$|")
    {
        *p = format!("^$|{p}");
    }
    true
}

/// The namespace of the first element of a document that is not SOAP's own (the
/// operation inside a SOAP Body): what the example is written in.
pub(super) fn namespace_of(example: &str) -> Option<String> {
    use quick_xml::NsReader;
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let soap = [
        lienthong_mapping::codec::xml::SOAP11_NS,
        lienthong_mapping::codec::xml::SOAP12_NS,
    ];
    let mut reader = NsReader::from_str(example);
    loop {
        match reader.read_resolved_event().ok()? {
            (ResolveResult::Bound(ns), Event::Start(_) | Event::Empty(_)) => {
                let ns: &str = ns.into_inner();
                if !soap.contains(&ns) {
                    return Some(ns.to_string());
                }
            }
            (_, Event::Start(_) | Event::Empty(_)) => return None,
            (_, Event::Eof) => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Value {
        json!({"type": "object", "required": ["GuiHoSo"], "properties": {"GuiHoSo": {
        "type": "object", "required": ["HoSo"], "properties": {"HoSo": {
            "type": "object", "required": ["SoHoSo"],
            "properties": {
                "@loai": {"type": "string", "enum": ["moi", "capnhat"]},
                "SoHoSo": {"type": "string", "pattern": "[0-9A-Za-z]"},
                "SoTien": {"type": "integer"},
                "Tep": {"type": "array", "items": {"type": "object", "properties": {
                    "#text": {"type": "string"}}}},
            }}}}}})
    }

    #[test]
    fn the_root_attributes_and_lists_are_named_as_the_bus_reads_them() {
        let body = xml_body(&event(), None, 100, Some("urn:x")).unwrap();
        assert_eq!(
            body["xml"],
            json!({"name": "GuiHoSo", "namespace": "urn:x"})
        );
        let hoso = &body["properties"]["HoSo"];
        assert_eq!(hoso["properties"]["SoHoSo"]["pattern"], "[0-9A-Za-z]");
        // Optional: its schema, or an empty element.
        let loai = &hoso["properties"]["@loai"];
        assert_eq!(loai["xml"], json!({"name": "loai", "attribute": true}));
        assert_eq!(loai["enum"], json!(["moi", "capnhat", ""]));
        assert_eq!(hoso["properties"]["SoTien"]["anyOf"][0]["type"], "integer");
        assert_eq!(hoso["properties"]["SoTien"]["anyOf"][1]["maxLength"], 0);
        let tep = &hoso["properties"]["Tep"]["anyOf"][0];
        // Each item is an element with something in it, or its text alone.
        assert_eq!(tep["items"]["anyOf"][0]["minProperties"], 1);
        assert_eq!(tep["items"]["anyOf"][1]["type"], "string");
        assert!(
            tep.get("minItems").is_none(),
            "an optional list may be absent"
        );
    }

    #[test]
    fn the_events_conditions_move_inside_its_root_element() {
        let mut event = event();
        event["allOf"] = json!([{
            "if": {"required": ["GuiHoSo"], "properties": {"GuiHoSo": {"properties": {"HoSo": {"properties": {"@loai": {"const": "capnhat"}}}}}}},
            "then": {"required": ["GuiHoSo"], "properties": {"GuiHoSo": {"properties": {"HoSo": {"required": ["SoTien"]}}}}}
        }]);
        let body = xml_body(&event, None, 100, None).unwrap();
        let rule = &body["allOf"][0];
        assert_eq!(
            rule["if"]["properties"]["HoSo"]["properties"]["@loai"]["const"],
            "capnhat"
        );
        assert_eq!(
            rule["then"]["properties"]["HoSo"]["required"],
            json!(["SoTien"])
        );
    }

    #[test]
    fn records_are_the_record_element_repeated_under_the_root() {
        let record =
            json!({"type": "object", "required": ["Ma"], "properties": {"Ma": {"type": "string"}}});
        let path = ["NhatKyXuLy".to_string(), "XuLy".to_string()];
        let body = xml_body(&record, Some(&path), 50, None).unwrap();
        assert_eq!(body["xml"]["name"], "NhatKyXuLy");
        assert_eq!(body["required"], json!(["XuLy"]));
        let list = &body["properties"]["XuLy"];
        assert_eq!(
            (list["minItems"].as_u64(), list["maxItems"].as_u64()),
            (Some(1), Some(50))
        );
        assert_eq!(list["items"]["required"], json!(["Ma"]));
        assert!(xml_body(&json!({"type": "object"}), None, 1, None).is_none());
    }

    #[test]
    fn the_namespace_is_the_operations_not_soaps() {
        let soap = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body><GuiHoSo xmlns="urn:stameq"><HoSo/></GuiHoSo></s:Body></s:Envelope>"#;
        assert_eq!(namespace_of(soap).as_deref(), Some("urn:stameq"));
        assert_eq!(namespace_of("<a><b/></a>"), None);
    }
}
