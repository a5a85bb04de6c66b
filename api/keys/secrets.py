"""Key material. Keys are 256-bit random strings with a recognizable prefix; only their SHA-256
and a short display prefix are stored (a slow hash adds nothing for keys of this entropy)."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "tg_live_"
_RANDOM_BYTES = 32  # 43 url-safe characters
_DISPLAY_CHARS = 6


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + _DISPLAY_CHARS]


def looks_like_key(key: str) -> bool:
    """Cheap shape check before any lookup: our prefix and a plausible length."""
    return key.startswith(KEY_PREFIX) and 40 <= len(key) <= 80 and key.isascii()
