"""`tollgate prices list | import FILE | export | recost`: the price book from the command line.

`list` prints the versions in force now; `export` prints every version as a price file that
`import` reads back; `import` adds the versions not yet stored (idempotent) and reports the
ones that conflict with a stored version. Running gateways pick a change up within seconds.
`recost --model M --from T1 --to T2` re-prices M's settled rows (see api/pricing/recost.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from api.audit import cli_actor
from api.cli_support import CliError, open_database
from api.db.engine import make_engine
from api.errors import TollgateError
from api.money import format_usd
from api.pricing import repository
from api.pricing.book import PriceBook, load_file
from api.pricing.model import PriceError, price_to_json
from api.pricing.recost import RecostReport, parse_instant, recost
from api.pricing.service import import_prices
from api.settings import Settings

Sub = Any  # argparse's _SubParsersAction is private


def register(sub: Sub) -> None:
    prices = sub.add_parser("prices", help="the model price book").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    ls = prices.add_parser("list", help="the price of every model in force now")
    ls.set_defaults(handler=_list, needs_settings=True)
    imp = prices.add_parser("import", help="add the versions of a price file (idempotent)")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.set_defaults(handler=_import, needs_settings=True)
    exp = prices.add_parser("export", help="print every version as a price file (JSON)")
    exp.set_defaults(handler=_export, needs_settings=True)
    rec = prices.add_parser(
        "recost", help="re-price a model's settled rows in [--from, --to) with the book"
    )
    rec.add_argument("--model", required=True, help="model id or alias")
    rec.add_argument("--from", dest="from_at", required=True, help="ISO date or datetime (UTC)")
    rec.add_argument("--to", dest="to_at", required=True, help="ISO date or datetime, exclusive")
    rec.set_defaults(handler=_recost, needs_settings=True)


async def _book(url: str) -> PriceBook:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return PriceBook(await repository.load_all(conn))
    finally:
        await engine.dispose()


def _with_db(settings: Settings, work: Any) -> Any:
    location = open_database(settings, migrate=False)
    try:
        return asyncio.run(work(location.url))
    finally:
        location.close()


def _list(args: argparse.Namespace, settings: Settings) -> None:
    book: PriceBook = _with_db(settings, _book)
    print(
        f"{'model':32} {'version':>7} {'input':>8} {'output':>8} {'cw 5m':>8} {'cw 1h':>8} "
        f"{'read':>8}  modifiers"
    )
    for p in sorted(book.current(), key=lambda p: p.model):
        data = price_to_json(p)
        extras = [f"tier>{t.above_input_tokens}" for t in p.tiers]
        if p.fast_multiplier is not None:
            extras.append(f"fast x{data['fast_multiplier']}")
        extras += [f"{geo} x{m}" for geo, m in dict(data["geo_multipliers"]).items()]  # type: ignore[call-overload]
        rates = " ".join(
            f"{data[k]:>8}"
            for k in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
        )
        print(f"{p.model:32} {p.version:>7} {rates}  {', '.join(extras)}")


def _export(args: argparse.Namespace, settings: Settings) -> None:
    book: PriceBook = _with_db(settings, _book)
    models = [price_to_json(p, with_version=False) for p in book.versions()]
    json.dump({"format": "tollgate-price-book/1", "models": models}, sys.stdout, indent=1)
    print()


def _import(args: argparse.Namespace, settings: Settings) -> None:
    try:
        prices = load_file(args.file)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    except PriceError as exc:
        raise CliError(str(exc)) from None

    async def work(url: str) -> Any:
        engine = make_engine(url, pool_size=1)
        try:
            return await import_prices(engine, prices, cli_actor())
        finally:
            await engine.dispose()

    report = _with_db(settings, work)
    print(
        f"added {len(report.added)} versions, {report.unchanged} already stored, "
        f"{len(report.conflicts)} conflicts"
    )
    for conflict in report.conflicts:
        print(f"  conflict: {conflict}")
    if report.conflicts:
        raise SystemExit(1)


def _recost(args: argparse.Namespace, settings: Settings) -> None:
    try:
        from_at = parse_instant("--from", args.from_at)
        to_at = parse_instant("--to", args.to_at)
    except TollgateError as exc:
        raise CliError(exc.message) from None

    async def work(url: str) -> RecostReport:
        engine = make_engine(url, pool_size=1)
        try:
            return await recost(engine, args.model, from_at, to_at, cli_actor())
        finally:
            await engine.dispose()

    try:
        report: RecostReport = _with_db(settings, work)
    except TollgateError as exc:
        raise CliError(exc.message) from None
    print(
        f"re-costed {report.rows} {report.model} rows started in "
        f"[{report.from_at.isoformat()}, {report.to_at.isoformat()}): {report.changed} changed"
    )
    print(f"before {format_usd(report.before_usd)} USD")
    print(f"after  {format_usd(report.after_usd)} USD")
    print(f"versions {', '.join(report.versions) or '-'}; recorded as price_recosts {report.id}")
