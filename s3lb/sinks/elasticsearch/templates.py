"""Index templates for ``s3lb setup``: real mappings per log format.

Composable templates, as ``filebeat setup`` installs them:

- the component template ``s3lb-base``: ``@timestamp`` as ``date``, the fields of
  ``key_regex_fields`` and ``fields``, and dynamic rules for what no format names
  (strings → ``keyword``; ``*_ip`` and ``*addr`` strings → ``ip``; decimals → ``double``);
  date detection is off, so a string never becomes a date by accident;
- one component template per format, ``s3lb-format-<name>``: IP fields ``ip``, numbers
  numeric (ports and status codes ``integer``, byte counts ``long``, times ``double``),
  other timestamps ``date``, identifiers ``keyword``; free-form CloudTrail payloads
  (``requestParameters``…) are kept in ``_source`` but not indexed, as their shapes
  differ per API;
- one index template per output index pattern, composed of the base and of the
  formats that write there (all of them for ``log_format: auto``), with
  ``data_stream: {}`` in data stream mode.

IP fields accept malformed values without rejecting the document (``ignore_malformed``):
CloudTrail's ``sourceIPAddress`` is sometimes a service name. A field has the same type
in every format that has it, so any set of formats composes into one index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from s3lb import __version__
from s3lb.errors import ConfigError

__all__ = [
    "BASE_TEMPLATE",
    "FORMAT_FIELDS",
    "component_name",
    "dead_letter_template",
    "format_component",
    "index_pattern",
    "index_template",
    "known_format",
    "template_name",
]

KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
#: URLs, user agents, cookies: long but still worth exact matches.
LONG_KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 8191}
IP: dict[str, Any] = {"type": "ip", "ignore_malformed": True}
INTEGER: dict[str, Any] = {"type": "integer"}
LONG: dict[str, Any] = {"type": "long"}
DOUBLE: dict[str, Any] = {"type": "double"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
DATE: dict[str, Any] = {"type": "date"}
#: Epoch seconds as numbers (VPC flow ``start``/``end``) or strings, or ISO 8601.
EPOCH_OR_DATE: dict[str, Any] = {
    "type": "date",
    "format": "strict_date_optional_time||epoch_second",
}
#: Stored in ``_source``, not indexed: payloads whose shape varies per event.
NOT_INDEXED: dict[str, Any] = {"type": "object", "enabled": False}

_META = {"managed_by": "s3lb", "version": __version__}

#: Leaf fields per format (dotted paths for nested objects), by canonical name.
FORMAT_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "alb": {
        "type": KEYWORD,
        "elb": KEYWORD,
        "client_ip": IP,
        "client_port": INTEGER,
        "target_ip": IP,
        "target_port": INTEGER,
        "request_processing_time": DOUBLE,
        "target_processing_time": DOUBLE,
        "response_processing_time": DOUBLE,
        "elb_status_code": INTEGER,
        "target_status_code": INTEGER,
        "received_bytes": LONG,
        "sent_bytes": LONG,
        "request_verb": KEYWORD,
        "request_url": LONG_KEYWORD,
        "request_proto": KEYWORD,
        "user_agent": LONG_KEYWORD,
        "ssl_cipher": KEYWORD,
        "ssl_protocol": KEYWORD,
        "target_group_arn": KEYWORD,
        "trace_id": KEYWORD,
        "domain_name": KEYWORD,
        "chosen_cert_arn": KEYWORD,
        "matched_rule_priority": INTEGER,
        "request_creation_time": DATE,
        "actions_executed": KEYWORD,
        "redirect_url": LONG_KEYWORD,
        "error_reason": KEYWORD,
        "target_port_list": KEYWORD,
        "target_status_code_list": KEYWORD,
        "classification": KEYWORD,
        "classification_reason": KEYWORD,
        "conn_trace_id": KEYWORD,
        "transformed_host": KEYWORD,
        "transformed_uri": LONG_KEYWORD,
        "request_transform_status": KEYWORD,
    },
    "elb": {
        "elb": KEYWORD,
        "client_ip": IP,
        "client_port": INTEGER,
        "backend_ip": IP,
        "backend_port": INTEGER,
        "request_processing_time": DOUBLE,
        "backend_processing_time": DOUBLE,
        "response_processing_time": DOUBLE,
        "elb_status_code": INTEGER,
        "backend_status_code": INTEGER,
        "received_bytes": LONG,
        "sent_bytes": LONG,
        "request_verb": KEYWORD,
        "request_url": LONG_KEYWORD,
        "request_proto": KEYWORD,
        "user_agent": LONG_KEYWORD,
        "ssl_cipher": KEYWORD,
        "ssl_protocol": KEYWORD,
    },
    "nlb": {
        "type": KEYWORD,
        "version": KEYWORD,
        "elb": KEYWORD,
        "listener": KEYWORD,
        "client_ip": IP,
        "client_port": INTEGER,
        "destination_ip": IP,
        "destination_port": INTEGER,
        "connection_time": LONG,
        "tls_handshake_time": LONG,
        "received_bytes": LONG,
        "sent_bytes": LONG,
        "incoming_tls_alert": INTEGER,
        "chosen_cert_arn": KEYWORD,
        "chosen_cert_serial": KEYWORD,
        "tls_cipher": KEYWORD,
        "tls_protocol_version": KEYWORD,
        "tls_named_group": KEYWORD,
        "domain_name": KEYWORD,
        "alpn_fe_protocol": KEYWORD,
        "alpn_be_protocol": KEYWORD,
        "alpn_client_preference_list": KEYWORD,
        "tls_connection_creation_time": DATE,
    },
    "cloudfront": {
        "x_edge_location": KEYWORD,
        "sc_bytes": LONG,
        "c_ip": IP,
        "cs_method": KEYWORD,
        "cs_host": KEYWORD,
        "cs_uri_stem": LONG_KEYWORD,
        "sc_status": INTEGER,
        "cs_referer": LONG_KEYWORD,
        "cs_user_agent": LONG_KEYWORD,
        "cs_uri_query": LONG_KEYWORD,
        "cs_cookie": LONG_KEYWORD,
        "x_edge_result_type": KEYWORD,
        "x_edge_request_id": KEYWORD,
        "x_host_header": KEYWORD,
        "cs_protocol": KEYWORD,
        "cs_bytes": LONG,
        "time_taken": DOUBLE,
        # A list of addresses ("a, b") when proxies chain: not one IP.
        "x_forwarded_for": KEYWORD,
        "ssl_protocol": KEYWORD,
        "ssl_cipher": KEYWORD,
        "x_edge_response_result_type": KEYWORD,
        "cs_protocol_version": KEYWORD,
        "fle_status": KEYWORD,
        "fle_encrypted_fields": KEYWORD,
        "c_port": INTEGER,
        "time_to_first_byte": DOUBLE,
        "x_edge_detailed_result_type": KEYWORD,
        "sc_content_type": KEYWORD,
        "sc_content_len": LONG,
        "sc_range_start": LONG,
        "sc_range_end": LONG,
    },
    "waf": {
        "formatVersion": INTEGER,
        "webaclId": KEYWORD,
        "terminatingRuleId": KEYWORD,
        "terminatingRuleType": KEYWORD,
        "action": KEYWORD,
        "httpSourceName": KEYWORD,
        "httpSourceId": KEYWORD,
        "httpRequest.clientIp": IP,
        "httpRequest.country": KEYWORD,
        "httpRequest.uri": LONG_KEYWORD,
        "httpRequest.args": LONG_KEYWORD,
        "httpRequest.httpVersion": KEYWORD,
        "httpRequest.httpMethod": KEYWORD,
        "httpRequest.requestId": KEYWORD,
        "httpRequest.scheme": KEYWORD,
        "httpRequest.host": KEYWORD,
        "httpRequest.headers.name": KEYWORD,
        "httpRequest.headers.value": LONG_KEYWORD,
        "labels.name": KEYWORD,
        "responseCodeSent": INTEGER,
        "requestBodySize": LONG,
        "requestBodySizeInspectedByWAF": LONG,
        "ja3Fingerprint": KEYWORD,
        "ja4Fingerprint": KEYWORD,
        "captchaResponse.responseCode": INTEGER,
        "captchaResponse.solveTimestamp": EPOCH_OR_DATE,
        "captchaResponse.failureReason": KEYWORD,
        "challengeResponse.responseCode": INTEGER,
        "challengeResponse.solveTimestamp": EPOCH_OR_DATE,
        "challengeResponse.failureReason": KEYWORD,
        # Rule match details differ in shape per rule type.
        "terminatingRuleMatchDetails": NOT_INDEXED,
        "ruleGroupList": NOT_INDEXED,
        "nonTerminatingMatchingRules": NOT_INDEXED,
        "rateBasedRuleList": NOT_INDEXED,
    },
    "cloudtrail": {
        "eventVersion": KEYWORD,
        "eventTime": DATE,
        "eventSource": KEYWORD,
        "eventName": KEYWORD,
        "eventType": KEYWORD,
        "eventCategory": KEYWORD,
        "eventID": KEYWORD,
        "requestID": KEYWORD,
        "sharedEventID": KEYWORD,
        "awsRegion": KEYWORD,
        "sourceIPAddress": IP,
        "userAgent": LONG_KEYWORD,
        "errorCode": KEYWORD,
        "errorMessage": LONG_KEYWORD,
        "readOnly": BOOLEAN,
        "managementEvent": BOOLEAN,
        "recipientAccountId": KEYWORD,
        "apiVersion": KEYWORD,
        "vpcEndpointId": KEYWORD,
        "vpcEndpointAccountId": KEYWORD,
        "sessionCredentialFromConsole": KEYWORD,
        "userIdentity.type": KEYWORD,
        "userIdentity.principalId": KEYWORD,
        "userIdentity.arn": KEYWORD,
        "userIdentity.accountId": KEYWORD,
        "userIdentity.accessKeyId": KEYWORD,
        "userIdentity.userName": KEYWORD,
        "userIdentity.invokedBy": KEYWORD,
        "userIdentity.identityProvider": KEYWORD,
        "userIdentity.sessionContext.attributes.creationDate": DATE,
        "userIdentity.sessionContext.attributes.mfaAuthenticated": KEYWORD,
        "userIdentity.sessionContext.sessionIssuer.type": KEYWORD,
        "userIdentity.sessionContext.sessionIssuer.principalId": KEYWORD,
        "userIdentity.sessionContext.sessionIssuer.arn": KEYWORD,
        "userIdentity.sessionContext.sessionIssuer.accountId": KEYWORD,
        "userIdentity.sessionContext.sessionIssuer.userName": KEYWORD,
        "tlsDetails.tlsVersion": KEYWORD,
        "tlsDetails.cipherSuite": KEYWORD,
        "tlsDetails.clientProvidedHostHeader": KEYWORD,
        "resources.ARN": KEYWORD,
        "resources.accountId": KEYWORD,
        "resources.type": KEYWORD,
        # Their schema varies per API: the same name holds strings here, objects there.
        "requestParameters": NOT_INDEXED,
        "responseElements": NOT_INDEXED,
        "additionalEventData": NOT_INDEXED,
        "serviceEventDetails": NOT_INDEXED,
        "eventContext": NOT_INDEXED,
        "insightDetails": NOT_INDEXED,
    },
    "vpcflow": {
        # "5", or "2" in the default format: a label, not a quantity.
        "version": KEYWORD,
        "account_id": KEYWORD,
        "interface_id": KEYWORD,
        "srcaddr": IP,
        "dstaddr": IP,
        "srcport": INTEGER,
        "dstport": INTEGER,
        "protocol": INTEGER,
        "packets": LONG,
        "bytes": LONG,
        "start": EPOCH_OR_DATE,
        "end": EPOCH_OR_DATE,
        "action": KEYWORD,
        "log_status": KEYWORD,
        "vpc_id": KEYWORD,
        "subnet_id": KEYWORD,
        "instance_id": KEYWORD,
        "tcp_flags": INTEGER,
        "type": KEYWORD,
        "pkt_srcaddr": IP,
        "pkt_dstaddr": IP,
        "region": KEYWORD,
        "az_id": KEYWORD,
        "sublocation_type": KEYWORD,
        "sublocation_id": KEYWORD,
        "pkt_src_aws_service": KEYWORD,
        "pkt_dst_aws_service": KEYWORD,
        "flow_direction": KEYWORD,
        "traffic_path": INTEGER,
        "reject_reason": KEYWORD,
    },
    "s3access": {
        "bucket_owner": KEYWORD,
        "bucket": KEYWORD,
        "remote_ip": IP,
        "requester": KEYWORD,
        "request_id": KEYWORD,
        "operation": KEYWORD,
        "key": LONG_KEYWORD,
        "request_uri": LONG_KEYWORD,
        "http_status": INTEGER,
        "error_code": KEYWORD,
        "bytes_sent": LONG,
        "object_size": LONG,
        "total_time": LONG,
        "turn_around_time": LONG,
        "referer": LONG_KEYWORD,
        "user_agent": LONG_KEYWORD,
        "version_id": KEYWORD,
        "host_id": KEYWORD,
        "signature_version": KEYWORD,
        "cipher_suite": KEYWORD,
        "authentication_type": KEYWORD,
        "host_header": KEYWORD,
        "tls_version": KEYWORD,
        "access_point_arn": KEYWORD,
        "acl_required": KEYWORD,
        "source_region": KEYWORD,
    },
    "route53_resolver": {
        "version": KEYWORD,
        "account_id": KEYWORD,
        "region": KEYWORD,
        "vpc_id": KEYWORD,
        "query_timestamp": DATE,
        "query_name": KEYWORD,
        "query_type": KEYWORD,
        "query_class": KEYWORD,
        "rcode": KEYWORD,
        "answers.Rdata": KEYWORD,
        "answers.Type": KEYWORD,
        "answers.Class": KEYWORD,
        "srcaddr": IP,
        "srcport": INTEGER,
        "transport": KEYWORD,
        "srcids.instance": KEYWORD,
        "srcids.resolver_endpoint": KEYWORD,
        "srcids.resolver_network_interface": KEYWORD,
        "firewall_rule_action": KEYWORD,
        "firewall_rule_group_id": KEYWORD,
        "firewall_domain_list_id": KEYWORD,
    },
    "network_firewall": {
        "firewall_name": KEYWORD,
        "availability_zone": KEYWORD,
        "event_timestamp": EPOCH_OR_DATE,
        # Suricata's own time format ("…+0000"); @timestamp carries the parsed time.
        "event.timestamp": KEYWORD,
        "event.flow_id": LONG,
        "event.event_type": KEYWORD,
        "event.src_ip": IP,
        "event.src_port": INTEGER,
        "event.dest_ip": IP,
        "event.dest_port": INTEGER,
        "event.proto": KEYWORD,
        "event.app_proto": KEYWORD,
        "event.alert.action": KEYWORD,
        "event.alert.signature_id": LONG,
        "event.alert.rev": INTEGER,
        "event.alert.signature": LONG_KEYWORD,
        "event.alert.category": KEYWORD,
        "event.alert.severity": INTEGER,
        "event.netflow.pkts": LONG,
        "event.netflow.bytes": LONG,
        "event.netflow.start": KEYWORD,
        "event.netflow.end": KEYWORD,
        "event.netflow.age": LONG,
        "event.netflow.min_ttl": INTEGER,
        "event.netflow.max_ttl": INTEGER,
        "event.tcp.tcp_flags": KEYWORD,
        "event.tls.sni": KEYWORD,
        "event.tls.version": KEYWORD,
        "event.tls.subject": LONG_KEYWORD,
        "event.tls.issuerdn": LONG_KEYWORD,
        "event.tls.serial": KEYWORD,
        "event.tls.fingerprint": KEYWORD,
        "event.tls.notbefore": KEYWORD,
        "event.tls.notafter": KEYWORD,
        "event.http.hostname": KEYWORD,
        "event.http.url": LONG_KEYWORD,
        "event.http.http_method": KEYWORD,
        "event.http.length": LONG,
    },
    # JSON lines of any shape: the base template's dynamic rules only.
    "json": {},
}

#: Other names of the same format.
ALIASES = {"clb": "elb"}

BASE_TEMPLATE: dict[str, Any] = {
    "template": {
        "mappings": {
            "date_detection": False,
            "dynamic_templates": [
                {"ip_fields": {"match_mapping_type": "string", "match": "*_ip", "mapping": IP}},
                {"addr_fields": {"match_mapping_type": "string", "match": "*addr", "mapping": IP}},
                {"decimals": {"match_mapping_type": "double", "mapping": DOUBLE}},
                {"strings": {"match_mapping_type": "string", "mapping": KEYWORD}},
            ],
            "properties": {
                "@timestamp": DATE,
                "environment": KEYWORD,
                "application": KEYWORD,
            },
        }
    },
    "_meta": {**_META, "description": "s3lb: fields every format shares"},
}


def known_format(name: str) -> str | None:
    """The canonical name of format ``name`` when s3lb has mappings for it."""
    name = ALIASES.get(name, name)
    return name if name in FORMAT_FIELDS else None


def component_name(fmt: str) -> str:
    """The component template name of format ``fmt`` (``base`` for the shared one)."""
    return "s3lb-base" if fmt == "base" else f"s3lb-format-{fmt}"


def properties(fields: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Dotted leaf paths → nested ``properties`` mappings."""
    root: dict[str, Any] = {}
    for path, mapping in fields.items():
        node = root
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = dict(mapping)
    return root


