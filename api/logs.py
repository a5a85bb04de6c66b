"""Structured logging: one JSON object per line. Never log keys, prompts or secrets."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of msg
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | bool | None) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


_QUIET = ("httpx", "httpx2", "httpcore", "httpcore2", "pgserver", "alembic", "anthropic")


def logging_config(level: str = "info", *, json_lines: bool = True) -> dict[str, Any]:
    """The whole logging setup as a `dictConfig` dict: applied here by the CLI and, through
    uvicorn's `log_config`, again in every `serve --workers N` worker (a spawned process starts
    with no logging setup at all, which printed bare text and dropped INFO lines)."""
    formatter: dict[str, Any] = (
        {"()": "api.logs.JsonFormatter"}
        if json_lines
        else {"format": "%(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tollgate": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "tollgate",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"level": "WARNING"} for name in _QUIET},
    }


def configure_logging(level: str = "info", *, json_lines: bool = True) -> None:
    logging.config.dictConfig(logging_config(level, json_lines=json_lines))
