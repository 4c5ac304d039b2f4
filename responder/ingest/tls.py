"""TLS for the sink, optionally with client certificates (mutual TLS).

With ``client_ca_file`` set, every client must present a certificate signed by that CA, and the
handshake fails without one. Only that CA is trusted for client certificates, never the system
store, because any certificate from a public CA would otherwise be accepted as a sender.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from responder.errors import ConfigError


class TlsSettings(BaseModel):
    """TLS for the sink. Without ``cert_file`` and ``key_file`` the sink serves plain HTTP."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path | None = None
    """The server certificate in PEM, followed by any intermediate certificates."""
    key_file: Path | None = None
    """The unencrypted private key of ``cert_file`` in PEM."""
    client_ca_file: Path | None = None
    """CA certificates in PEM that sign client certificates. When set, clients must present one."""

    @model_validator(mode="after")
    def _check_pairs(self) -> Self:
        if self.cert_file is not None and self.key_file is None:
            raise ValueError("tls.key_file is missing: set it together with tls.cert_file")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.cert_file is missing: set it together with tls.key_file")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError(
                "tls.client_ca_file needs TLS: set tls.cert_file and tls.key_file as well"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class _EncryptedKey(Exception):
    """Raised from the password callback: the daemon has no passphrase to give."""


def _refuse_password() -> bytes:
    # Without a callback, OpenSSL would prompt on the terminal for the passphrase and block.
    raise _EncryptedKey


def _read_pem(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="ascii")
    except OSError as error:
        raise ConfigError(f"cannot read {setting} {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"invalid {setting} {str(path)!r}: not a PEM file (it contains non-ASCII bytes)"
        ) from None


def _check_certificates(text: str, path: Path, setting: str) -> None:
    """Raise ConfigError unless ``text`` contains at least one valid PEM certificate."""
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        scratch.load_verify_locations(cadata=text)
    except ssl.SSLError as error:
        raise ConfigError(
            f"invalid {setting} {str(path)!r}: no valid PEM certificate found ({error.reason})"
        ) from None


def _load_chain(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    try:
        context.load_cert_chain(cert_file, key_file, password=_refuse_password)
    except _EncryptedKey:
        raise ConfigError(
            f"invalid tls.key_file {str(key_file)!r}: the key is encrypted; "
            "give an unencrypted key, protected by file permissions"
        ) from None
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"tls.key_file {str(key_file)!r} is not the private key of tls.cert_file "
                f"{str(cert_file)!r}"
            ) from None
        # The certificate was checked before, so a failure here is the key's.
        raise ConfigError(
            f"invalid tls.key_file {str(key_file)!r}: no valid PEM private key found "
            f"({error.reason or error.strerror})"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read the TLS certificate or key ({str(cert_file)!r}, {str(key_file)!r}): "
            f"{error.strerror}"
        ) from None


def server_ssl_context(settings: TlsSettings) -> ssl.SSLContext | None:
    """Build the server's SSL context, or return None when TLS is not configured.

    Raises ConfigError naming the file when a certificate, key or CA file cannot be read or
    is invalid, so that the daemon stops at start rather than at the first connection."""
    if settings.cert_file is None or settings.key_file is None:
        return None
    cert_text = _read_pem(settings.cert_file, "tls.cert_file")
    _check_certificates(cert_text, settings.cert_file, "tls.cert_file")
    _read_pem(settings.key_file, "tls.key_file")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, settings.cert_file, settings.key_file)

    if settings.client_ca_file is not None:
        ca_text = _read_pem(settings.client_ca_file, "tls.client_ca_file")
        _check_certificates(ca_text, settings.client_ca_file, "tls.client_ca_file")
        context.load_verify_locations(cadata=ca_text)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
