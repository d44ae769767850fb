"""docker-compose.yml and the Dockerfile, checked without Docker (the CI machines have none).

Nobody runs the compose file in CI, so nothing else would notice it drifting from the ledger: a
key Compose does not know, a `ledger` command renamed, a `LEDGER_*` variable the settings no
longer read, an image that installs the package only when a container starts. The compose file
is validated against the Compose Specification's JSON Schema (the copy check-jsonschema vendors,
`--builtin-schema vendor.compose-spec`), and a broken copy is shown to be rejected.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ledger.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
LEDGER = Path(sys.executable).with_name("ledger")
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
COMPOSE_SCHEMA = "vendor.compose-spec"
IMAGE = "enrollment-ledger:local"
LEDGER_SERVICES = {
    "ledger-setup",
    "ledger-intake",
    "ledger-relay",
    "ledger-projections",
    "ledger-api",
    "ledger-tools",
}


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML file as plain data, anchors and `<<` merges resolved (as Compose reads it)."""
    from ruamel.yaml import YAML

    loaded = YAML(typ="safe", pure=True).load(path)
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def compose_errors(document: object) -> list[str]:
    """Every way the document breaks the Compose Specification, each with its path.

    The schema is the one `check-jsonschema --builtin-schema vendor.compose-spec` uses (its
    `get_builtin_schema`), checked against its own metaschema, formats checked too."""
    from check_jsonschema.builtin_schemas import get_builtin_schema
    from jsonschema.validators import validator_for

    schema = get_builtin_schema(COMPOSE_SCHEMA)
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return sorted(
        f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
        for e in validator.iter_errors(document)
    )


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, as (INSTRUCTION, arguments): comments dropped,
    continued lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        keyword, _, arguments = (pending + text).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def image_exec_form(instruction: str) -> list[str]:
    """The last ENTRYPOINT or CMD, which must be in exec form (a JSON array)."""
    found = [arguments for keyword, arguments in dockerfile() if keyword == instruction]
    assert found, f"the Dockerfile has no {instruction}"
    words = json.loads(found[-1])
    assert isinstance(words, list), f"{instruction} is not in exec form"
    return [str(word) for word in words]


def image_environment() -> dict[str, str]:
    """What the Dockerfile's ENV instructions set."""
    environment: dict[str, str] = {}
    for keyword, arguments in dockerfile():
        if keyword != "ENV":
            continue
        words = shlex.split(arguments)
        if "=" not in words[0]:  # the old form: ENV NAME value
            environment[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, _, value = word.partition("=")
            environment[name] = value
    return environment


def ledger_services() -> dict[str, dict[str, Any]]:
    """The services built from the Dockerfile, by name."""
    return {name: s for name, s in compose()["services"].items() if "build" in s}


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment in Compose (a mapping, or a list of NAME=value)."""
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(str(entry).partition("=")[::2] for entry in environment)
    return {str(name): "" if value is None else str(value) for name, value in environment.items()}


def ledger_settings(service: dict[str, Any]) -> Settings:
    """The settings a service's `ledger` reads: the image's LEDGER_* variables, then its own."""
    environment = image_environment() | service_environment(service)
    return Settings.from_env({k: v for k, v in environment.items() if k.startswith(PREFIX)})


def ledger_arguments(service: dict[str, Any]) -> list[str]:
    """The words a service gives `ledger`: its command, or the image's CMD."""
    command = service.get("command")
    if command is None:
        return image_exec_form("CMD")
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def ledger_usage_error(words: list[str]) -> str | None:
    """What is wrong with `ledger WORDS` as a command line (None: nothing), found by parsing it
    down to its command as the console script would, without running it. Parsing checks the
    values of arguments (a worker's name, a service's), which `--help` does not: it is eager,
    so `ledger run no-such-worker --help` exits 0."""
    import typer
    import typer.core

    from ledger.entrypoints.cli.main import app

    command = typer.main.get_command(app)
    parent = typer.Context(command, info_name="ledger")
    name, remaining = "ledger", list(words)
    while isinstance(command, typer.core.TyperGroup):
        if not remaining:
            return f"`{name}` needs a command"
        name, *remaining = remaining
        found = command.get_command(parent, name)
        if found is None:
            return f"no such command: {name}"
        command = found
        if isinstance(command, typer.core.TyperGroup):
            parent = typer.Context(command, info_name=name, parent=parent)
    try:
        with command.make_context(name, remaining, parent=parent):
            return None
    # click's UsageError: recent typer releases vendor click and name it only privately.
    except Exception as error:  # noqa: BLE001
        return f"{name}: {error}"


# -- the compose file is valid Compose, and the test can tell when it is not ----------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


def _unknown_top_level_key(document: dict[str, Any]) -> None:
    document["frobnicate"] = True


def _ports_not_a_list(document: dict[str, Any]) -> None:
    document["services"]["ledger-api"]["ports"] = 5


def _unknown_depends_on_condition(document: dict[str, Any]) -> None:
    document["services"]["ledger-intake"]["depends_on"]["ledger-setup"]["condition"] = "done"


@pytest.mark.parametrize(
    ("breakage", "place"),
    [
        (_unknown_top_level_key, "(top level): 'frobnicate' does not match"),
        (_ports_not_a_list, "services.ledger-api.ports: 5 is not of type 'array'"),
        (_unknown_depends_on_condition, "services.ledger-intake.depends_on:"),
    ],
)
def test_a_broken_compose_file_is_rejected_where_it_breaks(
    tmp_path: Path, breakage: Callable[[dict[str, Any]], None], place: str
) -> None:
    from ruamel.yaml import YAML

    document = copy.deepcopy(compose())
    breakage(document)
    broken = tmp_path / "docker-compose.yml"
    YAML(typ="safe", pure=True).dump(document, broken)

    errors = compose_errors(load_yaml(broken))

    assert errors, "the schema accepted a broken compose file"
    assert any(place in error for error in errors), errors


def test_check_jsonschema_command_accepts_the_compose_file_and_rejects_a_broken_one(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text(encoding="utf-8") + "\nfrobnicate: true\n")

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        argv = [str(CHECK_JSONSCHEMA), "--builtin-schema", COMPOSE_SCHEMA, str(path)]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)

    good, bad = check(COMPOSE), check(broken)

    assert good.returncode == 0, good.stdout + good.stderr
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "frobnicate" in bad.stdout