def format_component(fmt: str) -> dict[str, Any]:
    """The component template body holding format ``fmt``'s mappings."""
    return {
        "template": {"mappings": {"properties": properties(FORMAT_FIELDS[fmt])}},
        "_meta": {**_META, "description": f"s3lb: fields of {fmt} logs"},
    }


def index_template(pattern: str, formats: Iterable[str], *, data_stream: bool) -> dict[str, Any]:
    """The index template on ``pattern`` composed of the base and ``formats``."""
    body: dict[str, Any] = {
        "index_patterns": [pattern],
        # Above the built-in logs-*-* data stream template of Elasticsearch (100).
        "priority": 200,
        "composed_of": [component_name("base")] + [component_name(f) for f in formats],
        "_meta": {**_META, "description": "s3lb: documents shipped from S3"},
    }
    if data_stream:
        body["data_stream"] = {}
    return body


def dead_letter_template(index: str) -> dict[str, Any]:
    """The index template of ``dead_letter_index``: entries are looked up by location
    and reason; the refused document is kept whole, unindexed."""
    unindexed_text = {"type": "text", "index": False}
    return {
        "index_patterns": [index],
        "priority": 200,
        "template": {
            "mappings": {
                "dynamic": False,
                "properties": {
                    "time": DATE,
                    "kind": KEYWORD,
                    "reason": {"type": "text", "fields": {"keyword": LONG_KEYWORD}},
                    "bucket": KEYWORD,
                    "key": LONG_KEYWORD,
                    "version": KEYWORD,
                    "position": LONG,
                    "offset": LONG,
                    "index": KEYWORD,
                    "id": KEYWORD,
                    "document": unindexed_text,
                    "raw": unindexed_text,
                },
            }
        },
        "_meta": {**_META, "description": "s3lb: documents the cluster rejected"},
    }


_FIELD_REF = re.compile(r"%\{[^}]*\}")


def index_pattern(index: str) -> str:
    """The wildcard pattern of the indices an ``index`` setting writes to:
    ``alb-%{+yyyy.MM.dd}`` → ``alb-*``.

    Raises:
        ConfigError: the pattern would start with ``*`` (it would match every index).
    """
    pattern = re.sub(r"\*+", "*", _FIELD_REF.sub("*", index)).lower()
    if pattern.startswith("*"):
        raise ConfigError(
            f"cannot derive a safe index pattern from {index!r}; give one with --index-pattern",
            "output.elasticsearch.index",
        )
    return pattern


def template_name(pattern: str) -> str:
    """``alb-*`` → ``s3lb-alb``; ``s3lb-*`` → ``s3lb``."""
    slug = re.sub(r"[^a-z0-9_]+", "-", pattern.replace("*", "")).strip("-_") or "default"
    return slug if slug == "s3lb" or slug.startswith("s3lb-") else f"s3lb-{slug}"
