"""An in-memory bucket that answers like ListObjectsV2, for the listing's tests."""

from __future__ import annotations

from datetime import UTC, datetime

from s3lb.aws.s3 import ListedObject, ListPage

#: An AWS-style ELB log prefix; its date folders (``YYYY/MM/DD/``) follow.
ELB = "prod/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    """That moment in UTC."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


class FakeBucket:
    """ListObjectsV2 over a dict of key → LastModified: names (keys and rolled-up
    common prefixes) in order, ``start-after``/continuation by name, ``max-keys``."""

    def __init__(self, objects: dict[str, datetime]) -> None:
        self.objects = objects
        self.keys = sorted(objects)
        self.calls: list[tuple[str, str, int]] = []

    async def __call__(
        self,
        prefix: str,
        *,
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        self.calls.append((prefix, delimiter, max_keys))
        after = continuation_token or start_after
        names: list[str] = []
        for key in self.keys:
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            name = key
            if delimiter and delimiter in rest:
                name = prefix + rest.split(delimiter)[0] + delimiter
            if name > after and (not names or names[-1] != name):
                names.append(name)
        page, more = names[:max_keys], len(names) > max_keys
        objects = [ListedObject(n, 1, "etag", self.objects[n]) for n in page if not n.endswith("/")]
        prefixes = [n for n in page if n.endswith("/") and n not in self.objects]
        return ListPage(objects, prefixes, page[-1] if more else "")
