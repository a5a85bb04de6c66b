"""An embedded Postgres for machines that have none: real Postgres binaries from the `pgserver`
wheel, data under ``TOLLGATE_DATA_DIR/pg``, reached over a Unix socket (no TCP port to clash).

The server is shared by every Tollgate process using the same data dir (pgserver keeps a
per-data-dir list of handles) and stopped when the last one exits.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "tollgate"


class EmbeddedPostgresError(RuntimeError):
    pass


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").expanduser().resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server and return an asyncpg URL for the `tollgate` database."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            import pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = pgserver.get_server(  # type: ignore[attr-defined]
                self.pgdata, cleanup_mode="stop"
            )
        except (subprocess.SubprocessError, OSError, AssertionError) as exc:
            raise EmbeddedPostgresError(
                f"could not start the embedded Postgres in {self.pgdata}: {exc} "
                f"(its log: {self.pgdata / 'log'})"
            ) from None
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';"  # noqa: S608 (a constant)
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
        uri: str = self._server.get_uri(database=EMBEDDED_DATABASE)
        log.info("embedded postgres ready in %s", self.pgdata)
        return uri

    def stop(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
