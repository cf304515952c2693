"""Label-matcher regular expressions: RE2 syntax (as Prometheus reads it) compiled for Python's
``re`` (moved out of :mod:`devopsim.observe.promql.select`, unchanged)."""

from __future__ import annotations

import re

__all__ = ["compile_matcher"]

_RE_CACHE: dict[tuple[str, bool], re.Pattern[str]] = {}


def compile_matcher(pattern: str, dotall: bool) -> re.Pattern[str]:
    """A label matcher's RE2 pattern as an anchored-by-fullmatch Python pattern (compiled once)."""
    key = (pattern, dotall)
    rx = _RE_CACHE.get(key)
    if rx is None:
        try:
            rx = re.compile(f"(?:{_scope_inline_flags(pattern)})", re.DOTALL if dotall else 0)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        _RE_CACHE[key] = rx
    return rx


_FLAG = re.compile(r"\(\?([imsU]+)\)")


def _scope_inline_flags(pattern: str) -> str:
    """Rewrite RE2's ``(?i)`` (flags to the end of the enclosing group) as Python's ``(?i:...)``."""
    if "(?" not in pattern:
        return pattern
    out: list[str] = []
    opened: list[int] = [0]  # per open group: how many scoped-flag groups to close with it
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
        elif (m := _FLAG.match(pattern, i)) is not None:
            flags = m.group(1).replace("U", "")
            if flags:
                out.append(f"(?{flags}:")
                opened[-1] += 1
            i = m.end()
            continue
        elif c == "(":
            opened.append(0)
            out.append(c)
        elif c == ")":
            if len(opened) < 2:
                raise re.error("unbalanced parenthesis")
            out.append(")" * opened.pop() + ")")
        else:
            out.append(c)
        i += 1
    out.append(")" * opened[0])
    return "".join(out)
