"""SQS over its JSON protocol: receive, delete, change visibility, attributes, send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from s3lb.aws.session import AwsSession
from s3lb.errors import SourceUnavailable

__all__ = ["Message", "SqsClient", "SqsError"]


@dataclass(frozen=True, slots=True)
class Message:
    """One received SQS message."""

    queue_url: str
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    sent_timestamp_ms: int = 0


class SqsError(SourceUnavailable):
    """SQS answered with an error; ``code`` is AWS's error code when known."""

    def __init__(self, message: str, code: str = "", status: int = 0) -> None:
        self.code = code
        self.status = status
        super().__init__(message)

    @property
    def invalid_handle(self) -> bool:
        """The receipt handle expired or belongs to an older receive."""
        return "ReceiptHandleIsInvalid" in self.code or "MessageNotInflight" in self.code


class SqsClient:
    """SQS actions for one region-aware AWS session, over a shared httpx client."""

    def __init__(self, session: AwsSession, http: httpx.AsyncClient) -> None:
        self._session = session
        self._http = http
        self._endpoints: dict[str, tuple[str, str]] = {}

    def _endpoint(self, queue_url: str) -> tuple[str, str]:
        """The endpoint and region of ``queue_url``'s calls (worked out once per queue)."""
        known = self._endpoints.get(queue_url)
        if known is None:
            known = self._endpoints[queue_url] = self._resolve(queue_url)
        return known

    def _resolve(self, queue_url: str) -> tuple[str, str]:
        region = self._session.region_for(queue_url)
        endpoint = self._session.endpoint("sqs", region)
        queue_host = urlsplit(queue_url).hostname or ""
        if not queue_host.endswith("amazonaws.com") and not self._session.has_custom_endpoint(
            "sqs", region
        ):
            # A queue URL on a local emulator, with no endpoint override: talk to it.
            parts = urlsplit(queue_url)
            endpoint = f"{parts.scheme}://{parts.netloc}"
        return endpoint, region

    async def _call(self, action: str, queue_url: str, payload: dict[str, Any]) -> dict[str, Any]:
        endpoint, region = self._endpoint(queue_url)
        body = msgspec.json.encode({"QueueUrl": queue_url, **payload})
        headers = await self._session.sign(
            "POST",
            endpoint + "/",
            service="sqs",
            region=region,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"AmazonSQS.{action}",
            },
            body=body,
        )
        try:
            response = await self._http.post(endpoint + "/", content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SqsError(f"SQS {action} failed: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            code, text = _error_of(response)
            raise SqsError(
                f"SQS {action} failed: HTTP {response.status_code} {code}: {text}",
                code,
                response.status_code,
            )
        return msgspec.json.decode(response.content) if response.content else {}

    async def receive(self, queue_url: str, max_messages: int, wait_time: float) -> list[Message]:
        """Long-poll up to ``max_messages`` (≤ 10) messages."""
        data = await self._call(
            "ReceiveMessage",
            queue_url,
            {
                "MaxNumberOfMessages": max(1, min(10, max_messages)),
                "WaitTimeSeconds": int(wait_time),
                "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
            },
        )
        messages = []
        for item in data.get("Messages") or []:
            attributes = item.get("Attributes") or {}
            messages.append(
                Message(
                    queue_url=queue_url,
                    message_id=item["MessageId"],
                    receipt_handle=item["ReceiptHandle"],
                    body=item.get("Body", ""),
                    receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
                    sent_timestamp_ms=int(attributes.get("SentTimestamp", 0)),
                )
            )
        return messages

    async def delete(self, message: Message) -> None:
        """Delete ``message`` from its queue."""
        await self._call(
            "DeleteMessage", message.queue_url, {"ReceiptHandle": message.receipt_handle}
        )

    async def delete_batch(self, messages: Sequence[Message]) -> list[tuple[Message, str]]:
        """Delete up to 10 messages of one queue; return those that failed, with why."""
        if not messages:
            return []
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(messages)
        ]
        data = await self._call("DeleteMessageBatch", messages[0].queue_url, {"Entries": entries})
        return [
            (messages[int(f["Id"])], f"{f.get('Code', '')}: {f.get('Message', '')}")
            for f in data.get("Failed") or []
        ]

    async def change_visibility(self, message: Message, timeout: int) -> None:
        """Set the message's visibility timeout to ``timeout`` seconds from now."""
        await self._call(
            "ChangeMessageVisibility",
            message.queue_url,
            {"ReceiptHandle": message.receipt_handle, "VisibilityTimeout": int(timeout)},
        )

    async def attributes(self, queue_url: str, names: Sequence[str] = ("All",)) -> dict[str, str]:
        """GetQueueAttributes."""
        data = await self._call("GetQueueAttributes", queue_url, {"AttributeNames": list(names)})
        return dict(data.get("Attributes") or {})

    async def send_batch(self, queue_url: str, bodies: Sequence[str]) -> list[tuple[int, str]]:
        """SendMessageBatch of up to 10 ``bodies``; return the indexes (into ``bodies``)
        that SQS refused, with why. Raise SqsError when the call itself fails."""
        if not bodies:
            return []
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        data = await self._call("SendMessageBatch", queue_url, {"Entries": entries})
        return [
            (int(f["Id"]), f"{f.get('Code', '')}: {f.get('Message', '')}")
            for f in data.get("Failed") or []
        ]


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        data = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return "", response.text[:200]
    if not isinstance(data, dict):
        return "", response.text[:200]
    code = str(data.get("__type", "")).rsplit("#", 1)[-1]
    return code, str(data.get("message") or data.get("Message") or "")
