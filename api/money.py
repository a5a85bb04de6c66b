"""Money as text, for every JSON body: out as a decimal string without exponent or trailing
zeros, in as a decimal string or a JSON number (never a float's binary value: numbers are read
through `str`). A leaf module: it imports nothing from the app."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

COST_QUANTUM = Decimal("1E-10")
"""Costs are stored and compared at 10 decimal places of a dollar."""
_MAX_USD = Decimal(10) ** 10  # the money columns are NUMERIC(20, 10)

DECIMAL_TEXT = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,10})?$"
"""A decimal string as money inputs accept it: ASCII digits, an optional fraction, no sign, no
exponent, no spaces, no leading zeros; up to 10 digits each side (below 10^10, at most 10
decimal places)."""
_DECIMAL_TEXT = re.compile(DECIMAL_TEXT)

USD_IN_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": DECIMAL_TEXT, "examples": ["12.50"]},
        {"type": "number", "minimum": 0, "exclusiveMaximum": 1e10, "multipleOf": 1e-10},
    ],
    "description": "USD: a decimal string, or a JSON number read through its decimal text",
}


def format_usd(d: Decimal) -> str:
    """A plain decimal string for JSON: no exponent, no trailing zeros ("0.004215", "0")."""
    if not d.is_finite():
        raise ValueError(f"format_usd: not a finite amount: {d!r}")
    text = f"{d:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def parse_usd(value: object) -> Decimal:
    """A non-negative USD amount from a decimal string or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PydanticCustomError("usd", "must be a decimal string or a number")
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise PydanticCustomError(
            "usd", 'must be a decimal string (digits, an optional fraction, e.g. "12.50")'
        )
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PydanticCustomError("usd", "must be a decimal string or a number") from None
    if not amount.is_finite():
        raise PydanticCustomError("usd", "must be a finite amount")
    if amount < 0:
        raise PydanticCustomError("usd", "must not be negative")
    if amount >= _MAX_USD:
        raise PydanticCustomError("usd", "must be below 10000000000")
    if amount != amount.quantize(COST_QUANTUM):
        raise PydanticCustomError("usd", "must have at most 10 decimal places")
    return amount + 0  # "-0" becomes 0


UsdIn = Annotated[Decimal, PlainValidator(parse_usd), WithJsonSchema(USD_IN_SCHEMA)]
UsdOut = Annotated[Decimal, PlainSerializer(format_usd, return_type=str)]
