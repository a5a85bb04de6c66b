"""The ledger, in one place: reserve before the upstream call and settle after it
(`functions.py`, calling the Postgres functions whose current definitions are in `sql/`), the
writer that fails closed on reserve and spools a settlement the database cannot take
(`writer.py`, `spool.py`), the owner of one admitted request that settles it exactly once
(`metered.py`), and the reaper that settles what a crashed process left in flight
(`reaper.py`)."""
