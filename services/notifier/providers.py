"""Providers behind one small interface: ``await provider.send(delivery)``.

A provider raises :class:`Transient` for what may work on a later try (time-outs, 5xx, 429) and
:class:`Permanent` for what never will (a number that does not exist, 4xx). Every HTTP provider
sends the delivery id as ``Idempotency-Key``, so a receiver can recognise a message sent again
after a crash between sending and recording.
"""

from typing import Protocol

import httpx

from services.notifier.domain import Delivery


class Transient(Exception):
    """Worth another try."""


class Permanent(Exception):
    """Never worth another try."""


class Provider(Protocol):
    async def send(self, delivery: Delivery) -> None: ...


class HttpProvider:
    """POSTs JSON to an endpoint: district-service webhooks, and SMS, push and Zalo gateways."""

    def __init__(self, client: httpx.AsyncClient, url: str | None = None):
        self.client, self.url = client, url

    def body(self, delivery: Delivery) -> dict:
        return {"delivery_id": str(delivery.delivery_id), "to": delivery.target, "text": delivery.text,
                "case_id": str(delivery.case_id), "payload": delivery.payload}

    async def send(self, delivery: Delivery) -> None:
        url = self.url or delivery.target
        headers = {"Idempotency-Key": str(delivery.delivery_id)}
        if delivery.traceparent:
            headers["traceparent"] = delivery.traceparent
        try:
            response = await self.client.post(url, json=self.body(delivery), headers=headers)
        except httpx.HTTPError as error:
            raise Transient(f"{type(error).__name__} talking to {httpx.URL(url).host}") from error
        if response.status_code < 300:
            return
        reason = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            raise Transient(reason)
        raise Permanent(reason)


class Providers:
    """The provider for each channel; a channel with no endpoint configured is not in use."""

    def __init__(self, by_channel: dict[str, Provider]):
        self.by_channel = by_channel

    def get(self, channel: str) -> Provider:
        provider = self.by_channel.get(channel)
        if provider is None:
            raise Permanent(f"channel {channel} is not configured here")
        return provider
