"""The neighbour table: which cells touch, from the real cell polygons."""

from __future__ import annotations

from geo import Hierarchy, cell_neighbours


def test_every_heyuan_cell_has_touching_neighbours_and_touching_is_mutual(
    heyuan: Hierarchy,
) -> None:
    table = cell_neighbours(heyuan)
    cells = heyuan.table("cell")
    assert set(table) == {str(code) for code in cells.codes}
    for cell, near in table.items():
        assert cell not in near
        assert near, f"{cell} touches nothing"
        for other in near:
            assert cell in table[other], (cell, other)
    mean = sum(len(near) for near in table.values()) / len(table)
    assert 3 < mean < 12, mean  # a tiling of the plane: about six each


def test_neighbours_touch_and_others_do_not(heyuan: Hierarchy) -> None:
    table = cell_neighbours(heyuan)
    cell = sorted(table)[0]
    shape = heyuan.geometry(cell)
    for other in table[cell]:
        assert shape.distance(heyuan.geometry(other)) == 0
    far = [c for c in sorted(table) if c not in table[cell] and c != cell][:50]
    assert all(shape.distance(heyuan.geometry(c)) > 0 for c in far)


def test_cells_touch_across_town_and_county_lines(heyuan: Hierarchy) -> None:
    table = cell_neighbours(heyuan)
    pairs = [(a, b) for a, near in table.items() for b in near]
    assert any(a[:9] != b[:9] and a[:6] == b[:6] for a, b in pairs)  # town line
    assert any(a[:6] != b[:6] for a, b in pairs)  # county line
