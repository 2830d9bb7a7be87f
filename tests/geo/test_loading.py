"""Loading a geography file: the toy city, and every kind of invalid file naming its culprit."""

from __future__ import annotations

import copy
import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from geo import (
    GeographyError,
    Hierarchy,
    InvalidGeographyError,
    Level,
    UnknownCodeError,
    dump_hierarchy,
    load_hierarchy,
)
from tests.geo.conftest import TOY_CITY

Document = dict[str, Any]


def _feature(document: Document, code: str) -> Document:
    feature: Document = next(f for f in document["features"] if f["properties"]["code"] == code)
    return feature


def _rect(u0: float, v0: float, u1: float, v1: float) -> Document:
    x0, y0, x1, y1 = 113 + 0.005 * u0, 22 + 0.0045 * v0, 113 + 0.005 * u1, 22 + 0.0045 * v1
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_toy_city_loads(toy: Hierarchy) -> None:
    assert toy.counts() == {
        Level.CITY: 1,
        Level.COUNTY: 2,
        Level.TOWN: 3,
        Level.VILLAGE: 5,
        Level.CELL: 8,
    }
    assert toy.city.name == "方城市"
    assert toy.unit("990102100").parent == "990102"
    assert toy.children("990101001001") == ("990101001001001", "990101001001002")
    assert toy.name("990102100202002") == "湖北村第002网格"
    assert not toy.unit("990101").generated  # absent "generated" means surveyed
    assert "990101" in toy
    assert "990103" not in toy


def test_unknown_code_is_a_key_error(toy: Hierarchy) -> None:
    with pytest.raises(UnknownCodeError, match="990199") as caught:
        toy.unit("990199")
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, GeographyError)


def test_dump_then_load_round_trips(toy: Hierarchy) -> None:
    again = load_hierarchy(dump_hierarchy(toy), datum="wgs84")
    assert list(again) == list(toy)
    assert dump_hierarchy(again) == dump_hierarchy(toy)


def test_gzip_file_loads(tmp_path: Path) -> None:
    packed = tmp_path / "toy.geojson.gz"
    packed.write_bytes(gzip.compress(TOY_CITY.read_bytes()))
    assert len(load_hierarchy(packed, datum="wgs84")) == 19


# Each row: a change to the toy city, the feature the error must name, and words of the message.
BREAKAGES: list[Any] = [
    pytest.param(
        lambda d: _feature(d, "990101001001001").update(geometry=_rect(0, 0.5, 1, 2)),
        "990101001001001",
        "overlaps 990101001001002",
        id="overlapping siblings: the north cell reaches down over the south one",
    ),
    pytest.param(
        lambda d: _feature(d, "990101001002001").update(geometry=_rect(1, 0, 2.5, 2)),
        "990101001002001",
        "outside its parent 990101001002",
        id="child outside parent: a cell reaching into the east county",
    ),
    pytest.param(
        lambda d: _feature(d, "990102100202002")["properties"].update(code="99010210020202"),
        "99010210020202",
        "a cell code has 15 digits, this one has 14",
        id="bad code: a cell code one digit short",
    ),
    pytest.param(
        lambda d: _feature(d, "990102100")["properties"].update(code="99010210A"),
        "99010210A",
        "property code",
        id="bad code: a letter in a town code",
    ),
    pytest.param(
        lambda d: _feature(d, "990102100201001")["properties"].update(code="990101002001001"),
        "990101002001001",
        "duplicate code",
        id="duplicate code: two cells with one code",
    ),
    pytest.param(
        lambda d: _feature(d, "990102100202001")["properties"].update(parent="990102100203"),
        "990102100202001",
        "missing parent: no feature has code 990102100203",
        id="missing parent: a cell whose village does not exist",
    ),
    pytest.param(
        lambda d: _feature(d, "990101002")["properties"].update(parent=None),
        "990101002",
        "missing parent: a town needs a parent",
        id="missing parent: a town with a null parent",
    ),
    pytest.param(
        lambda d: _feature(d, "990102100")["properties"].update(parent="990101"),
        "990102100",
        "does not start with its parent's prefix 990101",
        id="wrong parent: a town of the east county claimed by the west one",
    ),
    pytest.param(
        lambda d: _feature(d, "990101001001")["properties"].update(parent="990101"),
        "990101001001",
        "is a county, not a town",
        id="wrong parent level: a village hung directly under a county",
    ),
    pytest.param(
        lambda d: d["features"].remove(_feature(d, "990102100202002")),
        "990102100202",
        "its 1 cell covers only 50.00% of it",
        id="gap: a village whose second cell is missing",
    ),
    pytest.param(
        lambda d: _feature(d, "990101002001002").update(
            geometry={
                "type": "Polygon",
                "coordinates": [
                    [
                        [113.0, 22.009],
                        [113.01, 22.0135],
                        [113.01, 22.009],
                        [113.0, 22.0135],
                        [113.0, 22.009],
                    ]
                ],
            }
        ),
        "990101002001002",
        "not a valid polygon: Self-intersection",
        id="invalid polygon: a bow tie",
    ),
    pytest.param(
        lambda d: _feature(d, "990101").update(
            geometry={"type": "Point", "coordinates": [113, 22]}
        ),
        "990101",
        "must be a Polygon or MultiPolygon, not Point",
        id="wrong geometry type",
    ),
    pytest.param(
        lambda d: _feature(d, "990101").update(geometry=None),
        "990101",
        "must be a Polygon or MultiPolygon, not None",
        id="null geometry",
    ),
    pytest.param(
        lambda d: _feature(d, "990101")["properties"].update(level="district"),
        "990101",
        "property level",
        id="unknown level",
    ),
    pytest.param(
        lambda d: _feature(d, "990101")["properties"].pop("name"),
        "990101",
        "property name: Field required",
        id="missing name",
    ),
    pytest.param(
        lambda d: d["features"].append(copy.deepcopy(d["features"][0])),
        "990100",
        "duplicate code",
        id="two cities with one code",
    ),
    pytest.param(
        lambda d: d["features"][3].update(type="Thing"),
        "feature #3",
        "is not a GeoJSON Feature",
        id="not a Feature: named by position",
    ),
    pytest.param(
        lambda d: d.update(datum="gcj02"),
        "file",
        "declares datum 'gcj02' but was loaded as 'wgs84'",
        id="datum mismatch",
    ),
    pytest.param(
        lambda d: d.update(type="GeometryCollection"),
        "file",
        "is not a GeoJSON FeatureCollection",
        id="not a FeatureCollection",
    ),
]


