"""Disk faults in the simulated world: a member whose disk fills or turns read-only fences
itself (refuses writes by name, serves serializable reads), the rest go on, and every check of
the ``kv`` suite (linearizability, watches, agreement, liveness after the heal) still holds."""

from __future__ import annotations

import errno

import pytest

from raftkube.server.disk_faults import DISK_FAILED, NO_SPACE
from raftkube.storage.errors import WalFailedError
from raftkube.storage.state import HardState, LogEntry
from raftkube_fuzz.checks.history import Ok
from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.world.disk import SimDisk
from raftkube_spec.kv.requests import PutRequest, RangeRequest


def test_a_failed_sync_poisons_the_disk_and_a_crash_keeps_a_prefix_of_what_it_buffered() -> None:
    disk = SimDisk(0)
    disk.recover()
    disk.append_entries([LogEntry(1, 1, b"a")])
    disk.sync()
    disk.inject_fault(errno.ENOSPC)
    disk.append_entries([LogEntry(2, 1, b"b"), LogEntry(3, 1, b"c")])  # Only buffered.
    with pytest.raises(OSError) as full:
        disk.sync()
    assert full.value.errno == errno.ENOSPC and disk.failed
    with pytest.raises(WalFailedError):
        disk.set_hard_state(HardState(1, None, 1))
    assert [e.index for e in disk.durable_state().entries] == [1]
    disk.inject_fault(None)
    disk.crash(keep_unsynced=1)  # The first buffered record reached the platter.
    assert not disk.failed and [e.index for e in disk.recover().entries] == [1, 2]
    disk.inject_fault(errno.EROFS)
    with pytest.raises(OSError) as read_only:
        disk.sync()
    assert read_only.value.errno == errno.EROFS
    with pytest.raises(ValueError, match="not a disk fault"):
        disk.inject_fault(errno.EIO)


def _puts(member: int, first: int, n: int) -> list[Step]:
    return [
        Step.of("put", member=member, key=f"k{i % 4}", value=f"v{first + i}", lease=0)
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("fault", "code"), [("disk_full", NO_SPACE), ("disk_read_only", DISK_FAILED)]
)
def test_a_member_whose_disk_fails_is_fenced_and_the_checks_still_hold(
    fault: str, code: str
) -> None:
    suite = get_suite("kv")
    fenced: dict[str, object] = {}

    def observe(run: Run, index: int) -> None:
        if fenced:
            return
        for m, member in enumerate(run.world.members):
            if member is not None and member.disk_fault is not None:
                fenced.update(
                    member=m,
                    step=index,
                    code=member.disk_fault.code,
                    message=member.disk_fault.message,
                )

    steps = [
        *_puts(0, 0, 3),
        Step.of("wait", seconds=0.2),
        Step.of(fault, member="leader", hold=0.25),
        *_puts(0, 10, 1),  # the leader's sync of it fails: the client retries elsewhere
        Step.of("wait", seconds=1.0),  # the others elect a new leader
        *_puts(1, 20, 3),  # served by the new leader
        Step.of(
            "get",
            member=0,
            key="k",
            prefix=True,
            serializable=True,
            revision=0,
            limit=0,
            keys_only=False,
            count_only=False,
        ),
        Step.of(
            "get",
            member=1,
            key="k",
            prefix=True,
            serializable=True,
            revision=0,
            limit=0,
            keys_only=False,
            count_only=False,
        ),
        Step.of(
            "get",
            member=2,
            key="k",
            prefix=True,
            serializable=True,
            revision=0,
            limit=0,
            keys_only=False,
            count_only=False,
        ),
        Step.of("wait", seconds=0.5),
    ]
    run = run_steps(suite, dict(suite.default_config), 5, steps, on_step=observe)
    assert run.violation is None, run.violation
    assert fenced and fenced["step"] in (5, 6), fenced
    assert fenced["code"] == code
    assert ("no space" if fault == "disk_full" else "cannot write its data dir") in str(
        fenced["message"]
    )
    ops = run.history.operations()
    later_puts = [
        op for op in ops if isinstance(op.request, PutRequest) and op.request.value >= b"v20"
    ]
    assert later_puts and all(isinstance(op.outcome, Ok) for op in later_puts)
    # Serializable reads were answered by every member, the fenced one included.
    reads = [op for op in ops if isinstance(op.request, RangeRequest) and op.request.range_end]
    assert len(reads) == 3 and all(isinstance(op.outcome, Ok) for op in reads)
