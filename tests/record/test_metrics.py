"""Which metrics each process shows: the sink keeps its own, the worker process the rest."""

from __future__ import annotations

import re

from responder.record.metrics import SINK_FAMILIES, Metrics, exposition


def families(text: bytes) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text.decode(), re.MULTILINE))


def test_sink_and_workers_split_the_families() -> None:
    sink, workers = Metrics(), Metrics()
    sink.alerts_received.labels("Terminal shell in container", "Notice", "syscall").inc()
    workers.actions.labels("label_pod", "success").inc()
    joined = exposition(sink.registry, sink=True) + exposition(workers.registry, sink=False)
    rendered = families(joined)
    # Each family once, from the process that keeps it.
    assert len(re.findall(r"^# TYPE ", joined.decode(), re.MULTILINE)) == len(rendered)
    assert "responder_alerts_received_total" in rendered
    assert "responder_actions_total" in rendered
    assert 'responder_actions_total{action="label_pod",outcome="success"} 1.0' in joined.decode()
    from_sink = {
        name.removesuffix("_total") for name in families(exposition(sink.registry, sink=True))
    }
    assert {name.removesuffix("_created") for name in from_sink} == set(SINK_FAMILIES)
    assert not families(exposition(workers.registry, sink=False)) & families(
        exposition(sink.registry, sink=True)
    )
