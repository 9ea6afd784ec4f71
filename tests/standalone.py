"""The repository stands alone: no test reads a file beside the repository.

:func:`install_guard` adds an audit hook (``sys.addaudithook``) for the whole test session.
It protects what lies beside the repository when the session starts (a sibling such as
the ``shared`` folder CI lays beside a clone): opening a path inside one of those raises
:class:`OutsideRepository` at the ``open`` call. The temporary folder and pytest's own
temporary folders are not protected, since tests write there (and a clone may itself
live in the temp folder).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tests.paths import REPO

__all__ = ["OutsideRepository", "install_guard", "is_outside", "siblings"]


class OutsideRepository(PermissionError):
    """A test opened a file beside the repository; a plain clone has no such file."""


def siblings(repo: Path = REPO) -> tuple[Path, ...]:
    """What lies beside ``repo`` now, but the temp folder and pytest's folders."""
    temp = Path(tempfile.gettempdir()).resolve()
    if repo.parent == Path(repo.anchor):
        return ()  # a repository at the root: its "siblings" are the whole system
    try:
        entries = sorted(repo.parent.iterdir())
    except OSError:
        return ()
    return tuple(
        entry.resolve()
        for entry in entries
        if entry.resolve() != repo
        and entry.resolve() != temp
        and not entry.name.startswith("pytest-of-")
    )


#: Taken once, before the hook exists (an ``open`` inside the hook would re-enter it).
_PROTECTED: tuple[Path, ...] = siblings()


def is_outside(path: str | os.PathLike[str], protected: tuple[Path, ...] = _PROTECTED) -> bool:
    """Whether ``path`` lies inside one of the ``protected`` siblings of the repository."""
    resolved = Path(os.path.abspath(os.fspath(path)))
    return any(resolved == p or resolved.is_relative_to(p) for p in protected)


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
