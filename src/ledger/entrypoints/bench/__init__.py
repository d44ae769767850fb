"""The benchmarks: each measures the ledger beside raw Kafka and raw PostgreSQL in the same run
(`common` holds the scratch databases, worker processes, medians and figures they share)."""
