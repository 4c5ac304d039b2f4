"""Fuzz the HTTP ingest with generated bodies sent to a real sink on 127.0.0.1.

Every test sends its bodies over one keep-alive client session to one server, shared by the
module, and checks that each response is 202, 400, 413 or 503 with a JSON body naming a reason,
that the server still serves ``/healthz`` and ``/metrics`` afterwards, and that the resident
memory of the process (client and server together) grew by less than ``RSS_GROWTH_BOUND``.

With ``CI`` set the tests send ``CI_EXAMPLES_PER_WEIGHT`` times the weights below, 10,000 bodies
in all; without it a tenth of that.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import gzip
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.ingest.server import Sink, create_app
from responder.record.metrics import Metrics
from responder.store.queue import AlertQueue
from tests.samples import sample_document, sample_line

# Smaller than the 1 MiB default, so that bodies near and over the limit stay cheap to send.
MAX_BODY = 256 * 1024
QUEUE_SIZE = 50
MIB = 1024 * 1024
# Growth of VmRSS allowed over the module, measured after garbage collection and malloc_trim.
# The sink keeps one body of at most MAX_BODY at a time and the queue is emptied after every
# request, so what grows is mostly hypothesis's own state: 37 MiB for the 4,000 examples of the
# malformed-JSON and alert-field strategies when they only generate. Measured growth with
# sending was 50 MiB over the 9,000 bodies of a CI run (Python 3.11, 2 cores). A server that
# kept each huge-string body would add about 160 MiB in a CI run (1,000 bodies of 64 to 260
# KiB) and exceed the bound, but smaller leaks go unnoticed.
# Rule and source label values are bounded by Metrics.alert_labels, so the huge-string test
# adds at most MAX_LABEL_VALUES metric series.
RSS_GROWTH_BOUND = 128 * MIB

CI_EXAMPLES_PER_WEIGHT = 500
DEV_EXAMPLES_PER_WEIGHT = 50
PROFILE = "fuzz-ci" if os.environ.get("CI") else "fuzz-dev"
for name, per_weight in (
    ("fuzz-ci", CI_EXAMPLES_PER_WEIGHT),
    ("fuzz-dev", DEV_EXAMPLES_PER_WEIGHT),
):
    settings.register_profile(
        name,
        max_examples=per_weight,
        # Each example is a network round trip; timing varies with the machine, not the code.
        deadline=None,
        # Failing bodies can be large; they are printed, not stored under .hypothesis.
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

STATUSES = {202, 400, 413, 503}
REASONS = {
    "empty_body",
    "invalid_encoding",
    "invalid_utf8",
    "invalid_json",
    "too_deep",
    "too_many_keys",
    "number_too_long",
    "not_an_alert",
    "too_many_alerts",
    "too_large",
    "queue_full",
}
ALERT_FIELDS = [
    "rule",
    "priority",
    "time",
    "output",
    "source",
    "hostname",
    "output_fields",
    "tags",
    "uuid",
]


def weighted(weight: int) -> settings:
    """Settings of the active profile with ``weight`` times its number of examples."""
    profile = settings.get_profile(PROFILE)
    return settings(profile, max_examples=profile.max_examples * weight)


def _release_free_memory() -> None:
    """Collect garbage and ask glibc to give freed heap memory back to the system.

    Without the trim, VmRSS keeps memory that was freed but is still held by the allocator:
    115 MiB after generating the deep-nesting and huge-string bodies of a CI run, which hides
    real growth. On a C library without malloc_trim (musl) the measurement includes it."""
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def resident_bytes() -> int:
    """Return VmRSS of this process, client and server together, after releasing free memory."""
    _release_free_memory()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


@dataclass
class Target:
    """The sink under test with the client session and loop that talk to it."""

    runner: asyncio.Runner
    server: TestServer
    session: aiohttp.ClientSession
    sink: Sink
    baseline_rss: int
    sent: int = 0
    connections: list[int] = field(default_factory=lambda: [0])

    def send(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        self.sent += 1
        return self.runner.run(self._send(body, headers or {}))

    async def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        url = self.server.make_url("/")
        async with self.session.post(url, data=body, headers=headers) as response:
            status = response.status
            content_type = response.content_type
            raw = await response.read()
        # Alerts are not handled here; emptying the queue keeps 202 reachable.
        while len(self.sink.queue):
            await self.sink.queue.get()
            self.sink.queue.done()
        document = json.loads(raw) if content_type == "application/json" else raw
        return status, document

    def get(self, path: str) -> int:
        async def get() -> int:
            async with self.session.get(self.server.make_url(path)) as response:
                await response.read()
                return response.status

        return self.runner.run(get())


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        sink = Sink(queue=AlertQueue(QUEUE_SIZE), metrics=Metrics(), max_body_bytes=MAX_BODY)
        server = TestServer(create_app(sink), host="127.0.0.1")
        runner.run(server.start_server())
        connections = [0]

        async def count_connection(*_: object) -> None:
            connections[0] += 1

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(count_connection)

        async def open_session() -> aiohttp.ClientSession:
            # One connection, reused by every request unless the server closes it.
            connector = aiohttp.TCPConnector(limit=1)
            return aiohttp.ClientSession(connector=connector, trace_configs=[trace])

        session = runner.run(open_session())
        target = Target(runner, server, session, sink, resident_bytes(), connections=connections)
        target.send(sample_line("falco-direct", 1).encode())
        target.baseline_rss = resident_bytes()
        started = time.monotonic()
        try:
            yield target
        finally:
            elapsed = time.monotonic() - started
            growth = (resident_bytes() - target.baseline_rss) / MIB
            print(
                f"\nfuzz: {target.sent} bodies in {elapsed:.1f} s over {connections[0]} "
                f"connection(s); RSS growth {growth:.1f} MiB"
            )
            runner.run(session.close())
            runner.run(server.close())


def check_answer(status: int, document: Any) -> None:
    assert status < 500, document
    assert status in STATUSES, document
    assert isinstance(document, dict), document
    if status == 202:
        assert isinstance(document.get("accepted"), int), document
    else:
        assert document.get("error") in REASONS, document
        assert isinstance(document.get("message"), str), document


def check_still_serving(target: Target) -> None:
    assert 200 == target.get("/healthz")
    assert 200 == target.get("/metrics")
    growth = resident_bytes() - target.baseline_rss
    assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth / MIB:.1f} MiB"


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)


def json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=8), children, max_size=4
    )


json_values = st.recursive(json_scalars, json_containers, max_leaves=10)
sample_names = st.sampled_from(["falco-direct", "falcosidekick"])


@st.composite
def alert_text(draw: st.DrawFn) -> str:
    return sample_line(draw(sample_names), draw(st.integers(1, 3)))


@st.composite
def mangled_json(draw: st.DrawFn) -> bytes:
    """Valid alerts cut, spliced with JSON punctuation, or duplicated into bad batches."""
    text = draw(alert_text())
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, len(text)))
    insert = draw(st.text(alphabet='{}[]",:0123456789.eE+-tfnrul \n\t\\', max_size=20))
    shape = draw(st.sampled_from(["splice", "cut", "batch", "ndjson"]))
    if shape == "splice":
        return (text[:start] + insert + text[end:]).encode()
    if shape == "cut":
        return text[:start].encode()
    if shape == "batch":
        return ("[" + text + "," + text[:start] + "]").encode()
    return (text + "\n" + insert + "\n" + text).encode()


Request = tuple[bytes, dict[str, str]]


def run_fuzz(target: Target, requests: st.SearchStrategy[Request], weight: int) -> None:
    """Send ``weight`` times the profile's examples, then check the server survived."""
    fuzz_settings = weighted(weight)
    before = target.sent

    @fuzz_settings
    @given(requests)
    def send_each(request: Request) -> None:
        body, headers = request
        check_answer(*target.send(body, headers))

    send_each()
    assert fuzz_settings.max_examples <= target.sent - before
    check_still_serving(target)


