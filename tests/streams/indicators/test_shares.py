"""The indicators' arithmetic (``streams/indicators/shares.py``): shares of cases and devices,
added up per area, give the same numbers however the cases are split between partitions."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from geo import GridIndex
from schemas import Device
from schemas.cases import Action, Case, Tier
from schemas.indicators import AreaLevel, Indicators, LoopStage
from streams.escalate.cases import Escalator
from streams.indicators.shares import (
    EventRates,
    Shares,
    case_shares,
    device_shares,
    indicators,
    registered_devices,
)
from tests.streams.escalate.scene import CITY, COUNTY, T0, act, at, command, incident

TZ = ZoneInfo("Asia/Shanghai")
TOWN_A, TOWN_B = "441602001", "441602006"  # 上城街道, 城东街道 (源城区)


def opened(escalator: Escalator, incident_id: str, town: str, seconds: float = 30) -> Case:
    # First evidence at T0, the case opened ``seconds`` later: discovery takes that long.
    item = incident("III", (town,), incident_id=incident_id)
    effects = escalator.on_incident(None, item, at(seconds))
    assert effects.case is not None
    return effects.case


def late(escalator: Escalator, case: Case) -> Case:
    """Let the town's acknowledge deadline (15 minutes for III) pass, then the county acks."""
    assert case.acknowledge_by is not None
    effects = escalator.due(case, case.acknowledge_by)
    assert effects.case is not None
    assert effects.case.tier is Tier.COUNTY
    ack = command(Action.ACKNOWLEDGE, 960, Tier.COUNTY, COUNTY, incident_id=case.incident_id)
    return act(escalator, effects.case, ack)


@pytest.fixture(scope="module")
def scenario(escalator: Escalator) -> list[Case]:
    """Three cases in town A, one acknowledged late; one in town B, resolved and closed."""
    a1, a2, a3 = (opened(escalator, f"inc-a{n}", TOWN_A) for n in (1, 2, 3))
    a1 = act(escalator, a1, command(Action.ACKNOWLEDGE, 90, incident_id="inc-a1", area=TOWN_A))
    a2 = act(escalator, a2, command(Action.ACKNOWLEDGE, 150, incident_id="inc-a2", area=TOWN_A))
    a3 = late(escalator, a3)
    b1 = opened(escalator, "inc-b1", TOWN_B)
    b1 = act(
        escalator,
        b1,
        command(Action.ACKNOWLEDGE, 90, incident_id="inc-b1", area=TOWN_B),
        command(Action.RESOLVE, 690, incident_id="inc-b1", area=TOWN_B),
        command(Action.VERIFY, 750, incident_id="inc-b1", area=TOWN_B),
        command(Action.CLOSE, 810, incident_id="inc-b1", area=TOWN_B),
    )
    return [a1, a2, a3, b1]


def total(cases: list[Case], escalator: Escalator, split: list[list[int]]) -> dict[str, Indicators]:
    """The indicators of town A, town B, their county and the city, from shares of ``split``."""
    now = at(1200)
    shares = [
        case_shares([cases[i] for i in part], city=CITY, parent=escalator.parent, now=now, tz=TZ)
        for part in split
    ]
    levels = {TOWN_A: AreaLevel.TOWN, TOWN_B: AreaLevel.TOWN, COUNTY: AreaLevel.COUNTY}
    return {
        area: indicators(
            area,
            name=area,
            level=levels.get(area, AreaLevel.CITY),
            shares=[share[area] for share in shares if area in share],
            registered=0,
            now=now,
            tz=TZ,
        )
        for area in (TOWN_A, TOWN_B, COUNTY, CITY)
    }


def test_one_late_acknowledgement_of_three_is_an_on_time_rate_of_two_thirds(
    scenario: list[Case], escalator: Escalator
) -> None:
    town_a = total(scenario, escalator, [[0, 1, 2, 3]])[TOWN_A]
    assert town_a.incidents_today == 3
    assert (town_a.acknowledge_on_time.numerator, town_a.acknowledge_on_time.denominator) == (2, 3)
    assert town_a.escalation.value == pytest.approx(1 / 3)
    assert town_a.open_total == 3
    assert town_a.open_by_severity["III"] == 3
    assert town_a.mean_stage_s[LoopStage.DISCOVER] == 30
    # a1 60 s, a2 120 s, a3 60 s after the county received it at its deadline (T0 + 930 s)
    assert town_a.mean_stage_s[LoopStage.RESPOND] == pytest.approx((60 + 120 + 30) / 3)
    assert town_a.mean_stage_s[LoopStage.DISPOSE] is None


def test_a_closed_case_counts_today_but_not_as_open(
    scenario: list[Case], escalator: Escalator
) -> None:
    result = total(scenario, escalator, [[0, 1, 2, 3]])
    town_b, county = result[TOWN_B], result[COUNTY]
    assert (town_b.incidents_today, town_b.open_total) == (1, 0)
    assert town_b.dispose_on_time.value == 1.0
    assert town_b.mean_stage_s[LoopStage.DISPOSE] == 600
    assert town_b.mean_stage_s[LoopStage.FEEDBACK] == 120
    assert (county.incidents_today, county.open_total) == (4, 3)
    assert (county.acknowledge_on_time.numerator, county.acknowledge_on_time.denominator) == (3, 4)
    assert result[CITY].model_dump(exclude={"area", "area_name", "level"}) == county.model_dump(
        exclude={"area", "area_name", "level"}
    )


