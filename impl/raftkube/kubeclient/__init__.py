"""An async Kubernetes REST client on Trio and h11, the way every component reaches the API
server: :class:`KubeClient` (requests, resource helpers, watches) over a keep-alive connection
pool, and :func:`load_kubeconfig` for kubectl's configuration files."""

from raftkube.kubeclient.client import (
    PATCH_CONTENT_TYPES,
    KubeClient,
    PatchType,
    RequestDone,
    RequestObserver,
    RequestTracer,
    ignore_outcome,
    resource_path,
)
from raftkube.kubeclient.errors import KubeAPIError, KubeConnectionError
from raftkube.kubeclient.kubeconfig import KubeConfig, KubeConfigError, load_kubeconfig
from raftkube.kubeclient.pool import ConnectionPool, Dial
from raftkube.kubeclient.watch import Watch

__all__ = [
    "PATCH_CONTENT_TYPES",
    "ConnectionPool",
    "Dial",
    "KubeAPIError",
    "KubeClient",
    "KubeConfig",
    "KubeConfigError",
    "KubeConnectionError",
    "PatchType",
    "RequestDone",
    "RequestObserver",
    "RequestTracer",
    "Watch",
    "ignore_outcome",
    "load_kubeconfig",
    "resource_path",
]
