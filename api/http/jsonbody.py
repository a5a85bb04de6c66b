"""Strict JSON for every body Tollgate prices or checks.

Tollgate forwards the raw bytes but decides with what it parsed, so it must read them the way
any other parser would: a duplicate key anywhere is refused (Python keeps the last one, other
parsers the first: a parser differential in billing), and so are NaN/Infinity and nesting
deeper than the parser can follow. Every refusal is a 400, never a 500."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.errors import InvalidRequest
from api.inputs import clip


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)  # at C speed; the loop only runs to name the duplicate
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_strict(raw: bytes, what: str = "request body") -> Any:
    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Duplicate as exc:
        raise InvalidRequest(f"{what} has a duplicate key {clip(exc.args[0])}") from None
    except RecursionError:
        raise InvalidRequest(f"{what} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(f"{what} is not valid JSON") from None


def parse_json_object(raw: bytes, what: str = "request body") -> dict[str, Any]:
    body = loads_strict(raw, what)
    if not isinstance(body, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return body


M = TypeVar("M", bound=BaseModel)


def validation_message(exc: ValidationError) -> str:
    """The first problem, as `field.path: what is wrong` (the input itself is not echoed)."""
    errors = exc.errors(include_input=False, include_url=False)
    if not errors:
        return "invalid request body"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def validate_body(model: type[M], raw: bytes) -> M:
    """`raw` as a `model`, strictly parsed; any problem is a 400 naming the field."""
    data = parse_json_object(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(validation_message(exc)) from None
    except RecursionError:
        raise InvalidRequest("request body is nested too deeply") from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the JSON request body (for routes that read their
    body themselves, after authentication). Nested definitions are hoisted into the
    document's components by `api.http.openapi`."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }
