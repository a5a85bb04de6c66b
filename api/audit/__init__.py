"""The audit log, shared by every feature that changes something for an operator: who
(`Actor`), what (`record`, in the caller's transaction) and reading it back (`query`)."""

from api.audit.log import Actor, Snapshot, cli_actor, record

__all__ = ["Actor", "Snapshot", "cli_actor", "record"]
