"""Lines as AWS really writes them: more fields, fewer fields, bad bytes, bad lines."""

from __future__ import annotations

import re

import pytest

from s3lb.formats import ParseError, get_format
from s3lb.formats._fields import QuotedTokenizer
from tests.paths import SAMPLES as SAMPLES_DIR
from tests.unit.formats.conftest import read_lines

SAMPLES = SAMPLES_DIR

ALB_29 = read_lines(SAMPLES / "alb.log")[0]  # 29 fields, through classification_reason
ALB_33 = read_lines(SAMPLES / "alb.log")[12]  # every known field
CLB = read_lines(SAMPLES / "clb.log")[0]
NLB_22 = read_lines(SAMPLES / "nlb.log")[2]
S3_26 = read_lines(SAMPLES / "s3_access.log")[0]
S3_27 = read_lines(SAMPLES / "s3_access.log")[8]


def parse(fmt: str, raw: bytes) -> dict | None:
    return get_format(fmt).new_parser({}).parse(raw)


@pytest.mark.parametrize(
    ("fmt", "line"),
    [("alb", ALB_33), ("elb", CLB), ("nlb", NLB_22), ("s3access", S3_27)],
)
def test_extra_trailing_fields_are_dropped(fmt: str, line: bytes) -> None:
    """AWS appends fields: a line with unknown trailing tokens keeps the known ones."""
    base = parse(fmt, line)
    for extra in (b" future", b' "quoted future" - x', b' "-" 12 "a b c"'):
        assert parse(fmt, line + extra) == base


@pytest.mark.parametrize(
    ("fmt", "line", "known", "drop"),
    [
        # ALB: 29 → 25 fields (before the target lists), 18 (2016 lines).
        ("alb", ALB_29, 25, ["target_port_list", "target_status_code_list"]),
        ("alb", ALB_29, 18, ["domain_name", "matched_rule_priority", "actions_executed"]),
        # NLB: 22 → 21 (no tls_connection_creation_time).
        ("nlb", NLB_22, 21, ["tls_connection_creation_time"]),
        # S3: 26 → 24 (no access point ARN, no aclRequired).
        ("s3access", S3_26, 24, ["access_point_arn", "acl_required"]),
        # CLB: 15 → 12 (the oldest lines end with the request).
        ("elb", CLB, 12, ["user_agent"]),
    ],
)
def test_fewer_trailing_fields_parse(fmt: str, line: bytes, known: int, drop: list[str]) -> None:
    """Older lines have fewer fields: they parse, the missing fields are absent."""
    tokenizer = QuotedTokenizer(brackets=fmt == "s3access")
    short = _first_tokens(line, known)
    assert len(tokenizer.split(short.decode())) == known < len(tokenizer.split(line.decode()))
    full, doc = parse(fmt, line), parse(fmt, short)
    assert doc is not None and full is not None
    for name in drop:
        assert name not in doc
    assert {k: v for k, v in full.items() if k in doc} == doc


def _first_tokens(line: bytes, count: int) -> bytes:
    """The line cut after ``count`` tokens (quote-aware)."""
    text, seen, i, quoted, brackets = line.decode(), 0, 0, False, False
    while i < len(text):
        c = text[i]
        if c == '"' and not brackets:
            quoted = not quoted
        elif c == "[" and not quoted:
            brackets = True
        elif c == "]" and not quoted:
            brackets = False
        elif c == " " and not quoted and not brackets:
            seen += 1
            if seen == count:
                return text[:i].encode()
        i += 1
    return line


@pytest.mark.parametrize("fmt", ["alb", "elb", "nlb", "s3access", "cloudfront", "vpcflow"])
def test_invalid_utf8_is_replaced_not_fatal(fmt: str) -> None:
    """A line holding invalid UTF-8 parses; the bad bytes become U+FFFD."""
    line = {
        "alb": ALB_29.replace(b"curl/7.46.0", b"curl\xff\xfe/7"),
        "elb": CLB.replace(b"curl/7.38.0", b"curl\xff/7"),
        "nlb": NLB_22.replace(b"my-network-loadbalancer-c6e", b"my-\xc3\x28nlb-c6e"),
        "s3access": S3_26.replace(b"S3Console/0.4", b"S3Console\x80/0.4"),
        "cloudfront": read_lines(SAMPLES / "cloudfront.log")[2].replace(b"LAX1", b"LAX\xff"),
        "vpcflow": b"2 123456789010 eni-\xff 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
        b"1418530010 1418530070 ACCEPT OK",
    }[fmt]
    doc = parse(fmt, line)
    assert doc is not None
    assert any("\ufffd" in str(v) for v in doc.values())


