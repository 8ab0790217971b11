"""Unique values handed out to Services: cluster IPs from a CIDR, node ports from a port range.

Upstream keeps each range as one bitmap object in etcd, updated with compare-and-swap; here
every value in use is its own store key (``serviceips/127.96.0.10``,
``servicenodeports/30080``), claimed with a create-only transaction through
:class:`~raftkube.apiserver.admission.interfaces.Reservations`. Two API servers that pick the
same value race on one key, and exactly one create succeeds; the loser picks again. A range
never needs a read-modify-write of a shared object, and the values in use can be listed by
prefix.

Picking follows upstream's random strategy with an offset: a value is drawn at random from the
upper part of the range first (the lower part is where people choose static values, such as
the ``kubernetes`` Service's first IP), then from anywhere; after a few lost draws the range is
listed and scanned from a random point, so a full range is found full rather than guessed.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Collection, Iterator

import attrs

from raftkube.apiserver.admission.interfaces import Reservations

IP_PREFIX = "serviceips/"
NODE_PORT_PREFIX = "servicenodeports/"

DEFAULT_SERVICE_CIDR = "127.96.0.0/12"
"""The default Service range: 127.96.0.0 - 127.111.255.255, the loopback twin of upstream's
10.96.0.0/12. Every 127/8 address is local on Linux, so the cluster's proxies can listen on
Service IPs without root; it leaves 127.0.0.0/16 (127.0.0.1, where the members listen) alone."""

DEFAULT_NODE_PORTS = "30000-32767"
"""Upstream's ``--service-node-port-range`` default."""

RANDOM_DRAWS = 8


class RangeFull(Exception):
    """Every value of the range is held: upstream's ``ErrFull`` (``range is full``)."""


class NotInRange(Exception):
    """A requested value outside the range (upstream's ``ErrNotInRange``); the message is
    upstream's."""


class Taken(Exception):
    """A requested value someone holds: upstream's ``ErrAllocated``."""


@attrs.frozen
class _Space:
    """Offsets ``0 .. size-1`` of a range and the reservation key of each."""

    prefix: str
    size: int
    static_band: int
    """Offsets below this are drawn only once the rest is exhausted (upstream's offset)."""
    key: Callable[[int], str]

    async def next(self, store: Reservations, owner: str, rng: random.Random) -> int:
        """Reserve a free offset and return it."""
        if self.size == 0:
            raise RangeFull("range is full")
        for draw in range(RANDOM_DRAWS):
            low = (
                self.static_band if draw < RANDOM_DRAWS // 2 and self.static_band < self.size else 0
            )
            offset = rng.randrange(low, self.size)
            if await store.reserve(self.key(offset), owner):
                return offset
        start = rng.randrange(self.size)
        for offset in self._scan(await store.held(self.prefix), start):
            if await store.reserve(self.key(offset), owner):
                return offset
        raise RangeFull("range is full")

    async def free(
        self, store: Reservations, rng: random.Random, exclude: Collection[str] = ()
    ) -> int:
        """A free offset not among the keys ``exclude``, without reserving it (a dry run's
        answer)."""
        if self.size == 0:
            raise RangeFull("range is full")
        held = {*await store.held(self.prefix), *exclude}
        offsets = self._scan(held, rng.randrange(self.size))
        for offset in offsets:
            return offset
        raise RangeFull("range is full")

    def _scan(self, held: Collection[str], start: int) -> Iterator[int]:
        taken = set(held)
        for i in range(self.size):
            offset = (start + i) % self.size
            if self.key(offset) not in taken:
                yield offset


