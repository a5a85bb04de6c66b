"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from api import health
from api.admin import alert_endpoints as admin_alerts
from api.admin import audit_endpoints as audit
from api.admin import endpoints as admin
from api.admin import key_endpoints as admin_keys
from api.admin import lists as admin_lists
from api.admin import prices as price_admin
from api.admin import token_endpoints as admin_tokens
from api.alerts.sender import AlertSender
from api.batches import endpoints as batches
from api.batches.settler import BatchSettler
from api.db.engine import make_engine, make_sessionmaker
from api.db.errors import install_database_error_handlers
from api.errors import install_error_handlers
from api.files import endpoints as files
from api.http.failsafe import FailsafeMiddleware
from api.http.hot import HotRoutesMiddleware
from api.http.limits import EdgeLimits, EdgeLimitsMiddleware
from api.http.openapi import install_openapi
from api.http.throttle import AuthThrottle
from api.keys.principal import KeyCache
from api.keys.usage import KeyUsage
from api.ledger.leases import LeaseBook
from api.ledger.leasing import Leasing
from api.ledger.reaper import Reaper
from api.ledger.service import Ledger
from api.ledger.spool import Spool, owner_name
from api.ledger.writer import LedgerWriter
from api.models import endpoints as models
from api.observability import endpoints as observability
from api.observability.metrics import Metrics
from api.openai import endpoints as openai
from api.pricing.live import LiveBook
from api.proxy import chat, messages
from api.reports import endpoints as reports
from api.settings import Settings, UpstreamMode, load_settings
from api.state import AppState
from api.tenants.users import UserDirectory
from api.upstream_client import UpstreamClient
from api.usage import endpoints as usage
from api.web import pages as web
from billing import endpoints as billing_endpoints
from billing import inbox_health, webhooks
from billing.gateway import RazorpayGateway
from billing.runtime import BillingRuntime
from billing.settings import BillingSettings, load_billing_settings

log = logging.getLogger(__name__)


def _upstream_client(base_url: str, api_key: str, settings: Settings) -> UpstreamClient:
    # aiohttp's C HTTP parser, without the SDK's layers (see api/upstream_client.py).
    return UpstreamClient(base_url, api_key, max_retries=settings.upstream_max_retries)


async def _upstream(settings: Settings, stack: AsyncExitStack) -> tuple[str, str, bool]:
    """The upstream base URL and key, starting the in-process simulator when needed."""
    if settings.upstream_mode is UpstreamMode.anthropic:
        key = settings.anthropic_api_key
        assert key is not None  # checked by load_settings
        return (
            settings.anthropic_base_url or "https://api.anthropic.com",
            key.get_secret_value(),
            False,
        )
    if settings.anthropic_base_url:
        return settings.anthropic_base_url, "simulated", True
    from api.simulator import start_simulator_task  # only when needed: it is not small

    simulator = await start_simulator_task()
    stack.push_async_callback(simulator.stop)
    log.warning(
        "UPSTREAM IS SIMULATED: replies come from Tollgate's built-in fake Claude at %s. "
        "Set ANTHROPIC_API_KEY to use the real Anthropic API.",
        simulator.url,
    )
    return simulator.url, "simulated", True


def _metrics(writer: LedgerWriter) -> Metrics:
    metrics = Metrics()  # a registry per app, never the global default
    metrics.journal_depth.set_function(writer.spool.pending)
    metrics.orphans_released.set_function(lambda: writer.orphans_released)
    return metrics


