"""The package's shape: units import one way (a rank table), no module reaches into
another package's ``_private`` module, pure cores stay free of I/O, and each package's
``__all__`` matches what it exports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

PACKAGE = REPO / "s3lb"

#: A unit (a top-level module or package of s3lb) may import only units of a lower rank,
#: and itself. Equal ranks are siblings that never import each other.
RANKS: dict[str, int] = {
    "s3lb": 0,  # __version__ only
    "s3lb.errors": 0,
    "s3lb.model": 0,
    "s3lb.crashpoints": 0,
    "s3lb.retry": 1,
    "s3lb.acks": 1,
    "s3lb.telemetry": 1,
    "s3lb.formats": 1,
    "s3lb.metrics": 2,
    "s3lb.deadletter": 2,
    "s3lb.config": 3,
    "s3lb.aws": 4,
    "s3lb.checkpoint": 4,
    "s3lb.sources": 5,
    "s3lb.sinks": 5,
    "s3lb.pipeline": 6,
    "s3lb.cli": 7,
    "s3lb.__main__": 8,
}

#: Pure cores: no event loop, no network, no store, however deep their imports go.
PURE = [
    "s3lb.acks",
    "s3lb.model",
    "s3lb.errors",
    "s3lb.retry:backoff_delay",  # the formula; Backoff.sleep is its trio driver
    "s3lb.formats",
    "s3lb.aws.notifications",
    "s3lb.aws.sigv4",
    "s3lb.checkpoint.records",
    "s3lb.sources.window",
    "s3lb.sources.cursor",
    "s3lb.sources.shares",
    "s3lb.pipeline.framing",
    "s3lb.pipeline.parsing",
    "s3lb.sinks.elasticsearch.bulk",
    "s3lb.sinks.elasticsearch.fields",
    "s3lb.sinks.elasticsearch.indexes",
    "s3lb.sinks.elasticsearch.redact",
    "s3lb.sinks.elasticsearch.templates",
]
IMPURE = ("trio", "httpx", "lmdb", "botocore", "socket", "subprocess")


def module_path(name: str) -> Path:
    """The file of module ``name`` (a package's ``__init__.py``)."""
    base = REPO.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def all_modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def imports_of(name: str) -> set[str]:
    """Every module ``name`` imports, as absolute names (``from p import m`` gives
    ``p.m`` when ``m`` is a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module_path(name).read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if candidate.startswith("s3lb.") and module_path(candidate).exists():
                    names.add(candidate)
    return names


def unit_of(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else name


def test_every_unit_has_a_rank() -> None:
    assert {unit_of(m) for m in all_modules()} <= set(RANKS)


def rank_violations(name: str, imported: set[str]) -> list[str]:
    """The imports of module ``name`` that do not go to a lower rank."""
    unit = unit_of(name)
    return sorted(
        other
        for other in imported
        if other.startswith("s3lb")
        and unit_of(other) != unit
        and RANKS[unit_of(other)] >= RANKS[unit]
    )


@pytest.mark.parametrize("name", all_modules())
def test_a_module_imports_only_units_of_a_lower_rank(name: str) -> None:
    bad = rank_violations(name, imports_of(name))
    assert not bad, f"{name} (rank {RANKS[unit_of(name)]}) imports {bad}"


@pytest.mark.parametrize("name", all_modules())
def test_no_module_imports_another_packages_private_module(name: str) -> None:
    own = name if module_path(name).name == "__init__.py" else name.rpartition(".")[0]
    bad = sorted(
        imported
        for imported in imports_of(name)
        if imported.startswith("s3lb")
        and any(part.startswith("_") and part != "__init__" for part in imported.split("."))
        and imported.rpartition(".")[0] != own
    )
    assert not bad, f"{name} reaches into {bad}"


def closure(name: str) -> set[str]:
    """``name`` and every s3lb module it imports, transitively (package ``__init__``
    re-exports are not followed: they are how others import, not what a module needs)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += [m for m in imports_of(current) if m.startswith("s3lb") and m != "s3lb"]
    return seen


@pytest.mark.parametrize("target", PURE)
def test_pure_cores_import_no_io_however_deep(target: str) -> None:
    name = target.partition(":")[0]
    names = [name] + (
        [m for m in all_modules() if m.startswith(name + ".")]
        if module_path(name).name == "__init__.py"
        else []
    )
    for module in names:
        for dependency in closure(module):
            if target.endswith(":backoff_delay") and dependency == name:
                continue
            direct = imports_of(dependency)
            bad = sorted(i for i in direct if i.split(".")[0] in IMPURE)
            assert not bad, f"{module} depends on {dependency}, which imports {bad}"


def test_the_retry_formula_is_pure_while_its_driver_sleeps_on_trio() -> None:
    source = module_path("s3lb.retry").read_text()
    formula = source.split("def backoff_delay", 1)[1].split("\nclass ", 1)[0]
    assert "trio" not in formula


@pytest.mark.parametrize(
    "name",
    [
        "s3lb.sinks",
        "s3lb.checkpoint",
        "s3lb.formats",
        "s3lb.sources",
        "s3lb.pipeline",
        "s3lb.cli",
        "s3lb.config",
    ],
)
def test_each_package_exports_exactly_its_all(name: str) -> None:
    module = importlib.import_module(name)
    for export in module.__all__:  # a package may import an export on first use
        getattr(module, export)
    public = {n for n in vars(module) if not n.startswith("_")} - {"annotations"}
    submodules = {n for n in public if type(getattr(module, n)).__name__ == "module"}
    assert set(module.__all__) == public - submodules


@pytest.mark.parametrize("name", sorted(all_modules()))
def test_each_module_imports_first_in_a_fresh_interpreter(name: str) -> None:
    """No import cycle hides behind a lucky import order."""
    # s3lb.__main__ runs the command line when imported: ``-m`` imports it, asked for
    # nothing but the version.
    argv = ["-m", "s3lb", "--version"] if name == "s3lb.__main__" else ["-c", f"import {name}"]
    result = subprocess.run([sys.executable, *argv], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


def test_the_rank_table_catches_upward_and_sideways_imports() -> None:
    """The cycles of the old shape are caught: a source reaching into the pipeline, a
    sink into a source (siblings), the checkpoint store into the cluster client."""
    assert rank_violations("s3lb.sources.sqs", {"s3lb.pipeline.objects"})
    assert rank_violations("s3lb.sinks.file", {"s3lb.sources.task"})
    assert rank_violations("s3lb.checkpoint.checkpointer", {"s3lb.sinks.elasticsearch"})
    assert not rank_violations("s3lb.pipeline.wiring", {"s3lb.sources", "s3lb.acks"})
