"""Every rule type on the real grid, without a broker: thresholds with hysteresis, video
confirmation, corroboration, absence, data quality, event time, and state that survives a restart.
"""

from __future__ import annotations

import pytest

from geo import Hierarchy, cell_neighbours
from schemas import IncidentStatus, SensorKind, Severity, VideoEventType
from streams.detect.detector import Flag
from tests.streams.detect.scene import Cells, Scene, pick_cells

WATER = SensorKind.WATER_LEVEL
WATERLOGGING = VideoEventType.WATERLOGGING
FIRE = VideoEventType.FIRE_SMOKE


@pytest.fixture(scope="module")
def neighbours(heyuan: Hierarchy) -> dict[str, frozenset[str]]:
    return cell_neighbours(heyuan)


@pytest.fixture(scope="module")
def cells(neighbours: dict[str, frozenset[str]]) -> Cells:
    return pick_cells(neighbours)


@pytest.fixture
def scene(heyuan: Hierarchy, neighbours: dict[str, frozenset[str]]) -> Scene:
    scene = Scene(heyuan, neighbours)
    for n in range(1, 4):
        scene.sensor(f"wl-{n}", WATER)
    scene.sensor("pm-1", SensorKind.PM25, department="生态环境")
    scene.sensor("smoke-1", SensorKind.SMOKE, department="消防救援")
    for n in range(1, 4):
        scene.camera(f"cam-{n}")
    return scene


def test_neighbour_table_is_symmetric_and_local(neighbours: dict[str, frozenset[str]]) -> None:
    assert len(neighbours) == 3954
    assert all(cell in neighbours[other] for cell, near in neighbours.items() for other in near)
    assert all(cell not in near for cell, near in neighbours.items())
    counts = sorted(len(near) for near in neighbours.values())
    assert counts[0] >= 1
    assert 4 <= counts[len(counts) // 2] <= 8


# --- thresholds -----------------------------------------------------------------------------


def test_threshold_raises_after_consecutive_readings_at_the_gravest_level(
    scene: Scene, cells: Cells
) -> None:
    # flood.water-level: IV at 3.0 m, III at 4.0, raised after 3 consecutive readings.
    assert not scene.reading("wl-1", cells.a, 3.2, 0).incidents
    assert not scene.reading("wl-1", cells.a, 2.0, 60).incidents  # the streak breaks
    assert not scene.reading("wl-1", cells.a, 3.2, 120).incidents
    assert not scene.reading("wl-1", cells.a, 3.4, 180).incidents
    raised = scene.reading("wl-1", cells.a, 4.1, 240).incidents
    assert len(raised) == 1
    incident = raised[0]
    assert incident.category == "flood"
    assert incident.department == "水务"
    assert incident.severity is Severity.III
    assert incident.status is IncidentStatus.ACTIVE
    assert incident.rule.id == "flood.water-level"
    assert incident.rule.version == 1
    assert incident.rules_version == scene.rules.version
    assert incident.geography == "test-geo"
    assert incident.towns == [cells.a[:9]]
    assert incident.counties == [cells.a[:6]]
    assert incident.first_evidence.event_id == incident.last_evidence.event_id
    assert incident.revision == 1


def test_new_evidence_updates_the_one_open_incident(scene: Scene, cells: Cells) -> None:
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, n * 60)
    for n in range(3):
        scene.reading("wl-2", cells.a2, 5.2, 200 + n * 60)  # another gauge, same town
    latest = scene.latest()
    assert len(latest) == 1
    (incident,) = latest.values()
    assert incident.severity is Severity.II  # the gravest level reached
    assert incident.devices == ["wl-1", "wl-2"]
    assert incident.cells == sorted([cells.a, cells.a2])
    # Evidence is what a raised condition sees: each gauge's raising (third) reading.
    assert incident.evidence_count == 2
    assert incident.revision == 2
    assert incident.first_evidence.device_id == "wl-1"
    assert incident.last_evidence.device_id == "wl-2"


def test_an_oscillating_sensor_gives_one_incident(scene: Scene, cells: Cells) -> None:
    # Around the raise level (3.0) but never below the clear level (2.7): the hysteresis band.
    values = [3.1, 3.2, 3.1] + [2.9, 3.1] * 20
    for n, value in enumerate(values):
        scene.reading("wl-1", cells.a, value, n * 60)
    latest = scene.latest()
    assert len(latest) == 1
    assert next(iter(latest.values())).status is IncidentStatus.ACTIVE
    assert {update.incident_id for update in scene.updates} == set(latest)


