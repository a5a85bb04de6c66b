"""What a plan (or a key) allows: which models it may call."""

from __future__ import annotations

from fnmatch import fnmatchcase


def model_allowed(patterns: tuple[str, ...] | None, *ids: str) -> bool:
    """Plan and key model lists: exact ids or fnmatch patterns (`claude-haiku-*`); None = all."""
    if patterns is None:
        return True
    return any(fnmatchcase(i, pattern) for i in ids for pattern in patterns)
