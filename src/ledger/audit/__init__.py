"""What auditors use: a learner's history as the ledger knew it at any moment, exports an
outsider can check on their own, and a check of the whole ledger against its copies."""
