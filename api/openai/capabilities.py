"""What a Claude model can do that an OpenAI request may ask for, as data.

Models are matched by id prefix against the *older* families that lack a feature, so a model
added to the price book later (a newer family) is assumed to have both features."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# Families without extended thinking.
_NO_THINKING = ("claude-3-5-", "claude-3-haiku", "claude-3-opus", "claude-3-sonnet", "claude-2")
# Families without structured outputs (`output_config.format`, strict tools).
_NO_STRUCTURED = (
    "claude-3",
    "claude-2",
    "claude-sonnet-4-0",
    "claude-sonnet-4-2025",
    "claude-opus-4-0",
    "claude-opus-4-2025",
)


@dataclass(frozen=True)
class Capabilities:
    thinking: bool
    structured_outputs: bool


@lru_cache(maxsize=256)
def capabilities(model: str) -> Capabilities:
    return Capabilities(
        thinking=not model.startswith(_NO_THINKING),
        structured_outputs=not model.startswith(_NO_STRUCTURED),
    )
