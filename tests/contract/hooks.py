"""Schemathesis hooks for the contract test (tests/it/contract.rs).

XML bodies are generated from their schemas, whose `xml` objects say how the bus reads
them (root element and namespace, attributes, a list as its element repeated); this
hook's writer follows them, and writes a field named `#text` as the element's own text,
which OpenAPI's `xml` object has no word for. A body described only as text (a CSV
export; a SOAP envelope, whose contract is the WSDL) is one of the real examples the
document gives from the mapping's fixture cases, sent as it is.
"""

import itertools
import re
from decimal import Decimal

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.transport.requests import REQUESTS_TRANSPORT

_rotation = itertools.count()


def _media(case):
    content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    return content.get(case.media_type, {})


def _examples(case):
    media = _media(case)
    if "example" in media:
        return [media["example"]]
    return [e["value"] for e in media.get("examples", {}).values() if "value" in e]


def _body_is_negative(case):
    meta = getattr(case, "meta", None)
    info = meta.components.get(ParameterLocation.BODY) if meta is not None else None
    return info is not None and info.mode == GenerationMode.NEGATIVE


@schemathesis.hook
def map_case(ctx, case):
    # A body the document describes only as text (a CSV export, a SOAP envelope, whose
    # contract is the WSDL) is one of its real examples.
    text_only = _media(case).get("schema", {}).get("type") == "string"
    if case.media_type in ("text/xml", "text/csv") and text_only and not _body_is_negative(case):
        examples = _examples(case)
        if examples:
            case.body = examples[next(_rotation) % len(examples)]
    return case


# The writer below replaces Schemathesis's own for XML.
REQUESTS_TRANSPORT.unregister_serializer("application/xml", "text/xml")

# Characters XML 1.0 can carry; any other is dropped, as every XML writer must.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NAME = re.compile(r"[^A-Za-z0-9_.\-]")


def _text(value, attribute=False):
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = format(Decimal(repr(value)), "f")  # 1e-07 is 0.0000001: no exponent
    elif value is None:
        text = ""
    else:
        text = str(value)
    text = _NOT_XML.sub("", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Character references keep what a parser would normalise away.
    text = text.replace("\r", "&#13;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")
    return text


def _name(name):
    name = _NAME.sub("_", name) or "element"
    return name if name[0].isalpha() or name[0] == "_" else "x_" + name


def _pick(schema, value):
    """The alternative of an `anyOf` that describes `value`'s elements (an optional field
    is its schema or empty text), keeping the field's own `xml` object."""
    for alt in schema.get("anyOf", []):
        if (isinstance(value, dict) and "properties" in alt) or (
            isinstance(value, list) and "items" in alt
        ):
            return {**alt, "xml": schema.get("xml", {})}
    return schema


def _write(out, value, name, schema, namespace=None):
    schema = _pick(schema if isinstance(schema, dict) else {}, value)
    if isinstance(value, list):
        for item in value:
            _write(out, item, name, schema.get("items", {}), namespace)
        return
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    if not isinstance(value, dict):
        out.append(f"<{name}{xmlns}>{_text(value)}</{name}>")
        return
    props = schema.get("properties", {})
    attributes, children, text = [], [], ""
    for key, sub in value.items():
        field = props.get(key, {})
        options = field.get("xml", {}) if isinstance(field, dict) else {}
        if options.get("attribute"):
            attributes.append(f' {_name(options.get("name", key))}="{_text(sub, True)}"')
        elif key == "#text":
            text = _text(sub)
        else:
            _write(children, sub, _name(options.get("name", key)), field)
    out.append(f"<{name}{xmlns}{''.join(attributes)}>{text}{''.join(children)}</{name}>")


@schemathesis.serializer("text/xml")
def xml_body(ctx, value):
    """A generated body as the schema's `xml` objects describe it; text as it is."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    schema = _media(ctx.case).get("schema", {})
    options = schema.get("xml", {})
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    _write(out, value, options.get("name", "data"), schema, options.get("namespace"))
    return "".join(out).encode("utf-8")


@schemathesis.serializer("text/csv")
def as_is(ctx, value):
    """The example's text, sent as it is."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