@pytest.mark.parametrize("fmt", ["json", "waf"])
def test_invalid_utf8_in_json_is_replaced(fmt: str) -> None:
    """msgspec refuses invalid UTF-8; the parser retries with the bytes replaced."""
    options = {"timestamp_field": "t", "timestamp_format": "timeUnixMilliseconds"}
    field = "t" if fmt == "json" else "timestamp"
    raw = b'{"%s":1553360693208,"ua":"bad \xff byte"}' % field.encode()
    doc = get_format(fmt).new_parser(options if fmt == "json" else {}).parse(raw)
    assert doc == {"@timestamp": "2019-03-23T17:04:53.208Z", "ua": "bad \ufffd byte"}


@pytest.mark.parametrize(
    ("fmt", "line", "reason"),
    [
        ("alb", b"http 2016-08-10T22:08:42.945958Z app/x 1.2.3.4:80", "at least 18 fields"),
        ("alb", ALB_29.replace(b"192.168.131.39:2817", b"192.168.131.39:70000"), "client_port"),
        ("alb", ALB_29.replace(b":2817", b""), "ip:port"),
        ("alb", ALB_29.replace(b"2018-07-02T22:23:00.186641Z", b"yesterday"), "timestamp"),
        ("alb", ALB_29.replace(b" 200 200 ", b" 200 99999 "), "target_status_code"),
        ("alb", ALB_29.replace(b" 34 366 ", b" x 366 "), "received_bytes"),
        ("alb", ALB_29.replace(b" 0.000 0.001", b" nan 0.001"), "request_processing_time"),
        ("elb", b"not an elb line", "at least 12 fields"),
        ("elb", CLB.replace(b"0.000073", b"fast"), "request_processing_time"),
        ("nlb", b"tls 2.0 2018-12-20T02:59:40 net/x", "at least 21 fields"),
        ("nlb", NLB_22.replace(b" 5 2 98 ", b" 5 two 98 "), "tls_handshake_time"),
        ("s3access", S3_26.replace(b"06/Feb/2019", b"06/Foo/2019"), "invalid time"),
        ("s3access", b"owner bucket [06/Feb/2019:00:00:38 +0000] 1.2.3.4", "at least 17"),
        ("cloudfront", b"2019-12-04\tnoon\tLAX1", "timestamp"),
        ("vpcflow", b"2 123 eni-1 1.1.1.1 2.2.2.2 1 2 6 1 1 x 1418530070 ACCEPT OK", "start"),
        ("vpcflow", b"2 123 eni-1 1.1.1.1", "values for the 14 fields"),
        ("waf", b'{"no_timestamp": 1}', "timestamp field 'timestamp' not found"),
        ("waf", b'{"timestamp": "soon"}', "epoch milliseconds"),
        ("waf", b"[1, 2]", "must be an object"),
        ("waf", b'{"timestamp": 1', "invalid JSON"),
        ("cloudtrail", b'{"eventName": "x"}', "eventTime"),
    ],
)
def test_a_malformed_line_raises_parse_error_with_a_reason(
    fmt: str, line: bytes, reason: str
) -> None:
    """The caller dead-letters the line; the reason says what is wrong."""
    with pytest.raises(ParseError) as info:
        parse(fmt, line)
    assert reason in info.value.reason


@pytest.mark.parametrize("fmt", ["alb", "elb", "nlb", "s3access", "cloudfront", "vpcflow", "waf"])
def test_blank_lines_give_no_document(fmt: str) -> None:
    """A blank line carries no event: None, not an error."""
    parser = get_format(fmt).new_parser({})
    assert parser.parse(b"") is None
    assert parser.parse(b"   ") is None


