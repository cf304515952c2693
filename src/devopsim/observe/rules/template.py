"""Alert templates: the part of Go's text/template that Prometheus rules use.

Labels and annotations of alerting rules are Go templates. Prometheus runs
them with ``$labels``, ``$value``, ``$externalLabels`` and ``$externalURL``
bound (and ``.Labels``, ``.Value``, ...), missing map keys printing as the
empty string, and its template functions. This module expands the common
forms exactly: ``{{ $labels.x }}``, ``{{ $value }}`` (printed as Go prints a
float64), pipelines such as ``{{ $value | humanize }}``, the ``humanize*``
family, ``printf``, ``toUpper``/``toLower``/``title``, comments and ``{{-``
``-}}`` trimming. Control structures (``if``, ``range``, ``with``...) and
functions that query the database are refused when the rule is loaded,
with what is supported, rather than misprinted at run time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["FUNCTIONS", "Template", "TemplateError", "expand_or_error", "go_float", "go_format_g"]


class TemplateError(ValueError):
    """A template that cannot be parsed, or uses what is not supported."""


def _digits(x: float) -> tuple[str, int]:
    """The shortest decimal digits of ``|x|`` (x != 0) and the position of the decimal point."""
    _, digits, exp = Decimal(repr(abs(x))).as_tuple()
    assert isinstance(exp, int)
    ds = "".join(str(d) for d in digits)
    return ds.rstrip("0"), len(ds) + exp


def _fmt_e(neg: bool, ds: str, dp: int) -> str:
    exp = dp - 1
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if neg else ''}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_float(x: float) -> str:
    """``x`` as Go's ``fmt`` prints a float64 with ``%v`` (shortest ``%g``, exponent from 1e+06)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    neg = math.copysign(1.0, x) < 0
    if x == 0:
        return "-0" if neg else "0"
    ds, dp = _digits(x)
    exp = dp - 1
    if exp < -4 or exp >= 6:  # Go decides with precision 6 when printing the shortest form
        return _fmt_e(neg, ds, dp)
    if dp <= 0:
        body = "0." + "0" * (-dp) + ds
    elif dp >= len(ds):
        body = ds + "0" * (dp - len(ds))
    else:
        body = ds[:dp] + "." + ds[dp:]
    return ("-" if neg else "") + body


