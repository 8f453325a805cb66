//! The operations of a unit's document that are not its event flows: its lookups (with
//! the reply's fields from the reply mapping) and its SOAP endpoint.

use super::openapi::{AUTH_ERRORS, Contract, errors, fixture_example, ident, security_for};
use lienthong_mapping::Format;
use serde_json::{Map, Value, json};

pub(super) fn lookup_operation(
    c: &Contract<'_>,
    unit: &str,
    kind: &str,
    needs: &str,
    tag: &str,
) -> Option<Value> {
    let configured = match needs {
        "population" => c.config.lookups.population.is_some(),
        _ => c.config.lookups.business.is_some(),
    };
    if !configured {
        return None;
    }
    let request = c
        .mappings
        .lookup_mapping(unit, &format!("{kind}_lookup_request"))
        .ok()?;
    let reply = c
        .mappings
        .lookup_mapping(unit, &format!("{kind}_lookup_reply"))
        .ok()?;
    // Personal data is asked for a dossier and a purpose; the public business register is not.
    let personal = needs == "population";
    let mut schema = request.input_schema();
    if let Some(o) = schema.as_object_mut() {
        o.insert("description".into(), json!(request.description));
    }
    let mut responses = errors(&[
        (
            400,
            "malformed_body, one_lookup; invalid_lookup: the request breaks the operation's schema or cannot be mapped (every problem in `problems`); nothing was asked of the platform; invalid_query: `dossier` or `purpose` too long; invalid_header: `X-Officer` not 1 to 100 visible ASCII characters",
        ),
        (401, AUTH_ERRORS[0].1),
        (
            403,
            "forbidden: the key is another unit's; a citizen or residence lookup that fails \
             its purpose check (audited, nobody asked): purpose_missing, dossier_missing, \
             dossier_unknown (this unit never sent the dossier), dossier_closed (closed longer \
             ago than the bus allows), person_missing, person_not_in_dossier",
        ),
        (404, "unknown_unit; unknown_lookup"),
        (408, AUTH_ERRORS[3].1),
        (413, AUTH_ERRORS[4].1),
        (
            429,
            "rate_limited: over the unit's or the platform's rate; unit_rate_exceeded: this \
             unit's share of the platform's lookups per second; unit_daily_quota_exceeded: this \
             unit's lookups of the day (`Retry-After`: seconds to midnight)",
        ),
        (
            501,
            "no_lookup_mapping, no_lookup_target: this lookup is not set up",
        ),
        (
            502,
            "platform_unreachable, platform_error, bad_reply, lookup_failed: the national platform failed",
        ),
        (
            503,
            "audit_unavailable: no answer without its audit record; dossier_unreadable: the \
             dossier could not be read now",
        ),
        (504, "platform_timeout: the platform did not answer in time"),
    ]);
    // The request in the unit's own format: JSON, or XML with an example from the fixtures.
    let request_content = match request.input_format() {
        Format::Json => json!({"application/json": {"schema": schema}}),
        format => {
            let media = if format == Format::Csv {
                "text/csv"
            } else {
                "text/xml"
            };
            let mut body = json!({"schema": {"type": "string", "minLength": 1,
                "description": format!("The lookup in the unit's {} format", format.name())}});
            if let Some(example) = fixture_example(&request.file) {
                body["example"] = json!(example);
            }
            json!({ media: body })
        }
    };
    let mut reply_schema = reply.output_schema();
    if let Some(o) = reply_schema.as_object_mut() {
        o.insert("description".into(), json!(reply.description));
    }
    responses.insert(
        "200".into(),
        json!({
            "description": "The platform's answer in the unit's format (found or not)",
            "content": {reply.content_type(): {"schema": reply_schema}}
        }),
    );
    Some(json!({
        "operationId": format!("lookup_{}_{}", ident(unit), kind),
        "tags": [tag],
        "summary": format!("{kind} lookup"),
        "description": format!("Asks the national platform on the unit's behalf ({}). \
            Every lookup is recorded in the audit trail with the officer, dossier and purpose.",
            request.description),
        "security": security_for(c, unit),
        "parameters": [
            {"name": "dossier", "in": "query", "required": false, "description": if personal {
                "The dossier of this unit's the lookup is for: the bus must have it, open or closed a short while ago, and it must name the person asked about (required unless the IT Center documented an exception for this unit)"
            } else { "The dossier the lookup is for (audit)" }, "schema": {"type": "string", "maxLength": 100}},
            {"name": "purpose", "in": "query", "required": personal, "description": "Why (audit; required for personal data)", "schema": {"type": "string", "maxLength": 200}},
            {"name": "X-Officer", "in": "header", "required": false, "description": "The officer asking (audit)", "schema": {"type": "string", "pattern": "^[!-~]{1,100}$"}},
        ],
        "requestBody": {"required": true, "content": request_content},
        "responses": responses,
    }))
}

