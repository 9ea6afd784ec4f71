"""Issue 16.6: progress made only through unparseable (or blank) lines is checkpointed.

An object of unparseable lines is dead-lettered as it is read. A restart after SIGTERM
resumes it past the last dead-lettered line, so each line is dead-lettered once; after
kill -9, only the lines since the last checkpoint commit are dead-lettered again (before,
the whole object was re-scanned and its entries written twice).
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Aws
from tests.fakes.fake_es import FakeEs
from tests.integration.test_run import config
from tests.support.daemon import S3lbProcess
from tests.support.helpers import wait_until

pytestmark = pytest.mark.slow

LINES = 300_000


def dead_letter_positions(tmp_path: Path) -> Counter[int]:
    """How often each position of the object was dead-lettered."""
    seen: Counter[int] = Counter()
    for path in (tmp_path / "state-test" / "dead-letter").glob("*.ndjson"):
        for line in path.read_bytes().splitlines():
            if line.strip():
                seen[json.loads(line)["position"]] += 1
    return seen


def lines_dead_lettered(tmp_path: Path) -> int:
    return sum(
        path.read_bytes().count(b"\n")
        for path in (tmp_path / "state-test" / "dead-letter").glob("*.ndjson")
    )


@pytest.mark.parametrize("how", ["sigterm", "kill-9"])
def test_a_restart_resumes_past_dead_lettered_lines_instead_of_writing_them_again(
    aws: Aws, fake_es: FakeEs, daemon: Callable[..., S3lbProcess], tmp_path: Path, how: str
) -> None:
    queue, bucket = aws.quiet_queue(VisibilityTimeout=4)
    body = b"".join(b"not an ALB line %d\n" % i for i in range(LINES))
    aws.put(bucket, "prod-web/garbage.log.gz", body, compress=True)
    settings = config(queues=[queue], es_url=fake_es.url, shutdown_timeout="1s")

    first = daemon(settings)
    wait_until(lambda: lines_dead_lettered(tmp_path) >= LINES // 4, 120, "a quarter read")
    if how == "sigterm":
        assert first.stop() == 0
    else:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
    before = lines_dead_lettered(tmp_path)
    assert before < LINES, "the object was read to its end before the stop"

    second = daemon(settings)
    wait_until(lambda: aws.counts(queue) == (0, 0), 180, "the message deleted")
    assert second.stop() == 0
    assert "resuming object from its checkpoint" in second.log
    seen = dead_letter_positions(tmp_path)
    assert set(seen) == set(range(1, LINES + 1))  # every line kept, none lost
    again = sum(n - 1 for n in seen.values())
    print(f"{how}: {before} dead-lettered before the stop, {again} written twice")
    if how == "sigterm":
        assert again == 0
    else:
        assert again < LINES // 20, again  # one commit window, not the whole object
    assert fake_es.docs == {}
