"""What the OpenAPI document says of every string a request carries."""

from __future__ import annotations

from typing import Any

from paymod.exact_json import MAX_JSON_NUMBER

#: No NUL character: PostgreSQL cannot store one, so the server refuses it anywhere in a request.
NO_NUL = "^[^\\x00]*$"


_JSON_VALUE = "#/components/schemas/JsonValue"


_JSON_OBJECT = "#/components/schemas/JsonObject"


#: Free-form JSON (metadata, data, context): any JSON without NUL characters, numbers within a
#: double's range (they are kept as doubles), nested at most 32 levels.
JSON_COMPONENTS: dict[str, dict[str, Any]] = {
    "JsonValue": {
        "description": "Any JSON value: strings and keys without NUL characters, numbers within a "
        "double's range, at most 32 levels deep",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number", "minimum": -MAX_JSON_NUMBER, "maximum": MAX_JSON_NUMBER},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": {"$ref": _JSON_VALUE}},
            {"$ref": _JSON_OBJECT},
        ],
    },
    "JsonObject": {
        "description": "A free-form JSON object (at most 32 levels deep)",
        "type": "object",
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {"$ref": _JSON_VALUE},
    },
}


def _request_strings_have_no_nul(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _request_strings_have_no_nul(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & node.keys():
        node["pattern"] = NO_NUL
    if node.get("additionalProperties") is True:
        node["additionalProperties"] = {"$ref": _JSON_VALUE}
        node["propertyNames"] = {"pattern": NO_NUL}
    for value in node.values():
        _request_strings_have_no_nul(value)


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
    return found.union(*(_refs(value) for value in node.values()))


def describe_request_strings(schema: dict[str, Any]) -> None:
    """Says in the OpenAPI document what the server refuses in any request: a NUL character in a
    path, query or body string or key (`paymod.exact_json.check_text`), and free-form JSON beyond
    `JSON_COMPONENTS`. Applied to parameters and to the schemas request bodies use (not responses)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(JSON_COMPONENTS)
    pending: set[str] = set()
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                _request_strings_have_no_nul(parameter.get("schema"))
            body = operation.get("requestBody")
            if body is not None:
                _request_strings_have_no_nul(body)
                pending |= _refs(body)
    seen: set[str] = set(JSON_COMPONENTS)
    while pending:
        name = pending.pop()
        if name in seen or name not in components:
            continue
        seen.add(name)
        _request_strings_have_no_nul(components[name])
        pending |= _refs(components[name])


__all__ = ["JSON_COMPONENTS", "NO_NUL", "describe_request_strings"]
