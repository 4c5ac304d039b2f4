"""HTTP delivery with bounded retries, shared by the Slack and webhook notifiers.

Retries follow one policy: on 429 wait for the receiver's ``Retry-After`` (seconds or an HTTP
date), on 5xx, timeouts and connection errors back off exponentially from 0.5 s, and never wait
longer than ``max_wait_s`` for one retry. A 429 or 503 that asks for a longer wait fails at once,
because retrying earlier would only be refused again while a worker sits blocked. Other statuses
(3xx included, since redirects are not followed) fail without a retry.

The URL is a secret, and aiohttp puts it in the text of some errors (for example
``ConnectionTimeoutError``), so errors raised here describe the failure in their own words and
do not chain the aiohttp exception.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import structlog

from responder.errors import NotifyError
from responder.notify.base import Report

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

USER_AGENT = "falco-responder"

# Slack's error codes (``invalid_blocks``, ``channel_not_found``) help the operator. Other bodies
# are left out because a receiver may echo a request header, and with it a secret, back.
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
_DETAIL_BYTES = 512


def bind_logger(name: str, report: Report) -> Any:
    """Return the structlog logger bound to the notifier and the report's ids."""
    return structlog.get_logger().bind(
        notifier=name, alert_id=report.alert_id, playbook=report.playbook
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one notification."""

    max_retries: int = 2
    max_wait_s: float = 30.0
    base_backoff_s: float = 0.5

    def backoff(self, attempt: int) -> float:
        """Return the wait in seconds after failed attempt number ``attempt`` (from 1)."""
        return float(min(self.base_backoff_s * 2 ** (attempt - 1), self.max_wait_s))


@dataclass(frozen=True)
class _Response:
    status: int
    retry_after_s: float | None
    detail: str


class HttpPoster:
    """Posts request bodies to one secret URL, retrying as ``policy`` allows."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        session: aiohttp.ClientSession,
        timeout_s: float,
        policy: RetryPolicy,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        show_error_code: bool = False,
    ) -> None:
        """Prepare a poster; ``show_error_code`` puts a snake_case response body in errors."""
        self._name = name
        self._url = url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self._show_error_code = show_error_code

    def __repr__(self) -> str:
        return f"HttpPoster(name={self._name!r})"

    async def post(self, body: bytes, make_headers: Callable[[], dict[str, str]], log: Any) -> int:
        """Post ``body`` until a 2xx status, and return that status.

        ``make_headers`` is called before every attempt so that a signature can carry a fresh
        timestamp. Raises ``NotifyError`` with the last status (None after a network error).
        """
        attempts = self._policy.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = await self._attempt(body, make_headers())
            except (aiohttp.ClientError, TimeoutError) as error:
                problem = self._describe(error)
                if attempt == attempts:
                    raise NotifyError(
                        f"notifier {self._name!r}: request failed after {attempt} attempt(s): "
                        f"{problem}"
                    ) from None
                backoff = self._policy.backoff(attempt)
                log.warning("notification_retry", attempt=attempt, error=problem, wait_s=backoff)
                await self._sleep(backoff)
                continue

            if 200 <= response.status < 300:
                return response.status
            self._check_retryable(response, attempt, attempts)
            wait = response.retry_after_s
            if wait is None:
                wait = self._policy.backoff(attempt)
            log.warning("notification_retry", attempt=attempt, status=response.status, wait_s=wait)
            await self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def deliver(
        self,
        body: bytes,
        make_headers: Callable[[], dict[str, str]],
        log: Any,
        **sent_fields: Any,
    ) -> None:
        """Post ``body`` as ``post`` does, and log one line for the delivery or its failure.

        ``sent_fields`` are added to the ``notification_sent`` line. Raises ``NotifyError``."""
        started = time.monotonic()
        try:
            status = await self.post(body, make_headers, log)
        except NotifyError as error:
            log.warning("notification_failed", status=error.status, error=str(error))
            raise
        duration_s = round(time.monotonic() - started, 3)
        log.info("notification_sent", status=status, **sent_fields, duration_s=duration_s)

    def _check_retryable(self, response: _Response, attempt: int, attempts: int) -> None:
        status = response.status
        detail = f" ({response.detail})" if response.detail else ""
        if status != 429 and status < 500:
            raise NotifyError(
                f"notifier {self._name!r}: receiver rejected the request with HTTP {status}"
                f"{detail}; not retried because the same request would fail again",
                status=status,
            )
        wait = response.retry_after_s
        if wait is not None and wait > self._policy.max_wait_s:
            raise NotifyError(
                f"notifier {self._name!r}: receiver returned HTTP {status} with Retry-After "
                f"{wait:g} s, longer than max_retry_wait_s {self._policy.max_wait_s:g} s",
                status=status,
            )
        if attempt == attempts:
            raise NotifyError(
                f"notifier {self._name!r}: receiver returned HTTP {status}{detail} "
                f"after {attempt} attempt(s)",
                status=status,
            )

    async def _attempt(self, body: bytes, headers: dict[str, str]) -> _Response:
        async with self._session.post(
            self._url,
            data=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=self._timeout,
            allow_redirects=False,
        ) as response:
            raw = await response.content.read(_DETAIL_BYTES)
            text = raw.decode("utf-8", errors="replace").strip()
            retry_after = None
            if response.status in (429, 503):
                retry_after = self._parse_retry_after(response.headers.get("Retry-After"))
            return _Response(
                status=response.status,
                retry_after_s=retry_after,
                detail=text if self._show_error_code and _ERROR_CODE.match(text) else "",
            )

    def _parse_retry_after(self, value: str | None) -> float | None:
        """Read Retry-After as delay-seconds or an HTTP date (RFC 9110), or None if invalid."""
        if value is None:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now = datetime.fromtimestamp(self._clock(), UTC)
        return max((when - now).total_seconds(), 0.0)

    def _describe(self, error: BaseException) -> str:
        if isinstance(error, TimeoutError):
            return f"timed out after {self._timeout_s:g} s"
        code = error.errno if isinstance(error, OSError) else None
        if code is not None and code in errno.errorcode:
            return f"connection failed: {os.strerror(code)}"
        # The class name alone, because the text of some aiohttp errors contains the URL.
        return f"connection failed: {type(error).__name__}"