@pytest.mark.parametrize(("breakage", "feature", "words"), BREAKAGES)
def test_invalid_file_names_the_feature(
    toy_document: Document, breakage: Callable[[Document], object], feature: str, words: str
) -> None:
    breakage(toy_document)
    with pytest.raises(InvalidGeographyError) as caught:
        load_hierarchy(orjson.dumps(toy_document), datum="wgs84")
    problems = caught.value.problems
    assert any(p.feature == feature and words in p.message for p in problems), problems
    # The message is for people: it names the source and the feature too.
    assert f"{feature}: " in str(caught.value)
    assert str(caught.value).startswith("<bytes>: ")


def test_every_problem_is_reported_at_once(toy_document: Document) -> None:
    _feature(toy_document, "990101002")["properties"].update(parent="990109")
    _feature(toy_document, "990102100202002")["properties"].update(code="99010210020202")
    with pytest.raises(InvalidGeographyError) as caught:
        load_hierarchy(orjson.dumps(toy_document), datum="wgs84")
    assert {p.feature for p in caught.value.problems} == {"990101002", "99010210020202"}
    assert str(caught.value).startswith("<bytes>: 2 problems")


def test_tolerance_accepts_slivers(toy_document: Document) -> None:
    # Move the shared edge of two cells by 1e-7 degrees (1 cm): a 1 cm overlap along 450 m.
    _feature(toy_document, "990101001001001")["geometry"] = {
        "type": "Polygon",
        "coordinates": [
            [
                [113.0, 22.0044999],
                [113.005, 22.0044999],
                [113.005, 22.009],
                [113.0, 22.009],
                [113.0, 22.0044999],
            ]
        ],
    }
    load_hierarchy(orjson.dumps(toy_document), datum="wgs84")
    with pytest.raises(InvalidGeographyError, match="overlaps 990101001001002"):
        load_hierarchy(orjson.dumps(toy_document), datum="wgs84", tolerance=1e-6)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{not json", "not valid JSON"),  # a truncated or corrupted file
        (b'{"type": "FeatureCollection", "features": []}', "has no features"),
        (b"[]", "is not a GeoJSON FeatureCollection"),
    ],
)
def test_unreadable_files(data: bytes, words: str) -> None:
    with pytest.raises(InvalidGeographyError, match=words):
        load_hierarchy(data, datum="wgs84")


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_hierarchy(tmp_path / "nowhere.geojson", datum="wgs84")


def test_datum_is_checked() -> None:
    with pytest.raises(ValueError, match="'bd09' is not a valid Datum"):
        load_hierarchy(TOY_CITY, datum="bd09")


def test_a_rejected_parent_does_not_orphan_its_children(toy_document: Document) -> None:
    # The west county's geometry is broken; its two towns are not reported as orphans too.
    _feature(toy_document, "990101")["geometry"] = None
    with pytest.raises(InvalidGeographyError) as caught:
        load_hierarchy(orjson.dumps(toy_document), datum="wgs84")
    assert [p.feature for p in caught.value.problems] == ["990101"]
