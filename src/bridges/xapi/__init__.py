"""xAPI out: the ledger's events that mean something to learning analytics, as xAPI 1.0.3
statements, for a Learning Record Store. docs/xapi.md lists each mapping."""
