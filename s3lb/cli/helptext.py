"""``--help`` as a terminal shows it: module docstrings without their reST markup,
defaults shown, and the common options on every subcommand."""

from __future__ import annotations

import argparse
import re
from typing import Any

from s3lb.cli.common import add_common_options

__all__ = ["HelpFormatter", "Subcommands", "plain"]

_MARKUP = [
    (re.compile(r"``([^`]+)``\\? s\b"), r"\1s"),  # ``_id`` s: a plural
    (re.compile(r":[a-z:]+:`~?([^`]+)`"), r"\1"),  # :func:`name`
    (re.compile(r"``([^`]+)``"), r"\1"),
    (re.compile(r"(?<![`\w])`([^`\n]+)`(?![`\w])"), r"\1"),
    (re.compile(r"(?<=\S)::$", re.MULTILINE), ":"),
    (re.compile(r"^\s*::\n", re.MULTILINE), ""),
]


def plain(text: str) -> str:
    """``text`` without reST inline markup: ````code```` and ``:role:`x``` become
    their text, a literal block's ``::`` a colon."""
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their lines (minus markup); option help shows its default."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return super()._fill_text(plain(text), width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = plain(action.help or "")
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, "", [], argparse.SUPPRESS)
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


class Subcommands:
    """What each command module's ``add_parser(commands)`` is given: the subparsers
    of ``s3lb`` (or of a command), where every parser takes the common options, and
    help without markup and with defaults."""

    def __init__(self, action: Any) -> None:
        self._action = action

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """``add_subparsers().add_parser`` with s3lb's help and common options."""
        kwargs["formatter_class"] = HelpFormatter
        if "help" in kwargs and "description" not in kwargs:
            kwargs["description"] = kwargs["help"]
        for key in ("help", "description"):
            if kwargs.get(key):
                kwargs[key] = plain(kwargs[key])
        parser: argparse.ArgumentParser = self._action.add_parser(name, **kwargs)
        add_common_options(parser)
        return parser
