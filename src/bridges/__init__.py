"""The ledger's neighbours: Open edX events in (`openedx`), xAPI statements out (`xapi`).

A bridge translates and nothing more: it never decides what a message means for the rules. The
Open edX bridge turns the Open edX event bus's messages into the ledger's own inbound
CloudEvents on `ledger.intake` (the intake then decides, as for any producer); the xAPI export
turns the ledger's published events into xAPI statements for a Learning Record Store.
"""