def test_threshold_clears_after_its_clear_count_and_reopens_within_the_window(
    scene: Scene, cells: Cells
) -> None:
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, n * 60)
    scene.reading("wl-1", cells.a, 2.5, 180)
    assert not scene.reading("wl-1", cells.a, 2.5, 240).incidents  # 2 of 3 below clear_at
    (cleared,) = scene.reading("wl-1", cells.a, 2.5, 300).incidents
    assert cleared.status is IncidentStatus.CLEARED
    assert cleared.cleared_at is not None
    # Within the reopen window (an hour): the same incident becomes active again.
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, 900 + n * 60)
    assert scene.updates[-1].incident_id == cleared.incident_id
    assert scene.updates[-1].status is IncidentStatus.ACTIVE
    assert scene.updates[-1].cleared_at is None


def test_after_the_reopen_window_a_new_problem_is_a_new_incident(
    scene: Scene, cells: Cells
) -> None:
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, n * 60)
    for n in range(3):
        scene.reading("wl-1", cells.a, 2.0, 180 + n * 60)
    first = scene.updates[-1]
    assert first.status is IncidentStatus.CLEARED
    later = 3 * 3600
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, later + n * 60)
    assert scene.updates[-1].incident_id != first.incident_id
    assert len(scene.latest()) == 2


def test_threshold_duration_condition(scene: Scene, cells: Cells) -> None:
    # air.pm25: 3 readings at 115 ug/m3 or more AND 30 minutes since the first of them.
    for n in range(5):
        assert not scene.reading("pm-1", cells.a, 130, n * 300).incidents  # 0..20 min
    (raised,) = scene.reading("pm-1", cells.a, 130, 1800).incidents
    assert raised.category == "air_quality"
    assert raised.department == "生态环境"


def test_readings_in_another_unit_are_not_compared(scene: Scene, cells: Cells) -> None:
    scene.sensor("rain-1", SensorKind.RAINFALL)
    for n in range(5):
        assert not scene.reading("rain-1", cells.a, 90, n * 60, unit="mm").incidents
    scene.reading("rain-1", cells.a, 90, 400, unit="mm/h")
    (raised,) = scene.reading("rain-1", cells.a, 90, 460, unit="mm/h").incidents
    assert raised.severity is Severity.I


def test_evidence_across_a_town_line_joins_one_incident(scene: Scene, cells: Cells) -> None:
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, n * 60)
    for n in range(3):
        scene.reading("wl-2", cells.b, 3.5, 30 + n * 60)  # touching cell, next town
    for n in range(3):
        scene.reading("wl-3", cells.far, 3.5, 40 + n * 60)  # same county, not touching
    latest = scene.latest()
    assert len(latest) == 2
    joined = next(i for i in latest.values() if "wl-1" in i.devices)
    assert joined.towns == sorted({cells.a[:9], cells.b[:9]})
    assert joined.devices == ["wl-1", "wl-2"]
    separate = next(i for i in latest.values() if "wl-3" in i.devices)
    assert separate.towns == [cells.far[:9]]


# --- video confirmation ---------------------------------------------------------------------


def test_video_needs_k_confident_events_in_one_cell_within_the_window(
    scene: Scene, cells: Cells
) -> None:
    # fire.smoke-video: 2 events at confidence 0.6 or more in one cell within 120 s.
    assert not scene.video("cam-1", cells.a, FIRE, 0).incidents
    assert not scene.video("cam-1", cells.a, FIRE, 300).incidents  # first one out of window
    assert not scene.video("cam-2", cells.a2, FIRE, 310).incidents  # another cell
    assert not scene.video("cam-1", cells.a, FIRE, 320, confidence=0.4).incidents  # unsure
    (raised,) = scene.video("cam-1", cells.a, FIRE, 400).incidents
    assert raised.category == "fire_smoke"
    assert raised.department == "消防救援"
    assert raised.severity is Severity.III
    assert raised.rule.id == "fire.smoke-video"
    assert raised.evidence_count == 1
    # Once raised, every further confident event there is evidence.
    (updated,) = scene.video("cam-1", cells.a, FIRE, 420).incidents
    assert updated.evidence_count == 2


