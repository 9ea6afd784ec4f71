"""The registry, option validation, the public surface and the layering rule."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import s3lb.formats
from s3lb.formats import FORMATS, LogFormat, ParseError, get_format

FORMATS_DIR = Path(s3lb.formats.__file__).parent
ALL_NAMES = {
    "alb",
    "elb",
    "clb",
    "nlb",
    "cloudfront",
    "waf",
    "json",
    "cloudtrail",
    "vpcflow",
    "s3access",
    "route53_resolver",
    "network_firewall",
}


def test_every_format_is_registered_under_its_name() -> None:
    assert set(FORMATS) == ALL_NAMES
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, LogFormat) and fmt.name == name and fmt.description
    assert get_format("clb").new_parser({}).parse(b"") is None


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        get_format("apache")
    message = str(info.value)
    assert "apache" in message and "alb" in message and "cloudtrail" in message


def test_only_cloudtrail_has_its_own_framing() -> None:
    assert [n for n, f in FORMATS.items() if f.splitter is not None] == ["cloudtrail"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "timestamp_field"),
        ({"timestamp_field": "t"}, "timestamp_format"),
        ({"timestamp_format": "timeISO8601"}, "timestamp_field"),
        ({"timestamp_field": "", "timestamp_format": "timeISO8601"}, "timestamp_field"),
        ({"timestamp_field": "t", "timestamp_format": "timeRFC"}, "unsupported timestamp_format"),
        ({"timestamp_field": 3, "timestamp_format": "timeISO8601"}, "timestamp_field"),
        ({"timestamp_field": "t", "timestamp_format": "timeISO8601", "x": 1}, "unknown"),
        ({"timestamp_field": "t", "timestamp_format": "time:"}, "no date or time"),
    ],
)
def test_json_options_are_validated(options: dict, message: str) -> None:
    """The config loader turns these ValueErrors into an exit-2 error."""
    fmt = get_format("json")
    with pytest.raises(ValueError, match=message):
        fmt.validate_options(options)
    with pytest.raises(ValueError, match=message):
        fmt.new_parser(options)


def test_json_format_with_a_go_layout() -> None:
    """timestamp_field is removed; a Go layout converts it."""
    options = {"timestamp_field": "ts", "timestamp_format": "time:2006-01-02 15:04:05"}
    get_format("json").validate_options(options)
    parser = get_format("json").new_parser(options)
    assert parser.parse(b'{"ts": "2019-03-23 17:04:53", "n": 1, "f": 1.5, "z": null}') == {
        "@timestamp": "2019-03-23T17:04:53.000Z",
        "n": 1,
        "f": 1.5,
        "z": None,
    }
    with pytest.raises(ParseError, match="not found"):
        parser.parse(b'{"n": 1}')


def test_public_names_match_all() -> None:
    """Each module's __all__ lists exactly its public names."""
    for path in sorted(FORMATS_DIR.glob("*.py")):
        module = importlib.import_module(f"s3lb.formats.{path.stem}")
        exported = set(module.__all__)
        for name in exported:
            assert hasattr(module, name), (path.name, name)
        if path.stem == "__init__":
            continue
        public = {
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and getattr(v, "__module__", module.__name__) == module.__name__
            and (callable(v) or n.isupper())
            and not isinstance(v, type(ast))
        }
        missing = public - exported - {"annotations"}
        # Module constants that are configuration details may stay unexported.
        missing = {n for n in missing if not n.isupper() or n in {"FORMAT", "FIELDS"}}
        assert not missing, (path.name, missing)


def test_formats_do_no_io_and_no_async() -> None:
    """s3lb.formats is pure: no trio, httpx, botocore, sockets, files or threads."""
    banned = {"trio", "httpx", "botocore", "boto3", "socket", "asyncio", "threading", "lmdb"}
    for path in FORMATS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
                if node.module and node.module.startswith("s3lb."):
                    assert node.module.startswith(("s3lb.formats", "s3lb.errors")), path.name
            else:
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "open":
                    pytest.fail(f"{path.name} opens a file")
                continue
            assert not roots & banned, (path.name, roots & banned)


def test_header_driven_formats_are_marked_stateful() -> None:
    """CloudFront and VPC Flow Logs learn their columns from a header line: a caller
    resuming mid-object must still feed the skipped records to parse()."""
    assert {n for n, f in FORMATS.items() if f.stateful} == {"cloudfront", "vpcflow"}
    parser = get_format("vpcflow").new_parser({})
    header, record = b"start srcaddr action", b"1418530010 10.0.0.1 ACCEPT"
    assert parser.parse(header) is None
    assert parser.parse(record)["srcaddr"] == "10.0.0.1"
    with pytest.raises(ParseError):
        get_format("vpcflow").new_parser({}).parse(record)  # no header: default layout
