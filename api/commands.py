"""The `tollgate` subcommands: argument definitions and their handlers."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api import devmode
from api.admin import cli as admin_token_cli
from api.audit import cli_actor, record
from api.cli_support import CliError, bind_socket, open_database, parse_uuid, run_with_session
from api.pricing import cli as prices_cli
from api.settings import Settings

Sub = Any  # argparse's _SubParsersAction is private


def register(sub: Sub) -> None:
    _server_commands(sub)
    _admin_commands(sub)
    _report_commands(sub)
    prices_cli.register(sub)
    admin_token_cli.register(sub)
    sim = sub.add_parser(
        "simulate-upstream",
        help="run the simulated Anthropic API (fake Claude) on its own",
        description="Serve a fake Anthropic Messages API for demos, tests and benchmarks. "
        "Per-request knobs are x-sim-* headers (see README); flags set the defaults.",
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--output-tokens", type=int, default=64, help="tokens per reply")
    sim.add_argument("--ttft-ms", type=int, default=0, help="delay before the first token")
    sim.add_argument("--token-delay-ms", type=int, default=0, help="delay between tokens")
    sim.set_defaults(handler=_simulate_upstream, needs_settings=False)


def _server_commands(sub: Sub) -> None:
    dev = sub.add_parser(
        "dev",
        help="run everything locally: embedded Postgres, migrations, demo tenant and key",
        description="The newcomer's command. Starts the embedded Postgres (unless DATABASE_URL "
        "is set), migrates, uses the simulated upstream unless ANTHROPIC_API_KEY is set, "
        "creates a demo tenant and key, and prints a curl line that streams.",
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.set_defaults(handler=_dev, needs_settings=True)

    serve = sub.add_parser(
        "serve",
        help="run the API server (production)",
        description="Serve the API. Run `tollgate migrate` first.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(handler=_serve, needs_settings=True)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=_migrate, needs_settings=True)


def _admin_commands(sub: Sub) -> None:
    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    create = tenant.add_parser("create", help="create a tenant and print its id")
    create.add_argument("name")
    create.add_argument("--plan", default="free", help="plan code (default: free)")
    create.set_defaults(handler=_tenant_create, needs_settings=True)

    key = sub.add_parser("key", help="manage API keys").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    kc = key.add_parser("create", help="create a key for a tenant; the key is printed once")
    kc.add_argument("tenant_id", type=parse_uuid, metavar="TENANT_ID")
    kc.add_argument("--user", help="bind the key to this end user")
    kc.add_argument("--name", help="a label for the key")
    kc.set_defaults(handler=_key_create, needs_settings=True)
    kl = key.add_parser(
        "list", help="list a tenant's keys: id, prefix, name, user, created, last used, revoked"
    )
    kl.add_argument("tenant_id", type=parse_uuid, metavar="TENANT_ID")
    kl.set_defaults(handler=_key_list, needs_settings=True)
    kr = key.add_parser(
        "revoke", help="revoke a key (a key revoked before: says when, and exits 1)"
    )
    kr.add_argument("key_id", type=parse_uuid, metavar="KEY_ID")
    kr.set_defaults(handler=_key_revoke, needs_settings=True)

    billing = sub.add_parser("billing", help="Razorpay billing").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    bs = billing.add_parser(
        "sync",
        help="repair local subscription state from Razorpay and bill pending overage",
        description="Fetch every live subscription from Razorpay, apply what a lost or late "
        "webhook left wrong, end expired grace periods, and make sure every recorded overage "
        "has its add-on. Safe to run at any time and from any machine (one at a time).",
    )
    bs.set_defaults(handler=_billing_sync, needs_settings=True)


def _report_commands(sub: Sub) -> None:
    usage = sub.add_parser(
        "usage",
        help="print a usage report (what GET /admin/usage answers)",
        description="Usage from the ledger and its daily rollups. Times are ISO 8601 dates or "
        "datetimes in UTC; --from is inclusive, --to exclusive. CSV without --group-by lists "
        "every ledger row.",
    )
    usage.add_argument("--tenant-id", dest="tenant_id")
    usage.add_argument("--user", help="an end user's external id")
    usage.add_argument("--model")
    usage.add_argument("--key-id", dest="key_id")
    usage.add_argument("--endpoint", metavar="messages|chat|chat_completions|batch")
    usage.add_argument("--from", dest="from", metavar="FROM")
    usage.add_argument("--to")
    usage.add_argument("--group-by", dest="group_by", metavar="tenant|user|model|key|day|endpoint")
    usage.add_argument("--format", default="json", metavar="json|csv")
    usage.set_defaults(handler=_usage, needs_settings=True)

    seed = sub.add_parser(
        "dev-seed",
        help="add demo usage (tenants seed-tenant-NN, their users, keys and ledger rows)",
        description="Generate realistic usage over the last --days days, for the dashboard "
        "and reports. Adds to what is there; run it on a dev database, not a live one.",
    )
    seed.add_argument("--rows", type=int, default=5000, help="ledger rows to add (5000)")
    seed.add_argument("--tenants", type=int, default=5, help="tenants (5)")
    seed.add_argument("--users", type=int, default=40, help="end users in all (40)")
    seed.add_argument(
        "--days",
        type=int,
        default=29,
        help="spread over the last N*24 hours (29: all inside the dashboard's default range, "
        "the last 30 calendar days in UTC)",
    )
    seed.set_defaults(handler=_dev_seed, needs_settings=True)


# -- handlers ---------------------------------------------------------------------------


def _dev(args: argparse.Namespace, settings: Settings) -> None:
    from api.serving import run_server

    sock = bind_socket(args.host, args.port)  # a busy port: one line, before anything starts
    try:
        settings = devmode.with_admin_token(settings)
        location = open_database(settings, migrate=True)
        try:
            key = devmode.demo_key(settings, location)
            port = sock.getsockname()[1]

            def banner() -> None:
                devmode.print_banner(settings, args.host, port, key)

            run_server(settings, location, sock, human_logs=True, on_ready=banner)
        finally:
            location.close()
    finally:
        sock.close()


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    from api.serving import run_server

    sock = bind_socket(args.host, args.port)
    try:
        location = open_database(settings, migrate=False)
        try:
            run_server(settings, location, sock, args.workers)
        finally:
            location.close()
    finally:
        sock.close()


def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    location = open_database(settings, migrate=True)
    location.close()
    print("database schema is up to date")


def _tenant_create(args: argparse.Namespace, settings: Settings) -> None:
    from api.tenants.service import create_tenant

    async def work(session: AsyncSession) -> uuid.UUID:
        tenant = await create_tenant(session, args.name, args.plan)
        after = {"id": str(tenant.id), "name": tenant.name, "plan": tenant.plan_code}
        await record(session, cli_actor(), "tenant.create", "tenant", tenant.id, None, after)
        return tenant.id

    print(run_with_session(settings, work))


def _key_create(args: argparse.Namespace, settings: Settings) -> None:
    from api.keys.service import create_key, get_key, key_snapshot

    async def work(session: AsyncSession) -> tuple[uuid.UUID, str]:
        created = await create_key(session, args.tenant_id, name=args.name, user=args.user)
        after = key_snapshot(await get_key(session, created.id))
        await record(session, cli_actor(), "key.create", "api_key", created.id, None, after)
        return created.id, created.key

    key_id, key = run_with_session(settings, work)
    print(f"key id: {key_id}")
    print(f"key:    {key}")
    print("Store the key now: it is not shown again.")


def _key_list(args: argparse.Namespace, settings: Settings) -> None:
    from api.keys.cli import key_table
    from api.keys.service import KeyListing, list_keys

    async def work(session: AsyncSession) -> list[KeyListing]:
        return await list_keys(session, args.tenant_id)

    print(key_table(args.tenant_id, run_with_session(settings, work)))


def _key_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from api.keys.service import get_key, key_snapshot, revoke_key

    async def work(session: AsyncSession) -> datetime:
        before = key_snapshot(await get_key(session, args.key_id))
        revoked_at = await revoke_key(session, args.key_id)
        after = key_snapshot(await get_key(session, args.key_id))
        await record(session, cli_actor(), "key.revoke", "api_key", args.key_id, before, after)
        return revoked_at

    revoked_at = run_with_session(settings, work)
    print(f"revoked {args.key_id} at {revoked_at.astimezone(UTC).isoformat(timespec='seconds')}")


def _simulate_upstream(args: argparse.Namespace, _settings: Settings | None) -> None:
    from api.simulator import SimConfig, run_simulator

    bind_socket(args.host, args.port).close()  # a clear error if the port is taken
    config = SimConfig(
        output_tokens=args.output_tokens, ttft_ms=args.ttft_ms, token_delay_ms=args.token_delay_ms
    )
    print(f"simulated Anthropic API on http://{args.host}:{args.port}", flush=True)
    run_simulator(args.host, args.port, config)


def _billing_sync(args: argparse.Namespace, settings: Settings) -> None:
    import asyncio

    from api.db.engine import make_engine, make_sessionmaker
    from billing.gateway import RazorpayGateway
    from billing.settings import BILLING_OFF, load_billing_settings
    from billing.sync import SyncReport, sync_once

    billing = load_billing_settings()
    if not billing.enabled:
        raise CliError(BILLING_OFF)

    async def run(url: str) -> SyncReport:
        engine = make_engine(url, pool_size=2)
        try:
            return await sync_once(
                engine, make_sessionmaker(engine), RazorpayGateway(billing), billing
            )
        finally:
            await engine.dispose()

    location = open_database(settings, migrate=False)
    try:
        report = asyncio.run(run(location.url))
    finally:
        location.close()
    if report.skipped_locked:
        print("another billing sync is running; nothing done")
        return
    print(
        f"checked {report.checked} subscriptions, repaired {report.repaired}, "
        f"billed {report.overage_billed} overage add-ons, {len(report.failures)} failures"
    )
    for failure in report.failures:
        print(f"  {failure}")
    if report.failures:
        raise SystemExit(1)


def _usage(args: argparse.Namespace, settings: Settings) -> None:
    from api.reports.cli import usage_command

    names = ("tenant_id", "user", "model", "key_id", "endpoint", "from", "to", "group_by", "format")
    location = open_database(settings, migrate=False)
    try:
        usage_command(location.url, {name: getattr(args, name) for name in names})
    finally:
        location.close()


def _dev_seed(args: argparse.Namespace, settings: Settings) -> None:
    from api.reports.cli import dev_seed_command
    from api.reports.seed import SeedPlan

    if not (args.rows >= 0 and args.tenants > 0 and args.users > 0 and args.days > 0):
        raise CliError("--rows must be >= 0; --tenants, --users and --days > 0")
    location = open_database(settings, migrate=True)
    try:
        plan = SeedPlan(rows=args.rows, tenants=args.tenants, users=args.users, days=args.days)
        dev_seed_command(location.url, plan)
    finally:
        location.close()


__all__ = ["CliError", "register"]
