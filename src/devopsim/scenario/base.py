"""The base class of every scenario section: frozen, strict, camelCase.

Unknown keys are rejected with a did-you-mean suggestion before pydantic
looks at the values, so a typo like ``replcas`` says ``did you mean
'replicas'?`` rather than only "extra inputs are not permitted".
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = ["Spec", "suggest"]


def suggest(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to ``word``, if any is close."""
    got = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not got:
        lowered = {c.lower(): c for c in choices}
        got = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        return lowered[got[0]] if got else None
    return got[0]


class Spec(BaseModel):
    """A frozen scenario section with camelCase keys and no unknown fields."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        arbitrary_types_allowed=True,
    )

    @classmethod
    def allowed_keys(cls) -> list[str]:
        """The keys this section accepts, as written in YAML."""
        keys = [f.alias or name for name, f in cls.model_fields.items()]
        return sorted(set(keys))

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = cls.allowed_keys()
            names = set(cls.model_fields)
            unknown = [k for k in data if k not in allowed and k not in names]
            if unknown:
                items = []
                for key in unknown:
                    hint = suggest(str(key), allowed)
                    items.append({"key": str(key), "hint": hint or ""})
                raise PydanticCustomError(
                    "unknown_field",
                    "unknown field(s) {keys}",
                    {"unknown": items, "allowed": allowed, "keys": ", ".join(repr(i["key"]) for i in items)},
                )
        elif data is None:
            return {}
        return data
