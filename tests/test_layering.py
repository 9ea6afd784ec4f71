"""The package's shape: layers import only downwards, pure modules stay pure, and each
subpackage's ``__all__`` matches what it exports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.paths import REPO

PACKAGE = REPO / "s3lb"


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py")) if folder else [PACKAGE / "errors.py"]


# (where, modules it must not import): pure code has no I/O, no event loop.
RULES = [
    ("formats", ("trio", "httpx", "lmdb", "botocore", "s3lb.pipeline", "s3lb.sinks", "s3lb.aws")),
    ("sinks", ("s3lb.sources", "s3lb.checkpoint", "s3lb.aws", "lmdb")),
    ("checkpoint", ("httpx", "s3lb.pipeline", "s3lb.sinks", "s3lb.sources", "s3lb.aws")),
    ("sources", ("s3lb.sinks.file", "s3lb.checkpoint._lmdb", "lmdb")),
    ("aws", ("s3lb.pipeline", "s3lb.sinks", "s3lb.sources", "s3lb.checkpoint", "lmdb")),
]


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layers_import_only_downwards(folder: str, forbidden: tuple[str, ...]) -> None:
    for path in modules(folder):
        bad = {
            name
            for name in imports_of(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        }
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_errors_and_model_import_nothing_of_s3lb_but_each_other() -> None:
    for name in ("errors.py", "model.py", "watermark.py", "reader.py"):
        ours = {n for n in imports_of(PACKAGE / name) if n.startswith("s3lb")}
        assert ours <= {"s3lb.errors", "s3lb.formats._base", "s3lb.crashpoints"}, (name, ours)


@pytest.mark.parametrize("name", ["s3lb.sinks", "s3lb.checkpoint", "s3lb.formats"])
def test_each_subpackage_exports_exactly_its_all(name: str) -> None:
    module = importlib.import_module(name)
    public = {n for n in vars(module) if not n.startswith("_")} - {"annotations"}
    submodules = {n for n in public if type(getattr(module, n)).__name__ == "module"}
    assert set(module.__all__) == public - submodules


@pytest.mark.parametrize(
    "name",
    [
        "s3lb.sinks",
        "s3lb.pipeline",
        "s3lb.sources.sqs",
        "s3lb.checkpoint",
        "s3lb.cli",
        "s3lb.aws.s3",
    ],
)
def test_each_package_imports_first_in_a_fresh_interpreter(name: str) -> None:
    """No import cycle hides behind a lucky import order."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
