"""The generator reproduces the committed grid, the benchmark runs, and the examples hold."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import pytest

from geo import Hierarchy, bench, dump_hierarchy, generate


@pytest.fixture(scope="module")
def generated() -> Hierarchy:
    """A fresh generation of the Heyuan grid (about four seconds)."""
    return generate.generate()


def test_generator_reproduces_the_committed_file(generated: Hierarchy) -> None:
    # The whole generation, compared byte for byte with what is committed: this shows both that
    # the file is current and that generation is deterministic.
    committed = (generate.DATA / "grid.geojson").read_bytes()
    assert dump_hierarchy(generated) == committed


def test_generator_check_mode(
    generated: Hierarchy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(generate, "generate", lambda: generated)
    target = tmp_path / "grid.geojson"
    target.write_bytes(b"{}")
    assert generate.main(["--check", "--output", str(target)]) == 1
    assert "out of date" in capsys.readouterr().err
    target.write_bytes((generate.DATA / "grid.geojson").read_bytes())
    assert generate.main(["--check", "--output", str(target)]) == 0
    assert "cells in 源城区" in capsys.readouterr().out


def test_bench_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "results" / "geo.json"
    assert bench.main(["--json", str(target), "--points", "2000", "--repeats", "1"]) == 0
    results = json.loads(target.read_text(encoding="utf-8"))
    assert results["counts"]["village"] == 1452
    assert results["located_share_of_city_points"] == 1.0
    assert set(results["batched_points_per_second"]) >= {"city_gcj02_batch_10000"}
    assert "points/s" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module",
    ["geo", "geo.datum", "geo.exceptions", "geo.geojson", "geo.hierarchy", "geo.locator"],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
