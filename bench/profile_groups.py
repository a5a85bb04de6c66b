"""Where a py-spy profile's time goes, by owner: each sample is charged to the leaf-most frame
that belongs to a known group (Postgres driver and ORM, the upstream HTTP client, the server
and framework, Tollgate's own packages...), so a library called by our code counts as that
library, and our code's own lines as ours. Standard-library frames (json, re, asyncio helpers)
are charged to whoever called them.

    .venv/bin/python bench/profile_groups.py /tmp/tollgate-bench-*/profile-anthropic-c32.txt
    .venv/bin/python bench/profile_groups.py A.txt B.txt      # side by side, e.g. two routes

Input: py-spy `record --format raw` (collapsed stacks, one per line, with a count)."""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (group, path fragments); the first group whose fragment is in a frame's file wins
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("Postgres: asyncpg + SQLAlchemy", ("asyncpg/", "sqlalchemy/")),
    (
        "upstream HTTP client (aiohttp, SDK)",
        ("aiohttp/", "anthropic/", "httpx2/", "httpcore2/", "h11/", "api/upstream_client.py"),
    ),
    ("server: uvicorn", ("uvicorn/",)),
    ("framework: FastAPI + Starlette", ("fastapi/", "starlette/", "pydantic/")),
    ("Tollgate: ledger, pricing, quotas", ("api/ledger/", "api/pricing/", "api/quotas/")),
    ("Tollgate: metering (SSE scan, usage)", ("api/metering/",)),
    ("Tollgate: OpenAI translation", ("api/openai/",)),
    ("Tollgate: proxy, relay, edge", ("api/proxy/", "api/http/", "api/auth/", "api/keys/")),
    ("Tollgate: other", ("api/", "billing/")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("logging", ("logging/",)),
]
_LINE = re.compile(r":\d+\)$")


def group_of(frames: list[str]) -> str:
    # The frames up to the event loop's (CLI, uvicorn's Server.run) hold every sample.
    loop = [i for i, frame in enumerate(frames) if frame.startswith("Runner.run ")]
    if loop:
        frames = frames[loop[-1] + 1 :]
        if not frames:
            return "event loop (uvloop: I/O, callbacks)"
    for frame in reversed(frames):
        for name, fragments in GROUPS:
            if any(fragment in frame for fragment in fragments):
                return name
    return "other (stdlib, idle threads)"


def load(path: Path) -> tuple[Counter[str], int]:
    groups: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        groups[group_of([_LINE.sub(")", f) for f in stack.split(";")])] += n
    return groups, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profiles", nargs="+", type=Path)
    args = ap.parse_args()
    loaded = [load(p) for p in args.profiles]
    names = sorted({g for groups, _ in loaded for g in groups}, key=lambda g: -loaded[0][0][g])
    print("| group | " + " | ".join(p.name for p in args.profiles) + " |")
    print("|---|" + "---:|" * len(loaded))
    for name in names:
        cells = [f"{100 * groups[name] / total:.1f}%" for groups, total in loaded]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| samples | " + " | ".join(str(total) for _, total in loaded) + " |")


if __name__ == "__main__":
    main()
