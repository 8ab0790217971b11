"""Pod IPs from a node's pod CIDR: upstream's host-local IPAM in miniature.

The network address and the first host address (the node's own "gateway" by convention) are
never handed out; an address is free again once its sandbox is removed. Allocation takes the
lowest free address, so a restarted kubelet that re-reserves the IPs of the sandboxes it adopts
keeps handing out the same addresses for the same history.
"""

from __future__ import annotations

import ipaddress

import attrs


class PodCIDRExhausted(Exception):
    pass


@attrs.define
class IPAllocator:
    cidr: ipaddress.IPv4Network = attrs.field(converter=ipaddress.IPv4Network)
    _used: set[ipaddress.IPv4Address] = attrs.field(factory=set, init=False)

    def allocate(self) -> str:
        hosts = self.cidr.hosts()
        next(hosts, None)  # the first host address stays the node's
        for address in hosts:
            if address not in self._used:
                self._used.add(address)
                return str(address)
        raise PodCIDRExhausted(f"no free address left in pod CIDR {self.cidr}")

    def reserve(self, address: str) -> None:
        """Mark ``address`` as taken (an adopted sandbox's)."""
        self._used.add(ipaddress.IPv4Address(address))

    def release(self, address: str) -> None:
        self._used.discard(ipaddress.IPv4Address(address))