def test_a_port_over_65535_fails_the_line_as_in_the_seed() -> None:
    """The seed stored ports as uint16: 65535 is fine, 65536 fails the line."""
    ok = ALB_29.replace(b"10.0.0.1:80 ", b"10.0.0.1:65535 ", 1)
    assert parse("alb", ok)["target_port"] == 65535
    with pytest.raises(ParseError, match="target_port"):
        parse("alb", ok.replace(b":65535 ", b":65536 ", 1))


def test_alb_minus_one_timings_and_dashes_are_omitted() -> None:
    """-1 timings and "-" values are absent, never null, never -1."""
    line = read_lines(SAMPLES / "alb.log")[18]  # 460: "0.000 -1 -1", target status "-"
    doc = parse("alb", line)
    assert doc["request_processing_time"] == 0.0
    assert "target_processing_time" not in doc and "response_processing_time" not in doc
    assert "target_status_code" not in doc
    assert None not in doc.values() and "-" not in doc.values()


#: A value for each field after the 18th of a full ALB line, and what the document holds.
ALB_NEWER = {
    18: ("domain_name", "api.example.com", "api.example.com"),
    19: ("chosen_cert_arn", "session-reused", "session-reused"),
    20: ("matched_rule_priority", "50000", 50000),
    21: ("request_creation_time", "2025-10-21T14:02:11.712345Z", "2025-10-21T14:02:11.712Z"),
    **{
        i: (name, f"v{i}", f"v{i}")
        for i, name in enumerate(
            [
                *["actions_executed", "redirect_url", "error_reason", "target_port_list"],
                *["target_status_code_list", "classification", "classification_reason"],
                *["conn_trace_id", "transformed_host", "transformed_uri"],
                "request_transform_status",
            ],
            22,
        )
    },
}


def _with_token(line: bytes, index: int, value: str) -> bytes:
    """``line`` with its token ``index`` replaced, quoted if it was."""
    tokens = re.findall(rb'"[^"]*"|[^ ]+', line)
    quoted = tokens[index].startswith(b'"')
    tokens[index] = (f'"{value}"' if quoted else value).encode()
    return b" ".join(tokens)


@pytest.mark.parametrize("index", sorted(ALB_NEWER))
def test_each_newer_alb_field_of_a_full_line_is_kept_or_omitted(index: int) -> None:
    """Every field AWS appended: its value typed, ``-`` or empty omitted, nothing else moves."""
    name, value, kept = ALB_NEWER[index]
    full = parse("alb", ALB_33)
    assert full is not None
    rest = {k: v for k, v in full.items() if k != name}
    assert parse("alb", _with_token(ALB_33, index, value)) == {**rest, name: kept}
    for empty in ("-", ""):
        if empty or ALB_33.split(b" ")[index].startswith(b'"'):
            assert parse("alb", _with_token(ALB_33, index, empty)) == rest


