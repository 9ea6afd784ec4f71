"""What every bench script shares, under one name (``import _harness as h``).

Not a script. Each ``bench/*.py`` puts ``bench/`` on ``sys.path`` and imports this; the
parts live in one module per concern:

- ``_base``: this checkout's s3lb and ``tests`` on the path (here and in subprocesses),
  the machine's constants;
- ``_data``: synthetic ALB logs (nothing reads ``shared/``), notifications, ``_id`` s;
- ``_services``: moto (S3 + SQS), the fast S3/SQS stand-in and the null bulk endpoint
  of ``tests/fakes``, the real OpenSearch node of ``tests/opensearch_node.py``, each
  in a process of its own on 127.0.0.1;
- ``_procs``: process trees from /proc (CPU seconds, RSS) and core pinning;
- ``_daemon``: ``s3lb run`` as a subprocess (the tests' configuration builder and
  runner, ``tests/support``), its Prometheus counters;
- ``_report``: header, tables, the ``RATIO`` line, the temporary directory.
"""

from __future__ import annotations

from _base import CORES, PYTHON, REPO
from _daemon import Daemon, s3lb_config
from _data import alb_lines, alb_stream, alb_text, doc_ids, gzip_stream, sample_alb_gzip
from _procs import (
    RssSampler,
    core_sets,
    cpu_seconds,
    pin,
    pinned,
    status_kib,
    thread_cpus,
    tree,
    tree_cpu,
)
from _report import header, process_run, processes_verdict, ratio, table, workdir
from _services import Aws, FastAws, NullSink, es_request, opensearch

from tests.support.helpers import free_port, gz

__all__ = [
    "CORES",
    "PYTHON",
    "REPO",
    "Aws",
    "Daemon",
    "FastAws",
    "NullSink",
    "RssSampler",
    "alb_lines",
    "alb_stream",
    "alb_text",
    "core_sets",
    "cpu_seconds",
    "doc_ids",
    "es_request",
    "free_port",
    "gz",
    "gzip_stream",
    "header",
    "opensearch",
    "pin",
    "pinned",
    "process_run",
    "processes_verdict",
    "ratio",
    "s3lb_config",
    "sample_alb_gzip",
    "status_kib",
    "table",
    "thread_cpus",
    "tree",
    "tree_cpu",
    "workdir",
]
