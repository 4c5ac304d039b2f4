"""Sample alerts as real senders produce them, copied into the repository for the tests.

``falco-direct.jsonl`` contains bodies of Falco's ``http_output``, ``falcosidekick.jsonl`` those of
Falcosidekick's webhook output (``uuid`` added, times trimmed, ``<``, ``>`` and ``&`` escaped).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from responder.ingest.alert import Alert

SAMPLES = Path(__file__).parent / "samples"


def sample_lines(name: str) -> list[str]:
    """Return the raw lines of a sample file, such as ``falco-direct``."""
    return (SAMPLES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()


def sample_line(name: str, number: int) -> str:
    """Return line ``number`` (counting from 1) of a sample file."""
    return sample_lines(name)[number - 1]


def sample_alert(name: str, number: int) -> Alert:
    return Alert.model_validate_json(sample_line(name, number))


def sample_document(name: str, number: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(sample_line(name, number))
    return document


def host_alert_document() -> dict[str, Any]:
    """A host alert as Falco sends it: ``container.id`` is "host" and the k8s fields are null."""
    return {
        "hostname": "node-1",
        "output": "12:00:00.000000001: Warning Sensitive file opened for reading by non-trusted "
        "program (file=/etc/shadow process=cat container_id=host k8s_pod_name=<NA>)",
        "output_fields": {
            "container.id": "host",
            "container.name": "host",
            "evt.time": 1773489600000000001,
            "fd.name": "/etc/shadow",
            "k8s.ns.name": None,
            "k8s.pod.name": None,
            "proc.name": "cat",
            "user.name": "root",
        },
        "priority": "Warning",
        "rule": "Read sensitive file untrusted",
        "source": "syscall",
        "tags": ["T1555", "filesystem", "host", "maturity_stable", "mitre_credential_access"],
        "time": "2026-03-14T12:00:00.000000001Z",
    }
