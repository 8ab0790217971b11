"""What a member does when its disk refuses a write: which errors those are, and what it says.

A failed write or fsync leaves the member's log in an unknown state on disk (the kernel may
have dropped the dirty pages; a record may be half written), and the Raft core in memory is
ahead of whatever is durable. Sending anything that depends on it (an acknowledgement, a vote)
could count a write in a quorum that a restart would not find, so the member *fences* itself:
its Raft tasks stop for good (the others see it as down and elect among themselves), writes
and linearizable reads are refused with an error naming the cause, and serializable reads are
still served from the state it had applied, all of it durable. Only a restart, once space is
freed or the directory is writable again, re-reads what is on disk (the write-ahead log drops a
torn final record) and rejoins. etcd in this situation exits (``failed to save Raft hard state
and entries``); keeping the reads up and saying why is the kinder answer for an operator.

The client-facing error is the nearest honest equivalent of etcd's: a full disk (ENOSPC, a
quota's EDQUOT, or a file-size limit's EFBIG) is refused with code ``no_space`` and etcd's
``etcdserver: no space`` text, followed by the member and the OS error; any other failure (a
read-only file system, EIO, a permission) with code ``disk_failed`` naming the OS error. etcd
raises its NOSPACE alarm for its backend quota rather than for a full device, and cluster-wide;
here the refusal is one member's, so a client with other endpoints may go to them.
"""

from __future__ import annotations

import errno
from typing import Final

from raftkube.storage.errors import StorageError

DISK_ERRORS: Final = (OSError, StorageError)
"""What a storage call raises when the disk, not the caller, is at fault (misuse raises
``ValueError``, which is a bug and stays one)."""

NO_SPACE: Final = "no_space"
DISK_FAILED: Final = "disk_failed"
NO_SPACE_TEXT: Final = "etcdserver: no space"
"""etcd's ``ErrNoSpace`` text."""

_NO_SPACE_ERRNOS: Final = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EFBIG))


def describe_disk_fault(member_id: int, exc: BaseException) -> tuple[str, str]:
    """The error code and message a fenced member answers writes with."""
    cause = str(exc) or type(exc).__name__
    after = (
        "it refuses writes until it is restarted with its data dir writable again, and "
        "serves serializable reads meanwhile"
    )
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS:
        return NO_SPACE, f"{NO_SPACE_TEXT} (member {member_id}: {cause}); {after}"
    return DISK_FAILED, f"raftkube: member {member_id} cannot write its data dir ({cause}); {after}"
