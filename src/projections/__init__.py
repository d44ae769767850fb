"""Read models for support staff, built from `ledger.events` (never from the event store).

Each read model is one module: the question it answers, its tables, its SQL, its event handlers
and its queries. The worker applies events in batches, writing view rows and positions in one
transaction, and recognises republished events by their identity (aggregate id and version).
"""
