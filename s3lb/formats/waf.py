"""AWS WAF logs (``log_format: waf``): ``json`` with ``timestamp`` in epoch ms.

The ``timestamp`` key is removed from the document, as the seed did; every other key
is kept as decoded (nested objects and arrays included).
"""

from __future__ import annotations

from s3lb.formats.json_lines import WAF_FORMAT as FORMAT

__all__ = ["FORMAT"]
