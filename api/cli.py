"""The `tollgate` command line. Every failure a person can cause prints one clear line."""

from __future__ import annotations

import argparse

from api import commands
from api.cli_support import CliError, fail
from api.errors import TollgateError
from api.settings import SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tollgate",
        description="Tollgate: a metered, multi-tenant gateway in front of Claude.",
        epilog="Configuration comes from the environment; see README.md, 'Configuration'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings() if args.needs_settings else None
        if args.needs_settings:
            from billing.settings import load_billing_settings

            load_billing_settings()  # a half-configured billing stops start-up, too
        args.handler(args, settings)
    except SettingsError as exc:
        fail(str(exc), code=2)
    except CliError as exc:
        fail(str(exc))
    except TollgateError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
