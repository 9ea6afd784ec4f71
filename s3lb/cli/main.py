"""The ``s3lb`` command line: the command table, the parser, and the one place where
an error becomes an exit status.

Exit statuses (:class:`~s3lb.cli.common.Exit`): 0 success; 1 a command's own failure
(a check failed, an object or a record could not be processed, the cluster or AWS
could not be reached); 2 an invalid option or configuration; 70 a bug in s3lb;
130 interrupted; 141 stdout closed by its reader (``| head``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from s3lb import __version__
from s3lb.cli.common import COMMON_DEFAULTS, Exit, add_common_options, redact_text, unwrap
from s3lb.cli.common import run_trio as run_trio
from s3lb.cli.helptext import HelpFormatter, Subcommands
from s3lb.errors import CheckpointError, ConfigError, S3lbError
from s3lb.telemetry import configure_logging

__all__ = ["COMMANDS", "build_parser", "main"]

#: Every command, in the order ``s3lb --help`` lists them, and its module in
#: ``s3lb.cli``, which registers it with ``add_parser(commands)`` and sets
#: ``func(args) -> exit status``. Only the module of the command given is imported
#: (``s3lb parse`` starts without the AWS, HTTP and event-loop libraries).
COMMANDS = {
    "run": "run",
    "import": "import_",
    "check": "check",
    "state": "state",
    "setup": "setup",
    "replay-dead-letter": "replay",
    "parse": "parse",
    "demo": "demo",
}
#: The options ``s3lb`` takes before a command, with their value apart or attached.
_VALUED = ("-c", "--config", "--log-level", "--log-format")
_ATTACHED = ("-c", "--config=", "--log-level=", "--log-format=")

_EPILOG = """exit status: 0 success; 1 a command's own failure (a check failed, an object
or record could not be processed, the cluster or AWS could not be reached); 2 an
invalid option or configuration; 70 a bug in s3lb; 130 interrupted; 141 stdout
closed by its reader.

s3lb COMMAND --help describes each command."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``s3lb`` and of every command of :data:`COMMANDS` (or only of
    ``command``)."""
    parser = argparse.ArgumentParser(
        prog="s3lb",
        description="Ship AWS logs from S3 (announced on SQS) to Elasticsearch/OpenSearch.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"s3lb {__version__}")
    add_common_options(parser)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of these:"
    )
    table = Subcommands(commands)
    for name, module in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"s3lb.cli.{module}").add_parser(table)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, when only common options come before it; ``None``
    for anything else (``--help``, an abbreviated option, no or an unknown command):
    then every command's parser is built, to list them or say what is wrong."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUED:
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
        elif not arg.startswith(_ATTACHED):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``s3lb`` console script."""
    try:
        words = sys.argv[1:] if argv is None else argv
        args = build_parser(_command_of(words)).parse_args(words)
    except BrokenPipeError:  # --help or a usage message into a closed pipe
        return _quiet_stdout()
    for name, value in COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    configure_logging(args.log_level, args.log_format)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # inside the try: a reader gone is seen here, not at exit
    except BaseException as exc:  # each kind has its exit status: _report
        if isinstance(exc, SystemExit):
            raise
        return _report(exc, args.command, debug=args.log_level == "debug")
    return status


#: Commands that run unattended (under systemd): a bug's traceback is always logged.
_DAEMONS = frozenset({"run", "import"})


def _report(error: BaseException, command: str, *, debug: bool) -> int:
    """Say what went wrong in one line on stderr; return the exit status for it."""
    error = unwrap(error)
    if isinstance(error, KeyboardInterrupt):
        return Exit.INTERRUPTED
    if isinstance(error, BrokenPipeError):
        return _quiet_stdout()
    who = f"s3lb {command}"
    if isinstance(error, ConfigError):
        # An option (``-o``, ``--timeout``) names itself; a configuration key does not.
        kind = "" if error.path.startswith("-") else "configuration error: "
        status, line = Exit.USAGE, f"{who}: {kind}{error}"
    elif isinstance(error, CheckpointError):
        status, line = Exit.FAILED, f"{who}: checkpoint store: {error}"
    elif isinstance(error, S3lbError):
        status, line = Exit.FAILED, f"{who}: {error}"
    elif isinstance(error, OSError):
        status, line = Exit.FAILED, f"{who}: {_os_error(error)}"
    else:
        status = Exit.BUG
        line = (
            f"{who}: unexpected error, a bug in s3lb {__version__}: "
            f"{type(error).__name__}: {error}\nPlease report it to the s3lb maintainers "
            "(an issue in the repository s3lb was installed from) with the command and "
            "the output of the same command run with --log-level debug."
        )
    try:
        # A daemon's rare crash cannot simply be run again with --log-level debug: its
        # journal keeps the traceback the maintainers need.
        if status == Exit.BUG and (debug or command in _DAEMONS):
            traceback.print_exception(error, file=sys.stderr)
        print(redact_text(line), file=sys.stderr)
    except OSError:
        pass  # stderr is gone too: the status still tells
    return status


def _os_error(error: OSError) -> str:
    """``/var/lib/s3lb: Permission denied`` rather than ``[Errno 13] …``."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def _quiet_stdout() -> int:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return Exit.BROKEN_PIPE
