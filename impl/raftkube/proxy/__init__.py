"""kube-proxy in userspace TCP (``raftkube proxy``): every Service's ClusterIP ports, and the
NodePorts of NodePort Services on one node address, relayed to ready endpoints round-robin.

:mod:`.servicemap` computes, as plain functions of cached Services and Endpoints, where to
listen and which endpoints serve each Service port; :mod:`.roundrobin` is the balancer;
:mod:`.splice` relays bytes with half-closes; :mod:`.proxier` is the Trio shell (informers, the
level-triggered sync loop, listeners and connections, all in the caller's nursery, every wait on
the :class:`~raftkube.clock.Clock`, every socket through a
:class:`~raftkube.net.streams.Network`); :mod:`.cli` is the command line.
"""

from raftkube.proxy.proxier import Proxier, run_proxy
from raftkube.proxy.roundrobin import LoadBalancerRR
from raftkube.proxy.servicemap import (
    ServicePortName,
    endpoints_map,
    listeners_for,
    service_listeners,
)
from raftkube.proxy.splice import splice

__all__ = [
    "LoadBalancerRR",
    "Proxier",
    "ServicePortName",
    "endpoints_map",
    "listeners_for",
    "run_proxy",
    "service_listeners",
    "splice",
]
