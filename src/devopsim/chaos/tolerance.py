"""Tolerances: whether a probe's output is what the steady-state hypothesis expects.

Chaos Toolkit's rules (``chaoslib/hypothesis.py``), dispatched on the tolerance's type:

============================================ ===============================================
tolerance                                    passes when
============================================ ===============================================
bool, string, int                            the value equals it (an int is compared with
                                             ``value["status"]`` when the value has one)
list of two numbers                          ``lo <= value <= hi`` (or ``value["status"]``
                                             is one of them)
any other list                               the value is a member
``{type: regex, pattern, target?}``          the pattern matches (``re.search``)
``{type: jsonpath, path, expect?, count?,    the path finds values (all equal to
target?}``                                   ``expect``; exactly ``count`` of them)
``{type: range, range: [lo, hi], target?}``  the value is in the range
``{type: probe, provider}``                  the probe, given ``value``, returns true
============================================ ===============================================

JSONPath is the subset experiments use: ``$``, ``.name``, ``['name']``, ``[n]``,
``[*]``, ``.*`` and ``..name`` (recursive descent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import singledispatch
from typing import Any

from devopsim.errors import ChaosError

__all__ = ["jsonpath", "within_tolerance"]

ProbeRunner = Callable[[dict[str, Any], Any], Any]

_TOKEN = re.compile(
    r"\.\.([A-Za-z_][\w-]*|\*)|\.([A-Za-z_][\w-]*|\*)|\[\s*(\*|-?\d+|'[^']*'|\"[^\"]*\")\s*\]"
)


def jsonpath(path: str, value: Any) -> list[Any]:
    """Values of ``value`` at JSONPath ``path`` (the subset in the module docstring).

    Raises:
        ChaosError: the path is not in the supported subset.
    """
    path = path.strip()
    if not path.startswith("$"):
        raise ChaosError(f"a JSONPath starts with $ (got {path!r})")
    pos, nodes = 1, [value]
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None:
            raise ChaosError(f"unsupported JSONPath {path!r} at {path[pos:]!r}")
        pos = m.end()
        deep, name, idx = m.group(1), m.group(2), m.group(3)
        out: list[Any] = []
        if deep is not None:
            for n in nodes:
                out.extend(_descend(n, deep))
        elif name is not None:
            for n in nodes:
                out.extend(_child(n, name))
        else:
            assert idx is not None
            key: Any = idx[1:-1] if idx[0] in "'\"" else idx
            for n in nodes:
                if key == "*" or (isinstance(key, str) and not key.lstrip("-").isdigit()):
                    out.extend(_child(n, key))
                elif isinstance(n, list):
                    k = int(key)
                    if -len(n) <= k < len(n):
                        out.append(n[k])
        nodes = out
    return nodes


def _child(n: Any, name: str) -> list[Any]:
    if name == "*":
        return list(n.values()) if isinstance(n, dict) else list(n) if isinstance(n, list) else []
    return [n[name]] if isinstance(n, dict) and name in n else []


def _descend(n: Any, name: str) -> list[Any]:
    out = _child(n, name)
    kids = n.values() if isinstance(n, dict) else n if isinstance(n, list) else []
    for k in kids:
        out.extend(_descend(k, name))
    return out


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _target(value: Any, tolerance: dict[str, Any]) -> Any:
    t = tolerance.get("target")
    if t is None:
        return value
    if isinstance(value, dict):
        return value.get(t)
    return None


def within_tolerance(tolerance: Any, value: Any, run_probe: ProbeRunner | None = None) -> bool:
    """Whether ``value`` satisfies ``tolerance`` (Chaos Toolkit's rules).

    Raises:
        ChaosError: the tolerance is malformed.
    """
    return _check(tolerance, value, run_probe)


@singledispatch
def _check(tolerance: Any, value: Any, run_probe: ProbeRunner | None) -> bool:
    raise ChaosError(f"unsupported tolerance {tolerance!r}")


@_check.register
def _(tolerance: bool, value: Any, run_probe: ProbeRunner | None) -> bool:
    return value is tolerance or (isinstance(value, bool) and value == tolerance)


@_check.register
def _(tolerance: str, value: Any, run_probe: ProbeRunner | None) -> bool:
    return bool(value == tolerance)


@_check.register(int)
@_check.register(float)
def _(tolerance: float, value: Any, run_probe: ProbeRunner | None) -> bool:
    if isinstance(value, dict) and "status" in value:
        value = value["status"]
    v = _num(value)
    return v is not None and v == float(tolerance)


@_check.register
def _(tolerance: list, value: Any, run_probe: ProbeRunner | None) -> bool:  # type: ignore[type-arg]
    if isinstance(value, dict) and "status" in value:
        return value["status"] in tolerance
    if len(tolerance) == 2 and all(_num(x) is not None and not isinstance(x, str) for x in tolerance):
        v = _num(value)
        lo, hi = float(tolerance[0]), float(tolerance[1])
        return v is not None and not math.isnan(v) and lo <= v <= hi
    return value in tolerance


@_check.register
def _(tolerance: dict, value: Any, run_probe: ProbeRunner | None) -> bool:  # type: ignore[type-arg]
    kind = tolerance.get("type")
    if kind == "range":
        rng = tolerance.get("range")
        if not isinstance(rng, list) or len(rng) != 2:
            raise ChaosError(f"a range tolerance needs range: [lo, hi] (got {rng!r})")
        v = _num(_target(value, tolerance))
        return v is not None and not math.isnan(v) and float(rng[0]) <= v <= float(rng[1])
    if kind == "regex":
        pattern = tolerance.get("pattern")
        if not isinstance(pattern, str):
            raise ChaosError("a regex tolerance needs a pattern")
        v = _target(value, tolerance)
        return v is not None and re.search(pattern, v if isinstance(v, str) else str(v)) is not None
    if kind == "jsonpath":
        path = tolerance.get("path")
        if not isinstance(path, str):
            raise ChaosError("a jsonpath tolerance needs a path")
        found = jsonpath(path, _target(value, tolerance))
        if "count" in tolerance and len(found) != int(tolerance["count"]):
            return False
        if "expect" in tolerance:
            expect = tolerance["expect"]
            if not found:
                return False
            if isinstance(expect, list) and not any(isinstance(f, list) for f in found):
                return found == expect
            return all(_equal(f, expect) for f in found)
        return bool(found)
    if kind == "probe":
        if run_probe is None:
            raise ChaosError("a probe tolerance needs a probe runner")
        return bool(run_probe(tolerance.get("provider") or {}, value))
    raise ChaosError(f"unknown tolerance type {kind!r}; expected range, regex, jsonpath or probe")


def _equal(found: Any, expect: Any) -> bool:
    a, b = _num(found), _num(expect)
    if a is not None and b is not None and not isinstance(found, bool):
        return a == b
    return bool(found == expect)
