"""Local state: the ledger that makes uploads exactly-once, and the run lock."""
