"""Every sample under tests/data/formats parses as its spec says.

Full expected documents are written out for the first record and the tricky ones of
each text sample; JSON samples are checked against their own decoded lines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from s3lb.formats import ParseError, get_format
from tests.paths import SAMPLES as SAMPLES_DIR
from tests.unit.formats.conftest import parse_lines, read_lines

SAMPLES = SAMPLES_DIR

# log_format, sample file, number of records (header lines excluded).
TEXT_SAMPLES = [
    ("alb", "alb.log", 30),
    ("elb", "clb.log", 22),
    ("nlb", "nlb.log", 22),
    ("cloudfront", "cloudfront.log", 24),
    ("vpcflow", "vpcflow_default_v2.log", 22),
    ("vpcflow", "vpcflow_custom_v5.log", 21),
    ("vpcflow", "vpcflow_custom_reordered.log", 20),
    ("vpcflow", "vpcflow_custom_v8_ecs.log", 21),
    ("s3access", "s3_access.log", 25),
    ("waf", "waf.log", 22),
    ("route53_resolver", "route53_resolver.log", 21),
    ("network_firewall", "network_firewall.log", 20),
]


@pytest.mark.parametrize(("fmt", "name", "count"), TEXT_SAMPLES)
def test_every_sample_line_parses(fmt: str, name: str, count: int) -> None:
    """No line of a sample fails; headers give None; every record has a timestamp."""
    docs = parse_lines(fmt, read_lines(SAMPLES_DIR / name))
    errors = [d for d in docs if isinstance(d, Exception)]
    assert errors == []
    records = [d for d in docs if d is not None]
    assert len(records) == count
    for doc in records:
        stamp = doc["@timestamp"]
        assert len(stamp) == 24 and stamp[10] == "T" and stamp.endswith("Z"), stamp
        # Empty values are omitted, never null or "-" (except the seed's kept dashes).
        assert None not in doc.values() or fmt in ("waf", "route53_resolver", "network_firewall")


# (log_format, sample, 1-based line number) -> the full document.
EXPECTED: dict[tuple[str, str, int], dict[str, Any]] = {
    ("alb", "alb.log", 1): {
        "@timestamp": "2018-07-02T22:23:00.186Z",
        "type": "http",
        "elb": "app/my-loadbalancer/50dc6c495c0c9188",
        "client_ip": "192.168.131.39",
        "client_port": 2817,
        "target_ip": "10.0.0.1",
        "target_port": 80,
        "request_processing_time": 0.0,
        "target_processing_time": 0.001,
        "response_processing_time": 0.0,
        "elb_status_code": 200,
        "target_status_code": 200,
        "received_bytes": 34,
        "sent_bytes": 366,
        "request_verb": "GET",
        "request_url": "http://www.example.com:80/",
        "request_proto": "HTTP/1.1",
        "user_agent": "curl/7.46.0",
        "target_group_arn": (
            "arn:aws:elasticloadbalancing:us-east-2:123456789012:"
            "targetgroup/my-targets/73e2d6bc24d8a067"
        ),
        "trace_id": "Root=1-58337262-36d228ad5d99923122bbe354",
        "matched_rule_priority": 0,
        "request_creation_time": "2018-07-02T22:22:48.364Z",
        "actions_executed": "forward",
        "target_port_list": "10.0.0.1:80",
        "target_status_code_list": "200",
    },
    ("alb", "alb.log", 9): {
        "@timestamp": "2021-03-17T18:54:14.216Z",
        "type": "http",
        "elb": "app/awseb-AWSEB-1KGU6EBAG3FAD/7f0dc2b05788640f",
        "client_ip": "113.241.19.90",
        "client_port": 15070,
        "elb_status_code": 400,
        "received_bytes": 0,
        "sent_bytes": 272,
        "request_verb": "-",
        "request_url": "http://awseb-awseb-1kgu6fbag3fad-640112591.us-east-1.elb.amazonaws.com:80-",
        "request_proto": "-",
        "target_group_arn": "-",
        "trace_id": "-",
        "request_creation_time": "2021-03-17T18:54:13.967Z",
        "conn_trace_id": "TID_dc57cebed65b444ebc8177bb698fe166",
    },
    ("alb", "alb.log", 30): {
        "@timestamp": "2025-10-21T14:04:29.120Z",
        "type": "http",
        "elb": "app/prod-web-alb/5f2d8c1e9a7b3c40",
        "client_ip": "198.51.100.23",
        "client_port": 61702,
        "target_ip": "10.0.2.41",
        "target_port": 8080,
        "request_processing_time": 0.0,
        "target_processing_time": 0.007,
        "response_processing_time": 0.0,
        "elb_status_code": 302,
        "target_status_code": 302,
        "received_bytes": 301,
        "sent_bytes": 415,
        "request_verb": "GET",
        "request_url": "http://www.example.com:80/login",
        "request_proto": "HTTP/1.1",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "target_group_arn": (
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
            "targetgroup/prod-web-tg/0a1b2c3d4e5f6a7b"
        ),
        "trace_id": "Root=1-68f7936d-4d5e6f708192a3b4c5d6e7f8",
        "matched_rule_priority": 3,
        "request_creation_time": "2025-10-21T14:04:29.112Z",
        "actions_executed": "forward",
        "target_port_list": "10.0.2.41:8080",
        "target_status_code_list": "302",
        "conn_trace_id": "TID_b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5",
    },
    ("elb", "clb.log", 1): {
        "@timestamp": "2015-05-13T23:39:43.945Z",
        "elb": "my-loadbalancer",
        "client_ip": "192.168.131.39",
        "client_port": 2817,
        "backend_ip": "10.0.0.1",
        "backend_port": 80,
        "request_processing_time": 7.3e-05,
        "backend_processing_time": 0.001048,
        "response_processing_time": 5.7e-05,
        "elb_status_code": 200,
        "backend_status_code": 200,
        "received_bytes": 0,
        "sent_bytes": 29,
        "request_verb": "GET",
        "request_url": "http://www.example.com:80/",
        "request_proto": "HTTP/1.1",
        "user_agent": "curl/7.38.0",
    },
    ("elb", "clb.log", 20): {
        "@timestamp": "2025-10-21T14:20:08.811Z",
        "elb": "prod-classic-web",
        "client_ip": "203.0.113.9",
        "client_port": 49311,
        "backend_ip": "10.0.1.12",
        "backend_port": 80,
        "request_processing_time": 3.5e-05,
        "backend_processing_time": 0.001122,
        "response_processing_time": 2.4e-05,
        "elb_status_code": 400,
        "backend_status_code": 400,
        "received_bytes": 0,
        "sent_bytes": 90,
        "request_verb": "GET",
        "request_url": "http://www.example.com:80/%%%%",
        "request_proto": "HTTP/1.1",
    },
    ("elb", "clb.log", 22): {
        "@timestamp": "2025-10-21T14:20:09.999Z",
        "elb": "prod-classic-web",
        "client_ip": "198.51.100.201",
        "client_port": 35790,
        "backend_ip": "10.0.1.12",
        "backend_port": 80,
        "request_processing_time": 4e-05,
        "backend_processing_time": 0.002901,
        "response_processing_time": 2.2e-05,
        "elb_status_code": 200,
        "backend_status_code": 200,
        "received_bytes": 0,
        "sent_bytes": 210,
        "request_verb": "OPTIONS",
        "request_url": "https://www.example.com:443/api/cors",
        "request_proto": "HTTP/1.1",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "ssl_protocol": "TLSv1.2",
    },
    ("nlb", "nlb.log", 1): {
        "@timestamp": "2018-12-20T02:59:40.000Z",
        "client_ip": "72.21.218.154",
        "client_port": 51341,
        "destination_ip": "172.100.100.185",
        "destination_port": 443,
        "type": "tls",
        "version": "2.0",
        "elb": "net/my-network-loadbalancer/c6e77e28c25b2234",
        "listener": "g3d4b5e8bb8464cd",
        "connection_time": 5,
        "tls_handshake_time": 2,
        "received_bytes": 98,
        "sent_bytes": 246,
        "chosen_cert_arn": (
            "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99"
        ),
        "tls_cipher": "ECDHE-RSA-AES128-SHA",
        "tls_protocol_version": "tlsv12",
        "domain_name": "my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com",
    },
    ("nlb", "nlb.log", 5): {
        "@timestamp": "2024-10-25T17:33:59.000Z",
        "client_ip": "192.168.131.39",
        "client_port": 2817,
        "destination_ip": "10.0.0.1",
        "destination_port": 80,
        "type": "tls",
        "version": "2.0",
        "elb": "net/XXXXX-XXXX-XXX-us-east-2/c88927aafc9abafe",
        "listener": "52878890095341b5",
        "connection_time": 0,
        "received_bytes": 0,
        "sent_bytes": 0,
        "tls_connection_creation_time": "2024-10-25T17:33:59.000Z",
    },
    ("nlb", "nlb.log", 22): {
        "@timestamp": "2025-10-21T14:10:33.000Z",
        "client_ip": "192.0.2.10",
        "client_port": 33001,
        "destination_ip": "10.0.10.25",
        "destination_port": 443,
        "type": "tls",
        "version": "2.0",
        "elb": "net/prod-tls-nlb/7c1e5a9b3d2f4e60",
        "listener": "a1b2c3d4e5f60718",
        "connection_time": 15000,
        "tls_handshake_time": 40,
        "received_bytes": 99,
        "sent_bytes": 120,
        "chosen_cert_arn": (
            "arn:aws:acm:us-east-1:123456789012:certificate/5b2d9c1e-7f3a-4b6d-8e0f-1a2b3c4d5e6f"
        ),
        "tls_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "tls_protocol_version": "tlsv12",
        "domain_name": "api.example.com",
        "tls_connection_creation_time": "2025-10-21T14:10:18.000Z",
    },
    ("cloudfront", "cloudfront.log", 3): {
        "@timestamp": "2019-12-04T21:02:31.000Z",
        "x_edge_location": "LAX1",
        "sc_bytes": 392,
        "c_ip": "192.0.2.100",
        "cs_method": "GET",
        "cs_host": "d111111abcdef8.cloudfront.net",
        "cs_uri_stem": "/index.html",
        "sc_status": 200,
        "cs_referer": "-",
        "cs_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/78.0.3904.108 Safari/537.36",
        "cs_cookie": "-",
        "x_edge_result_type": "Hit",
        "x_edge_request_id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
        "x_host_header": "d111111abcdef8.cloudfront.net",
        "cs_protocol": "https",
        "cs_bytes": 23,
        "time_taken": 0.001,
        "ssl_protocol": "TLSv1.2",
        "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "x_edge_response_result_type": "Hit",
        "cs_protocol_version": "HTTP/2.0",
        "c_port": 11040,
        "time_to_first_byte": 0.001,
        "x_edge_detailed_result_type": "Hit",
        "sc_content_type": "text/html",
        "sc_content_len": 78,
    },
    ("cloudfront", "cloudfront.log", 12): {
        "@timestamp": "2025-10-21T14:30:03.000Z",
        "x_edge_location": "LHR61-C1",
        "sc_bytes": 320,
        "c_ip": "203.0.113.60",
        "cs_method": "GET",
        "cs_host": "d111111abcdef8.cloudfront.net",
        "cs_uri_stem": "/files/Quarterly Report (Q3).pdf",
        "sc_status": 206,
        "cs_referer": "-",
        "cs_user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 "
        "Safari/604.1",
        "cs_cookie": "-",
        "x_edge_result_type": "Hit",
        "x_edge_request_id": "Ef5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5aB6cD7eF8gH9iJ0kL1mN2oo==",
        "x_host_header": "downloads.example.com",
        "cs_protocol": "https",
        "cs_bytes": 455,
        "time_taken": 0.004,
        "ssl_protocol": "TLSv1.3",
        "ssl_cipher": "TLS_AES_128_GCM_SHA256",
        "x_edge_response_result_type": "Hit",
        "cs_protocol_version": "HTTP/2.0",
        "c_port": 41880,
        "time_to_first_byte": 0.004,
        "x_edge_detailed_result_type": "Hit",
        "sc_content_type": "application/pdf",
        "sc_content_len": 1048576,
        "sc_range_start": 0,
        "sc_range_end": 1048575,
    },
    ("cloudfront", "cloudfront.log", 13): {
        "@timestamp": "2025-10-21T14:30:04.000Z",
        "x_edge_location": "SEA19-C3",
        "sc_bytes": 0,
        "c_ip": "192.0.2.33",
        "cs_method": "GET",
        "cs_host": "d111111abcdef8.cloudfront.net",
        "cs_uri_stem": "/video/live/seg_001122.ts",
        "sc_status": 0,
        "cs_referer": "-",
        "cs_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "cs_cookie": "-",
        "x_edge_result_type": "Error",
        "x_edge_request_id": "Gh7iJ8kL9mN0oP1qR2sT3uV4wX5yZ6aB7cD8eF9gH0iJ1kL2mN3oP4qq==",
        "x_host_header": "media.example.com",
        "cs_protocol": "https",
        "cs_bytes": 299,
        "time_taken": 1.208,
        "ssl_protocol": "TLSv1.3",
        "ssl_cipher": "TLS_AES_128_GCM_SHA256",
        "x_edge_response_result_type": "Hit",
        "cs_protocol_version": "HTTP/2.0",
        "c_port": 62010,
        "time_to_first_byte": 0.012,
        "x_edge_detailed_result_type": "ClientCommError",
        "sc_content_type": "video/MP2T",
    },
    ("vpcflow", "vpcflow_default_v2.log", 2): {
        "version": 2,
        "account_id": "123456789010",
        "interface_id": "eni-1235b8ca123456789",
        "srcaddr": "172.31.16.139",
        "dstaddr": "172.31.16.21",
        "srcport": 20641,
        "dstport": 22,
        "protocol": 6,
        "packets": 20,
        "bytes": 4249,
        "start": 1418530010,
        "end": 1418530070,
        "action": "ACCEPT",
        "log_status": "OK",
        "@timestamp": "2014-12-14T04:06:50.000Z",
    },
    ("vpcflow", "vpcflow_default_v2.log", 4): {
        "version": 2,
        "account_id": "123456789010",
        "interface_id": "eni-1235b8ca123456789",
        "start": 1431280876,
        "end": 1431280934,
        "log_status": "NODATA",
        "@timestamp": "2015-05-10T18:01:16.000Z",
    },
    ("vpcflow", "vpcflow_custom_v5.log", 2): {
        "version": 5,
        "account_id": "64111117617",
        "interface_id": "eni-069xxxxxb7a490",
        "srcaddr": "89.160.20.156",
        "dstaddr": "10.200.0.0",
        "srcport": 50041,
        "dstport": 33004,
        "protocol": 17,
        "packets": 52,
        "bytes": 1,
        "start": 164000066,
        "end": 1640000297,
        "action": "REJECT",
        "log_status": "OK",
        "vpc_id": "vpc-09676f97xxxxxb8a7",
        "subnet_id": "subnet-02d645xxxxxxxdbc0",
        "instance_id": "i-0axxxxxx1ad77",
        "tcp_flags": 1,
        "type": "IPv4",
        "pkt_srcaddr": "89.160.20.156",
        "pkt_dstaddr": "10.200.0.80",
        "region": "us-east-1",
        "az_id": "use1-az5",
        "pkt_src_aws_service": "AMAZON",
        "pkt_dst_aws_service": "CLOUDFRONT",
        "flow_direction": "ingress",
        "traffic_path": 1,
        "@timestamp": "1975-03-14T03:34:26.000Z",
    },
    ("vpcflow", "vpcflow_custom_v5.log", 19): {
        "version": 5,
        "account_id": "123456789012",
        "interface_id": "eni-0a1b2c3d4e5f60718",
        "start": 1761057660,
        "end": 1761057720,
        "log_status": "NODATA",
        "vpc_id": "vpc-0a1b2c3d4e5f67890",
        "subnet_id": "subnet-0123456789abcdef0",
        "instance_id": "i-0abc1234def567890",
        "region": "us-east-1",
        "az_id": "use1-az4",
        "@timestamp": "2025-10-21T14:41:00.000Z",
    },
    ("vpcflow", "vpcflow_custom_reordered.log", 2): {
        "version": 5,
        "srcaddr": "52.95.128.179",
        "dstaddr": "10.0.0.71",
        "srcport": 80,
        "dstport": 34210,
        "protocol": 6,
        "start": 1616729292,
        "end": 1616729349,
        "type": "IPv4",
        "packets": 14,
        "bytes": 15044,
        "account_id": "123456789012",
        "vpc_id": "vpc-abcdefab012345678",
        "subnet_id": "subnet-aaaaaaaa012345678",
        "instance_id": "i-0c50d5961bcb2d47b",
        "interface_id": "eni-1235b8ca123456789",
        "region": "ap-southeast-2",
        "az_id": "apse2-az3",
        "action": "ACCEPT",
        "tcp_flags": 19,
        "pkt_srcaddr": "52.95.128.179",
        "pkt_dstaddr": "10.0.0.71",
        "pkt_src_aws_service": "S3",
        "flow_direction": "ingress",
        "log_status": "OK",
        "@timestamp": "2021-03-26T03:28:12.000Z",
    },
    ("vpcflow", "vpcflow_custom_reordered.log", 9): {
        "version": 5,
        "start": 1761057625,
        "end": 1761057685,
        "account_id": "123456789012",
        "vpc_id": "vpc-abcdefab012345678",
        "subnet_id": "subnet-aaaaaaaa012345678",
        "instance_id": "i-0c50d5961bcb2d47b",
        "interface_id": "eni-1235b8ca123456789",
        "region": "ap-southeast-2",
        "az_id": "apse2-az3",
        "log_status": "NODATA",
        "@timestamp": "2025-10-21T14:40:25.000Z",
    },
    ("vpcflow", "vpcflow_custom_v8_ecs.log", 2): {
        "version": 8,
        "account_id": "123456789012",
        "interface_id": "eni-0ecs00aa11bb22cc3",
        "srcaddr": "10.0.0.10",
        "dstaddr": "10.0.9.2",
        "srcport": 40000,
        "dstport": 8080,
        "protocol": 6,
        "packets": 10,
        "bytes": 1000,
        "start": 1761057600,
        "end": 1761057658,
        "action": "REJECT",
        "log_status": "OK",
        "flow_direction": "egress",
        "ecs_cluster_name": "prod-cluster",
        "ecs_service_name": "payments-service",
        "ecs_task_id": "5f3a00c1d2e3f4a5b6c7d8e9f0a1b2c3",
        "ecs_container_id": "0123abcd4567ef8900",
        "reject_reason": "BPA",
        "@timestamp": "2025-10-21T14:40:00.000Z",
    },
    ("vpcflow", "vpcflow_custom_v8_ecs.log", 7): {
        "version": 8,
        "account_id": "123456789012",
        "interface_id": "eni-0ecs05aa11bb22cc3",
        "start": 1761057750,
        "end": 1761057810,
        "log_status": "NODATA",
        "@timestamp": "2025-10-21T14:42:30.000Z",
    },
    ("s3access", "s3_access.log", 1): {
        "@timestamp": "2019-02-06T00:00:38.000Z",
        "bucket_owner": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        "bucket": "DOC-EXAMPLE-BUCKET1",
        "remote_ip": "192.0.2.3",
        "requester": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        "request_id": "3E57427F3EXAMPLE",
        "operation": "REST.GET.VERSIONING",
        "request_uri": "GET /DOC-EXAMPLE-BUCKET1?versioning HTTP/1.1",
        "http_status": 200,
        "bytes_sent": 113,
        "total_time": 7,
        "user_agent": "S3Console/0.4",
        "host_id": "s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234=",
        "signature_version": "SigV4",
        "cipher_suite": "ECDHE-RSA-AES128-GCM-SHA256",
        "authentication_type": "AuthHeader",
        "host_header": "DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com",
        "tls_version": "TLSV1.2",
        "access_point_arn": "arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP",
        "acl_required": "Yes",
    },
    ("s3access", "s3_access.log", 3): {
        "@timestamp": "2019-02-06T00:00:38.000Z",
        "bucket_owner": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        "bucket": "DOC-EXAMPLE-BUCKET1",
        "remote_ip": "192.0.2.3",
        "requester": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        "request_id": "A1206F460EXAMPLE",
        "operation": "REST.GET.BUCKETPOLICY",
        "request_uri": "GET /DOC-EXAMPLE-BUCKET1?policy HTTP/1.1",
        "http_status": 404,
        "error_code": "NoSuchBucketPolicy",
        "bytes_sent": 297,
        "total_time": 38,
        "user_agent": "S3Console/0.4",
        "host_id": "BNaBsXZQQDbssi6xMBdBU2sLt+Yf5kZDmeBUP35sFoKa3sLLeMC78iwEIWxs99CRUrbS4n11234=",
        "signature_version": "SigV4",
        "cipher_suite": "ECDHE-RSA-AES128-GCM-SHA256",
        "authentication_type": "AuthHeader",
        "host_header": "DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com",
        "tls_version": "TLSV1.2",
        "acl_required": "Yes",
    },
    ("s3access", "s3_access.log", 7): {
        "@timestamp": "2019-09-19T17:06:39.000Z",
        "bucket_owner": "36c1f05b76016b78528454e6e0c60e2b7ff7aa20c0a5e4c748276e5b0a2debd2",
        "bucket": "test-s3-ks",
        "remote_ip": "89.160.20.156",
        "requester": "arn:aws:iam::123456:user/test@elastic.co",
        "request_id": "6CE38F1312D32BDD",
        "operation": "BATCH.DELETE.OBJECT",
        "key": "Screen Shot 2019-09-09 at 9.08.44 AM.png",
        "http_status": 204,
        "object_size": 57138,
        "host_id": "LwRa4w6DbuU48GKQiH3jDbjfTyLCbwasFBsdttugRQ+9lH4jK8lT91+HhGZKMYI3sPyKuQ9LvU0=",
        "signature_version": "SigV4",
        "cipher_suite": "ECDHE-RSA-AES128-SHA",
        "authentication_type": "AuthHeader",
        "host_header": "s3.ap-southeast-1.amazonaws.com",
        "tls_version": "TLSv1.2",
    },
    ("s3access", "s3_access.log", 25): {
        "@timestamp": "2025-10-21T14:50:15.000Z",
        "bucket_owner": "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "bucket": "prod-data-lake",
        "remote_ip": "198.51.100.17",
        "requester": "arn:aws:iam::123456789012:user/alice",
        "request_id": "U7I8O9P0A1EXAMPLE",
        "operation": "REST.DELETE.OBJECT",
        "key": "tmp/old.log",
        "request_uri": "DELETE /tmp/old.log?versionId=3HL4kqtJvjVBH40Nrjfkd HTTP/1.1",
        "http_status": 204,
        "total_time": 21,
        "turn_around_time": 20,
        "user_agent": "aws-cli/2.17.20",
        "version_id": "3HL4kqtJvjVBH40Nrjfkd",
        "host_id": "dGhpc0lzQW5FeGFtcGxlSG9zdElkRm9yUzNBY2Nlc3NMb2dz0015RVhBTVBMRQ==",
        "signature_version": "SigV4",
        "cipher_suite": "TLS_AES_128_GCM_SHA256",
        "authentication_type": "AuthHeader",
        "host_header": "prod-data-lake.s3.us-east-1.amazonaws.com",
        "tls_version": "TLSv1.3",
        "source_region": "us-east-1",
    },
}


@pytest.mark.parametrize("case", list(EXPECTED), ids=lambda c: f"{c[1]}:{c[2]}")
def test_sample_line_gives_the_full_document(case: tuple[str, str, int]) -> None:
    """The chosen lines give exactly these documents (names, values and JSON types)."""
    fmt, name, number = case
    docs = parse_lines(fmt, read_lines(SAMPLES / name))
    doc = docs[number - 1]
    want = EXPECTED[case]
    assert doc == want
    for key, value in want.items():
        assert type(doc[key]) is type(value), key


@pytest.mark.parametrize(
    ("fmt", "name", "field", "keep"),
    [
        ("waf", "waf.log", "timestamp", False),
        ("route53_resolver", "route53_resolver.log", "query_timestamp", True),
        ("network_firewall", "network_firewall.log", None, True),
    ],
)
def test_json_samples_keep_every_key(fmt: str, name: str, field: str | None, keep: bool) -> None:
    """JSON documents are the decoded line plus @timestamp (waf drops its timestamp)."""
    lines = read_lines(SAMPLES_DIR / name)
    for line, doc in zip(lines, parse_lines(fmt, lines), strict=True):
        want = json.loads(line)
        if field is not None and not keep:
            del want[field]
        stamp = doc.pop("@timestamp")
        assert doc == want
        assert stamp.endswith("Z")


def test_json_sample_timestamps() -> None:
    """The first record of each JSON sample gets the right @timestamp."""
    first = {
        "waf.log": ("waf", "2019-12-13T23:40:12.771Z"),
        "route53_resolver.log": ("route53_resolver", "2021-02-04T17:51:55.000Z"),
        "network_firewall.log": ("network_firewall", "2020-09-25T23:01:05.598Z"),
    }
    for name, (fmt, stamp) in first.items():
        docs = parse_lines(fmt, read_lines(SAMPLES / name)[:1])
        assert docs[0]["@timestamp"] == stamp, name


def test_network_firewall_keeps_big_flow_ids_exact() -> None:
    """flow_id can exceed 2**53: it stays an exact integer."""
    for doc in parse_lines("network_firewall", read_lines(SAMPLES / "network_firewall.log")):
        assert isinstance(doc["event"].get("flow_id", 0), int)


def test_cloudtrail_sample_gives_every_record() -> None:
    """The 20 records come out in order, whole, with @timestamp from eventTime."""
    data = (SAMPLES_DIR / "cloudtrail.json").read_bytes()
    fmt = get_format("cloudtrail")
    assert fmt.splitter is not None
    splitter = fmt.splitter()
    raws = [*splitter.feed(data), *splitter.close()]
    parser = fmt.new_parser({})
    docs = [parser.parse(raw) for raw in raws]
    records = json.loads(data)["Records"]
    assert len(docs) == len(records) == 20
    for doc, record in zip(docs, records, strict=True):
        stamp = doc.pop("@timestamp")
        assert doc == record
        assert stamp == record["eventTime"].replace("Z", ".000Z")


def test_cloudtrail_digest_sample_gives_no_record() -> None:
    """A digest file has no Records: nothing to index, and the splitter says why."""
    data = (SAMPLES_DIR / "cloudtrail_digest.json").read_bytes()
    splitter = get_format("cloudtrail").splitter()
    assert [*splitter.feed(data), *splitter.close()] == []
    assert splitter.skip_reason == "cloudtrail-digest"


def test_elb_test_file_is_not_an_alb_line() -> None:
    """ELBAccessLogTestFile is skipped by key; parsed anyway, it is a clear ParseError."""
    (line,) = read_lines(SAMPLES_DIR / "ELBAccessLogTestFile")
    with pytest.raises(ParseError, match="expected at least"):
        get_format("alb").new_parser({}).parse(line)
