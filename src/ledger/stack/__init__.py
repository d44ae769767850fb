"""`ledger stack`: PostgreSQL and Kafka on one machine, started and stopped by the ledger itself.

Each service is either given (`LEDGER_DATABASE_URL`, `LEDGER_KAFKA_BOOTSTRAP`) and then only used,
or embedded (pgserver's PostgreSQL, a Kafka broker from Maven Central's jars) and then started,
stopped and reported on here, with its data in the state directory so it survives `down`/`up`.
"""