def test_every_split_between_partitions_gives_the_same_indicators(
    scenario: list[Case], escalator: Escalator
) -> None:
    whole = total(scenario, escalator, [[0, 1, 2, 3]])
    for cut in itertools.product((0, 1, 2), repeat=4):
        split = [[i for i, part in enumerate(cut) if part == p] for p in range(3)]
        assert total(scenario, escalator, split) == whole, cut


def test_an_incident_in_two_towns_counts_once_in_each_and_once_in_their_county(
    escalator: Escalator,
) -> None:
    case = escalator.on_incident(
        None, incident("III", (TOWN_A, TOWN_B), incident_id="inc-ab"), at(30)
    ).case
    assert case is not None
    shares = case_shares([case], city=CITY, parent=escalator.parent, now=at(60), tz=TZ)
    assert {area: share["today"]["cases"] for area, share in shares.items()} == {
        TOWN_A: 1,
        TOWN_B: 1,
        COUNTY: 1,
        CITY: 1,
    }


def test_a_source_still_on_yesterday_gives_its_open_cases_but_not_its_day(
    scenario: list[Case], escalator: Escalator
) -> None:
    yesterday = case_shares(scenario[:1], city=CITY, parent=escalator.parent, now=at(1200), tz=TZ)[
        TOWN_A
    ]
    today = at(1200) + timedelta(days=1)
    result = indicators(
        TOWN_A,
        name="上城街道",
        level=AreaLevel.TOWN,
        shares=[yesterday],
        registered=0,
        now=today,
        tz=TZ,
    )
    assert (result.open_total, result.incidents_today) == (1, 0)
    assert result.acknowledge_on_time.value is None


def test_devices_online_and_event_rates_by_area(heyuan_index: GridIndex) -> None:
    cell_a, cell_b = f"{TOWN_A}001001", f"{TOWN_B}001001"
    rates = EventRates()
    now = T0.timestamp()
    for second in range(90):  # 90 events in town A over 90 s: 60 of them in the last minute
        rates.add(Counter({(0, TOWN_A): 1}), now - 89 + second)
    rates.add(Counter({(1, TOWN_B): 1}), now)
    shares = device_shares(
        [(cell_a, True), (cell_a, False), (cell_b, True)],
        city=CITY,
        events=rates.last_minute(0, now),
    )
    assert shares[TOWN_A]["n"] == {"online": 1, "events": 60}
    assert shares[COUNTY]["n"] == {"online": 2, "events": 60}
    sensor = {
        "device_type": "sensor",
        "kind": "water_level",
        "department": "水务",
        "expected_interval_s": 60,
        "position": {"lon": 114.695, "lat": 23.745, "datum": "gcj02"},
    }
    devices = [
        Device.model_validate({**sensor, "device_id": "s1"}),
        Device.model_validate({**sensor, "device_id": "s2", "active": False}),
        Device.model_validate({**sensor, "device_id": "c1", "device_type": "camera", "kind": None}),
    ]
    counts = registered_devices(devices, heyuan_index)
    assert counts[CITY] == counts[COUNTY] == 1  # the inactive sensor and the camera do not count
    town = next(code for code in counts if len(code) == 9)
    result = indicators(
        town,
        name="town",
        level=AreaLevel.TOWN,
        shares=[shares.get(town, {})],
        registered=counts[town],
        now=T0,
        tz=TZ,
    )
    assert result.devices_registered == 1


def test_only_changed_shares_are_sent_and_a_vanished_area_is_emptied() -> None:
    sent = Shares()
    first = sent.changed("cases.0", {TOWN_A: {"n": {"today": 1}}, TOWN_B: {"n": {"today": 2}}})
    assert [area for area, _, _ in first] == [TOWN_A, TOWN_B]
    assert sent.changed("cases.0", {TOWN_A: {"n": {"today": 1}}, TOWN_B: {"n": {"today": 2}}}) == []
    second = sent.changed("cases.0", {TOWN_A: {"n": {"today": 1}}})
    assert second == [(TOWN_B, f"{TOWN_B}|cases.0".encode(), b"{}")]
    sent.keep_only(set())
    again = sent.changed("cases.0", {TOWN_A: {"n": {"today": 1}}})
    assert [orjson.loads(value) for _, _, value in again] == [{"n": {"today": 1}}]


def test_today_is_the_day_in_the_city_time_zone(escalator: Escalator) -> None:
    # 2026-07-01 20:00 UTC is already 2 July in Heyuan.
    evening = T0.replace(hour=20, tzinfo=UTC)
    case = escalator.on_incident(None, incident("III", incident_id="inc-late"), evening).case
    assert case is not None
    share = case_shares([case], city=CITY, parent=escalator.parent, now=evening, tz=TZ)[CITY]
    assert share["day"] == "2026-07-02"
