"""The faces of the ledger: everything a person or another program starts.

The `ledger` command (`cli/`, split by who uses it), the HTTP API (`api`), the worker runner
(`runner`), the composition root every one of them starts from (`bootstrap`), what they show
(`views`, `metrics`, `lag`, `schemas`), the benchmarks (`bench/`), the demo (`demo/`) and the
fault matrix (`chaos/`). Nothing below this package imports it: import-linter's layers contract
says so (`pyproject.toml`).
"""
