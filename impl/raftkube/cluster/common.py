"""Pieces shared by ``raftkube member`` and ``raftkube up``: address lists, error lines."""

from __future__ import annotations

import argparse
import errno
from collections.abc import Iterable

from raftkube.storage.errors import StorageError
from raftkube.tls import TlsSetupError

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (OSError, StorageError, TlsSetupError)
"""Failures caused by the environment or the input, not by a bug: they get one line, no
traceback."""


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (or ``:port``, meaning 127.0.0.1) to a pair; raises ValueError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise ValueError(f"expected host:port, got {text!r}")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"port out of range in {text!r}")
    return host.strip("[]") or "127.0.0.1", number


def parse_member_addresses(values: Iterable[str]) -> dict[int, tuple[str, int]]:
    """``id=host:port`` items, comma-separated and/or repeated, to a mapping; raises ValueError.

    Repeating the flag and listing with commas are both accepted because shells and scripts
    produce both."""
    out: dict[int, tuple[str, int]] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            ident, sep, address = item.partition("=")
            if not sep:
                raise ValueError(f"expected id=host:port, got {item!r}")
            try:
                mid = int(ident)
            except ValueError:
                raise ValueError(f"member id must be a number in {item!r}") from None
            if mid in out:
                raise ValueError(f"member {mid} is listed twice")
            out[mid] = parse_address(address)
    return out


def parse_member_names(values: Iterable[str]) -> dict[int, str]:
    """``id=name`` items (``--peer-names``), comma-separated and/or repeated; raises
    ValueError."""
    out: dict[int, str] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            ident, sep, name = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"expected id=name, got {item!r}")
            try:
                mid = int(ident)
            except ValueError:
                raise ValueError(f"member id must be a number in {item!r}") from None
            if mid in out:
                raise ValueError(f"member {mid} is named twice")
            out[mid] = name.strip()
    return out


def format_address(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def root_cause(exc: BaseException) -> BaseException:
    """Look through the single-child exception groups that nested nurseries wrap errors in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def expected_error(exc: BaseException) -> BaseException | None:
    """The environment/input error behind ``exc``, or None if it is something else."""
    cause = root_cause(exc)
    return cause if isinstance(cause, EXPECTED_ERRORS) else None


def describe(exc: BaseException) -> str:
    """One human line for an expected error, with the usual fixes spelled out."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"address already in use: {exc.strerror or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    return str(exc) or type(exc).__name__


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def port_number(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value
