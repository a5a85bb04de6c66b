"""A fake Razorpay for tests and demos: the REST endpoints Tollgate calls, served over HTTP so
the official `razorpay` SDK cannot tell the difference, plus correctly signed webhooks.

Nothing here runs at import; `start_fake_razorpay()` starts a server.
"""

from billing.fake.app import Call
from billing.fake.events import SUBSCRIPTION_EVENTS, EventQuirks
from billing.fake.lifecycle import InvalidTransition
from billing.fake.server import FakeRazorpay, start_fake_razorpay
from billing.fake.webhooks import (
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
