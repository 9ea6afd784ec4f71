"""The repository stands alone: no test reads a file beside the repository.

:func:`install_guard` adds an audit hook (``sys.addaudithook``) for the whole test session:
opening any path that lies in the repository's parent folder but outside the repository
(a sibling such as ``../shared``) raises :class:`OutsideRepository` at the ``open`` call.
Temporary folders are exempt, since a clone may itself live in the temp folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tests.paths import REPO

__all__ = ["OutsideRepository", "install_guard", "is_outside"]


class OutsideRepository(PermissionError):
    """A test opened a file beside the repository; a plain clone has no such file."""


#: Resolved once, before the hook exists: ``tempfile.gettempdir()`` opens a probe file
#: the first time, and an open inside the hook would re-enter it (and deadlock on
#: tempfile's lock).
_TEMP = Path(tempfile.gettempdir()).resolve()


def is_outside(path: str | os.PathLike[str], repo: Path = REPO) -> bool:
    """Whether ``path`` is a sibling of ``repo`` (inside its parent, not inside it)."""
    resolved = Path(os.path.abspath(os.fspath(path)))
    temp = _TEMP
    if resolved.is_relative_to(repo) or resolved.is_relative_to(temp):
        return False
    if repo.parent == Path(repo.anchor) or repo.parent == temp:
        return False  # a clone at the root or in the temp folder has no meaningful siblings
    return resolved.is_relative_to(repo.parent)


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not args:
        return
    path = args[0]
    if isinstance(path, str | bytes | os.PathLike) and not isinstance(path, int):
        name = os.fsdecode(path)
        if is_outside(name):
            raise OutsideRepository(f"a test read {name}, outside the repository {REPO}")


_installed = False


def install_guard() -> None:
    """Install the hook once per process (audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
