//! The WSDL 1.1 of a SOAP unit's endpoint (`GET /soap/{unit}?wsdl`), generated from the
//! unit's `soap_operations` and the mappings of the flows they feed, for SOAP tooling
//! (a .NET service reference, zeep, SoapUI) to build its client from.
//!
//! Document/literal, SOAP 1.1. Each operation's request element is typed from what the
//! flow's mappings read ([`super::openapi::event_schema`]): objects become sequences of
//! child elements (required ones `minOccurs="1"`), `@name` properties attributes, `#text`
//! simple content, arrays repeated elements, everything else text, a code table's codes an
//! enumeration. The namespace is the one the unit's own messages use (read from the
//! mapping's first example). The answer is `<Operation>Response` in `urn:lienthong:1.0`:
//! `KetQua`, one `MaTiepNhan` per stored event, `TrungLap`.

use super::openapi::{Contract, event_schema, fixture_example};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use serde_json::Value;
use std::fmt::Write;

/// The namespace of the answers the SOAP endpoint writes.
pub const RESPONSE_NAMESPACE: &str = "urn:lienthong:1.0";

/// The WSDL of `unit`'s SOAP endpoint at `endpoint`; `None` when the unit has no SOAP
/// operations.
pub fn wsdl(c: &Contract<'_>, unit: &str, endpoint: &str) -> Option<String> {
    let ops = &c.config.units.get(unit)?.soap_operations;
    if ops.is_empty() {
        return None;
    }
    let mut request_types = String::new();
    let mut namespace = None;
    for (operation, flow) in ops {
        let route = c.router.routes_of(unit).iter().find(|r| &r.flow == flow)?;
        let schema = event_schema(c, route);
        let example = route
            .targets
            .iter()
            .filter_map(|t| c.mappings.for_delivery(unit, flow, t))
            .find_map(|m| fixture_example(&m.file));
        if namespace.is_none() {
            namespace = example.as_deref().and_then(operation_namespace);
        }
        let op_schema = schema
            .get("properties")
            .and_then(|p| p.get(operation))
            .cloned()
            .unwrap_or(Value::Null);
        write_element(&mut request_types, operation, &op_schema, true, false, 2);
    }
    let tns = namespace.unwrap_or_else(|| format!("urn:lienthong:{unit}"));
    let mut messages = String::new();
    let mut port_ops = String::new();
    let mut binding_ops = String::new();
    let mut response_types = String::new();
    for (operation, flow) in ops {
        let _ = write!(
            response_types,
            r#"
      <xs:element name="{operation}Response">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="KetQua" type="xs:string"/>
            <xs:element name="MaTiepNhan" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
            <xs:element name="TrungLap" type="xs:boolean" minOccurs="0"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>"#
        );
        let _ = write!(
            messages,
            r#"
  <wsdl:message name="{operation}Request"><wsdl:part name="body" element="tns:{operation}"/></wsdl:message>
  <wsdl:message name="{operation}Answer"><wsdl:part name="body" element="res:{operation}Response"/></wsdl:message>"#
        );
        let _ = write!(
            port_ops,
            r#"
    <wsdl:operation name="{operation}">
      <wsdl:documentation>Stored as a `{flow}` event of `{unit}` before the answer.</wsdl:documentation>
      <wsdl:input message="tns:{operation}Request"/>
      <wsdl:output message="tns:{operation}Answer"/>
    </wsdl:operation>"#
        );
        let _ = write!(
            binding_ops,
            r#"
    <wsdl:operation name="{operation}">
      <soap:operation soapAction="{operation}" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>"#
        );
    }
    let endpoint = escape(endpoint);
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="lienthong-{unit}"
    targetNamespace="{tns}"
    xmlns:tns="{tns}"
    xmlns:res="{RESPONSE_NAMESPACE}"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/">
  <wsdl:documentation>The integration bus's SOAP endpoint for unit `{unit}`. Send the unit key as `Authorization: Bearer &lt;key&gt;`. Generated from the bus's routes and mappings.</wsdl:documentation>
  <wsdl:types>
    <xs:schema targetNamespace="{tns}" elementFormDefault="qualified">{request_types}
    </xs:schema>
    <xs:schema targetNamespace="{RESPONSE_NAMESPACE}" elementFormDefault="qualified">{response_types}
    </xs:schema>
  </wsdl:types>{messages}
  <wsdl:portType name="{unit}Port">{port_ops}
  </wsdl:portType>
  <wsdl:binding name="{unit}Binding" type="tns:{unit}Port">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>{binding_ops}
  </wsdl:binding>
  <wsdl:service name="lienthong_{unit}">
    <wsdl:port name="{unit}" binding="tns:{unit}Binding">
      <soap:address location="{endpoint}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"#
    ))
}

