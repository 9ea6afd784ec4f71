"""The ``s3lb`` command line: one module per command, the table and exit codes in ``main``."""

from __future__ import annotations

from s3lb.cli.main import main as main

__all__ = ["main"]
