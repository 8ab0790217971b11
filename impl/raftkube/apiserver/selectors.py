"""Label and field selectors: parsing, printing and matching, as ``k8s.io/apimachinery`` does.

Label selectors (``labels.Parse``) are a comma-joined list of requirements, all of which must
hold: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists), ``!a``
(does not exist), and upstream's ``a>1`` / ``a<1`` on integer values. ``!=`` and ``notin``
also match an object without the label, as upstream. Requirements are kept sorted by key and
``str()`` prints upstream's canonical form, so ``parse_label_selector(str(s)) == s``.

The API's structured form (``matchLabels`` / ``matchExpressions``, used by ReplicaSets and
Deployments) converts to the same :class:`LabelSelector` (``metav1.LabelSelectorAsSelector``):
an absent selector selects nothing, an empty one everything.

Field selectors (``fields.ParseSelector``) are ``a=b``, ``a==b`` and ``a!=b`` terms; ``\\``
escapes ``,``, ``=`` and ``\\`` in values. They match against the field values a resource's
caller computes for an object; which keys a resource supports is the caller's to check
(:attr:`FieldSelector.keys`), as upstream's per-resource field label conversion does.

Errors are :func:`~raftkube.apiserver.errors.bad_request` with upstream's wording.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from raftkube.apiserver.errors import APIError, bad_request


class Operator(enum.Enum):
    """A requirement's operator; the value is how it is printed (``in``/``notin`` spaced)."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = " in "
    NOT_IN = " notin "
    EXISTS = ""
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


_EXACT = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS)
_SET = (Operator.IN, Operator.NOT_IN)
_NUMERIC = (Operator.GREATER_THAN, Operator.LESS_THAN)
_UNARY = (Operator.EXISTS, Operator.DOES_NOT_EXIST)

# --- validation of keys and values (upstream's IsQualifiedName / IsValidLabelValue) --------

_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(f"^{_NAME_FMT}$")
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_NAME_FMT}')"
)

_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?"
    "[A-Za-z0-9])?')"
)


def qualified_name_errors(key: str) -> list[str]:
    """Why ``key`` is not a valid label key (``prefix/name`` or ``name``); empty if it is."""
    if key.count("/") > 1:
        return ["a qualified name " + _NAME_MSG + " with an optional DNS subdomain prefix and "
                "'/' (e.g. 'example.com/MyName')"]  # fmt: skip
    prefix, slash, name = key.rpartition("/")
    errors: list[str] = []
    if slash and not prefix:
        errors.append("prefix part must be non-empty")
    elif slash:
        if len(prefix) > 253:
            errors.append("prefix part must be no more than 253 characters")
        if not _DNS1123_SUBDOMAIN_RE.match(prefix):
            errors.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character"
            )
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _NAME_RE.match(name):
        errors.append("name part " + _NAME_MSG)
    return errors


def label_value_errors(value: str) -> list[str]:
    """Why ``value`` is not a valid label value (empty is valid); empty if it is."""
    if len(value) > 63:
        return ["must be no more than 63 characters"]
    if value and not _NAME_RE.match(value):
        return [_VALUE_MSG]
    return []


def _invalid(path: str, value: str, errors: list[str]) -> str:
    return f'{path}: Invalid value: "{value}": {"; ".join(errors)}'


# --- label selectors -------------------------------------------------------------------------


