"""The responder's exceptions. Errors from aiohttp, kubernetes_asyncio and aiosmtplib are mapped
to these with the HTTP status and the original exception kept as ``__cause__``.

    ResponderError
    ├── ConfigError          invalid settings or playbooks; the message names file and field
    ├── IngestError          a request body that is not a Falco alert
    ├── KubeError            a Kubernetes API call failed; ``status`` and ``reason`` kept
    └── NotifyError          a notification was not delivered; ``status`` kept when there is one
"""

from __future__ import annotations


class ResponderError(Exception):
    """Base of every error the responder raises on purpose."""


class ConfigError(ResponderError):
    """Invalid configuration or playbooks."""


class IngestError(ResponderError):
    """A request body that cannot be taken as one or more Falco alerts."""

    def __init__(self, message: str, *, reason: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class KubeError(ResponderError):
    """A Kubernetes API call that failed, with the HTTP status (0 when none came back)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after_s: float | None = None
        """The server's Retry-After, in seconds, when it sent one."""


class NotifyError(ResponderError):
    """A notification that was not delivered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