def test_video_incident_clears_after_a_quiet_period_on_event_time(
    scene: Scene, cells: Cells
) -> None:
    scene.video("cam-1", cells.a, FIRE, 0)
    scene.video("cam-1", cells.a, FIRE, 30)
    raised = scene.updates[-1]
    # clear_after_s = 1800: the county's watermark (latest time less 600 s lateness) must pass
    # 30 + 1800 s; other devices' readings move it.
    scene.reading("wl-1", cells.far, 1.0, 2000)
    assert scene.updates[-1].status is IncidentStatus.ACTIVE
    (cleared,) = scene.reading("wl-1", cells.far, 1.0, 2500).incidents
    assert cleared.incident_id == raised.incident_id
    assert cleared.status is IncidentStatus.CLEARED
    assert cleared.cleared_at is not None
    assert cleared.cleared_at.timestamp() == raised.last_evidence.observed_at.timestamp() + 1800


# --- corroboration --------------------------------------------------------------------------


def test_video_next_door_raises_a_sensor_incident_one_level(scene: Scene, cells: Cells) -> None:
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, n * 60)
    assert scene.updates[-1].severity is Severity.IV
    outcome = scene.video("cam-1", cells.a2, WATERLOGGING, 200, confidence=0.7)
    (corroborated,) = outcome.incidents
    assert corroborated.severity is Severity.III
    assert corroborated.corroborated_by is not None
    assert corroborated.corroborated_by.id == "flood.seen-on-video"


def test_video_seen_first_corroborates_a_later_sensor_incident(scene: Scene, cells: Cells) -> None:
    scene.video("cam-1", cells.b, VideoEventType.PERSON_NEAR_WATER, 0, confidence=0.8)
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, 100 + n * 60)
    assert scene.updates[-1].category == "flood"
    assert scene.updates[-1].severity is Severity.III


def test_no_corroboration_out_of_window_or_out_of_reach(scene: Scene, cells: Cells) -> None:
    scene.video("cam-1", cells.far, WATERLOGGING, 0, confidence=0.9)  # not touching A
    scene.video("cam-2", cells.a2, WATERLOGGING, 100, confidence=0.3)  # too unsure
    scene.video("cam-3", cells.a, VideoEventType.ILLEGAL_PARKING, 100)  # unrelated type
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, 1000 + n * 60)  # 900 s window: all too early
    scene.video("cam-1", cells.a2, WATERLOGGING, 1200 + 900 + 60)  # too late
    flood = [i for i in scene.latest().values() if i.category == "flood" and "wl-1" in i.devices]
    assert flood[0].severity is Severity.IV
    assert flood[0].corroborated_by is None


# --- absence --------------------------------------------------------------------------------


def test_silent_devices_raise_one_offline_incident_per_town_and_department(
    scene: Scene, cells: Cells
) -> None:
    scene.reading("wl-1", cells.a, 1.0, 0)
    scene.reading("wl-2", cells.a2, 1.0, 0)
    # Absence: silent for more than 3 x 60 s. wl-3 keeps reporting, which moves event time.
    for n in range(1, 20):
        scene.reading("wl-3", cells.far, 1.0 + n / 100, n * 60)
    offline = [i for i in scene.latest().values() if i.category == "device_offline"]
    assert len(offline) == 1
    incident = offline[0]
    assert incident.devices == ["wl-1", "wl-2"]
    assert incident.department == "水务"
    assert incident.towns == [cells.a[:9]]
    assert incident.rule.id == "device.offline"
    assert incident.status is IncidentStatus.ACTIVE
    # Raised at the deadline (last report + 180 s), on event time, not when noticed.
    assert incident.first_evidence.observed_at.timestamp() + 180 == incident.opened_at.timestamp()
    # wl-1 reports again: still open for wl-2; then wl-2 too: cleared.
    scene.reading("wl-1", cells.a, 1.0, 19 * 60 + 10)
    assert scene.latest()[incident.incident_id].status is IncidentStatus.ACTIVE
    scene.reading("wl-2", cells.a2, 1.0, 19 * 60 + 20)
    assert scene.latest()[incident.incident_id].status is IncidentStatus.CLEARED


def test_cameras_are_not_offline_when_nothing_happens(scene: Scene, cells: Cells) -> None:
    scene.video("cam-1", cells.a, VideoEventType.ILLEGAL_PARKING, 0)
    for n in range(1, 30):
        scene.reading("wl-3", cells.far, 1.0 + n / 100, n * 60)
    assert not [i for i in scene.latest().values() if "cam-1" in i.devices]


