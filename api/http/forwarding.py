"""Which headers cross the gateway, in each direction, for every route that calls the upstream
(metered messages, the OpenAI route, batches and files)."""

from __future__ import annotations

from collections.abc import Mapping

PASS_THROUGH = ("anthropic-beta", "anthropic-version")
SIM_PREFIX = "x-sim-"
_RELAYED_ERROR_HEADERS = ("request-id", "retry-after", "content-type", "x-should-retry")


def forwarded_headers(incoming: Mapping[str, str], *, simulated: bool) -> dict[str, str]:
    """The tenant headers that reach the upstream: `anthropic-beta`, `anthropic-version`, and
    the simulator's `x-sim-*` knobs when the upstream is the simulator."""
    out = {name: incoming[name] for name in PASS_THROUGH if name in incoming}
    if simulated:
        out.update({k: v for k, v in incoming.items() if k.startswith(SIM_PREFIX)})
    return out


def relayed_error_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """The headers of an upstream refusal that reach the client with it."""
    return {k: upstream[k] for k in _RELAYED_ERROR_HEADERS if k in upstream}
