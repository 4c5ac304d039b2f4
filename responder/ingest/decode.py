"""Turn a request body into alerts: one JSON object, a JSON array, or newline-delimited JSON.

The shape is decided by parsing, not by ``Content-Type``: Falco sends ``application/json``,
Falcosidekick ``application/json; charset=utf-8``, and some senders ``text/plain``. A batch is
taken whole or not at all, so that a sender that gets a 400 can fix it and send it again.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import ValidationError

from responder.errors import IngestError
from responder.ingest.alert import Alert

# Bounds that keep one request from costing unbounded CPU in validation.
MAX_ALERTS_PER_REQUEST = 10_000
MAX_JSON_DEPTH = 32
# Keys in all the objects of one alert together. Falco's output_fields contains the fields that a
# rule's output names, tens of them, so this bounds only bodies built to cost validation time.
MAX_KEYS_PER_ALERT = 10_000


def decode_alerts(body: bytes, *, drill: bool = False) -> list[Alert]:
    """Parse ``body`` into alerts or raise ``IngestError`` that names the problem."""
    alerts, _ = decode_request(body, drill=drill)
    return alerts


def decode_request(body: bytes, *, drill: bool = False) -> tuple[list[Alert], list[Any]]:
    """Parse ``body`` into alerts, and return with them the JSON documents as they arrived."""
    if not body.strip():
        raise IngestError("empty body: send a Falco alert as JSON", reason="empty_body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise IngestError(
            f"body is not valid UTF-8 at byte {error.start}: send JSON encoded as UTF-8",
            reason="invalid_utf8",
        ) from None
    documents = _parse_documents(text)
    if len(documents) > MAX_ALERTS_PER_REQUEST:
        raise IngestError(
            f"{len(documents)} alerts in one request; send at most {MAX_ALERTS_PER_REQUEST}",
            reason="too_many_alerts",
            status=413,
        )
    count = len(documents)
    alerts = [_to_alert(document, index, count, drill) for index, document in enumerate(documents)]
    return alerts, documents


def _reject_constant(name: str) -> Any:
    raise IngestError(
        f"invalid JSON: {name} is not a JSON number; send finite numbers or null",
        reason="invalid_json",
    )


def _parse_documents(text: str) -> list[Any]:
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise _invalid_json(error, line_number=None) from None
        return _parse_lines(text)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        # Python refuses to convert integers longer than sys.get_int_max_str_digits() digits.
        raise _number_too_long() from None
    if isinstance(document, list):
        if not document:
            raise IngestError("empty JSON array: send at least one alert", reason="empty_body")
        return document
    return [document]


def _parse_lines(text: str) -> list[Any]:
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append(json.loads(line, parse_constant=_reject_constant))
        except json.JSONDecodeError as error:
            raise _invalid_json(error, line_number=number) from None
        except RecursionError:
            raise _too_deep() from None
        except ValueError:
            raise _number_too_long(line_number=number) from None
    return documents


def _to_alert(document: Any, index: int, count: int, drill: bool) -> Alert:
    where = f"alert {index + 1} of {count}: " if count > 1 else ""
    if not isinstance(document, dict):
        raise IngestError(
            f"{where}expected a JSON object with rule, priority, time and output, "
            f"got {type(document).__name__}",
            reason="not_an_alert",
        )
    _check_shape(document, where)
    if drill:
        document = {**document, "drill": True}
    try:
        return Alert.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(_describe(item) for item in error.errors(include_url=False))
        raise IngestError(f"{where}not a Falco alert: {problems}", reason="not_an_alert") from None


def _describe(item: Any) -> str:
    location = ".".join(str(part) for part in item["loc"]) or "body"
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] == "missing":
        return f"{location} is missing"
    return f"{location}: {message}"


def _check_shape(document: Any, where: str) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    keys = 0
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            keys += len(value)
            if keys > MAX_KEYS_PER_ALERT:
                raise IngestError(
                    f"{where}more than {MAX_KEYS_PER_ALERT} keys in one alert; "
                    "a Falco alert has tens of output fields",
                    reason="too_many_keys",
                )
            stack.extend((item, depth + 1) for item in value.values())
            stack.extend((key, depth) for key in value)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not value.isascii():
            _check_encodable(value, where)


def _check_encodable(text: str, where: str) -> None:
    # JSON allows escapes such as \ud800 that decode to a lone surrogate, which no UTF-8 file,
    # database or log line can hold.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise IngestError(
            f"{where}invalid JSON string: a lone surrogate \\u{ord(text[error.start]):04x} "
            "is not a character; send valid UTF-16 pairs or UTF-8",
            reason="invalid_json",
        ) from None


def _too_deep() -> IngestError:
    return IngestError(
        f"JSON nested deeper than {MAX_JSON_DEPTH} levels; Falco alerts are at most 3 deep",
        reason="too_deep",
    )


def _number_too_long(*, line_number: int | None = None) -> IngestError:
    where = f" at line {line_number}" if line_number is not None else ""
    return IngestError(
        f"JSON number{where} has more than {sys.get_int_max_str_digits()} digits; "
        "Falco alerts carry no such numbers",
        reason="number_too_long",
    )


def _invalid_json(error: json.JSONDecodeError, *, line_number: int | None) -> IngestError:
    line = line_number if line_number is not None else error.lineno
    return IngestError(
        f"invalid JSON at line {line} column {error.colno}: {error.msg}",
        reason="invalid_json",
    )
