"""The README is the user's page and tells the truth: what CI runs is its test command,
its links lead somewhere, nothing tells users to install a package nobody published, and
the local cluster it documents can be started (issue 12)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.paths import REPO

README = (REPO / "README.md").read_text()
#: Text users read: the README, the reference pages, the unit file, the CLI's own words.
USER_TEXT = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "contrib").rglob("*")),
    *sorted((REPO / "s3lb").rglob("*.py")),
]


def test_the_readme_is_a_users_page_of_about_250_lines() -> None:
    assert len(README.splitlines()) <= 300


def test_every_link_of_the_readme_and_the_docs_to_a_file_of_the_repository_exists() -> None:
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_ci_runs_the_readmes_test_command_after_its_install_step() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"
        in README
    )
    assert ".venv/bin/pip install -q -e '.[test]'" in ci and "\n.venv/bin/pytest" in ci


def test_no_page_tells_users_to_pip_install_a_package_nobody_published() -> None:
    """`pip install s3lb` would fetch nothing of ours, or someone else's package."""
    install = re.compile(r"pip install\s+['\"]?s3lb(\[[a-z,]+\])?['\"]?(\s|$)")
    for path in USER_TEXT:
        if path.is_file():
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if install.search(line) and "not on PyPI" not in line:
                    raise AssertionError(f"{path.relative_to(REPO)}:{n}: {line.strip()}")


def test_the_documented_local_cluster_command_exists() -> None:
    assert ".venv/bin/python tests/opensearch_node.py run" in README
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "opensearch_node.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "run" in result.stdout, result.stderr
