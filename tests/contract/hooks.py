"""Schemathesis hooks for the contract test (tests/contract.rs).

XML and CSV bodies are a unit's own export format: a JSON Schema cannot say what a valid
one is, so the document gives a real example from the mapping's fixture cases for each
such body, and this hook sends that example as it is (Schemathesis would otherwise wrap a
generated string in an XML element of its own). JSON bodies are generated from their
schemas as usual.
"""

import itertools

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.transport.requests import REQUESTS_TRANSPORT

_rotation = itertools.count()


def _examples(case):
    content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    media = content.get(case.media_type, {})
    if "example" in media:
        return [media["example"]]
    return [e["value"] for e in media.get("examples", {}).values() if "value" in e]


def _body_is_negative(case):
    meta = getattr(case, "meta", None)
    info = meta.components.get(ParameterLocation.BODY) if meta is not None else None
    return info is not None and info.mode == GenerationMode.NEGATIVE


@schemathesis.hook
def map_case(ctx, case):
    if case.media_type in ("text/xml", "text/csv") and not _body_is_negative(case):
        examples = _examples(case)
        if examples:
            case.body = examples[next(_rotation) % len(examples)]
    return case


# Schemathesis's own XML serializer (which wraps a string in an element) goes first.
REQUESTS_TRANSPORT.unregister_serializer("application/xml", "text/xml")


@schemathesis.serializer("text/xml", "text/csv")
def as_is(ctx, value):
    """The example's text, sent as it is."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
