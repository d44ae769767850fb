"""`ledger demo`: the simulated cohort (`cohort`) through the real pipeline (`run`)."""