def create_app(
    settings: Settings, database_url: str, billing: BillingSettings | None = None
) -> FastAPI:
    """Build the app. `database_url` is already resolved (URL, container or embedded);
    `billing` is on when given and enabled (all RAZORPAY_* secrets set)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            engine = make_engine(
                database_url,
                pool_size=settings.db_pool_size,
                pool_timeout_s=float(settings.db_admission_wait_s),
            )
            stack.push_async_callback(engine.dispose)
            base_url, api_key, simulated = await _upstream(settings, stack)
            upstream = _upstream_client(base_url, api_key, settings)
            stack.push_async_callback(upstream.close)
            owner = owner_name()
            # The heartbeat stops last (callbacks run in reverse): while this process still
            # settles its streams, no other replica may take it for dead and reap them.
            book = LeaseBook(owner, float(settings.reaper_stale_s))
            reaper = Reaper(
                engine, owner, float(settings.reaper_stale_s), on_beat=book.heartbeat_sent
            )
            await reaper.start()
            stack.push_async_callback(reaper.stop)
            writer = LedgerWriter(
                engine,
                Spool(settings.data_dir / "spool", owner),
                admission_wait_s=float(settings.db_admission_wait_s),
                write_timeout_s=float(settings.db_write_timeout_s),
                flush_s=float(settings.ledger_flush_ms) / 1000,
                flush_max_rows=settings.ledger_flush_max_rows,
            )
            writer.start()
            metrics = _metrics(writer)
            leasing = None
            if settings.leases:
                # Refills get a pool of their own: queued behind the per-request reserves they
                # exist to spare (a burst of misses fills the main pool), a refill came too
                # late and the misses fed themselves (bench/README.md, long streams at c=1024).
                lease_engine = make_engine(
                    database_url,
                    pool_size=2,
                    pool_timeout_s=float(settings.db_admission_wait_s),
                )
                stack.push_async_callback(lease_engine.dispose)
                leasing = Leasing(
                    lease_engine,
                    book,
                    min_worst_cases=settings.lease_min_worst_cases,
                    min_slots=settings.lease_min_slots,
                    min_rpm=settings.lease_min_rpm,
                    idle_s=float(settings.lease_idle_s),
                    on_refill=lambda result: metrics.lease_refills.labels(result).inc(),
                    on_admission=lambda result: metrics.lease_admissions.labels(result).inc(),
                )
                leasing.start()
            ledger = Ledger(writer, leasing)
            # Settles every pump, flushes, returns the leases, then stops the writer.
            stack.push_async_callback(ledger.stop)
            ledger.observe(metrics)
            sessions = make_sessionmaker(engine)
            prices = LiveBook(engine)
            await prices.start()
            stack.push_async_callback(prices.stop)
            settler = BatchSettler(engine, upstream, prices, float(settings.batch_poll_s))
            settler.start()
            stack.push_async_callback(settler.stop)
            app.state.batch_settler = settler
            billing_runtime = None
            if billing is not None and billing.enabled:
                billing_runtime = BillingRuntime(billing, RazorpayGateway(billing))
                billing_runtime.start(engine, sessions)
                stack.push_async_callback(billing_runtime.stop)
            alert_sender = AlertSender(engine)
            alert_sender.start()
            stack.push_async_callback(alert_sender.stop)
            key_usage = KeyUsage(engine)
            key_usage.start()
            stack.push_async_callback(key_usage.stop)
            app.state.tollgate = AppState(
                settings=settings,
                engine=engine,
                sessions=sessions,
                upstream=upstream,
                upstream_url=base_url,
                simulated=simulated,
                prices=prices,
                ledger=ledger,
                users=UserDirectory(engine),
                key_cache=KeyCache(float(settings.key_cache_ttl_s)),
                key_usage=key_usage,
                metrics=metrics,
                billing=billing_runtime,
            )
            # Everything created so far lives as long as the process: keep it out of the
            # collector's way (a full collection over it took ~100 ms, a latency spike).
            gc.collect()
            gc.freeze()
            # A full collection walks every live object, at c=1024 every open stream's (about
            # 90 ms each, several a minute): make them ten times rarer. Requests leave no
            # reference cycle behind (api/proxy/stream.py), so there is little for them to find.
            gc.set_threshold(700, 10, 100)
            yield

    app = FastAPI(
        title="Tollgate",
        summary="A metered, multi-tenant gateway in front of Claude",
        lifespan=lifespan,
        docs_url=None,  # served by api/web/docs.py from vendored assets
        redoc_url=None,
    )
    install_error_handlers(app)
    install_database_error_handlers(app)
    app.state.auth_throttle = AuthThrottle(settings.auth_failures_per_minute)
    # Added last = outermost: the limits see every request before anything else runs. The hot
    # routes are answered innermost, inside the limits and the failsafe (api/http/hot.py).
    app.add_middleware(
        HotRoutesMiddleware,
        routes={
            "/v1/messages": messages.create_message_hot,
            "/v1/chat/completions": openai.chat_completions_hot,
        },
    )
    app.add_middleware(FailsafeMiddleware)
    app.add_middleware(EdgeLimitsMiddleware, limits=EdgeLimits.of(settings))
    app.include_router(health.router)
    app.include_router(batches.router)  # before messages: /v1/messages/batches… are its own
    app.include_router(files.router)
    app.include_router(messages.router)
    app.include_router(chat.router)
    app.include_router(openai.router)
    app.include_router(models.router)
    app.include_router(usage.router)
    app.include_router(admin.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_alerts.router)
    app.include_router(admin_lists.router)
    app.include_router(admin_tokens.router)
    app.include_router(audit.router)
    app.include_router(price_admin.router)
    app.include_router(reports.router)
    app.include_router(observability.router)
    web.install(app)
    app.include_router(billing_endpoints.router)
    app.include_router(inbox_health.router)
    app.include_router(webhooks.router)
    install_openapi(app)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.main:app_factory` (one per worker process):
    settings from the environment; DATABASE_URL must be set (the CLI sets it for workers)."""
    from api.db.engine import to_asyncpg_url

    settings = load_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for worker processes")
    return create_app(settings, to_asyncpg_url(settings.database_url), load_billing_settings())