def _static_band(size: int, step: int, cap: int) -> int:
    """Upstream's ``calculateRangeOffset``: ``min(max(16, size/step), cap)``, none for ranges of
    16 or fewer (step 16 and cap 256 for IPs over the CIDR's size, 32 and 128 for ports)."""
    if size <= 16:
        return 0
    return min(max(16, size // step), cap)


@attrs.frozen
class ServiceIPRange:
    """An IPv4 Service CIDR. Its network and broadcast addresses are never handed out; the
    first address after the network is the ``kubernetes`` Service's, by convention."""

    network: ipaddress.IPv4Network

    @classmethod
    def parse(cls, cidr: str = DEFAULT_SERVICE_CIDR) -> ServiceIPRange:
        return cls(ipaddress.IPv4Network(cidr, strict=True))

    @property
    def cidr(self) -> str:
        return str(self.network)

    @property
    def kubernetes_ip(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def _space(self) -> _Space:
        size = max(self.network.num_addresses - 2, 0)
        return _Space(
            IP_PREFIX,
            size,
            _static_band(self.network.num_addresses, 16, 256),
            lambda o: self.key(self._ip(o)),
        )

    def _ip(self, offset: int) -> str:
        return str(self.network.network_address + 1 + offset)

    def contains(self, ip: str) -> bool:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            return False
        return (
            address in self.network
            and address != self.network.network_address
            and address != self.network.broadcast_address
        )

    def key(self, ip: str) -> str:
        return IP_PREFIX + ip

    def check(self, ip: str) -> None:
        if not self.contains(ip):
            raise NotInRange(
                f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is "
                f"{self.cidr}"
            )

    async def allocate(self, store: Reservations, ip: str, owner: str) -> None:
        """Reserve ``ip``; NotInRange or Taken if it cannot be."""
        self.check(ip)
        if not await store.reserve(self.key(ip), owner):
            raise Taken("provided IP is already allocated")

    async def allocate_next(self, store: Reservations, owner: str, rng: random.Random) -> str:
        return self._ip(await self._space.next(store, owner, rng))

    async def available(self, store: Reservations, ip: str) -> None:
        """What :meth:`allocate` would refuse, without reserving (for dry runs)."""
        self.check(ip)
        if self.key(ip) in await store.held(IP_PREFIX):
            raise Taken("provided IP is already allocated")

    async def pick(self, store: Reservations, rng: random.Random) -> str:
        return self._ip(await self._space.free(store, rng))


@attrs.frozen
class PortRange:
    """A node port range, inclusive at both ends, as ``--service-node-port-range``."""

    base: int
    size: int

    @classmethod
    def parse(cls, text: str = DEFAULT_NODE_PORTS) -> PortRange:
        low, sep, high = text.partition("-")
        first = int(low)
        last = int(high) if sep else first
        if not 0 < first <= last < 65536:
            raise ValueError(f"invalid port range {text!r}")
        return cls(first, last - first + 1)

    def __str__(self) -> str:
        return f"{self.base}-{self.base + self.size - 1}"

    @property
    def _space(self) -> _Space:
        band = _static_band(self.size, 32, 128)
        return _Space(NODE_PORT_PREFIX, self.size, band, lambda o: self.key(self.base + o))

    def contains(self, port: int) -> bool:
        return self.base <= port < self.base + self.size

    def key(self, port: int) -> str:
        return f"{NODE_PORT_PREFIX}{port}"

    def check(self, port: int) -> None:
        if not self.contains(port):
            raise NotInRange(
                f"provided port is not in the valid range. The range of valid ports is {self}"
            )

    async def allocate(self, store: Reservations, port: int, owner: str) -> None:
        self.check(port)
        if not await store.reserve(self.key(port), owner):
            raise Taken("provided port is already allocated")

    async def allocate_next(self, store: Reservations, owner: str, rng: random.Random) -> int:
        return self.base + await self._space.next(store, owner, rng)

    async def available(self, store: Reservations, port: int) -> None:
        self.check(port)
        if self.key(port) in await store.held(NODE_PORT_PREFIX):
            raise Taken("provided port is already allocated")

    async def pick(
        self, store: Reservations, rng: random.Random, exclude: Collection[str] = ()
    ) -> int:
        return self.base + await self._space.free(store, rng, exclude)
