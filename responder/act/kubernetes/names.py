"""Kubernetes name rules: label keys and values, DNS names, and the names the responder derives.

The rules are those of k8s.io/apimachinery/pkg/util/validation: a qualified name (label and
annotation keys), a label value, an RFC 1123 label (namespaces) and subdomain (most objects).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from responder.ingest.alert import MISSING_VALUES

LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
# The API server's limit on the sum of the lengths of all keys and values of one object.
ANNOTATIONS_TOTAL_MAX = 256 * 1024

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
_NON_ALPHANUMERIC_ENDS = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_TEMPLATE = "{{"


def check_qualified_name(key: str) -> str | None:
    """Return why ``key`` is not a valid label or annotation key, or None when it is valid."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return f"invalid key {key!r}: the prefix before '/' is empty"
        problem = check_dns_subdomain(prefix)
        if problem is not None:
            return f"invalid key {key!r}: the prefix {problem}"
    if not name:
        return f"invalid key {key!r}: the name is empty"
    if len(name) > QUALIFIED_NAME_MAX:
        return (
            f"invalid key {key!r}: the name after the prefix has {len(name)} characters, "
            f"more than {QUALIFIED_NAME_MAX}"
        )
    if _QUALIFIED_NAME.match(name) is None:
        return (
            f"invalid key {key!r}: the name must consist of letters, digits, '-', '_' or '.', "
            "and start and end with a letter or digit"
        )
    return None


def check_dns_subdomain(value: str) -> str | None:
    """Return why ``value`` is not an RFC 1123 subdomain, or None when it is one."""
    if len(value) > DNS_SUBDOMAIN_MAX:
        return f"{value!r} has {len(value)} characters, more than {DNS_SUBDOMAIN_MAX}"
    if _DNS_SUBDOMAIN.match(value) is None:
        return (
            f"{value!r} is not a DNS subdomain: use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def check_dns_label(value: str) -> str | None:
    """Return why ``value`` is not an RFC 1123 label (a namespace name), or None."""
    if len(value) > DNS_LABEL_MAX:
        return f"{value!r} has {len(value)} characters, more than {DNS_LABEL_MAX}"
    if _DNS_LABEL.match(value) is None:
        return (
            f"{value!r} is not a DNS label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None


def has_template(text: str) -> bool:
    """True when ``text`` still has a ``{{ name }}`` placeholder, to be checked after rendering."""
    return _TEMPLATE in text


def validate_keys(keys: list[str], field_name: str) -> None:
    """Raise ValueError for the first invalid key; a key with a placeholder is checked later."""
    for key in keys:
        if has_template(key):
            continue
        problem = check_qualified_name(key)
        if problem is not None:
            raise ValueError(
                f"{field_name}: {problem}. A key is an optional DNS-subdomain prefix of at most "
                f"{DNS_SUBDOMAIN_MAX} characters and '/', then a name of at most "
                f"{QUALIFIED_NAME_MAX} characters, such as falco.org/rule"
            )


def is_valid_label_value(value: str) -> bool:
    return len(value) <= LABEL_VALUE_MAX and _LABEL_VALUE.match(value) is not None


def sanitize_label_value(value: str) -> str:
    """Turn any text into a valid label value, keeping as much of it as fits.

    Falco's marker for a missing field becomes the empty string. An IPv6 address is written
    in full with '-' between its eight groups (``2001-0db8-0000-0000-0000-0000-0000-0001``), so
    that two addresses never give the same value. Runs of other invalid characters become one
    '-', the result is cut to 63 characters, and both ends are trimmed to a letter or digit.
    """
    if value in MISSING_VALUES:
        return ""
    if ":" in value:
        # The zone of a link-local address ("%eth0") is kept apart: Python 3.11 cannot
        # expand an address that has one.
        text, percent, zone = value.strip().partition("%")
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            pass
        else:
            value = address.exploded.replace(":", "-") + (f"-{zone}" if percent else "")
    replaced = _LABEL_VALUE_INVALID.sub("-", value)
    return _trim_to_alphanumeric(replaced[:LABEL_VALUE_MAX])


def short_hash(text: str, length: int = 8) -> str:
    """Return the first ``length`` hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit_name(prefix: str, base: str, max_length: int, key: str) -> str:
    """Return ``<prefix><base>-<hash of key>`` cut to ``max_length``.

    ``base`` must be a DNS subdomain (lowercase). The hash keeps two names distinct when the
    cut makes their bases equal.
    """
    suffix = "-" + short_hash(key)
    room = max_length - len(prefix) - len(suffix)
    cut = _trim_to_alphanumeric(base.lower()[:room])
    if not cut:
        return prefix.rstrip("-.") + suffix
    return f"{prefix}{cut}{suffix}"


def _trim_to_alphanumeric(text: str) -> str:
    return _NON_ALPHANUMERIC_ENDS.sub("", text)
