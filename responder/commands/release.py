"""``responder release NAMESPACE/POD``: remove the quarantine that ``isolate_pod`` put in place."""

from __future__ import annotations

from pathlib import Path

from responder.act.kube import Kube
from responder.act.kubernetes.release import release as release_pod
from responder.errors import ConfigError


def parse_target(text: str) -> tuple[str, str]:
    namespace, separator, pod = text.partition("/")
    if not separator or not namespace or not pod or "/" in pod:
        raise ConfigError(f"invalid target {text!r}: write NAMESPACE/POD, such as shop/frontend-0")
    return namespace, pod


async def release(
    target: str, *, kubeconfig: Path | None, context: str | None, dry_run: bool
) -> int:
    """Delete the responder's NetworkPolicy and quarantine label for one pod."""
    namespace, pod = parse_target(target)
    kube = await Kube.connect(kubeconfig=kubeconfig, context=context)
    try:
        done = await release_pod(kube, namespace, pod, dry_run=dry_run)
    finally:
        await kube.close()
    prefix = "[dry run] " if dry_run else ""
    for line in done:
        print(f"{prefix}{line}")
    if not done:
        print(f"{prefix}{namespace}/{pod} was not isolated by the responder; nothing to undo")
    return 0