# -- the image: the package installed at build time, `ledger` its entrypoint ----------------


def test_the_image_installs_the_package_when_built_and_runs_ledger() -> None:
    instructions = dockerfile()

    def first(keyword: str, matches: Callable[[list[str]], bool]) -> int:
        found = [i for i, (k, a) in enumerate(instructions) if k == keyword and matches(a.split())]
        assert found, f"no such {keyword} in the Dockerfile"
        return found[0]

    copies_src = first("COPY", lambda words: "src" in {w.rstrip("/") for w in words[:-1]})
    installs = first(
        "RUN",
        lambda words: (
            "install" in words
            and "." in words
            and not {"-e", "--editable"} & set(words)
            and any(w.endswith("pip") for w in words)
        ),
    )
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]

    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert copies_src < installs, "the package is installed before its sources are copied"
    assert image_exec_form("ENTRYPOINT") == ["ledger"]
    assert users, "the image runs as root"
    assert users[-1].partition(":")[0] not in {"root", "0"}, "the image runs as root"
    assert ("EXPOSE", "8080") in instructions


def test_the_ledger_services_build_the_one_image_and_install_nothing_at_start() -> None:
    services = ledger_services()

    assert set(services) == LEDGER_SERVICES
    for name, service in services.items():
        build = service["build"]
        context, file = (
            (build, "Dockerfile")
            if isinstance(build, str)
            else (build.get("context", "."), build.get("dockerfile", "Dockerfile"))
        )
        assert (COMPOSE.parent / context / file).resolve() == DOCKERFILE, name
        assert service.get("image") == IMAGE, name
        assert "entrypoint" not in service, f"{name} replaces the image's `ledger` entrypoint"
        assert "volumes" not in service, f"{name} mounts files over the installed package"


# -- every `ledger` command exists, every LEDGER_* variable is a setting ---------------------


def test_every_ledger_command_a_service_runs_exists() -> None:
    failures = []
    for name, service in sorted(ledger_services().items()):
        words = ledger_arguments(service)
        helped = subprocess.run(
            [str(LEDGER), *words, "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if helped.returncode != 0:
            failures.append(f"{name}: `ledger {' '.join(words)} --help` said {helped.stderr}")
        problem = ledger_usage_error(words)
        if problem is not None:
            failures.append(f"{name}: `ledger {' '.join(words)}`: {problem}")
    assert failures == []


@pytest.mark.parametrize(
    ("words", "problem"),
    [
        (["no-such-command"], "no such command: no-such-command"),
        (["stack", "upp"], "no such command: upp"),
        (["stack"], "`stack` needs a command"),
        (["run", "no-such-worker"], "'no-such-worker' is not one of"),
        (["run", "intake", "relay"], "unexpected extra argument"),
    ],
)
def test_the_command_check_rejects_what_ledger_does_not_have(
    words: list[str], problem: str
) -> None:
    found = ledger_usage_error(words)
    assert found is not None
    assert problem in found
    assert ledger_usage_error(["run", "intake"]) is None


def test_ledger_help_fails_for_a_command_ledger_does_not_have() -> None:
    helped = subprocess.run(
        [str(LEDGER), "no-such-command", "--help"], capture_output=True, check=False, timeout=60
    )
    assert helped.returncode != 0


def test_every_ledger_variable_is_a_setting() -> None:
    mentioned = {
        name
        for path in (COMPOSE, DOCKERFILE)
        for name in re.findall(rf"\b{PREFIX}[A-Z0-9_]+\b", path.read_text(encoding="utf-8"))
    }
    mentioned |= {name for name in image_environment() if name.startswith(PREFIX)}
    for service in ledger_services().values():
        mentioned |= {name for name in service_environment(service) if name.startswith(PREFIX)}

    assert mentioned
    unknown = {n for n in mentioned if n.removeprefix(PREFIX).lower() not in Settings.model_fields}
    assert unknown == set()


def test_every_ledger_service_uses_the_compose_servers_with_valid_settings() -> None:
    document = compose()
    for name, service in ledger_services().items():
        settings = ledger_settings(service)

        # Without both, `ledger stack up` would start servers of its own in the container.
        assert settings.database_url, name
        assert settings.kafka_bootstrap, name
        assert urlsplit(settings.database_url).hostname in document["services"], name
        for server in settings.kafka_bootstrap.split(","):
            assert server.rpartition(":")[0] in document["services"], name
        assert settings.api_host == "0.0.0.0", f"{name}: the API would not be reachable"  # noqa: S104


def test_the_api_is_published_and_checked_on_the_port_it_listens_on() -> None:
    service = compose()["services"]["ledger-api"]
    settings = ledger_settings(service)
    published = [str(port).rsplit(":", 1)[-1] for port in service["ports"]]
    probe = " ".join(service["healthcheck"]["test"])

    assert ledger_arguments(service) == ["run", "api"]
    assert published == [str(settings.api_port)]
    assert f"http://127.0.0.1:{settings.api_port}/readyz" in probe
