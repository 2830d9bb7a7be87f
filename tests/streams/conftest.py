"""Fixtures shared by the stream stages' tests."""

from __future__ import annotations

import pytest

from geo import Hierarchy
from streams.escalate.cases import Escalator
from streams.escalate.policy import DEFAULT_POLICY, load_policy


@pytest.fixture(scope="session")
def escalator(heyuan: Hierarchy) -> Escalator:
    """Escalation decisions on Heyuan's geography under the shipped policy."""
    return Escalator(
        load_policy(DEFAULT_POLICY),
        names=heyuan.name,
        parent=lambda code: heyuan.unit(code).parent,
        city=heyuan.city.code,
    )