@attrs.frozen
class Requirement:
    """One clause of a label selector; ``values`` sorted, as upstream keeps them."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        # Gt / Lt: the label must exist and parse as an integer.
        try:
            have = int(labels[self.key])
        except (KeyError, ValueError):
            return False
        want = int(self.values[0])
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        if op is Operator.EXISTS:
            return self.key
        if op in _SET:
            return f"{self.key}{op.value}({','.join(self.values)})"
        return f"{self.key}{op.value}{self.values[0]}"


def new_requirement(key: str, operator: Operator, values: Iterable[str]) -> Requirement:
    """A validated requirement (upstream's ``labels.NewRequirement``); :class:`APIError` 400."""
    vals = sorted(set(values))
    errors = qualified_name_errors(key)
    if errors:
        raise bad_request(_invalid("key", key, errors))
    if operator in _SET and not vals:
        raise bad_request("values: Invalid value: []: for 'in', 'notin' operators, values set "
                          "can't be empty")  # fmt: skip
    if operator in _EXACT and len(vals) != 1:
        raise bad_request(
            f"values: Invalid value: {vals}: exact-match compatibility requires one single value"
        )
    if operator in _UNARY and vals:
        raise bad_request(
            f"values: Invalid value: {vals}: values set must be empty for exists and does not exist"
        )
    if operator in _NUMERIC:
        if len(vals) != 1:
            raise bad_request(f"values: Invalid value: {vals}: for 'Gt', 'Lt' operators, exactly "
                              "one value is required")  # fmt: skip
        if not re.fullmatch(r"[-+]?[0-9]+", vals[0]):
            raise bad_request(f"values[0]: Invalid value: \"{vals[0]}\": for 'Gt', 'Lt' "
                              "operators, the value must be an integer")  # fmt: skip
    else:
        for i, v in enumerate(vals):
            errors = label_value_errors(v)
            if errors:
                raise bad_request(_invalid(f"values[{i}]", v, errors))
    return Requirement(key, operator, tuple(vals))


@attrs.frozen
class LabelSelector:
    """Requirements that must all hold; ``nothing`` selects no object at all (a nil
    ``metav1.LabelSelector``), while no requirements select every object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return self.matches(obj.get("metadata", {}).get("labels"))

    @property
    def empty(self) -> bool:
        """True when it selects everything (upstream's ``Selector.Empty``)."""
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()


class _Tok(enum.Enum):
    IDENT = "identifier"
    END = "end of string"
    COMMA = ","
    OPEN = "("
    CLOSE = ")"
    BANG = "!"
    NE = "!="
    EQ = "="
    EQEQ = "=="
    GT = ">"
    LT = "<"


_SPECIAL = "=!(),<>"
_WHITESPACE = " \t\r\n"
_SYMBOLS = {
    "!=": _Tok.NE, "==": _Tok.EQEQ, "!": _Tok.BANG, "=": _Tok.EQ, "(": _Tok.OPEN,
    ")": _Tok.CLOSE, ",": _Tok.COMMA, ">": _Tok.GT, "<": _Tok.LT,
}  # fmt: skip


def _lex(text: str) -> list[tuple[_Tok, str]]:
    """Upstream's lexer: runs of non-special, non-blank characters are identifiers."""
    tokens: list[tuple[_Tok, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
        elif ch in _SPECIAL:
            two = text[i : i + 2]
            sym = two if two in _SYMBOLS else ch
            tokens.append((_SYMBOLS[sym], sym))
            i += len(sym)
        else:
            j = i
            while j < len(text) and text[j] not in _SPECIAL and text[j] not in _WHITESPACE:
                j += 1
            tokens.append((_Tok.IDENT, text[i:j]))
            i = j
    tokens.append((_Tok.END, ""))
    return tokens


_BINARY_OPS = {
    _Tok.EQ: Operator.EQUALS, _Tok.EQEQ: Operator.DOUBLE_EQUALS, _Tok.NE: Operator.NOT_EQUALS,
    _Tok.GT: Operator.GREATER_THAN, _Tok.LT: Operator.LESS_THAN,
}  # fmt: skip


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self) -> tuple[_Tok, str]:
        return self.tokens[self.pos]

    def take(self) -> tuple[_Tok, str]:
        tok = self.tokens[self.pos]
        if tok[0] is not _Tok.END:
            self.pos += 1
        return tok

    def selector(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok is _Tok.END:
                return reqs
            if tok not in (_Tok.IDENT, _Tok.BANG):
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except (ValueError, APIError) as exc:
                why = exc.message if isinstance(exc, APIError) else str(exc)
                raise ValueError(f"unable to parse requirement: {why}") from None
            tok, lit = self.take()
            if tok is _Tok.END:
                return reqs
            if tok is not _Tok.COMMA:
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (_Tok.IDENT, _Tok.BANG):
                raise ValueError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        tok, lit = self.take()
        negated = tok is _Tok.BANG
        if negated:
            tok, lit = self.take()
        if tok is not _Tok.IDENT:
            raise ValueError(f"found '{lit}', expected: identifier")
        key = lit
        if negated or self.peek()[0] in (_Tok.END, _Tok.COMMA):
            op = Operator.DOES_NOT_EXIST if negated else Operator.EXISTS
            return new_requirement(key, op, ())
        tok, lit = self.take()
        if tok is _Tok.IDENT and lit in ("in", "notin"):
            op = Operator.IN if lit == "in" else Operator.NOT_IN
            return new_requirement(key, op, self.set_values())
        if tok not in _BINARY_OPS:
            raise ValueError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        nxt, value = self.peek()
        if nxt in (_Tok.END, _Tok.COMMA):
            value = ""
        elif nxt is _Tok.IDENT:
            self.take()
        else:
            raise ValueError(f"found '{value}', expected: identifier")
        return new_requirement(key, _BINARY_OPS[tok], (value,))

    def set_values(self) -> list[str]:
        tok, lit = self.take()
        if tok is not _Tok.OPEN:
            raise ValueError(f"found '{lit}', expected: '('")
        values: list[str] = []
        expect_value = True
        while True:
            tok, lit = self.take()
            if tok is _Tok.CLOSE:
                if expect_value:
                    values.append("")  # "()" and "(a,)" hold the empty value, as upstream
                return values
            if tok is _Tok.COMMA:
                if expect_value:
                    values.append("")
                expect_value = True
            elif tok is _Tok.IDENT and expect_value:
                values.append(lit)
                expect_value = False
            else:
                raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the ``labelSelector`` query syntax; :class:`APIError` 400 on bad syntax."""
    try:
        reqs = _Parser(text).selector()
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


_EXPRESSION_OPS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def from_api(selector: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: None selects nothing, ``{}`` everything."""
    if selector is None:
        return LabelSelector(nothing=True)
    reqs: list[Requirement] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        reqs.append(new_requirement(str(key), Operator.EQUALS, (str(value),)))
    for expr in selector.get("matchExpressions") or ():
        op_name = str(expr.get("operator", ""))
        op = _EXPRESSION_OPS.get(op_name)
        if op is None:
            raise bad_request(f'"{op_name}" is not a valid label selector operator')
        reqs.append(new_requirement(str(expr.get("key", "")), op, expr.get("values") or ()))
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


# --- field selectors -------------------------------------------------------------------------


@attrs.frozen
class FieldTerm:
    """``field=value`` (``negated``: ``field!=value``); ``double`` keeps ``==`` for printing."""

    field: str
    value: str
    negated: bool = False
    double: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        # A field the object does not have reads as "", as upstream's fields.Set.Get.
        return (fields.get(self.field, "") == self.value) != self.negated

    def __str__(self) -> str:
        op = "!=" if self.negated else "==" if self.double else "="
        return f"{self.field}{op}{escape_field_value(self.value)}"


@attrs.frozen
class FieldSelector:
    terms: tuple[FieldTerm, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(t.matches(fields) for t in self.terms)

    @property
    def keys(self) -> tuple[str, ...]:
        """The fields it names: the caller refuses those its resource does not support."""
        return tuple(t.field for t in self.terms)

    @property
    def empty(self) -> bool:
        return not self.terms

    def value_of(self, field: str) -> str | None:
        """The value an ``=`` term pins ``field`` to, if any (e.g. ``metadata.name``)."""
        for t in self.terms:
            if t.field == field and not t.negated:
                return t.value
        return None

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            if nxt not in ("\\", ",", "="):
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{nxt}")
            out.append(nxt)
        elif ch in ",=":
            raise bad_request(f"invalid field selector: unescaped character {ch!r}: {value}")
        else:
            out.append(ch)
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def parse_field_selector(text: str) -> FieldSelector:
    """Parse the ``fieldSelector`` query syntax (terms sorted, as upstream)."""
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        for i in range(len(part)):
            rest = part[i:]
            op = next((o for o in ("!=", "==", "=") if rest.startswith(o)), None)
            if op is not None:
                value = _unescape_field_value(part[i + len(op) :])
                terms.append(FieldTerm(part[:i], value, op == "!=", op == "=="))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(tuple(terms))


def check_field_keys(
    selector: FieldSelector,
    supported: Iterable[str] | Callable[[Mapping[str, Any]], Mapping[str, str]],
) -> None:
    """Refuse a field the resource cannot select on, as upstream's field label conversion
    does. ``supported`` is the keys, or a resource's field function (whose keys are read off
    what it returns for an empty object)."""
    keys = set(supported({}) if callable(supported) else supported)
    for key in selector.keys:
        if key not in keys:
            raise bad_request(f"field label not supported: {key}")


def object_meta_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    """The fields every resource supports: ``metadata.name`` and ``metadata.namespace``."""
    meta = obj.get("metadata", {})
    return {
        "metadata.name": str(meta.get("name", "")),
        "metadata.namespace": str(meta.get("namespace", "")),
    }
