"""Where documents go: an Elasticsearch/OpenSearch cluster, or an NDJSON file."""

from __future__ import annotations

from s3lb.sinks.elasticsearch.sink import ElasticsearchSink as ElasticsearchSink
from s3lb.sinks.file import FileSink as FileSink

__all__ = ["ElasticsearchSink", "FileSink"]
