"""Message Batches through Tollgate: admitted and reserved whole at submission, settled one
ledger row per result at the batch discount, isolated per tenant."""
