"""Metering: observe upstream streams and responses (SSE parsing, the usage meter) and turn them
into usage. No database: the ledger (api/ledger/) records what the meter saw."""
