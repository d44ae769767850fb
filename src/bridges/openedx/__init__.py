"""The Open edX bridge: the Open edX event bus (Avro values, CloudEvents headers, as
`edx-event-bus-kafka` writes them) in, the ledger's inbound CloudEvents out, onto
`ledger.intake`. docs/openedx.md maps each event, field by field."""
