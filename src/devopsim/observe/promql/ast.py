"""Parse PromQL into a small typed syntax tree, keeping to the supported subset.

Parsing is done by ``promql-parser`` (PyPI), the Python binding of GreptimeDB's
Rust ``promql-parser`` crate. We chose it because it is a complete parser of
Prometheus' grammar (operator precedence, vector-matching modifiers, duration
syntax, the parser's own type checks such as "comparisons between scalars must
use BOOL"), is actively maintained (releases through 2025/2026), ships binary
wheels, and is typed. The alternatives on PyPI either build queries rather than
parse them (``promql-builder``, ``pangolier``, ``promcraft``) or are unmaintained
(``promqlpy``, last release 2022). Its tree is converted here into frozen
dataclasses so that the evaluator is independent of the binding, and every
construct outside the documented subset is rejected up front with a
:class:`PromQLError` naming the construct and listing what is supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Literal

from devopsim.errors import ConfigError, Issue

__all__ = [
    "AGGREGATIONS",
    "FUNCTIONS",
    "Aggregate",
    "Binary",
    "Call",
    "Matcher",
    "MatrixSel",
    "Node",
    "Number",
    "PromQLError",
    "Selector",
    "StringLit",
    "Unary",
    "parse",
]

ValueType = Literal["vector", "scalar", "matrix", "string"]


class PromQLError(ConfigError):
    """A PromQL expression is malformed or outside the supported subset."""

    def __init__(self, expr: str, message: str) -> None:
        self.expr = expr
        super().__init__([Issue(file="<promql>", line=None, path="", message=f"{message} (in {expr!r})")])


#: Functions over a range vector (``f(sel[5m])``), evaluated per series.
RANGE_FUNCTIONS = (
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
)
#: Functions over instant vectors and scalars.
INSTANT_FUNCTIONS = (
    "abs",
    "ceil",
    "floor",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "absent",
    "scalar",
    "vector",
    "time",
    "histogram_quantile",
    "sort",
    "sort_desc",
)
FUNCTIONS = RANGE_FUNCTIONS + INSTANT_FUNCTIONS
AGGREGATIONS = (
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
)
BINARY_OPS = ("+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless")
COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")
SET_OPS = ("and", "or", "unless")

SUPPORTED = (
    "selectors with =, !=, =~, !~ matchers, range selectors [d], offset d; number literals, parentheses, "
    "unary minus; binary " + " ".join(BINARY_OPS) + " with bool, on/ignoring, group_left/group_right; "
    "aggregations " + ", ".join(AGGREGATIONS) + " with by/without; functions " + ", ".join(FUNCTIONS)
)


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``op`` is ``=``, ``!=``, ``=~`` or ``!~``."""

    name: str
    op: str
    value: str


@dataclass(frozen=True)
class Number:
    """A number literal."""

    value: float


@dataclass(frozen=True)
class StringLit:
    """A string literal (only as a function argument; not evaluated on its own)."""

    value: str


@dataclass(frozen=True)
class Selector:
    """An instant vector selector; ``offset_ms`` shifts it back in time."""

    matchers: tuple[Matcher, ...]
    offset_ms: int


@dataclass(frozen=True)
class MatrixSel:
    """A range vector selector ``sel[range]``."""

    selector: Selector
    range_ms: int


@dataclass(frozen=True)
class Call:
    """A function call."""

    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Aggregate:
    """An aggregation; ``without`` False means ``by`` (or no grouping: empty ``labels``)."""

    op: str
    expr: Node
    param: Node | None
    labels: tuple[str, ...]
    without: bool


@dataclass(frozen=True)
class Binary:
    """A binary operation. ``on`` is None without a matching clause, else True (on) / False (ignoring)."""

    op: str
    lhs: Node
    rhs: Node
    return_bool: bool
    card: str  # one-to-one, many-to-one, one-to-many, many-to-many
    on: bool | None
    matching: tuple[str, ...]
    include: tuple[str, ...]


@dataclass(frozen=True)
class Unary:
    """Unary minus."""

    expr: Node


Node = Number | StringLit | Selector | MatrixSel | Call | Aggregate | Binary | Unary


def _ms(d: timedelta | None) -> int:
    if d is None:
        return 0
    return round(d.total_seconds() * 1000)


_CARD = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}
_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


