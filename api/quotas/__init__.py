"""Quota policy: how much a request reserves (`amounts.py`), its budget period (`periods.py`),
which models a plan allows (`plans.py`), and what a reservation decision means for the caller
(`service.py`: go ahead with headers, or 402/429). The atomic check-and-reserve and the settle
themselves live in `api/ledger/`."""
