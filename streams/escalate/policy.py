"""The escalation policy as data: a TOML file validated by pydantic.

Per severity: the tier that owns an incident first, the tiers notified at once, and at each tier
the deadline to acknowledge and the deadline to resolve. Per category: the responsible
department at each tier. The shipped policy is ``streams/escalate/heyuan.toml``;
``CITYOPS_POLICY_FILE`` points at another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from schemas import Category, Severity
from schemas.cases import Tier
from schemas.exceptions import CityOpsError
from streams.datafile import DataModel, parse_toml

__all__ = ["DEFAULT_POLICY", "Deadlines", "Policy", "PolicyError", "SeverityPolicy", "load_policy"]

DEFAULT_POLICY = Path(__file__).with_name("heyuan.toml")
"""The policy shipped for Heyuan."""

_Seconds = Annotated[float, Field(gt=0, le=90 * 86_400)]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class PolicyError(CityOpsError):
    """A policy file that cannot be used."""


class Deadlines(DataModel):
    """The deadlines at one tier, counted from the moment the tier receives the incident."""

    acknowledge_s: _Seconds
    """To acknowledge (签收)."""
    dispose_s: _Seconds
    """To resolve (办结)."""

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.dispose_s <= self.acknowledge_s:
            raise ValueError("dispose_s must be longer than acknowledge_s")
        return self


class SeverityPolicy(DataModel):
    """How incidents of one severity are owned and timed."""

    first_tier: Tier
    """The tier that owns it first (geography may put it higher: several towns → county)."""
    notify: list[Tier] = []
    """Other tiers that see it at once (level I: all of them)."""
    deadlines: dict[Tier, Deadlines]
    """At the first tier and every tier above it."""

    @model_validator(mode="after")
    def _every_tier_it_can_reach(self) -> Self:
        reach = [tier for tier in Tier if tier.rank >= self.first_tier.rank]
        missing = [tier.value for tier in reach if tier not in self.deadlines]
        if missing:
            raise ValueError(f"deadlines missing for tier {', '.join(missing)}")
        if self.first_tier in self.notify:
            raise ValueError(f"notify lists the first tier {self.first_tier.value}")
        return self


class Policy(DataModel):
    """Everything escalation decides by, as loaded from one file."""

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    severity: dict[Severity, SeverityPolicy]
    """All four levels."""
    routing: dict[Category, dict[Tier, _Name]] = {}
    """Per category, the department at each tier; unlisted: the incident's own department."""

    @model_validator(mode="after")
    def _all_levels(self) -> Self:
        missing = [level.value for level in Severity if level not in self.severity]
        if missing:
            raise ValueError(f"severity {', '.join(missing)} missing")
        return self

    def department(self, category: Category, tier: Tier, default: str) -> str:
        """Return the department responsible for ``category`` at ``tier``."""
        return self.routing.get(category, {}).get(tier, default)

    def deadlines(self, severity: Severity, tier: Tier) -> Deadlines:
        """Return the deadlines of ``severity`` at ``tier`` (listed for every tier it reaches)."""
        return self.severity[severity].deadlines[tier]


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file at ``path``.

    Raises
    ------
    PolicyError
        The file is missing, not TOML, or not a valid policy; the message names the place.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    return parse_toml(text, Policy, str(path), "a valid escalation policy", PolicyError)