def plain(bodies: st.SearchStrategy[bytes]) -> st.SearchStrategy[Request]:
    return bodies.map(lambda body: (body, {}))


def test_fuzz_malformed_json(target: Target) -> None:
    bodies = st.one_of(
        mangled_json(),
        st.binary(max_size=2048),
        st.text(alphabet='{}[]",:0123456789.eE+-tfnrul \n\t\\', max_size=200).map(str.encode),
    )
    run_fuzz(target, plain(bodies), weight=4)


@st.composite
def wrong_fields(draw: st.DrawFn) -> bytes:
    """A sample alert with fields replaced by any JSON value, removed, or added."""
    document = sample_document(draw(sample_names), draw(st.integers(1, 3)))
    for name in draw(st.lists(st.sampled_from(ALERT_FIELDS), min_size=1, max_size=4)):
        action = draw(st.sampled_from(["replace", "delete", "replace-output-field"]))
        if action == "replace":
            document[name] = draw(json_values)
        elif action == "delete":
            document.pop(name, None)
        elif isinstance(document.get("output_fields"), dict):
            fields = document["output_fields"]
            key = draw(st.sampled_from(sorted(fields) or ["k8s.pod.name"]))
            fields[key] = draw(json_values)
    if draw(st.booleans()):
        document[draw(st.text(max_size=12))] = draw(json_values)
    text = json.dumps(document)
    shape = draw(st.sampled_from(["single", "array", "ndjson"]))
    if shape == "array":
        text = "[" + text + "," + sample_line("falco-direct", 1) + "]"
    elif shape == "ndjson":
        text = sample_line("falcosidekick", 1) + "\n" + text + "\n"
    return text.encode()


