"""Generic webhook notifier: the report as JSON, optionally signed with HMAC-SHA256.

The request is ``POST <url>`` with ``Content-Type: application/json`` and this body::

    {"alert": {...Falco alert as received...}, "alert_id": "...", "playbook": "...",
     "dry_run": false, "drill": false,
     "results": [{"action": "...", "outcome": "success", "reason": "...", "duration_s": 0.12}],
     "notes": ["..."]}

Signature scheme, when ``hmac_secret`` is set. Each attempt carries two headers:

* ``X-Responder-Timestamp``: the send time in whole Unix seconds, as decimal digits.
* ``X-Responder-Signature``: ``sha256=`` followed by the lowercase hex HMAC-SHA256, keyed with
  the UTF-8 bytes of ``hmac_secret``, of the bytes ``<timestamp> "." <body>``: the timestamp
  header's ASCII digits, one dot, then the exact request body bytes.

A receiver recomputes the HMAC over the raw body it read (before any JSON parsing), compares
it in constant time (``hmac.compare_digest``), and rejects timestamps older than a few minutes
so that a captured request cannot be replayed later. A retry is signed again with a new
timestamp; the receiver can drop duplicates by ``alert_id``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from responder.notify.base import Report
from responder.notify.config import WebhookConfig, check_headers, check_http_url
from responder.notify.delivery import Clock, HttpPoster, RetryPolicy, Sleep, bind_logger

SIGNATURE_HEADER = "X-Responder-Signature"
TIMESTAMP_HEADER = "X-Responder-Timestamp"
SIGNATURE_PREFIX = "sha256="


def build_body(report: Report) -> dict[str, Any]:
    """Build the JSON document sent for ``report``."""
    return {
        "alert": report.alert.to_json(),
        "alert_id": report.alert_id,
        "playbook": report.playbook,
        "dry_run": report.dry_run,
        "drill": report.drill,
        "results": [
            {
                "action": result.action,
                "outcome": result.outcome.value,
                "reason": result.reason,
                "duration_s": result.duration_s,
            }
            for result in report.results
        ],
        "notes": list(report.notes),
    }


def encode_body(report: Report) -> bytes:
    """Serialize the body as compact UTF-8 JSON; these exact bytes are sent and signed."""
    # default=str keeps an unusual output field value (one a sender built by hand) from
    # failing the whole notification.
    text = json.dumps(build_body(report), ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8")


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """Return the ``X-Responder-Signature`` value for ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return SIGNATURE_PREFIX + hmac.new(key, signed, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """Posts each report as JSON to one URL, with custom headers and an optional signature."""

    def __init__(
        self,
        name: str,
        config: WebhookConfig,
        *,
        session: aiohttp.ClientSession,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
    ) -> None:
        """Check the URL and headers (raising ``ConfigError``) and prepare the poster.

        ``clock`` gives the signature timestamp and ``sleep`` the retry waits, so that tests
        control both.
        """
        self.name = name
        url = check_http_url(name, "url", config.url)
        self._headers = check_headers(name, config.headers)
        self._key = (
            config.hmac_secret.get_secret_value().encode("utf-8")
            if config.hmac_secret is not None
            else None
        )
        self._clock = clock
        self._poster = HttpPoster(
            name,
            url,
            session=session,
            timeout_s=config.timeout_s,
            policy=RetryPolicy(max_retries=config.max_retries, max_wait_s=config.max_retry_wait_s),
            sleep=sleep,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, signed={self._key is not None})"

    async def send(self, report: Report) -> None:
        """Post the report; raise ``NotifyError`` unless the receiver returns a 2xx status."""
        log = bind_logger(self.name, report)
        body = encode_body(report)
        await self._poster.deliver(
            body, lambda: self._request_headers(body), log, signed=self._key is not None
        )

    async def close(self) -> None:
        """Release nothing: the HTTP session belongs to the caller, who closes it."""

    def _request_headers(self, body: bytes) -> dict[str, str]:
        headers = {**self._headers, "Content-Type": "application/json; charset=utf-8"}
        if self._key is not None:
            timestamp = int(self._clock())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(self._key, timestamp, body)
        return headers
