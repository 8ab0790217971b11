"""etcdctl's ``txn`` input language: compares, then success ops, then failure ops.

Each section is one item per line and ends at a blank line (or end of input)::

    mod("key1") > "0"

    put key1 "overwrote-key1"

    put key1 "created-key1"
    put key2 "some extra key"

A compare is ``target("key") op "value"`` with target ``value``/``val``, ``version``/``ver``,
``create``/``c``, ``mod``/``m`` or ``lease`` (hex id) and op ``=``, ``!=``, ``<`` or ``>``;
an op line is a ``put``, ``get`` or ``del`` command line, with that command's flags. Quoting
follows etcdctl's ``Argify``: Go-style double quotes or verbatim single quotes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from raftkube.rkctl.errors import CommandError
from raftkube_spec.kv.requests import Compare, CompareResult, CompareTarget, RequestOp

_TARGETS = {
    "ver": CompareTarget.VERSION,
    "version": CompareTarget.VERSION,
    "c": CompareTarget.CREATE,
    "create": CompareTarget.CREATE,
    "m": CompareTarget.MOD,
    "mod": CompareTarget.MOD,
    "val": CompareTarget.VALUE,
    "value": CompareTarget.VALUE,
    "lease": CompareTarget.LEASE,
}
_RESULTS = {
    "=": CompareResult.EQUAL,
    "==": CompareResult.EQUAL,
    "!=": CompareResult.NOT_EQUAL,
    "<": CompareResult.LESS,
    ">": CompareResult.GREATER,
}
_GO_STRING = r'"(?:[^"\\]|\\.)*"'
_COMPARE = re.compile(rf"^(\w+)\(\s*({_GO_STRING})\s*\)\s*(\S+)\s*({_GO_STRING})$")
_ARG = re.compile(rf"{_GO_STRING}|'[^']*'|[^'\"\s]\S*[^'\"\s]?")
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


class TxnSyntaxError(CommandError):
    """Malformed txn input; etcdctl calls this invalid input (exit 1 here)."""


def go_unquote(quoted: str) -> str:
    """The value of a Go double-quoted string literal (``\\n``, ``\\xNN``, ``\\uNNNN`` ...)."""
    body = quoted[1:-1]
    out: list[str] = []
    raw = bytearray()  # \xNN and octal escapes are bytes, which may form UTF-8 together

    def flush_raw() -> None:
        if raw:
            out.append(raw.decode("utf-8", "surrogateescape"))
            raw.clear()

    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            flush_raw()
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise TxnSyntaxError(f"invalid quoted string {quoted}")
        esc = body[i + 1]
        if esc in _ESCAPES:
            flush_raw()
            out.append(_ESCAPES[esc])
            i += 2
        elif esc == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            raw.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif esc in "01234567" and re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            raw.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        elif esc in "uU":
            width = 4 if esc == "u" else 8
            digits = body[i + 2 : i + 2 + width]
            if not re.fullmatch(rf"[0-9a-fA-F]{{{width}}}", digits):
                raise TxnSyntaxError(f"invalid quoted string {quoted}")
            flush_raw()
            out.append(chr(int(digits, 16)))
            i += 2 + width
        else:
            raise TxnSyntaxError(f"invalid quoted string {quoted}")
    flush_raw()
    return "".join(out)


def argify(line: str) -> list[str]:
    """Split an op line into arguments the way etcdctl's ``Argify`` does."""
    args = []
    for tok in _ARG.findall(line):
        if tok.startswith('"'):
            args.append(go_unquote(tok))
        elif tok.startswith("'"):
            args.append(tok[1:-1])
        else:
            args.append(tok)
    return args


def _int(value: str, base: int, line: str) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise TxnSyntaxError(f"invalid txn compare request: {line}") from None


def parse_compare(line: str) -> Compare:
    """One compare line, e.g. ``value("k") = "v"`` or ``mod("k") > "5"``."""
    m = _COMPARE.match(line)
    if m is None:
        raise TxnSyntaxError(f"malformed comparison: {line}")
    target_name, key, op, value = m.group(1), go_unquote(m.group(2)), m.group(3), m.group(4)
    target = _TARGETS.get(target_name)
    if target is None:
        raise TxnSyntaxError(f"malformed comparison: {line} (unknown target {target_name})")
    result = _RESULTS.get(op)
    if result is None:
        raise TxnSyntaxError(f"malformed comparison: {line} (unknown op {op})")
    raw = go_unquote(value)
    key_bytes = key.encode("utf-8", "surrogateescape")
    if target is CompareTarget.VALUE:
        return Compare(key_bytes, target, result, raw.encode("utf-8", "surrogateescape"))
    base = 16 if target is CompareTarget.LEASE else 10
    return Compare(key_bytes, target, result, _int(raw, base, line))


def _sections(lines: Iterator[str]) -> Iterator[list[str]]:
    """Blank-line separated groups; end of input closes the open group (etcdctl insists on
    the blank line, which makes here-strings awkward, so that is relaxed)."""
    while True:
        group: list[str] = []
        for raw in lines:
            line = raw.strip()
            if not line:
                break
            group.append(line)
        yield group


def parse_txn(
    lines: Iterator[str],
    parse_op: Callable[[list[str], str], RequestOp],
    prompt: Callable[[str], None] | None = None,
) -> tuple[tuple[Compare, ...], tuple[RequestOp, ...], tuple[RequestOp, ...]]:
    """Read compares, success ops and failure ops from ``lines``.

    ``parse_op(args, line)`` turns one op line's arguments into a request (the command layer
    owns the put/get/del flags); ``prompt`` is called before each section in interactive
    mode, as ``etcdctl txn -i`` prints its prompts."""
    sections = _sections(lines)

    def section(title: str) -> list[str]:
        if prompt is not None:
            prompt(title)
        return next(sections)

    compares = tuple(parse_compare(ln) for ln in section("compares:"))
    ops = []
    for title in ("success requests (get, put, del):", "failure requests (get, put, del):"):
        branch = []
        for ln in section(title):
            args = argify(ln)
            if len(args) < 2:
                raise TxnSyntaxError(f"invalid txn request: {ln}")
            branch.append(parse_op(args, ln))
        ops.append(tuple(branch))
    return compares, ops[0], ops[1]