@pytest.mark.parametrize(
    ("index", "value", "reason"),
    [
        (19, "not-a-cert", "chosen_cert_arn is not an ARN"),
        (20, "2147483648", "matched_rule_priority: 2147483648 is out of range"),
        (21, "yesterday", "not an ISO 8601 timestamp"),
    ],
)
def test_a_bad_newer_alb_field_of_a_full_line_fails_it(index: int, value: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse("alb", _with_token(ALB_33, index, value))
    assert reason in info.value.reason


def test_alb_ipv6_addresses_split_at_the_last_colon() -> None:
    """IPv6 has no brackets in ALB logs: the port follows the last colon."""
    doc = parse("alb", read_lines(SAMPLES / "alb.log")[9])
    assert (doc["client_ip"], doc["client_port"]) == (
        "2601:6bbc:c529:9dad:6bbc:c529:9dad:6bbc",
        50599,
    )
    assert (doc["target_ip"], doc["target_port"]) == ("fd6d:6bbc:c529:6::face:ed83:f46", 80)


def test_alb_url_with_raw_spaces_is_cut_at_the_first_and_last_space() -> None:
    """The request URL is logged as sent; it may hold spaces."""
    doc = parse("alb", read_lines(SAMPLES / "alb.log")[7])
    assert doc["request_verb"] == "GET"
    assert doc["request_proto"] == "HTTP/1.1"
    assert doc["request_url"].startswith("http://127.0.0.1:80/shell?cd /tmp;")


def test_alb_elb_status_dash_is_omitted_not_fatal() -> None:
    """The seed failed such a line; s3lb omits the field."""
    doc = parse("alb", ALB_29.replace(b" 200 200 ", b" - - "))
    assert "elb_status_code" not in doc and "target_status_code" not in doc


def test_alb_quote_inside_a_quoted_field_takes_the_careful_path() -> None:
    """A stray quote inside the user agent does not shift the fields after it."""
    line = ALB_29.replace(b'"curl/7.46.0"', b'"curl/7 "beta"-1"')
    doc = parse("alb", line)
    assert doc["user_agent"] == 'curl/7 "beta"-1'
    assert doc["trace_id"] == "Root=1-58337262-36d228ad5d99923122bbe354"
    assert doc["actions_executed"] == "forward"


def test_tokenizer_fast_path_matches_the_careful_path() -> None:
    """The learned-shape regex gives the same tokens as the careful tokenizer."""
    from s3lb.formats._fields import _split_slow

    tokenizer = QuotedTokenizer()
    for line in read_lines(SAMPLES / "alb.log") + read_lines(SAMPLES / "clb.log"):
        text = line.decode()
        slow, _shape = _split_slow(text, brackets=False)
        assert list(tokenizer.split(text)) == slow  # learns
        assert list(tokenizer.split(text)) == slow  # fast path


def test_tokenizer_handles_brackets_and_unclosed_quotes() -> None:
    """S3 brackets its time; an unclosed quote takes the rest of the line."""
    tok = QuotedTokenizer(brackets=True)
    assert list(tok.split('a [06/Feb/2019:00:00:38 +0000] "GET / HTTP/1.1" -')) == [
        "a",
        "06/Feb/2019:00:00:38 +0000",
        "GET / HTTP/1.1",
        "-",
    ]
    assert list(QuotedTokenizer().split('a "b c')) == ["a", "b c"]
    assert list(QuotedTokenizer().split('a "" b')) == ["a", "", "b"]


def test_cloudfront_uses_the_fields_header_of_the_object() -> None:
    """Columns follow #Fields: a reordered or shorter header maps by name."""
    parser = get_format("cloudfront").new_parser({})
    assert parser.parse(b"#Version: 1.0") is None
    assert parser.parse(b"#Fields: time date c-ip sc-status cs(User-Agent) new-field") is None
    doc = parser.parse(b"01:02:03\t2020-01-02\t192.0.2.1\t200\tcurl%2F8\tnew\textra")
    assert doc == {
        "@timestamp": "2020-01-02T01:02:03.000Z",
        "c_ip": "192.0.2.1",
        "sc_status": 200,
        "cs_user_agent": "curl/8",
        "new_field": "new",
    }


def test_cloudfront_without_header_assumes_the_documented_order() -> None:
    """An object cut before its header still maps columns by the 33-column layout."""
    lines = read_lines(SAMPLES / "cloudfront.log")
    with_header = get_format("cloudfront").new_parser({})
    for line in lines[:2]:
        with_header.parse(line)
    bare = get_format("cloudfront").new_parser({})
    assert bare.parse(lines[5]) == with_header.parse(lines[5])


def test_cloudfront_double_encoding_is_decoded_fully() -> None:
    """CloudFront encodes a client's %20 as %2520: the seed decoded until stable."""
    doc = parse("cloudfront", read_lines(SAMPLES / "cloudfront.log")[11])
    assert doc["cs_uri_stem"] == "/files/Quarterly Report (Q3).pdf"


def test_vpcflow_header_drives_the_columns() -> None:
    """Each object names its fields; another object may use another order."""
    parser = get_format("vpcflow").new_parser({})
    assert parser.parse(b"start action srcaddr future-field") is None
    assert parser.parse(b"1418530010 ACCEPT 10.0.0.1 abc") == {
        "start": 1418530010,
        "action": "ACCEPT",
        "srcaddr": "10.0.0.1",
        "future_field": "abc",
        "@timestamp": "2014-12-14T04:06:50.000Z",
    }


def test_vpcflow_double_space_is_harmless() -> None:
    """Some AWS examples hold a double space between values."""
    doc = parse(
        "vpcflow",
        b"2 123456789010 eni-1 10.0.0.1 10.0.0.2 43638  22 6 1 40 1418530010 1418530070 REJECT OK",
    )
    assert doc["srcport"] == 43638 and doc["dstport"] == 22
