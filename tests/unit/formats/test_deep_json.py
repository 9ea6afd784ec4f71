"""A JSON record nested beyond the decoder's depth limit is one ParseError, not a crash."""

from __future__ import annotations

import pytest

from s3lb.formats import ParseError, get_format


@pytest.mark.parametrize("fmt", ["waf", "route53_resolver", "network_firewall"])
def test_a_deeply_nested_json_line_is_a_parse_error_with_its_reason(fmt: str) -> None:
    parser = get_format(fmt).new_parser({})
    with pytest.raises(ParseError, match="nested too deeply"):
        parser.parse(b"[" * 1000 + b"]" * 1000)
