"""The failures rkctl reports, and how any exception becomes etcdctl's one ``Error:`` line.

etcdctl prints exactly one ``Error: <text>`` line on stderr and exits non-zero; scripts grep
for that text (notably etcd's own server messages such as ``etcdserver: mvcc: required
revision has been compacted``), so the KV error text is passed through verbatim.
"""

from __future__ import annotations

import ssl

import trio

from raftkube.client import ClientError, KVRequestError

EXIT_ERROR = 1
"""A runtime failure (etcdctl's ``ExitError``)."""
EXIT_USAGE = 2
"""Bad flags or arguments, as argparse reports them."""
EXIT_INTERRUPTED = 130
"""Ctrl-C, the conventional ``128 + SIGINT``."""


class CommandError(Exception):
    """A failure detected by rkctl itself; ``exit_code`` distinguishes usage from runtime."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(CommandError):
    """Bad flags or arguments: exit 2 like argparse, so callers can tell them from failures."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def leaves(exc: BaseException) -> list[BaseException]:
    """The non-group exceptions inside ``exc``.

    Trio nurseries (including the client's) wrap whatever escapes them in exception groups;
    the user should see the underlying error, not the grouping."""
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(leaves(inner))
        return out
    return [exc]


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The ``Error:`` text and exit code for ``exc``, or ``None`` if it is not ours to report."""
    for leaf in leaves(exc):
        if isinstance(leaf, CommandError):
            return leaf.message, leaf.exit_code
        if isinstance(leaf, KVRequestError):
            return leaf.error.message, EXIT_ERROR
        if isinstance(leaf, ClientError):
            if leaf.code in ("timeout",):
                return "context deadline exceeded", EXIT_ERROR
            return f"{leaf.code}: {leaf.message}", EXIT_ERROR
        if isinstance(leaf, trio.TooSlowError):
            # etcdctl's text for any expired --command-timeout / --dial-timeout.
            return "context deadline exceeded", EXIT_ERROR
        if isinstance(leaf, ssl.SSLError | OSError):
            return str(leaf), EXIT_ERROR
    return None


def one_line(text: str) -> str:
    """Collapse ``text`` onto one line: tools read etcdctl errors line by line."""
    return " ".join(text.split())