/// `GET /soap/{unit}?wsdl`: the WSDL a SOAP toolkit builds its client from (open, like
/// the API document: it holds no secret).
pub(super) fn wsdl_operation(unit: &str, tag: &str) -> Value {
    json!({
        "operationId": format!("wsdl_{}", ident(unit)),
        "tags": [tag],
        "summary": "The WSDL of this SOAP endpoint",
        "parameters": [{"name": "wsdl", "in": "query", "required": true, "allowEmptyValue": true,
            "description": "Present (`?wsdl`): asks for the WSDL", "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "WSDL 1.1 of the endpoint, its address the one asked on", "content": {"text/xml": {"schema": {"type": "string"}}}},
            "400": {"description": "wsdl_only: without `?wsdl` (SOAP messages are POSTed)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "no_soap: the unit has no SOAP operations", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    })
}

pub(super) fn soap_operation(c: &Contract<'_>, unit: &str, tag: &str) -> Option<Value> {
    let ops = &c.config.units.get(unit)?.soap_operations;
    if ops.is_empty() {
        return None;
    }
    let mut examples = Map::new();
    for (operation, flow) in ops {
        let route = c.router.routes_of(unit).iter().find(|r| &r.flow == flow)?;
        let example = route
            .targets
            .iter()
            .filter_map(|t| c.mappings.for_delivery(unit, flow, t))
            .find_map(|m| fixture_example(&m.file));
        if let Some(example) = example {
            examples.insert(
                operation.clone(),
                json!({"summary": format!("{operation} → {flow}"), "value": example}),
            );
        }
    }
    let list = ops
        .iter()
        .map(|(op, flow)| format!("`{op}` → `{flow}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(json!({
        "operationId": format!("soap_{}", ident(unit)),
        "tags": [tag],
        "summary": "SOAP 1.1 endpoint",
        "description": format!("The first element of the Body picks the flow: {list}. The WSDL is at `/soap/{unit}?wsdl`. The answer is `<Operation>Response` with `KetQua` and one `MaTiepNhan` per stored event; a problem is a SOAP Fault whose detail names the code, field and line (HTTP 500 as SOAP 1.1 says; 400 for an empty body, 401/403 for the key, 503 when busy)."),
        "security": security_for(c, unit),
        "requestBody": {"required": true, "content": {"text/xml": {
            "schema": {"type": "string", "minLength": 1},
            "examples": examples,
        }}},
        "responses": {
            "200": {"description": "Stored; the SOAP answer", "content": {"text/xml": {"schema": {"type": "string"}}}},
            "400": {"description": "SOAP Fault: the request has no body (empty_body)", "content": {"text/xml": {"schema": {"type": "string"}}}},
            "401": {"description": "SOAP Fault: no or wrong unit key", "content": {"text/xml": {"schema": {"type": "string"}}}},
            "403": {"description": "SOAP Fault: the key is another unit's", "content": {"text/xml": {"schema": {"type": "string"}}}},
            "408": {"description": "body_timeout", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "413": {"description": "body_too_large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "429": {"description": "rate_limited", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "500": {"description": "SOAP Fault, sent with 500 as WS-I Basic Profile 1.1 R1126 requires of SOAP 1.1 (SOAP toolkits read the fault's detail only then). faultcode soap:Client: the request is wrong, correct it and send again; the detail names the code, the field and line, and for a refused event one <problem> (field, line, text) per problem, nothing stored. soap:Server: the bus's own fault, send again later", "content": {"text/xml": {"schema": {"type": "string"}}}},
            "503": {"description": "SOAP Fault: busy, send again later", "content": {"text/xml": {"schema": {"type": "string"}}}},
        },
    }))
}
