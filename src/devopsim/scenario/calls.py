"""Parse the small call syntax used by distributions and rate patterns.

``name(arg, arg, key=value)``: positional and keyword arguments, split on
top-level commas, so ``step(100/s, 30m: 200/s)`` and ``uniform(1ms, 5ms)``
both work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Call", "bind_args", "parse_call"]

_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\((.*)\)\s*", re.DOTALL)


@dataclass(frozen=True)
class Call:
    """A parsed ``name(args)`` expression."""

    name: str
    args: tuple[str, ...]
    kwargs: dict[str, str]


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    tail = "".join(cur).strip()
    if tail or parts:
        parts.append(tail)
    return parts


def parse_call(text: str) -> Call | None:
    """Parse ``name(a, b, k=v)``; return ``None`` when ``text`` is not a call.

    Raises:
        ValueError: an argument is empty or a positional argument follows a keyword.
    """
    m = _CALL.fullmatch(text)
    if not m:
        return None
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for part in _split_top(m.group(2)):
        if not part:
            raise ValueError(f"empty argument in {text.strip()!r}")
        km = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)", part, re.DOTALL)
        if km:
            kwargs[km.group(1)] = km.group(2).strip()
        else:
            if kwargs:
                raise ValueError(f"positional argument after keyword arguments in {text.strip()!r}")
            args.append(part)
    return Call(m.group(1).lower(), tuple(args), kwargs)


def bind_args(
    name: str,
    args: tuple[str, ...],
    kwargs: dict[str, str],
    params: list[str],
    optional: dict[str, str] | None = None,
) -> dict[str, str]:
    """Match a call's arguments to parameter names, positionally then by keyword.

    Args:
        name: the call's name, for messages.
        args, kwargs: the call's arguments.
        params: required parameters, in order.
        optional: optional parameters (after the required ones) and their defaults.

    Raises:
        ValueError: too many arguments, an unknown or repeated keyword, or a missing one.
    """
    optional = optional or {}
    names = params + list(optional)
    if len(args) > len(names):
        raise ValueError(f"{name}() takes at most {len(names)} argument(s): {', '.join(names)}")
    bound = dict(zip(names, args, strict=False))
    for k, v in kwargs.items():
        if k not in names:
            raise ValueError(f"{name}() has no argument {k!r}; it takes {', '.join(names)}")
        if k in bound:
            raise ValueError(f"{name}() got {k!r} twice")
        bound[k] = v
    missing = [p for p in params if p not in bound]
    if missing:
        raise ValueError(f"{name}() needs {', '.join(missing)}")
    for k, v in optional.items():
        bound.setdefault(k, v)
    return bound
