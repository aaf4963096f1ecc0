"""The trigger language: a small boolean expression over a sample's metadata, text and
the model's signals, parsed with a grammar (lark, LALR) and evaluated over arrays. Never
``eval``: a rule is a tree of known node kinds, each a numpy operation.

    meta.country == "DE" and confidence < 0.5
    predicted in ["card_arrival", "card_delivery_estimate"] and novelty > 0.9
    similar("s17", "s230") >= 0.85 or text contains "chargeback"
    not (meta.channel == "web") and energy > -2

Fields: ``predicted`` (the model's class), ``confidence`` (its top probability),
``novelty`` (distance to the labeled set as a percentile of the labeled rows' own, 0-1),
``energy`` (-logsumexp of the logits: higher is less familiar), ``text``, ``id``,
``split`` ("pool"/"eval"), ``label`` (the current label, "" when none), ``meta.NAME``.
``similar("id", ...)``: the highest cosine similarity to those samples (exemplars).
Operators: ``== != < <= > >=``, ``in [...]``, ``contains "..."`` (case-insensitive),
``and``, ``or``, ``not``, parentheses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longtail.errors import InputError

MAX_RULE = 2_000  # characters
MAX_DEPTH = 64  # nesting of the parse tree

GRAMMAR = r"""
start: expr
?expr: expr "or" term        -> or_
     | term
?term: term "and" factor     -> and_
     | factor
?factor: "not" factor        -> not_
       | "(" expr ")"
       | operand OP operand  -> compare
       | operand "in" "[" [literal ("," literal)*] "]" -> in_
       | operand "contains" STRING -> contains
?operand: field | literal | call
field: NAME ("." NAME)?
call: "similar" "(" STRING ("," STRING)* ")"
?literal: STRING             -> string
        | SIGNED_NUMBER      -> number
        | "true"             -> true
        | "false"            -> false
OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(\\.|[^"\\])*"/ | /'(\\.|[^'\\])*'/
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""

NUMERIC = {"confidence", "novelty", "energy"}
TEXTUAL = {"predicted", "text", "id", "split", "label"}
FIELDS = NUMERIC | TEXTUAL
MODEL_FIELDS = {"predicted", "confidence", "energy"}

_parser: list[Any] = []


def _lark() -> Any:
    if not _parser:
        from lark import Lark

        _parser.append(Lark(GRAMMAR, parser="lalr", maybe_placeholders=False))
    return _parser[0]


@dataclass
class Rule:
    """A parsed rule: ``needs`` (the fields and exemplar ids it reads) and ``fn(frame)``
    -> bool array. ``frame`` maps a field name ("meta.x", "similar:a,b") to an array."""

    text: str
    fn: Callable[[dict[str, np.ndarray]], np.ndarray]
    fields: set[str] = field(default_factory=set)
    exemplars: list[list[str]] = field(default_factory=list)

    @property
    def needs_model(self) -> bool:
        return bool(self.fields & MODEL_FIELDS)

    @property
    def needs_vectors(self) -> bool:
        return "novelty" in self.fields or bool(self.exemplars)

    def __call__(self, frame: dict[str, np.ndarray]) -> np.ndarray:
        return self.fn(frame)


def _unquote(token: str) -> str:
    body = token[1:-1]
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse(text: str) -> Rule:
    """Parse and check a rule; InputError naming the position of a syntax error, an
    unknown field or a comparison that cannot hold (a number against text)."""
    from lark.exceptions import LarkError, UnexpectedInput

    if not isinstance(text, str) or not text.strip():
        raise InputError("a trigger rule must be a non-empty expression")
    if len(text) > MAX_RULE:
        raise InputError(f"a trigger rule may have at most {MAX_RULE} characters")
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        col = getattr(e, "column", "?")
        raise InputError(f"trigger rule: syntax error at column {col}: "
                         f"{text[max(0, e.pos_in_stream or 0):][:20]!r}") from None
    except (LarkError, RecursionError) as e:
        raise InputError(f"trigger rule: cannot be parsed ({type(e).__name__})") from None
    rule = Rule(text=text, fn=lambda f: f)  # fn replaced below
    try:
        rule.fn = _compile(tree.children[0], rule, 0)
    except RecursionError:
        raise InputError(f"trigger rule: nested deeper than {MAX_DEPTH}") from None
    return rule


# -- compiling the tree into numpy operations -------------------------------------------


def _operand(node: Any, rule: Rule, depth: int) -> tuple[str, Callable]:
    """(kind, fn(frame) -> array or scalar): kind is "num", "str", "bool" or "meta"."""
    kind = node.data if hasattr(node, "data") else None
    if kind == "field":
        names = [str(t) for t in node.children]
        if len(names) == 2:
            if names[0] != "meta":
                raise InputError(f"trigger rule: unknown field {'.'.join(names)!r} (only "
                                 "meta.NAME has a dot)")
            key = f"meta.{names[1]}"
            rule.fields.add(key)
            return "meta", lambda f, k=key: f[k]
        name = names[0]
        if name not in FIELDS:
            raise InputError(f"trigger rule: unknown field {name!r}; fields: "
                             f"{', '.join(sorted(FIELDS))}, meta.NAME, similar(\"id\", ...)")
        rule.fields.add(name)
        return ("num" if name in NUMERIC else "str"), lambda f, k=name: f[k]
    if kind == "call":
        ids = [_unquote(str(t)) for t in node.children]
        rule.exemplars.append(ids)
        key = "similar:" + "\x00".join(ids)
        rule.fields.add(key)
        return "num", lambda f, k=key: f[k]
    if kind == "string":
        v = _unquote(str(node.children[0]))
        return "str", lambda f, v=v: v
    if kind == "number":
        v = float(node.children[0])
        return "num", lambda f, v=v: v
    if kind in ("true", "false"):
        v = kind == "true"
        return "bool", lambda f, v=v: v
    raise InputError(f"trigger rule: {kind or node!r} cannot be compared")


