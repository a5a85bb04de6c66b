"""Billing's FastAPI dependencies. `Billing` is the runtime when billing is on; when it is off
every billing route answers 503 here, before anything else is read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.errors import ServiceUnavailable
from api.state import State
from billing.runtime import BillingRuntime
from billing.settings import BILLING_OFF


async def get_billing(state: State) -> BillingRuntime:
    if state.billing is None:
        raise ServiceUnavailable(BILLING_OFF)
    return state.billing


Billing = Annotated[BillingRuntime, Depends(get_billing)]
