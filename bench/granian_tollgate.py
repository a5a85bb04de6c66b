#!/usr/bin/env python3
"""Experiment: `tollgate serve --port N` under granian instead of uvicorn (one worker, uvloop);
every other subcommand is the real CLI. For `bench/run.py --tollgate-bin bench/granian_tollgate.py`
after `.venv/bin/pip install granian` (not a dependency: uvicorn stays the server, see
bench/README.md, "granian against uvicorn"). The head limits of api/http/protocol.py (431, 408)
are uvicorn-only, so a gateway served this way does not have them."""

import os
import sys
from pathlib import Path

BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"

if len(sys.argv) >= 2 and sys.argv[1] == "serve":
    port = sys.argv[sys.argv.index("--port") + 1]
    os.execv(
        BIN / "granian",
        ["granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", port,
         "--workers", "1", "--loop", "uvloop", "--no-ws", "--log-level", "warning",
         "api.main:app_factory"],
    )  # fmt: skip
os.execv(BIN / "tollgate", ["tollgate", *sys.argv[1:]])
