"""Admission: what the API server checks and fills in after authorization and before a write.

:func:`default_chain` builds the server's chain; :mod:`.interfaces` says what a plugin sees and
what the server must provide to the plugins (:class:`AdmissionContext`).
"""

from raftkube.apiserver.admission.allocators import (
    DEFAULT_NODE_PORTS,
    DEFAULT_SERVICE_CIDR,
    IP_PREFIX,
    NODE_PORT_PREFIX,
    PortRange,
    ServiceIPRange,
)
from raftkube.apiserver.admission.chain import AdmissionChain, Plugin, default_chain
from raftkube.apiserver.admission.default_toleration_seconds import DefaultTolerationSeconds
from raftkube.apiserver.admission.interfaces import (
    CONNECT,
    CREATE,
    DELETE,
    UPDATE,
    AdmissionContext,
    Attributes,
    MutatingPlugin,
    ObjectLookup,
    RequestLike,
    Reservations,
    ValidatingPlugin,
)
from raftkube.apiserver.admission.memory import InMemoryContext
from raftkube.apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from raftkube.apiserver.admission.service_account import ServiceAccount, token_volume
from raftkube.apiserver.admission.service_allocation import ServiceAllocation

__all__ = [
    "CONNECT",
    "CREATE",
    "DEFAULT_NODE_PORTS",
    "DEFAULT_SERVICE_CIDR",
    "DELETE",
    "IP_PREFIX",
    "NODE_PORT_PREFIX",
    "UPDATE",
    "AdmissionChain",
    "AdmissionContext",
    "Attributes",
    "DefaultTolerationSeconds",
    "InMemoryContext",
    "MutatingPlugin",
    "NamespaceLifecycle",
    "ObjectLookup",
    "Plugin",
    "PortRange",
    "RequestLike",
    "Reservations",
    "ServiceAccount",
    "ServiceAllocation",
    "ServiceIPRange",
    "ValidatingPlugin",
    "default_chain",
    "token_volume",
]
