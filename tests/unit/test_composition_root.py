"""Where the services are is found in one place, the composition root; and the checks that
guard the code keep finding the code they guard.

Every entry point asks `ledger.entrypoints.bootstrap.services` once and hands the `Services`
down; no other module of `src/` looks the database URL or the Kafka bootstrap up itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LOOKUPS = {"database_url", "kafka_bootstrap"}
#: The composition root, and the module that defines the lookups.
ALLOWED = {SRC / "ledger/entrypoints/bootstrap.py", SRC / "ledger/stack/services.py"}


def lookups_in(path: Path) -> list[int]:
    """The lines of `path` that call `database_url(...)` or `kafka_bootstrap(...)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in LOOKUPS:
                found.append(node.lineno)
    return found


def test_only_the_composition_root_looks_the_services_up() -> None:
    offenders = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if path not in ALLOWED and (lines := lookups_in(path))
    }
    assert offenders == {}


def test_the_check_finds_a_lookup() -> None:
    assert lookups_in(SRC / "ledger/entrypoints/bootstrap.py")


def test_every_mutation_of_the_mutation_check_still_finds_its_code() -> None:
    """`scripts/mutation_check.py` switches off each rule by replacing a line of the domain;
    a line that moved or changed would make its mutation check nothing."""
    import importlib.util

    script = SRC.parent / "scripts" / "mutation_check.py"
    spec = importlib.util.spec_from_file_location("mutation_check", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [rule for rule, path, text, _ in module.MUTATIONS if text not in path.read_text()]
    assert missing == []
    assert len(module.MUTATIONS) > 40