def test_fuzz_alert_fields(target: Target) -> None:
    run_fuzz(target, plain(wrong_fields()), weight=4)


@st.composite
def huge_strings(draw: st.DrawFn) -> bytes:
    """A sample alert with one string field grown to near, at or past the body limit."""
    document = sample_document("falco-direct", draw(st.integers(1, 3)))
    unit = draw(st.sampled_from(["x", "é", "\\", '"', "\n", "\u0000", "\ud800", "🦅"]))
    base = len(json.dumps(document).encode())
    size = draw(st.integers(MAX_BODY // 4, MAX_BODY + 4096)) - base
    escaped_unit = len(json.dumps(unit).encode()) - 2
    text = unit * max(1, size // escaped_unit)
    place = draw(st.sampled_from(["rule", "output", "output_fields", "key"]))
    if place == "output_fields":
        document["output_fields"]["proc.cmdline"] = text
    elif place == "key":
        document["output_fields"][text] = "value"
    else:
        document[place] = text
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


def test_fuzz_huge_strings(target: Target) -> None:
    run_fuzz(target, plain(huge_strings()), weight=2)


@st.composite
def deep_documents(draw: st.DrawFn) -> bytes:
    """Nesting from a few levels to far past any parser's recursion limit, and wide objects."""
    depth = draw(st.integers(1, 20_000))
    kind = draw(st.sampled_from(["list", "object", "mixed", "wide"]))
    if kind == "wide":
        count = draw(st.integers(1, 20_000))
        inner = "{" + ",".join(f'"k{i}":{i}' for i in range(count)) + "}"
    elif kind == "list":
        inner = "[" * depth + "1" + "]" * depth
    elif kind == "object":
        inner = '{"a":' * depth + "1" + "}" * depth
    else:
        inner = '{"a":[' * depth + "1" + "]}" * depth
    if draw(st.booleans()):
        return inner.encode()
    document = json.loads(sample_line("falco-direct", 1))
    marker = "__nested__"
    document["output_fields"]["deep"] = marker
    return json.dumps(document).replace(json.dumps(marker), inner).encode()


def test_fuzz_deep_nesting(target: Target) -> None:
    run_fuzz(target, plain(deep_documents()), weight=3)


INVALID_UTF8 = [
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
]


@st.composite
def invalid_utf8(draw: st.DrawFn) -> bytes:
    """A valid alert with invalid UTF-8 sequences inserted at random places."""
    body = draw(alert_text()).encode()
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(body)))
        body = body[:position] + draw(st.sampled_from(INVALID_UTF8)) + body[position:]
    return body


def test_fuzz_invalid_utf8(target: Target) -> None:
    run_fuzz(target, plain(invalid_utf8()), weight=3)


GZIP = {"Content-Encoding": "gzip"}


@st.composite
def gzip_bombs(draw: st.DrawFn) -> Request:
    """Small gzip bodies that decode to more than the body limit."""
    pattern = draw(
        st.sampled_from(
            [b" ", b"\x00", b"[", (sample_line("falco-direct", 1) + "\n").encode(), b'{"a":']
        )
    )
    decoded_size = draw(st.integers(MAX_BODY + 1, 32 * MAX_BODY))
    decoded = (pattern * (decoded_size // len(pattern) + 1))[:decoded_size]
    if draw(st.booleans()):
        decoded = b"[" + decoded[1:]
    level = draw(st.sampled_from([1, 6, 9]))
    return gzip.compress(decoded, compresslevel=level, mtime=0), GZIP


def test_fuzz_gzip_bombs(target: Target) -> None:
    run_fuzz(target, gzip_bombs(), weight=2)


@st.composite
def truncated_gzip(draw: st.DrawFn) -> Request:
    """Gzip of valid alerts cut anywhere, the header and the trailer included."""
    lines = [draw(alert_text()) for _ in range(draw(st.integers(1, 5)))]
    compressed = gzip.compress("\n".join(lines).encode(), mtime=0)
    cut = draw(st.integers(0, len(compressed) - 1))
    return compressed[:cut], GZIP


def test_fuzz_truncated_gzip(target: Target) -> None:
    run_fuzz(target, truncated_gzip(), weight=2)


@st.composite
def corrupt_gzip(draw: st.DrawFn) -> Request:
    """Bodies sent as gzip that are not gzip, or gzip with damaged bytes."""
    if draw(st.booleans()):
        return draw(st.binary(min_size=1, max_size=512)), GZIP
    compressed = bytearray(gzip.compress(draw(alert_text()).encode(), mtime=0))
    position = draw(st.integers(10, len(compressed) - 9))
    compressed[position] ^= draw(st.integers(1, 255))
    return bytes(compressed), GZIP


def test_fuzz_corrupt_gzip(target: Target) -> None:
    run_fuzz(target, corrupt_gzip(), weight=1)


def test_fuzz_unhashable_source(target: Target) -> None:
    def with_source(value: Any) -> bytes:
        document = sample_document("falco-direct", 1)
        document["source"] = value
        return json.dumps(document).encode()

    sources = st.one_of(
        st.lists(json_scalars, max_size=3), st.dictionaries(st.text(), json_scalars)
    )
    run_fuzz(target, plain(sources.map(with_source)), weight=1)


def test_too_many_keys_gets_400(target: Target) -> None:
    document = sample_document("falco-direct", 1)
    document["output_fields"].update({f"k{index}": index for index in range(10_001)})
    status, answer = target.send(json.dumps(document).encode())
    assert 400 == status
    assert "too_many_keys" == answer["error"]


def test_long_number_gets_400(target: Target) -> None:
    status, answer = target.send(b'{"rule": "x", "n": ' + b"7" * 5000 + b"}")
    assert 400 == status
    assert "number_too_long" == answer["error"]