class _Converter:
    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, message: str) -> PromQLError:
        return PromQLError(self.text, f"{message}; supported: {SUPPORTED}")

    def convert(self, e: object) -> Node:
        import promql_parser as pp

        if isinstance(e, pp.ParenExpr):
            return self.convert(e.expr)
        if isinstance(e, pp.NumberLiteral):
            return Number(float(e.val))
        if isinstance(e, pp.StringLiteral):
            return StringLit(str(e.val))
        if isinstance(e, pp.VectorSelector):
            return self.selector(e)
        if isinstance(e, pp.MatrixSelector):
            return MatrixSel(self.selector(e.vector_selector), _ms(e.range))
        if isinstance(e, pp.SubqueryExpr):
            raise self.fail("subqueries (expr[range:step]) are not supported")
        if isinstance(e, pp.UnaryExpr):
            return Unary(self.convert(e.expr))
        if isinstance(e, pp.Call):
            name = e.func.name
            if name not in FUNCTIONS:
                raise self.fail(f"function {name}() is not supported")
            args = tuple(self.convert(a) for a in e.args)
            for a in args:
                if isinstance(a, StringLit):
                    raise self.fail(f"string arguments to {name}() are not supported")
            return Call(name, args)
        if isinstance(e, pp.AggregateExpr):
            op = str(e.op)
            if op not in AGGREGATIONS:
                raise self.fail(f"aggregation {op}() is not supported")
            labels: tuple[str, ...] = ()
            without = False
            if e.modifier is not None:
                labels = tuple(e.modifier.labels)
                without = e.modifier.type == pp.AggModifierType.Without
            param = self.convert(e.param) if e.param is not None else None
            return Aggregate(op, self.convert(e.expr), param, labels, without)
        if isinstance(e, pp.BinaryExpr):
            op = str(e.op)
            if op not in BINARY_OPS:
                raise self.fail(f"binary operator {op} is not supported")
            lhs, rhs = self.convert(e.lhs), self.convert(e.rhs)
            m = e.modifier
            card = "many-to-many" if op in SET_OPS else "one-to-one"
            on: bool | None = None
            matching: tuple[str, ...] = ()
            include: tuple[str, ...] = ()
            rb = False
            if m is not None:
                fill = getattr(m, "fill_values", None)
                if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                    raise self.fail("fill modifiers are not supported")
                card = _CARD[str(m.card).rsplit(".", 1)[-1]] if m.card is not None else card
                rb = bool(m.return_bool)
                if m.matching is not None:
                    on = m.matching.type == pp.LabelModifierType.Include
                    matching = tuple(m.matching.labels)
                include = tuple(m.group_labels or ())
            return Binary(op, lhs, rhs, rb, card, on, matching, include)
        raise self.fail(f"{type(e).__name__} is not supported")

    def selector(self, vs: object) -> Selector:
        import promql_parser as pp

        assert isinstance(vs, pp.VectorSelector)
        if vs.at is not None:
            raise self.fail("the @ modifier is not supported")
        if vs.matchers.or_matchers:
            raise self.fail("'or' inside a selector's braces is not supported")
        ms: list[Matcher] = []
        if vs.name is not None:
            ms.append(Matcher("__name__", "=", vs.name))
        for m in vs.matchers.matchers:
            ms.append(Matcher(m.name, _MATCH_OPS[str(m.op).rsplit(".", 1)[-1]], m.value))
        return Selector(tuple(ms), _ms(vs.offset))


def value_type(node: Node) -> ValueType:
    """The PromQL type of an expression's result."""
    if isinstance(node, Number):
        return "scalar"
    if isinstance(node, StringLit):
        return "string"
    if isinstance(node, MatrixSel):
        return "matrix"
    if isinstance(node, Call):
        return "scalar" if node.func in ("scalar", "time") else "vector"
    if isinstance(node, Binary):
        if value_type(node.lhs) == "scalar" and value_type(node.rhs) == "scalar":
            return "scalar"
        return "vector"
    if isinstance(node, Unary):
        return value_type(node.expr)
    return "vector"


@lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """Parse ``text`` into the syntax tree, or raise :class:`PromQLError`."""
    import promql_parser as pp

    if not text.strip():
        raise PromQLError(text, "empty expression")
    try:
        tree = pp.parse(text)
    except (ValueError, TypeError) as exc:
        raise PromQLError(text, f"malformed PromQL: {exc}") from None
    return _Converter(text).convert(tree)