def _n(frame: dict) -> int:
    return int(frame["__n__"])


def _as_num(x: Any, n: int) -> np.ndarray:
    """Numbers (NaN where a value is not a number) as float64 (n,)."""
    if np.isscalar(x) or x is None:
        try:
            return np.full(n, float(x), np.float64)
        except (TypeError, ValueError):
            return np.full(n, np.nan)
    a = np.asarray(x)
    if a.dtype.kind in "fiub":
        return a.astype(np.float64)
    out = np.full(len(a), np.nan)
    for i, v in enumerate(a.tolist()):
        if isinstance(v, bool):
            out[i] = float(v)
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def _as_str(x: Any, n: int) -> np.ndarray:
    if x is None or np.isscalar(x):
        return np.full(n, None if x is None else str(x), dtype=object)
    return np.array([None if v is None else str(v) for v in np.asarray(x, dtype=object)],
                    dtype=object)


_CMP = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
        ">": np.greater, ">=": np.greater_equal}


def _text_cmp(op: str, lf: Callable, rf: Callable) -> Callable:
    """== / != as text; a missing value (None) never compares."""
    def run(f: dict) -> np.ndarray:
        n = _n(f)
        a, b = _as_str(_boolstr(lf(f)), n), _as_str(_boolstr(rf(f)), n)
        both = np.array([x is not None and y is not None for x, y in zip(a, b, strict=True)],
                        dtype=bool)
        eq = np.array([x == y for x, y in zip(a, b, strict=True)], dtype=bool) & both
        return eq if op == "==" else both & ~eq
    return run


def _num_cmp(op: str, lf: Callable, rf: Callable) -> Callable:
    """Numeric comparison; a value that is not a number never compares."""
    def run(f: dict) -> np.ndarray:
        n = _n(f)
        a, b = _as_num(lf(f), n), _as_num(rf(f), n)
        with np.errstate(invalid="ignore"):
            out = _CMP[op](a, b)
        return out & ~(np.isnan(a) | np.isnan(b))
    return run


def _boolstr(x: Any) -> Any:
    """JSON booleans and the literals true/false compare as "True"/"False"."""
    if x is True or x is False:
        return str(x)
    if isinstance(x, np.ndarray) and x.dtype == object:
        return np.array([str(v) if v is True or v is False else v for v in x.tolist()],
                        dtype=object)
    return x


def _compare(op: str, lk: str, lf: Callable, rk: str, rf: Callable) -> Callable:
    kinds = {lk, rk}
    if "bool" in kinds and not kinds <= {"bool", "meta"}:
        raise InputError("trigger rule: true/false compares only with meta fields")
    if kinds == {"num", "str"}:
        raise InputError("trigger rule: a number compared with text never holds")
    textual = "bool" in kinds or "str" in kinds or (kinds == {"meta"} and op in ("==", "!="))
    if textual:
        if op not in ("==", "!="):
            raise InputError(f"trigger rule: text compares by == or !=, not {op}")
        return _text_cmp(op, lf, rf)
    return _num_cmp(op, lf, rf)


def _compile(node: Any, rule: Rule, depth: int) -> Callable:
    if depth > MAX_DEPTH:
        raise InputError(f"trigger rule: nested deeper than {MAX_DEPTH}")
    kind = node.data
    if kind in ("or_", "and_"):
        a = _compile(node.children[0], rule, depth + 1)
        b = _compile(node.children[1], rule, depth + 1)
        return (lambda f: a(f) | b(f)) if kind == "or_" else (lambda f: a(f) & b(f))
    if kind == "not_":
        a = _compile(node.children[0], rule, depth + 1)
        return lambda f: ~a(f)
    if kind == "compare":
        left, op, right = node.children
        lk, lf = _operand(left, rule, depth + 1)
        rk, rf = _operand(right, rule, depth + 1)
        return _compare(str(op), lk, lf, rk, rf)
    if kind == "in_":
        lk, lf = _operand(node.children[0], rule, depth + 1)
        values = [_operand(c, rule, depth + 1) for c in node.children[1:] if c is not None]
        if lk == "num" and any(k == "str" for k, _ in values):
            raise InputError("trigger rule: a number is never in a list of text")
        checks = [_compare("==", lk, lf, k, v) for k, v in values]
        return lambda f: np.logical_or.reduce([c(f) for c in checks]) if checks \
            else np.zeros(_n(f), bool)
    if kind == "contains":
        lk, lf = _operand(node.children[0], rule, depth + 1)
        if lk not in ("str", "meta"):
            raise InputError("trigger rule: contains applies to text fields")
        needle = _unquote(str(node.children[1])).lower()
        return lambda f: np.array([v is not None and needle in v.lower()
                                   for v in _as_str(lf(f), _n(f))], dtype=bool)
    if kind in ("field", "call", "string", "number", "true", "false"):
        k, fn = _operand(node, rule, depth + 1)
        if k == "bool":
            return lambda f, fn=fn: np.full(_n(f), bool(fn(f)))
        raise InputError("trigger rule: a field alone is not a condition (compare it: "
                         "confidence < 0.5)")
    raise InputError(f"trigger rule: unexpected {kind}")
