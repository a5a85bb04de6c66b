"""Money as text: decimal strings for JSON, without exponent or trailing zeros."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["format_usd"]


def format_usd(d: Decimal) -> str:
    """A plain decimal string for JSON: no exponent, no trailing zeros ("0.004215", "0")."""
    if not d.is_finite():
        raise ValueError(f"format_usd: not a finite amount: {d!r}")
    text = f"{d:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
