"""The dedup memory: what it remembers, for how long, and what it forgets."""

from __future__ import annotations

import pytest

from streams.ingest.dedup import SeenEvents


def test_a_key_is_new_once() -> None:
    seen = SeenEvents(horizon_s=60)
    assert seen.add("a", now=0.0)
    assert not seen.add("a", now=1.0)
    assert seen.add("b", now=1.0)
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("later", "remembered"),
    [
        (59.0, True),  # within the horizon
        (60.0, True),  # a key lives at least the horizon …
        (66.1, False),  # … and at most one slot (a tenth) longer
    ],
)
def test_keys_expire_after_the_horizon(later: float, remembered: bool) -> None:
    seen = SeenEvents(horizon_s=60, slots=10)
    seen.add("a", now=0.0)
    assert seen.add("a", now=later) is not remembered


def test_recovered_keys_at_past_times_are_remembered_until_their_own_expiry() -> None:
    seen = SeenEvents(horizon_s=60)
    seen.add("now", now=1_000.0)
    seen.add("earlier", now=970.0)  # recovery: seen 30 s before the newest
    seen.add("ancient", now=100.0)  # older than the horizon: not worth remembering
    assert "earlier" in seen
    assert "ancient" not in seen
    assert seen.add("earlier", now=1_040.0)  # 70 s after it was seen: forgotten


def test_memory_stays_bounded_under_a_steady_stream() -> None:
    seen = SeenEvents(horizon_s=10, slots=10)
    for n in range(10_000):
        seen.add(f"e{n}", now=n / 100)  # 100 events/s for 100 s
    assert len(seen) <= 100 * 11  # a horizon and one slot of events


def test_a_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon_s"):
        SeenEvents(horizon_s=0)
