"""Read YAML while remembering where every value came from.

PyYAML composes the document into nodes that carry their line; we build
plain Python values from those nodes and keep a map from each value's path
(``("services", "api", "replicas")``) to its 1-based line, so every
validation error can name the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devopsim.errors import Issue, ScenarioError

__all__ = ["Source", "load_yaml", "parse_yaml_text"]

PathKey = tuple[str | int, ...]


@dataclass
class Source:
    """A parsed YAML document with the line of every value.

    Attributes:
        file: what to call the document in messages.
        data: the plain Python value (dicts, lists, scalars).
        lines: path -> 1-based line of the key (for mapping entries) or item.
        overridden: paths set from the command line; their "file" is ``<--set>``.
    """

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    overridden: set[PathKey] = field(default_factory=set)

    def where(self, path: PathKey) -> tuple[str, int | None]:
        """The file and line for ``path``, falling back to its nearest ancestor."""
        p = tuple(path)
        while True:
            if p in self.overridden:
                return "<--set>", None
            if p in self.lines:
                return self.file, self.lines[p]
            if not p:
                return self.file, None
            p = p[:-1]

    def issue(self, path: PathKey, message: str) -> Issue:
        """An :class:`Issue` located at ``path``."""
        file, line = self.where(path)
        return Issue(file=file, line=line, path=dotted(path), message=message)


def dotted(path: PathKey) -> str:
    """``("services", "api", "steps", 0)`` -> ``services.api.steps[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Loader(yaml.SafeLoader):
    pass


def _open_parens(text: object) -> int:
    if not isinstance(text, str):
        return 0
    return text.count("(") - text.count(")")


def _scalar_text(node: yaml.Node) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _mend_flow_mapping(pairs: list[tuple[yaml.Node, yaml.Node]]) -> list[tuple[yaml.Node, yaml.Node]]:
    """Re-join call syntax that a flow mapping split at its commas.

    In ``{work: lognormal(mean=1ms, cv=1)}`` YAML sees two entries,
    ``work: "lognormal(mean=1ms"`` and ``"cv=1)": null``. People write it that
    way, so the pieces are joined back while a value's parentheses are open.
    """
    out: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in pairs:
        if out:
            prev_key, prev_val = out[-1]
            prev_text = _scalar_text(prev_val)
            key_text = _scalar_text(key)
            if prev_text is not None and key_text is not None and _open_parens(prev_text) > 0:
                val_text = _scalar_text(value)
                piece = (
                    key_text
                    if value.tag.endswith(":null") or val_text in (None, "")
                    else f"{key_text}: {val_text}"
                )
                joined = yaml.ScalarNode(
                    "tag:yaml.org,2002:str", f"{prev_text}, {piece}", prev_val.start_mark, value.end_mark
                )
                out[-1] = (prev_key, joined)
                continue
        out.append((key, value))
    return out


def _mend_flow_sequence(items: list[yaml.Node]) -> list[yaml.Node]:
    """Re-join call syntax that a flow sequence split at its commas."""
    out: list[yaml.Node] = []
    for item in items:
        if out:
            prev = _scalar_text(out[-1])
            cur = _scalar_text(item)
            if prev is not None and cur is not None and _open_parens(prev) > 0:
                out[-1] = yaml.ScalarNode(
                    "tag:yaml.org,2002:str", f"{prev}, {cur}", out[-1].start_mark, item.end_mark
                )
                continue
        out.append(item)
    return out


def _build(loader: _Loader, node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve YAML merge keys (<<)
        pairs = _mend_flow_mapping(node.value) if node.flow_style else node.value
        out: dict[Any, Any] = {}
        for key_node, value_node in pairs:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise ScenarioError(
                    [
                        Issue(
                            file,
                            key_node.start_mark.line + 1,
                            dotted(path),
                            "a mapping key must be a plain value",
                        )
                    ]
                )
            if key in out:
                raise ScenarioError(
                    [
                        Issue(
                            file,
                            key_node.start_mark.line + 1,
                            dotted((*path, str(key))),
                            f"duplicate key {key!r} (first on line {lines.get((*path, key), '?')})",
                        )
                    ]
                )
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, child, lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = _mend_flow_sequence(node.value) if node.flow_style else node.value
        return [_build(loader, item, (*path, i), lines, file) for i, item in enumerate(items)]
    return loader.construct_object(node, deep=True)


def parse_yaml_text(text: str, file: str) -> Source:
    """Parse YAML text into a :class:`Source`.

    Raises:
        ScenarioError: the text is not valid YAML or holds more than one document.
    """
    try:
        docs = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{exc.context}, {what}"
        raise ScenarioError([Issue(file, line, "", f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Issue(file, None, "", f"YAML error: {exc}")]) from None
    docs = [d for d in docs if d is not None]
    if not docs:
        raise ScenarioError(
            [
                Issue(
                    file,
                    None,
                    "",
                    "the file is empty; a scenario needs at least 'duration', 'traffic' and 'services'",
                )
            ]
        )
    if len(docs) > 1:
        raise ScenarioError(
            [
                Issue(
                    file,
                    docs[1].start_mark.line + 1,
                    "",
                    "one scenario per file: found a second YAML document",
                )
            ]
        )
    lines: dict[PathKey, int] = {}
    data = _build(_Loader(""), docs[0], (), lines, file)
    return Source(file=file, data=data, lines=lines)


def load_yaml(path: str | Path) -> Source:
    """Read and parse a YAML file.

    Raises:
        ScenarioError: the file is missing, unreadable, or not valid YAML.
    """
    p = Path(path)
    if not p.exists():
        raise ScenarioError([Issue(str(path), None, "", "no such file")])
    if p.is_dir():
        raise ScenarioError([Issue(str(path), None, "", "is a directory, not a scenario file")])
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Issue(str(path), None, "", f"cannot read: {exc}")]) from None
    return parse_yaml_text(text, str(path))
