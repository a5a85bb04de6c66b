"""A fake Razorpay for tests: the REST endpoints Tollgate calls, served over HTTP so
the official `razorpay` SDK cannot tell the difference, plus correctly signed webhooks.

Nothing here runs at import; `start_fake_razorpay()` starts a server.
"""

from tests.fakes.razorpay.app import Call
from tests.fakes.razorpay.events import SUBSCRIPTION_EVENTS, EventQuirks
from tests.fakes.razorpay.lifecycle import InvalidTransition
from tests.fakes.razorpay.server import FakeRazorpay, start_fake_razorpay
from tests.fakes.razorpay.webhooks import (
    SignedWebhook,
    new_event_id,
    send_duplicate,
    send_reserialized,
    send_webhook,
    serialize,
    sign,
    signed_webhook,
)

__all__ = [
    "SUBSCRIPTION_EVENTS",
    "Call",
    "EventQuirks",
    "FakeRazorpay",
    "InvalidTransition",
    "SignedWebhook",
    "new_event_id",
    "send_duplicate",
    "send_reserialized",
    "send_webhook",
    "serialize",
    "sign",
    "signed_webhook",
    "start_fake_razorpay",
]
