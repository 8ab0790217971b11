"""SimNetwork: latency, loss, duplication, partitions, crashes and pauses, deterministically."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from raftkube.net.transport import TransportClosedError
from raftkube_fuzz.world.network import LinkFaults, SimNetwork, SimTransport
from raftkube_spec.raft.messages import Message, RequestVoteRequest


class Listener:
    def __init__(self) -> None:
        self.lost: list[Message] = []
        self.copies: list[Message] = []

    def sent(self, message: Message) -> None:
        pass

    def dropped(self, message: Message) -> None:
        self.lost.append(message)

    def duplicated(self, message: Message) -> None:
        self.copies.append(message)


def msg(src: int, dst: int, n: int) -> RequestVoteRequest:
    return RequestVoteRequest(term=n, source=src, dest=dst, last_log_term=0, last_log_index=0)


def run(fn: Callable[[], Awaitable[None]]) -> None:
    trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


async def drain(endpoint: SimTransport) -> list[Message]:
    got: list[Message] = []
    while endpoint.pending and not endpoint.paused:
        got.append(await endpoint.receive())
    return got


def make(n: int = 3, seed: int = 1, **faults: float) -> tuple[SimNetwork, Listener]:
    listener = Listener()
    net = SimNetwork(random.Random(seed), listener, list(range(n)), LinkFaults(**faults))
    return net, listener


async def exchange(net: SimNetwork, count: int) -> dict[int, list[Message]]:
    """Send ``count`` numbered messages 0 -> 1 and 1 -> 2, wait, and collect what arrived."""
    ends = [net.attach(i) for i in net.members]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        for k in range(count):
            ends[0].send(1, msg(0, 1, k))
            ends[1].send(2, msg(1, 2, k))
        await trio.sleep(1.0)
        got = {i: await drain(ends[i]) for i in net.members}
        nursery.cancel_scope.cancel()
    return got


def collect(seed: int) -> dict[int, list[Message]]:
    out: dict[int, list[Message]] = {}

    async def main() -> None:
        net, _ = make(seed=seed, latency_low=0.001, latency_high=0.010)
        out.update(await exchange(net, 50))

    run(main)
    return out


def test_delivery_within_latency_and_reordering_is_deterministic() -> None:
    first = collect(1)
    assert collect(1) == first
    assert collect(2) != first
    terms = [m.term for m in first[1]]
    assert sorted(terms) == list(range(50))
    assert terms != sorted(terms)  # random latencies reorder


def test_loss_and_duplication_are_reported() -> None:
    async def main() -> None:
        net, listener = make(loss=0.3, duplication=0.3)
        got = await exchange(net, 200)
        arrived = len(got[1]) + len(got[2])
        assert net.stats["dropped_loss"] == len(listener.lost) > 0
        assert net.stats["duplicated"] == len(listener.copies) > 0
        assert arrived == 400 - len(listener.lost) + len(listener.copies)
        assert net.stats["delivered"] == arrived

    run(main)


def test_partition_blocks_at_delivery_and_heal_restores() -> None:
    async def main() -> None:
        net, listener = make(latency_low=0.01, latency_high=0.01)
        ends = [net.attach(i) for i in range(3)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(net.run)
            ends[0].send(1, msg(0, 1, 1))
            net.isolate(1)  # in flight: checked at delivery, so lost
            await trio.sleep(0.1)
            assert await drain(ends[1]) == []
            assert listener.lost == [msg(0, 1, 1)]
            net.heal()
            ends[0].send(1, msg(0, 1, 2))
            await trio.sleep(0.1)
            assert await drain(ends[1]) == [msg(0, 1, 2)]
            net.one_way(0, 1)
            ends[0].send(1, msg(0, 1, 3))
            ends[1].send(0, msg(1, 0, 3))
            await trio.sleep(0.1)
            assert await drain(ends[1]) == []
            assert await drain(ends[0]) == [msg(1, 0, 3)]
            nursery.cancel_scope.cancel()

    run(main)


def test_partition_and_bridge_topologies() -> None:
    net, _ = make(n=5)
    net.partition([[0, 1, 2], [3, 4]])
    assert (0, 3) in net.blocked and (3, 0) in net.blocked
    assert (0, 1) not in net.blocked and (3, 4) not in net.blocked
    net.partition([[0, 1]])  # 2, 3, 4 each alone
    assert (2, 3) in net.blocked and (0, 1) not in net.blocked
    net.bridge([0, 1], [3, 4], 2)
    assert (0, 3) in net.blocked and (4, 1) in net.blocked
    assert {(0, 2), (2, 0), (2, 4), (4, 2), (0, 1), (3, 4)}.isdisjoint(net.blocked)
    net.heal()
    assert net.blocked == set()


def test_crashed_member_loses_messages_and_paused_member_buffers() -> None:
    async def main() -> None:
        net, listener = make(latency_low=0.01, latency_high=0.01)
        ends = [net.attach(i) for i in range(3)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(net.run)
            ends[2].pause()
            ends[0].send(2, msg(0, 2, 1))
            await trio.sleep(0.1)
            assert await drain(ends[2]) == []  # buffered, not received
            ends[2].resume()
            assert await drain(ends[2]) == [msg(0, 2, 1)]
            # Arrived but unread messages die with the member and are reported as dropped.
            ends[0].send(1, msg(0, 1, 2))
            await trio.sleep(0.1)
            net.detach(1)
            assert listener.lost == [msg(0, 1, 2)]
            with pytest.raises(TransportClosedError):
                await ends[1].receive()
            assert ends[1].send(0, msg(1, 0, 3)) is False
            ends[0].send(1, msg(0, 1, 4))
            await trio.sleep(0.1)
            assert listener.lost[-1] == msg(0, 1, 4)
            assert net.stats["dropped_down"] == 1 and net.stats["dropped_crash"] == 1
            fresh = net.attach(1)
            ends[0].send(1, msg(0, 1, 5))
            await trio.sleep(0.1)
            assert await drain(fresh) == [msg(0, 1, 5)]
            nursery.cancel_scope.cancel()

    run(main)


def test_per_link_faults_override_defaults() -> None:
    net, _ = make()
    net.update_faults((0, 1), loss=1.0)
    assert net.faults((0, 1)).loss == 1.0
    assert net.faults((1, 0)).loss == 0.0
    net.reset_faults()
    assert net.faults((0, 1)).loss == 0.0
    with pytest.raises(ValueError):
        LinkFaults(loss=2.0)


def test_serve_steps_each_message_on_arrival_and_queues_while_paused() -> None:
    """A serving member gets each message from the delivery itself (no receive pass); while
    paused nothing is handed over; on resume what waited comes first, in arrival order."""

    async def main() -> None:
        net, _ = make(latency_low=0.01, latency_high=0.01)
        ends = [net.attach(i) for i in range(3)]
        got: list[tuple[float, int]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(net.run)
            nursery.start_soon(ends[1].serve, lambda m: got.append((trio.current_time(), m.term)))
            await trio.testing.wait_all_tasks_blocked()
            sent_at = trio.current_time()
            ends[0].send(1, msg(0, 1, 1))
            await trio.sleep(0.1)
            ((arrived, term),) = got
            assert term == 1 and 0.01 <= arrived - sent_at < 0.011  # latency in 1/1024 s units
            ends[1].pause()
            ends[0].send(1, msg(0, 1, 2))
            ends[2].send(1, msg(2, 1, 3))
            await trio.sleep(0.1)
            assert [term for _, term in got] == [1] and ends[1].pending == 2
            ends[1].resume()
            ends[0].send(1, msg(0, 1, 4))
            await trio.sleep(0.1)
            assert [term for _, term in got] == [1, 2, 3, 4] and ends[1].pending == 0
            net.detach(1)  # serve returns once closed
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    run(main)


def test_an_exception_in_the_callback_ends_serve_with_it() -> None:
    """As an exception out of a receive loop would: it surfaces in the serving task (the
    member's), not in the network's delivery timer, and nothing more is handed over."""

    async def main() -> None:
        net, _ = make(latency_low=0.01, latency_high=0.01)
        ends = [net.attach(i) for i in range(2)]
        calls: list[int] = []

        def deliver(m: Message) -> None:
            calls.append(m.term)
            raise RuntimeError(f"bad message {m.term}")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(net.run)
            ends[0].send(1, msg(0, 1, 1))
            ends[0].send(1, msg(0, 1, 2))
            with pytest.raises(RuntimeError, match="bad message 1"):
                await ends[1].serve(deliver)
            await trio.sleep(0.1)
            assert calls == [1]
            nursery.cancel_scope.cancel()

    run(main)
