"""The Kubernetes response actions. Importing this package registers them with ``@action``."""

from responder.act.kubernetes import delete, event, isolate, labels, node
from responder.act.kubernetes.release import release

__all__ = ["delete", "event", "isolate", "labels", "node", "release"]
