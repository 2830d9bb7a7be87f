"""Data files validated by pydantic: the rules and the escalation policy are TOML read this way.

A file that is not TOML, or not valid, raises the caller's error class with every problem named
by its place in the file (``threshold[2] (id air.pm25).clear_at: …``), so that an operator can
fix it without reading code.
"""

from __future__ import annotations

import tomllib
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.exceptions import CityOpsError

__all__ = ["DataModel", "parse_toml"]

_M = TypeVar("_M", bound=BaseModel)


class DataModel(BaseModel):
    """The base of every model read from a data file (rules, policy, scenarios).

    Unknown keys, infinities and NaN are mistakes to report; what was read does not change.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


def parse_toml(
    text: bytes, model: type[_M], where: str, what: str, error: type[CityOpsError]
) -> _M:
    """Validate the TOML ``text`` as ``model``; raise ``error`` naming ``where`` otherwise.

    ``what`` names the kind of file in the message (``a valid rule set``).
    """
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{where} is not valid TOML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_place(data, problem['loc'])}: {problem['msg']}"
            for problem in exc.errors(include_url=False)[:5]
        ]
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise error(f"{where} is not {what}: {'; '.join(problems)}{more}") from None


def _place(data: object, loc: tuple[int | str, ...]) -> str:
    """``threshold[2] (id flood.water-level).levels`` rather than ``threshold.2.levels``."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            rule_id = node.get("id") if isinstance(node, dict) else None
            parts[-1] += f"[{step}]" + (f" (id {rule_id})" if rule_id else "")
            continue
        parts.append(str(step))
        node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts) or "the file"