def go_format_g(x: float, prec: int) -> str:
    """Go's ``%.<prec>g`` (``NaN``, ``+Inf`` and ``-Inf`` spelled as Go spells them)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"%.{prec}g" % x


_SI_UP = ("k", "M", "G", "T", "P", "E", "Z", "Y")
_SI_DOWN = ("m", "u", "n", "p", "f", "a", "z", "y")


def _humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return go_format_g(v, 4)
    prefix = ""
    if abs(v) >= 1:
        for p in _SI_UP:
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return go_format_g(v, 4) + prefix
    for p in _SI_DOWN:
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return go_format_g(v, 4) + prefix


def _humanize1024(v: float) -> str:
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return go_format_g(v, 4)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return go_format_g(v, 4) + prefix


def _humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return go_format_g(v, 4)
    if v == 0:
        return go_format_g(v, 4) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        d = int(v)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{go_format_g(v, 4)}s"
    prefix = ""
    for p in _SI_DOWN:
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{go_format_g(v, 4)}{prefix}s"


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise TemplateError(f"cannot convert {v!r} to a number")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise TemplateError(f"cannot convert {v!r} to a number") from None
    raise TemplateError(f"cannot convert {v!r} to a number")


def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    it = iter(args)
    pos = 0
    for m in re.finditer(r"%([-+ #0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])", fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        try:
            arg = next(it)
        except StopIteration:
            out.append(f"%!{verb}(MISSING)")
            continue
        spec = f"%{flags}{width or ''}{'.' + prec if prec is not None else ''}"
        if verb in "vs":
            text = go_float(arg) if isinstance(arg, float) else _str(arg)
            out.append((f"%{flags}{width or ''}s") % text)
        elif verb in "fFeEgG":
            out.append((spec + verb) % _to_float(arg))
        elif verb == "d":
            if isinstance(arg, int) and not isinstance(arg, bool):
                out.append((spec + "d") % arg)
            else:
                out.append(f"%!d({type(arg).__name__}={_str(arg)})")
        elif verb == "q":
            out.append('"' + _str(arg).replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            raise TemplateError(f"printf verb %{verb} is not supported")
    out.append(fmt[pos:])
    return "".join(out)


def _str(v: Any) -> str:
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_str(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _title(s: str) -> str:
    return re.sub(r"(^|[^\w])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


FUNCTIONS: dict[str, Any] = {
    "humanize": lambda v: _humanize(_to_float(v)),
    "humanize1024": lambda v: _humanize1024(_to_float(v)),
    "humanizeDuration": lambda v: _humanize_duration(_to_float(v)),
    "humanizePercentage": lambda v: go_format_g(_to_float(v) * 100, 4) + "%",
    "printf": _printf,
    "toUpper": lambda s: _str(s).upper(),
    "toLower": lambda s: _str(s).lower(),
    "title": lambda s: _title(_str(s)),
    "reReplaceAll": lambda pat, repl, text: re.sub(
        pat, re.sub(r"\$(\d+|\{\d+\})", lambda m: "\\g<" + m.group(1).strip("{}") + ">", repl), _str(text)
    ),
}
"""Template functions devopsim implements (Prometheus' names and behaviour)."""

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<var>\$[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|\$)
  | (?P<field>(?:\.[A-Za-z_]\w*)+|\.)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<pipe>\|)
  | (?P<assign>:?=)
  | (?P<paren>[()])
    )""",
    re.VERBOSE,
)

_VARS = {
    "$labels": "Labels",
    "$externalLabels": "ExternalLabels",
    "$externalURL": "ExternalURL",
    "$value": "Value",
}


@dataclass(frozen=True)
class _Arg:
    kind: str  # str | num | var | field | ident
    text: str


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "r": "\r"}.get(m.group(1), m.group(0)),
        body,
    )


def _parse_action(src: str) -> list[list[_Arg]]:
    pos = 0
    cmds: list[list[_Arg]] = [[]]
    src = src.strip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            raise TemplateError(f"unexpected {src[pos:].strip()[:20]!r} in {{{{{src}}}}}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        text = m.group(kind)
        if kind == "pipe":
            if not cmds[-1]:
                raise TemplateError(f"missing command before '|' in {{{{{src}}}}}")
            cmds.append([])
            continue
        if kind == "assign":
            raise TemplateError(f"variable assignment is not supported (in {{{{{src}}}}})")
        if kind == "paren":
            raise TemplateError(f"parenthesised pipelines are not supported (in {{{{{src}}}}})")
        if kind == "ident":
            if text in _KEYWORDS:
                raise TemplateError(
                    f"'{text}' is not supported in devopsim's alert templates; supported: "
                    "$labels.NAME, $value, $externalLabels.NAME, $externalURL, pipelines and the "
                    f"functions {', '.join(sorted(FUNCTIONS))}"
                )
            if text in ("true", "false", "nil"):
                cmds[-1].append(_Arg("const", text))
                continue
            if text not in FUNCTIONS:
                raise TemplateError(
                    f'function "{text}" not defined or not supported; '
                    f"supported: {', '.join(sorted(FUNCTIONS))}"
                )
        if kind == "var":
            root = text.split(".")[0]
            if root not in _VARS:
                raise TemplateError(f'undefined variable "{root}"')
        if kind == "field":
            root = text.split(".")[1] if text != "." else ""
            if root not in ("", *_VARS.values()):
                raise TemplateError(f"can't evaluate field {root} (allowed: {', '.join(_VARS.values())})")
        cmds[-1].append(_Arg(kind, text))
    if not cmds[-1]:
        raise TemplateError(f"missing value for command in {{{{{src}}}}}")
    for i, cmd in enumerate(cmds):
        if cmd[0].kind != "ident" and len(cmd) > 1:
            raise TemplateError(f"can't give arguments to a non-function {cmd[0].text} in {{{{{src}}}}}")
        if i > 0 and cmd[0].kind != "ident":
            raise TemplateError(f"non-function {cmd[0].text} after '|' in {{{{{src}}}}}")
    return cmds


class Template:
    """A parsed alert template.

    Args:
        text: the template text.

    Raises:
        TemplateError: the text does not parse or uses what is not supported.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[str | list[list[_Arg]]] = []
        pos = 0
        pending_trim = False
        while True:
            start = text.find("{{", pos)
            if start < 0:
                lit = text[pos:]
                self._parts.append(lit.lstrip() if pending_trim else lit)
                break
            lit = text[pos:start]
            if pending_trim:
                lit = lit.lstrip()
            inner_start = start + 2
            if text.startswith("- ", inner_start) or text.startswith("-\t", inner_start):
                lit = lit.rstrip()
                inner_start += 1
            self._parts.append(lit)
            end = self._find_close(text, inner_start)
            inner = text[inner_start:end]
            pending_trim = False
            if inner.endswith(" -") or inner.endswith("\t-"):
                inner = inner[:-1]
                pending_trim = True
            stripped = inner.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    raise TemplateError("unclosed comment")
            elif not stripped:
                raise TemplateError("missing value for command")
            else:
                self._parts.append(_parse_action(inner))
            pos = end + 2

    @staticmethod
    def _find_close(text: str, pos: int) -> int:
        quote: str | None = None
        i = pos
        while i < len(text):
            c = text[i]
            if quote:
                if c == "\\" and quote == '"':
                    i += 2
                    continue
                if c == quote:
                    quote = None
            elif c in '"`':
                quote = c
            elif text.startswith("}}", i):
                return i
            i += 1
        raise TemplateError("unclosed action (a '{{' without its '}}')")

    def expand(
        self,
        labels: dict[str, str],
        value: float,
        external_labels: dict[str, str] | None = None,
        external_url: str = "",
    ) -> str:
        """The text with every action replaced by its value.

        Raises:
            TemplateError: a function failed on its argument (Prometheus then prints
                ``<error expanding template: ...>``; see :func:`expand_or_error`).
        """
        data: dict[str, Any] = {
            "Labels": labels,
            "ExternalLabels": external_labels or {},
            "ExternalURL": external_url,
            "Value": value,
        }
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(_str(self._run(part, data)))
        return "".join(out)

    def _operand(self, arg: _Arg, data: dict[str, Any]) -> Any:
        if arg.kind == "str":
            return _unquote(arg.text)
        if arg.kind == "num":
            return int(arg.text) if re.fullmatch(r"[-+]?\d+", arg.text) else float(arg.text)
        if arg.kind == "const":
            return {"true": True, "false": False, "nil": None}[arg.text]
        if arg.kind == "var":
            parts = arg.text.split(".")
            cur: Any = data[_VARS[parts[0]]]
            rest = parts[1:]
        else:
            rest = [p for p in arg.text.split(".") if p]
            cur = data
        for p in rest:
            if isinstance(cur, dict):
                cur = cur.get(p, "")  # Prometheus runs templates with missingkey=zero
            else:
                raise TemplateError(f"can't evaluate field {p} in type {type(cur).__name__}")
        return cur

    def _run(self, cmds: list[list[_Arg]], data: dict[str, Any]) -> Any:
        result: Any = None
        for i, cmd in enumerate(cmds):
            head = cmd[0]
            if head.kind != "ident":
                result = self._operand(head, data)
                continue
            args = [self._operand(a, data) for a in cmd[1:]]
            if i > 0:
                args.append(result)
            try:
                result = FUNCTIONS[head.text](*args)
            except TypeError:
                raise TemplateError(f"wrong number of args for {head.text}: got {len(args)}") from None
        return result


def expand_or_error(
    template: Template,
    labels: dict[str, str],
    value: float,
    external_labels: dict[str, str] | None = None,
    external_url: str = "",
) -> str:
    """Expand as Prometheus does: a failure becomes ``<error expanding template: ...>``."""
    try:
        return template.expand(labels, value, external_labels, external_url)
    except TemplateError as exc:
        return f"<error expanding template: {exc}>"