/// The namespace of the first element inside the SOAP Body of `example`.
fn operation_namespace(example: &str) -> Option<String> {
    let mut reader = NsReader::from_str(example);
    let mut in_body = false;
    loop {
        match reader.read_resolved_event().ok()? {
            (ResolveResult::Bound(ns), Event::Start(e) | Event::Empty(e)) => {
                if in_body {
                    return Some(ns.into_inner().to_string());
                }
                in_body = e.local_name().into_inner() == "Body";
            }
            (_, Event::Start(e) | Event::Empty(e)) if in_body => {
                let _ = e;
                return None;
            }
            (_, Event::Eof) => return None,
            _ => {}
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One `xs:element` for a JSON Schema node (see the module docs for the rules).
fn write_element(
    out: &mut String,
    name: &str,
    schema: &Value,
    required: bool,
    repeated: bool,
    depth: usize,
) {
    let pad = "  ".repeat(depth + 2);
    let occurs = format!(
        "{}{}",
        if required { "" } else { r#" minOccurs="0""# },
        if repeated {
            r#" maxOccurs="unbounded""#
        } else {
            ""
        }
    );
    if schema.get("type").and_then(Value::as_str) == Some("array") {
        let items = schema.get("items").cloned().unwrap_or(Value::Null);
        write_element(out, name, &items, required, true, depth);
        return;
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let Some(props) = props.filter(|p| !p.is_empty()) else {
        let _ = write!(out, "\n{pad}<xs:element name=\"{name}\"{occurs}>");
        write_simple_type(out, schema, &pad);
        let _ = write!(out, "\n{pad}</xs:element>");
        return;
    };
    let required_names: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let attributes: Vec<(&String, &Value)> =
        props.iter().filter(|(k, _)| k.starts_with('@')).collect();
    let children: Vec<(&String, &Value)> = props
        .iter()
        .filter(|(k, _)| !k.starts_with('@') && !k.starts_with('#'))
        .collect();
    let _ = write!(out, "\n{pad}<xs:element name=\"{name}\"{occurs}>");
    let _ = write!(out, "\n{pad}  <xs:complexType>");
    if children.is_empty() && props.contains_key("#text") {
        let _ = write!(
            out,
            "\n{pad}    <xs:simpleContent><xs:extension base=\"xs:string\">"
        );
        write_attributes(out, &attributes, &required_names, &format!("{pad}      "));
        let _ = write!(out, "\n{pad}    </xs:extension></xs:simpleContent>");
    } else {
        let mixed = if props.contains_key("#text") {
            r#" mixed="true""#
        } else {
            ""
        };
        if !mixed.is_empty() {
            // Rewrite the opening tag: text beside child elements.
            out.truncate(out.len() - "<xs:complexType>".len());
            let _ = write!(out, "<xs:complexType{mixed}>");
        }
        let _ = write!(out, "\n{pad}    <xs:sequence>");
        for (child, s) in &children {
            write_element(
                out,
                child,
                s,
                required_names.contains(&child.as_str()),
                false,
                depth + 3,
            );
        }
        let _ = write!(out, "\n{pad}    </xs:sequence>");
        write_attributes(out, &attributes, &required_names, &format!("{pad}    "));
    }
    let _ = write!(out, "\n{pad}  </xs:complexType>");
    let _ = write!(out, "\n{pad}</xs:element>");
}

fn write_attributes(out: &mut String, attrs: &[(&String, &Value)], required: &[&str], pad: &str) {
    for (name, schema) in attrs {
        let bare = name.trim_start_matches('@');
        let usage = if required.contains(&name.as_str()) {
            r#" use="required""#
        } else {
            ""
        };
        let _ = write!(out, "\n{pad}<xs:attribute name=\"{bare}\"{usage}>");
        write_simple_type(out, schema, pad);
        let _ = write!(out, "\n{pad}</xs:attribute>");
    }
}

/// Text, restricted to a code table's codes where the mapping has one.
fn write_simple_type(out: &mut String, schema: &Value, pad: &str) {
    let _ = write!(
        out,
        "\n{pad}  <xs:simpleType><xs:restriction base=\"xs:string\">"
    );
    for code in schema
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let code = code
            .as_str()
            .map_or_else(|| code.to_string(), str::to_string);
        let _ = write!(out, "<xs:enumeration value=\"{}\"/>", escape(&code));
    }
    let _ = write!(out, "</xs:restriction></xs:simpleType>");
}
