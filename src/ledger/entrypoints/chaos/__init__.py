"""`ledger chaos`: faults injected into the real pipeline, and the end state held against a run
without them; `ledger chaos fuzz`: hostile messages, every one accounted for.

Both run a stack of their own (PostgreSQL, Kafka, and `ledger run intake|relay|projections|api`
as separate processes) in a network namespace of their own, so its broker's port 9092 collides
with nothing and the network to the broker can be cut without touching the machine's:

- `environment`: the namespace, its loopback, the services and the per-run database and topics;
- `processes`: the worker processes, restarted when they die (as a service manager would);
- `load`: the seeded cohort, sent partly through Kafka and partly through the HTTP API, retried
  through every outage;
- `faults`: what can go wrong, each hard (SIGKILL) and clean (SIGTERM) where both apply;
- `state`: the end state of a run, normalised (certificate ids and codes are random), and how two
  compare: lost, duplicated, reordered, diverged;
- `matrix`: runs every fault `--runs` times against one fault-free run and prints the table;
- `fuzz`: the hostile-message run.
"""
