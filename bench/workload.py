"""The alerts the load generator sends and the playbooks the daemon under test loads.

Alerts are the recorded samples in ``tests/samples``, sent in file order and repeated. Alerts of
``MATCHED_RULES`` match a playbook and run ``label_pod`` and ``create_event``, the rest match
nothing (or are Falco's internal events, which the daemon ignores). In a phase with unique pods,
each alert names a pod of its own, and the pods of matched alerts are seeded in the Kubernetes
API test server so that the actions succeed.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = (REPO / "tests/samples/falco-direct.jsonl", REPO / "tests/samples/falcosidekick.jsonl")

# Rules that the matching playbooks name; 4 of the 28 samples raise one of them.
MATCHED_RULES = ("Terminal shell in container", "Drop and execute new binary in container")

# Real Falco rule names that do not occur in the samples, for the playbooks that never match.
UNMATCHED_RULES = (
    "Write below binary dir",
    "Write below etc",
    "Write below root",
    "Write below rpm database",
    "Modify binary dirs",
    "Mkdir binary dirs",
    "Change thread namespace",
    "Launch Sensitive Mount Container",
    "Launch Disallowed Container",
    "System user interactive",
    "Unexpected UDP Traffic",
    "Non sudo setuid",
    "User mgmt binaries",
    "Create files below dev",
    "Contact EC2 Instance Metadata Service From Container",
    "Contact cloud metadata service from container",
    "Packet socket created in container",
    "Schedule Cron Jobs",
    "Update Package Repository",
    "Remove Bulk Data from Disk",
    "Delete or rename shell history",
    "Set Setuid or Setgid bit",
    "Create Hidden Files or Directories",
    "Detect outbound connections to common miner pool ports",
    "Detect crypto miners using the Stratum protocol",
    "Linux Kernel Module Injection Detected",
    "Debugfs Launched in Privileged Container",
    "Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)",
    "Java Process Class File Download",
    "Modify Shell Configuration File",
    "Search Private Keys or Passwords",
    "Find AWS Credentials",
    "Execution from /dev/shm",
    "PTRACE attached to process",
    "PTRACE anti-debug attempt",
    "BPF Program Not Profiled",
    "Disallowed SSH Connection Non Standard Port",
    "Unexpected outbound connection destination",
    "Outbound or Inbound Traffic not to Authorized Server Process and Port",
    "Mount Launched in Privileged Container",
    "Create Privileged Pod",
    "Create Sensitive Mount Pod",
    "Create HostNetwork Pod",
    "K8s Secret Deleted",
    "ClusterRole With Wildcard Created",
    "Attach to cluster-admin Role",
    "Anonymous Request Allowed",
    "Service Account Created in Kube Namespace",
    "Deactivate MFA for Root User",
    "Create AWS user",
)


@dataclass(frozen=True)
class Sample:
    """One recorded alert, serialized, with what a unique pod replaces in it."""

    text: str
    rule: str
    namespace: str | None
    pod: str | None
    container: str | None
    container_id: str | None

    @property
    def matched(self) -> bool:
        return self.rule in MATCHED_RULES and self.pod is not None


def load_samples() -> list[Sample]:
    samples: list[Sample] = []
    for path in SAMPLES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            document = json.loads(line)
            fields = document.get("output_fields") or {}
            samples.append(
                Sample(
                    text=json.dumps(document, separators=(",", ":")),
                    rule=document["rule"],
                    namespace=fields.get("k8s.ns.name"),
                    pod=fields.get("k8s.pod.name"),
                    container=fields.get("container.name"),
                    container_id=fields.get("container.id"),
                )
            )
    return samples


def short_container_id(namespace: str, pod: str, container: str) -> str:
    """Return Falco's 12-digit id of the container that the test server seeds for the pod."""
    # The same digest as tests.kubeapi.seed.container_id, so the daemon's target check passes.
    return hashlib.sha256(f"{namespace}/{pod}/{container}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Payload:
    """One request body and, for a matched alert, the pod its first action patches."""

    body: bytes
    namespace: str | None
    pod: str | None


class AlertFactory:
    """Build the request bodies of one phase, deterministically from ``tag`` and a sequence.

    With ``unique_pods``, alert ``i`` names pod ``<sample pod>-<tag>-<i>``, so that a request
    the test server receives for that pod belongs to exactly one alert.
    """

    def __init__(self, samples: list[Sample], tag: str, *, unique_pods: bool) -> None:
        self.samples = samples
        self.tag = tag
        self.unique_pods = unique_pods

    def payload(self, index: int) -> Payload:
        sample = self.samples[index % len(self.samples)]
        if sample.pod is None or sample.namespace is None:
            return Payload(sample.text.encode(), None, None)
        pod = f"{sample.pod}-{self.tag}-{index}" if self.unique_pods else sample.pod
        text = sample.text.replace(sample.pod, pod)
        if sample.container and sample.container_id:
            text = text.replace(
                sample.container_id, short_container_id(sample.namespace, pod, sample.container)
            )
        if not sample.matched:
            return Payload(text.encode(), None, None)
        return Payload(text.encode(), sample.namespace, pod)

    def matched_pods(self, count: int) -> list[tuple[str, str, str]]:
        """Return (namespace, pod, container) of every matched alert among the first ``count``."""
        pods: dict[tuple[str, str, str], None] = {}
        for index in range(count):
            sample = self.samples[index % len(self.samples)]
            if not sample.matched:
                continue
            assert sample.namespace is not None
            assert sample.pod is not None
            assert sample.container is not None
            pod = f"{sample.pod}-{self.tag}-{index}" if self.unique_pods else sample.pod
            pods[(sample.namespace, pod, sample.container)] = None
        return list(pods)


def matching_playbooks() -> list[dict[str, Any]]:
    """Return the playbooks that the matched samples trigger: label the pod, then an Event."""
    return [
        {
            "name": f"respond-{index}",
            "description": f"Label the pod and record an Event for {rule!r}.",
            "order": 50 + index,
            "match": {
                "rules": [rule],
                "priority": ">=notice",
                "namespaces": {"exclude": ["kube-system", "kube-public", "kube-node-lease"]},
            },
            "actions": [
                {
                    "action": "label_pod",
                    "parameters": {
                        "set": {
                            "falco-responder.io/rule": "{{ rule }}",
                            "falco-responder.io/priority": "{{ priority }}",
                        }
                    },
                    "continue_on_failure": True,
                },
                {"action": "create_event", "parameters": {"reason": "FalcoResponse"}},
            ],
        }
        for index, rule in enumerate(MATCHED_RULES)
    ]


def filler_playbooks(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Return ``count`` varied playbooks whose rules never occur in the load.

    They use exact names, globs and regexes, priorities, namespaces, tags and field conditions,
    so that the matcher's index and its per-rule cache do the work they do in a real cluster.
    """
    chooser = random.Random(seed)
    playbooks: list[dict[str, Any]] = []
    for index in range(count):
        base = UNMATCHED_RULES[index % len(UNMATCHED_RULES)]
        team = f"team-{index % 17}"
        match: dict[str, Any] = {"priority": chooser.choice([">=notice", ">=warning", ">=error"])}
        style = index % 10
        if style == 8:
            match["rules"] = [{"glob": f"{team} custom *"}]
        elif style == 9:
            match["rules"] = [{"regex": f"{team} (audit|runtime) rule [0-9]+"}]
        else:
            match["rules"] = [base, f"{base} ({team})"]
        if index % 3 == 0:
            match["namespaces"] = {"include": [f"{team}-*"], "exclude": [f"{team}-sandbox"]}
        if index % 4 == 0:
            match["tags"] = {"any_of": ["container", "host"], "none_of": ["test"]}
        if index % 5 == 0:
            match["fields"] = [{"field": "proc.name", "in": ["bash", "sh", "python3"]}]
        action = chooser.choice(["label_pod", "annotate_pod", "create_event"])
        parameters: dict[str, Any]
        if action == "create_event":
            parameters = {"reason": "FalcoResponse"}
        else:
            parameters = {"set": {"falco-responder.io/rule": "{{ rule }}"}}
        playbooks.append(
            {
                "name": f"{team}-filler-{index}",
                "description": f"Respond to {base!r} in the namespaces of {team}.",
                "order": 100 + index,
                "match": match,
                "actions": [{"action": action, "parameters": parameters}],
            }
        )
    return playbooks


def playbook_set(total: int) -> list[dict[str, Any]]:
    """Return ``total`` playbooks: the matching ones and fillers that never match."""
    matching = matching_playbooks()
    return matching + filler_playbooks(max(0, total - len(matching)))