# --- data quality ---------------------------------------------------------------------------


def test_stuck_values_are_flagged_and_raise_nothing(scene: Scene, cells: Cells) -> None:
    flags = [scene.reading("wl-1", cells.a, 3.3, n * 60).flag for n in range(2, 14)]
    # Raised at the third reading; from the tenth the same value is flagged stuck and adds no
    # evidence.
    assert flags[:9] == [None] * 9
    assert flags[9:] == [Flag.STUCK] * 3
    incident = next(iter(scene.latest().values()))
    assert incident.evidence_count == 7  # third to ninth reading


def test_impossible_values_and_clock_skew_are_flagged_not_used(scene: Scene, cells: Cells) -> None:
    outcomes = [scene.reading("wl-1", cells.a, 500.0, n * 60) for n in range(5)]
    assert [o.flag for o in outcomes] == [Flag.IMPOSSIBLE] * 5
    assert not scene.updates
    skewed = scene.reading("wl-2", cells.a, 1.0, 5000, ingested_lag=-600)
    assert skewed.flag is Flag.CLOCK_SKEW
    # The skewed time did not move the county's clock: an event at 300 s is not late.
    assert not scene.reading("wl-3", cells.a, 1.0, 300).late


# --- event time -----------------------------------------------------------------------------


def test_events_older_than_the_watermark_are_late(
    scene: Scene, cells: Cells, neighbours: dict[str, frozenset[str]]
) -> None:
    scene.reading("wl-1", cells.a, 1.0, 1000)
    assert not scene.reading("wl-2", cells.a, 1.0, 401).late  # within 600 s of lateness
    late = scene.reading("wl-2", cells.a, 9.0, 399)
    assert late.late
    assert late.watermark is not None
    assert late.watermark == scene.fed[0][0].event.observed_at.timestamp() - 600
    assert not late.incidents
    # Other counties keep their own clocks.
    elsewhere = next(cell for cell in sorted(neighbours) if cell[:6] != cells.a[:6])
    assert not scene.reading("wl-3", elsewhere, 1.0, 0).late


def test_same_events_same_incidents_byte_for_byte(
    heyuan: Hierarchy, neighbours: dict[str, frozenset[str]], cells: Cells
) -> None:
    def run() -> list[bytes]:
        scene = Scene(heyuan, neighbours)
        scene.sensor("wl-1", WATER)
        scene.sensor("wl-2", WATER)
        scene.camera("cam-1")
        for n in range(12):
            scene.reading("wl-1", cells.a, 3.0 + n * 0.3, n * 60)
            scene.video("cam-1", cells.a2, WATERLOGGING, n * 60 + 5)
            if n < 2:
                scene.reading("wl-2", cells.b, 1.0, n * 60)
        return [incident.model_dump_json().encode() for incident in scene.updates]

    first, second = run(), run()
    assert len(first) > 5
    assert first == second


def test_state_survives_a_restart_and_replayed_offsets_are_skipped(
    scene: Scene, cells: Cells
) -> None:
    county = cells.a[:6]
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, n * 60)
    scene.video("cam-1", cells.a, FIRE, 200)
    saved = [(s, n, v) for s, n, v in scene.detector.changes(county) if s != "journal"]
    before = scene.latest()
    # A restarted worker: state from the table, then the events after the last applied one.
    scene.detector = scene.build()
    scene.detector.load(county, saved)
    replayed = scene.detector.apply(*scene.fed[-1])
    assert replayed.replayed
    assert list(scene.detector.open_incidents(county)) == list(before.values())
    scene.video("cam-1", cells.a, FIRE, 230)
    fire = [i for i in scene.latest().values() if i.category == "fire_smoke"]
    assert len(fire) == 1  # the window of the first camera event survived the restart


def test_the_journal_completes_a_flush_cut_short(scene: Scene, cells: Cells) -> None:
    county = cells.a[:6]
    for n in range(3):
        scene.reading("wl-1", cells.a, 3.5, n * 60)
    first = scene.detector.changes(county)
    scene.reading("wl-1", cells.a, 5.5, 180)
    second = scene.detector.changes(county)
    # The crash kept the first flush, and of the second only its journal.
    kept = [r for r in first if r[0] != "journal"] + [second[0]]
    scene.detector = scene.build()
    scene.detector.load(county, kept)
    (incident,) = scene.detector.open_incidents(county)
    assert incident.severity is Severity.II
    assert incident.evidence_count == 2
