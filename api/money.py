"""Money in and out of every JSON body: out as a decimal string, in as a decimal string or a
JSON number (never a float's binary value: numbers are read through `str`)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

from api.pricing.cost import COST_QUANTUM
from api.pricing.cost_format import format_usd

_MAX_USD = Decimal(10) ** 10  # the money columns are NUMERIC(20, 10)


def parse_usd(value: object) -> Decimal:
    """A non-negative USD amount from a decimal string or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PydanticCustomError("usd", "must be a decimal string or a number")
    try:
        amount = Decimal(str(value).strip())
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


UsdIn = Annotated[Decimal, PlainValidator(parse_usd, json_schema_input_type=str | float)]
UsdOut = Annotated[Decimal, PlainSerializer(format_usd, return_type=str)]
