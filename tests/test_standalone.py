"""The repository stands alone: tests and benches read nothing outside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import DATA, REPO
from tests.standalone import OutsideRepository, is_outside, siblings

#: Every test and bench module but this one, which names a sibling path on purpose.
SOURCES = sorted(
    p
    for folder in ("tests", "bench")
    for p in (REPO / folder).rglob("*.py")
    if p != Path(__file__).resolve()
)


def _escapes(node: ast.AST, depth: int) -> str | None:
    """Why ``node`` may name a path outside the repository, if it does."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        parts = node.value.replace("\\", "/").split("/")
        if (".." in parts and len(parts) > 1) or node.value == "..":
            return f"the relative path {node.value!r}"
        if "shared" in parts and len(parts) > 1:
            return f"the path {node.value!r} into a shared/ folder"
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
        and node.slice.value > depth
    ):
        return f"parents[{node.slice.value}] of a file {depth} folders deep"
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = node.value
        if isinstance(inner, ast.Name) and inner.id == "REPO":
            return "REPO.parent"
    return None


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_test_or_bench_module_names_a_path_outside_the_repository(path: Path) -> None:
    """Static half: no literal ``../``, no ``shared/``, no climb above the repository root."""
    depth = len(path.relative_to(REPO).parts) - 1  # folders between the file and the root
    tree = ast.parse(path.read_text(), str(path))
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}: {why}"
        for node in ast.walk(tree)
        if (why := _escapes(node, depth)) is not None and hasattr(node, "lineno")
    ]
    assert not found, "\n".join(found)


def test_reading_a_sibling_of_the_repository_fails_the_test() -> None:
    """Runtime half: the session's audit hook stops a read beside the repository (such as
    the ``shared`` folder CI lays beside the clone) at the open call."""
    protected = siblings()
    if not protected:
        pytest.skip("nothing lies beside this checkout: there is nothing to read by mistake")
    target = protected[0] / "seed-samples" / "alb.log"
    assert is_outside(target)
    with pytest.raises(OutsideRepository):
        target.read_bytes()
    with pytest.raises(OutsideRepository):
        open(str(target), "rb")  # noqa: SIM115 - the open call itself is what is refused


def test_only_what_lies_beside_the_repository_is_protected(tmp_path: Path) -> None:
    """The rule, on a layout like CI's: a clone with ``shared/`` beside it."""
    root = tmp_path / "work"
    (root / "main").mkdir(parents=True)
    (root / "shared").mkdir()
    protected = siblings(root / "main")
    assert protected == ((root / "shared").resolve(),)
    assert is_outside(root / "shared" / "seed-samples" / "alb.log", protected)
    assert not is_outside(root / "main" / "tests" / "data" / "seed" / "alb.log", protected)
    assert not is_outside(root / "elsewhere.txt", protected)


def test_files_inside_the_repository_and_temp_folders_are_readable(tmp_path: Path) -> None:
    """The guard stops only siblings: the test data and a test's temp folder read as usual."""
    assert (DATA / "seed" / "alb.log").read_bytes()
    (tmp_path / "x").write_text("ok")
    assert (tmp_path / "x").read_text() == "ok"


def test_every_data_file_has_its_provenance_written_down() -> None:
    """tests/data/README.md names each data folder and each format sample file."""
    readme = (DATA / "README.md").read_text()
    for sample in sorted((DATA / "formats").iterdir()):
        assert sample.name in readme, f"{sample.name} has no provenance in tests/data/README.md"
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        assert f"`{folder.name}/`" in readme, f"{folder.name}/ is not described"
