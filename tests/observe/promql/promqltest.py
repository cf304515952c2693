"""A runner of Prometheus' promqltest scripts (``load`` / ``clear`` / ``eval``) against our Engine.

The format is described in ``shared/data/promql/README-promqltest.md``. Cases
whose data or expression lie outside what devopsim supports are not run but
classified, with the reason, so the report says exactly what was left out:

* ``data: native histogram`` / ``data: load_with_nhcb`` (``stale`` loads as a staleness marker):
  the case reads series loaded with features the twin's store does not have;
* ``expects ...``: the expected result is a histogram, a string or a range vector;
* ``outside subset``: our parser rejects a construct Prometheus accepts (the
  PromQLError message names it), e.g. subqueries, ``@``, ``label_replace``.

Everything else runs and must pass. Annotations (``expect warn``/``info``) are
not produced by our engine and are not checked; results still are.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devopsim.observe.promql import Engine, PromQLError, check
from devopsim.observe.promql.ast import Aggregate, Binary, Call, MatrixSel, Node, Selector, Unary, parse
from devopsim.observe.store import STALE_NAN, MetricStore, is_stale

__all__ = ["Outcome", "run_file"]

_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def duration(text: str) -> float:
    """Seconds in a Prometheus duration (``1h30m``, ``10s53ms``) or a plain number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DUR.finditer(text):
        if m.start() != pos:
            raise ValueError(f"bad duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"bad duration {text!r}")
    return total


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_STR = r'"(?:[^"\\]|\\.)*"'
_PAIR = re.compile(rf"\s*({_NAME}|{_STR})\s*(=\s*({_STR}))?\s*,?")


def _unquote(s: str) -> str:
    return bytes(s[1:-1], "utf-8").decode("unicode_escape") if "\\" in s else s[1:-1]


def parse_series(text: str) -> tuple[dict[str, str], str]:
    """``metric{a="b"} rest`` -> (labels with ``__name__``, rest)."""
    text = text.strip()
    labels: dict[str, str] = {}
    m = re.match(_NAME, text)
    if m and not text.startswith("{"):
        labels["__name__"] = m.group(0)
        text = text[m.end() :]
    if text.startswith("{"):
        end = _closing_brace(text)
        inner = text[1:end]
        pos = 0
        while pos < len(inner):
            pm = _PAIR.match(inner, pos)
            if not pm or pm.end() == pos:
                raise ValueError(f"bad series {text!r}")
            key = pm.group(1)
            if pm.group(3) is None:  # {"metric.name"}: a quoted metric name
                labels["__name__"] = _unquote(key)
            else:
                labels[_unquote(key) if key.startswith('"') else key] = _unquote(pm.group(3))
            pos = pm.end()
        text = text[end + 1 :]
    return labels, text.strip()


def _closing_brace(text: str) -> int:
    in_str = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "}":
            return i
        i += 1
    raise ValueError(f"unclosed brace in {text!r}")


class Unsupported(Exception):
    """The case uses something outside devopsim's support; the message says what."""


def _number(tok: str) -> float:
    low = tok.lower()
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    return float(tok)


def expand_points(text: str) -> list[float | None]:
    """Expand ``1 2+3x2 _ _x3 4x2`` into values (None = no sample)."""
    if "{{" in text:
        raise Unsupported("data: native histogram")
    out: list[float | None] = []
    for tok in text.split():
        if tok == "stale":
            out.append(STALE_NAN)  # a staleness marker
            continue
        if tok.startswith("stale"):
            raise Unsupported("data: stale marker")
        if tok == "_":
            out.append(None)
            continue
        m = re.fullmatch(r"_x(\d+)", tok)
        if m:
            out.extend([None] * int(m.group(1)))
            continue
        m = re.fullmatch(r"([-+]?[^x+-]+(?:e[-+]?\d+)?)([-+][^x]+)x(\d+)", tok)
        if m:
            start, step, n = _number(m.group(1)), _number(m.group(2)), int(m.group(3))
            out.extend(start + step * i for i in range(n + 1))
            continue
        m = re.fullmatch(r"(.+)x(\d+)", tok)
        if m:
            out.extend([_number(m.group(1))] * (int(m.group(2)) + 1))
            continue
        out.append(_number(tok))
    return out


@dataclass
class Case:
    """One ``eval`` command."""

    line: int
    expr: str
    instant_at: float | None = None
    range_: tuple[float, float, float] | None = None
    fail: bool = False
    ordered: bool = False
    expected: list[tuple[dict[str, str] | None, str]] = field(default_factory=list)
    unsupported: str | None = None


@dataclass
class Outcome:
    """What happened to one case."""

    file: str
    line: int
    expr: str
    status: str  # passed | failed | skipped
    reason: str = ""


def _selectors(node: Node) -> list[Selector]:
    if isinstance(node, Selector):
        return [node]
    if isinstance(node, MatrixSel):
        return [node.selector]
    if isinstance(node, Unary):
        return _selectors(node.expr)
    if isinstance(node, Binary):
        return _selectors(node.lhs) + _selectors(node.rhs)
    if isinstance(node, Aggregate):
        return _selectors(node.expr) + (_selectors(node.param) if node.param is not None else [])
    if isinstance(node, Call):
        return [s for a in node.args for s in _selectors(a)]
    return []


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


class Script:
    """State of one test script: loaded series, tainted metric names, the engine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.series: dict[tuple[tuple[str, str], ...], dict[float, float]] = {}
        self.tainted: dict[str, str] = {}  # metric name -> reason
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:

            def split(k: tuple[tuple[str, str], ...]) -> tuple[str, dict[str, str]]:
                return dict(k)["__name__"], {a: b for a, b in k if a != "__name__"}

            def real(pts: dict[float, float]) -> list[tuple[float, float]]:
                return [(t, v) for t, v in sorted(pts.items()) if not is_stale(np.array([v]))[0]]

            store = MetricStore.from_series([(*split(k), real(pts)) for k, pts in self.series.items()])
            for k, pts in self.series.items():
                for t, v in sorted(pts.items()):
                    if is_stale(np.array([v]))[0]:
                        store.mark_stale(t, np.array([store.series(*split(k))]))
            self._engine = Engine(store)
        return self._engine

    def load(self, interval: float, lines: list[str]) -> None:
        self._engine = None
        for text in lines:
            labels, rest = parse_series(text)
            name = labels.get("__name__", "")
            try:
                values = expand_points(rest)
            except Unsupported as exc:
                self.tainted[name] = str(exc)
                continue
            key = tuple(sorted(labels.items()))
            pts = self.series.setdefault(key, {})
            for i, v in enumerate(values):
                if v is not None:
                    pts[round(i * interval * 1000) / 1000] = v

    def clear(self) -> None:
        self.series.clear()
        self.tainted.clear()
        self._engine = None

    def skip_reason(self, case: Case) -> str | None:
        if case.unsupported:
            return case.unsupported
        try:
            check(case.expr)
        except PromQLError as exc:
            if case.fail:
                return None  # we reject it too: run it, it passes
            msg = str(exc).split(";")[0].split(" (in ")[0]
            return f"outside subset: {msg.split(': ', 1)[-1]}"
        if self.tainted:
            for sel in _selectors(parse(case.expr)):
                names = [m.value for m in sel.matchers if m.name == "__name__" and m.op == "="]
                if not names:
                    return next(iter(self.tainted.values()))
                if names[0] in self.tainted:
                    return self.tainted[names[0]]
        return None

    def run(self, case: Case) -> Outcome:
        def out(status: str, reason: str = "") -> Outcome:
            return Outcome(self.path.name, case.line, case.expr, status, reason)

        reason = self.skip_reason(case)
        if reason:
            return out("skipped", reason)
        try:
            if case.range_ is not None:
                got_r = self.engine().range(case.expr, *case.range_)
                result: object = got_r
            else:
                assert case.instant_at is not None
                result = self.engine().instant(case.expr, case.instant_at)
        except PromQLError as exc:
            return out("passed") if case.fail else out("failed", f"unexpected error: {exc}")
        if case.fail:
            return out("failed", "expected an error, got a result")
        try:
            problem = self._compare(case, result)
        except Unsupported as exc:
            return out("skipped", str(exc))
        return out("failed", problem) if problem else out("passed")

    def _compare(self, case: Case, result: object) -> str | None:
        if case.range_ is not None:
            return self._compare_range(case, result)  # type: ignore[arg-type]
        if isinstance(result, float):
            scalars = [v for lab, v in case.expected if lab is None]
            if len(scalars) != 1 or len(case.expected) != 1:
                return f"got scalar {result}, expected {case.expected}"
            exp = expand_points(scalars[0])
            if len(exp) != 1 or exp[0] is None or not _close(result, exp[0]):
                return f"got {result}, expected {scalars[0]}"
            return None
        assert isinstance(result, list)
        want: list[tuple[tuple[tuple[str, str], ...], float]] = []
        for lab, text in case.expected:
            if lab is None:
                return f"expected scalar {text}, got a vector"
            vals = expand_points(text)
            if len(vals) != 1 or vals[0] is None:
                return f"bad expected value {text!r}"
            want.append((tuple(sorted(lab.items())), vals[0]))
        have = [(tuple(sorted(s.labels.items())), s.value) for s in result]
        if case.ordered and [w[0] for w in want] != [h[0] for h in have]:
            return f"order: got {[h[0] for h in have]}, expected {[w[0] for w in want]}"
        if sorted(w[0] for w in want) != sorted(h[0] for h in have):
            return f"labels: got {sorted(h[0] for h in have)}, expected {sorted(w[0] for w in want)}"
        wd, hd = dict(want), dict(have)
        bad = {k: (wd[k], hd[k]) for k in wd if not _close(hd[k], wd[k])}
        return f"values (expected, got): {bad}" if bad else None

    def _compare_range(self, case: Case, result: list[tuple[dict[str, str], object, object]]) -> str | None:
        assert case.range_ is not None
        start, end, step = case.range_
        n_steps = round((end - start) / step) + 1
        want: dict[tuple[tuple[str, str], ...], dict[float, float]] = {}
        for lab, text in case.expected:
            vals = expand_points(text)
            key = tuple(sorted((lab or {}).items()))
            want[key] = {round(start + i * step, 3): v for i, v in enumerate(vals[:n_steps]) if v is not None}
        have = {
            tuple(sorted(lab.items())): {round(float(t), 3): float(v) for t, v in zip(ts, vs, strict=True)}  # type: ignore[call-overload]
            for lab, ts, vs in result
        }
        want = {k: v for k, v in want.items() if v}
        if sorted(want) != sorted(have):
            return f"series: got {sorted(have)}, expected {sorted(want)}"
        for key, pts in want.items():
            if sorted(pts) != sorted(have[key]):
                return f"{key}: times got {sorted(have[key])}, expected {sorted(pts)}"
            bad = {t: (pts[t], have[key][t]) for t in pts if not _close(have[key][t], pts[t])}
            if bad:
                return f"{key}: values (expected, got) {bad}"
        return None


_EVAL = re.compile(r"^eval(_fail|_warn|_info|_ordered)?\s+(instant|range)\s+(.*)$")


def _parse_eval(m: re.Match[str], lineno: int) -> Case:
    variant, kind, rest = m.group(1) or "", m.group(2), m.group(3)
    if kind == "instant":
        mm = re.match(r"at\s+(\S+)\s+(.*)$", rest)
        if not mm:
            raise ValueError(f"line {lineno}: bad eval: {rest}")
        case = Case(lineno, mm.group(2).strip(), instant_at=duration(mm.group(1)))
    else:
        mm = re.match(r"from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.*)$", rest)
        if not mm:
            raise ValueError(f"line {lineno}: bad eval: {rest}")
        case = Case(
            lineno,
            mm.group(4).strip(),
            range_=(duration(mm.group(1)), duration(mm.group(2)), duration(mm.group(3))),
        )
    case.fail = variant == "_fail"
    case.ordered = variant == "_ordered"
    return case


def _add_expectation(case: Case, line: str) -> None:
    parts = line.split(None, 2)
    kind = parts[1] if len(parts) > 1 else ""
    if kind == "fail":
        case.fail = True
    elif kind == "ordered":
        case.ordered = True
    elif kind == "string":
        case.unsupported = "expects a string result"
    elif kind == "range":
        case.unsupported = "expects a range vector result"


def run_file(path: Path, on_case: Callable[[Engine, Case, Outcome], None] | None = None) -> list[Outcome]:
    """Run every case of one script; each gets an Outcome (and goes to ``on_case`` with the
    engine over the script's data at that point, when given)."""
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    lines = ["" if ln.startswith("#") else ln for ln in lines]
    script = Script(path)
    outcomes: list[Outcome] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        block: list[str] = []
        while line != "clear" and i < len(lines) and lines[i]:
            block.append(lines[i])
            i += 1
        if line.startswith("load_with_nhcb"):
            # The classic float series load as usual; the native histograms made from them
            # (named after the family) are what we cannot hold.
            for text in block:
                name = parse_series(text)[0].get("__name__", "")
                if name.endswith(("_bucket", "_sum", "_count")):
                    script.tainted[name.rsplit("_", 1)[0]] = "data: native histogram (load_with_nhcb)"
            script.load(duration(line.split()[1]), block)
            continue
        if line.startswith("load"):
            script.load(duration(line.split()[1]), block)
            continue
        if line == "clear":
            script.clear()
            continue
        m = _EVAL.match(line)
        if not m:
            raise ValueError(f"{path.name}:{i}: unknown command {line!r}")
        case = _parse_eval(m, i)
        for text in block:
            if text.startswith("expect"):
                _add_expectation(case, text)
            elif text.startswith(("expected_fail_message", "expected_fail_regexp")):
                case.fail = True
            elif re.fullmatch(r"[-+]?(\d|\.\d|inf|nan)\S*", text, re.IGNORECASE) and "{" not in text:
                case.expected.append((None, text))
            else:
                try:
                    lab, rest = parse_series(text)
                except ValueError:
                    case.unsupported = f"cannot read expected series {text!r}"
                    continue
                case.expected.append((lab, rest))
        outcomes.append(script.run(case))
        if on_case is not None:
            on_case(script.engine(), case, outcomes[-1])
    return outcomes


def main(paths: list[Path]) -> int:
    """Print the outcome counts and every failure; exit status 1 when a case failed."""
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    failed = 0
    for p in paths:
        outs = run_file(p)
        c = Counter(o.status for o in outs)
        totals.update(c)
        print(
            f"{p.name:24} ran {c['passed'] + c['failed']:4}  passed {c['passed']:4}  skipped {c['skipped']:4}"
        )
        for o in outs:
            if o.status == "skipped":
                reasons[o.reason.split(":")[0] + ": " + o.reason.split(":", 1)[-1].strip()[:60]] += 1
            if o.status == "failed":
                failed += 1
                print(f"  FAIL {o.file}:{o.line} {o.expr}\n       {o.reason[:300]}")
    print(
        f"total: ran {totals['passed'] + totals['failed']}, passed {totals['passed']}, skipped {totals['skipped']}"
    )
    for r, n in reasons.most_common():
        print(f"  skipped {n:4}  {r}")
    return 1 if failed else 0


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "promql"
    files = [Path(a) for a in sys.argv[1:]] or sorted(here.glob("*.test"))
    raise SystemExit(main(files))
