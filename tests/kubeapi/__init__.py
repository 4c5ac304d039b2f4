"""A Kubernetes API test server that the real kubernetes_asyncio client can talk to."""

from tests.kubeapi.seed import container_id
from tests.kubeapi.server import KubeApiServer, RecordedRequest, RequestRule
from tests.kubeapi.status import ApiError
from tests.kubeapi.store import Deletion

__all__ = [
    "ApiError",
    "Deletion",
    "KubeApiServer",
    "RecordedRequest",
    "RequestRule",
    "container_id",
]
