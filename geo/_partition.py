"""Seeded Voronoi partitions of polygons, exact to a coordinate grid (used by ``geo.generate``).

Each parent polygon is split among its children by the Voronoi diagram of one seed point per
child. Clipping each Voronoi cell to its parent separately would leave slivers where float
intersections disagree, so instead all boundaries of one level (the parents' outlines, optional
zone outlines, and the clipped Voronoi edges) are noded together with snap-rounding on a fixed
grid and polygonized into faces. Faces are atoms: every face gets exactly one child, so the
children's unions tile the parents without gaps or overlaps, with vertices on the grid, and
neighbours share identical edges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

__all__ = ["Zone", "partition", "relax", "sample_seeds"]

Points = NDArray[np.float64]


@dataclass(frozen=True)
class Zone:
    """A part of a parent in which some of its children's seeds compete.

    Most parents are a single zone. An urban core (streets of a district, communities of a town)
    is a zone of its own, so that its children stay compact instead of reaching out as far as
    the nearest rural seed.
    """

    polygon: BaseGeometry
    parent: int
    seeds: Points
    children: NDArray[np.intp]
    whole_parent: bool


def sample_seeds(polygon: BaseGeometry, count: int, rng: np.random.Generator) -> Points:
    """Draw ``count`` seed points uniformly inside ``polygon``, spread apart.

    Seeds keep a margin from the boundary (so every child gets a face of its own after
    snap-rounding) and from each other (so neighbouring children are not slivers); both shrink
    when the polygon is too small to fit them.
    """
    if count == 0:
        return np.empty((0, 2))
    shapely.prepare(polygon)
    boundary = polygon.boundary
    shapely.prepare(boundary)
    area = polygon.area
    x0, y0, x1, y1 = polygon.bounds
    # Half the spacing of a square lattice with `count` points: Poisson-disk-like seeds give
    # children of comparable size, as real administrative units are, unlike pure random seeds.
    spacing = 0.5 * (area / count) ** 0.5
    margin = min(1e-4, 0.05 * area**0.5)
    accepted: list[tuple[float, float]] = []
    while len(accepted) < count:
        for _ in range(20):
            xs = rng.uniform(x0, x1, 64)
            ys = rng.uniform(y0, y1, 64)
            inside = shapely.contains_xy(polygon, xs, ys)
            inside &= ~shapely.dwithin(boundary, shapely.points(xs, ys), margin)
            for x, y in zip(xs[inside].tolist(), ys[inside].tolist(), strict=True):
                if all((x - ax) ** 2 + (y - ay) ** 2 >= spacing**2 for ax, ay in accepted):
                    accepted.append((x, y))
                    if len(accepted) == count:
                        return np.array(accepted)
        spacing /= 2
        margin /= 2
    return np.array(accepted)


def relax(polygon: BaseGeometry, seeds: Points, iterations: int) -> Points:
    """Move seeds towards the centroids of their clipped Voronoi cells (Lloyd's algorithm).

    A couple of iterations turn random seeds into the even, roughly hexagonal cells that
    management grids (网格) are drawn as. A seed whose centroid falls outside the polygon (a
    C-shaped cell) stays where it was.
    """
    if len(seeds) < 2:
        return seeds
    shapely.prepare(polygon)
    for _ in range(iterations):
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=polygon, ordered=True)
        )
        centroids = shapely.get_coordinates(shapely.centroid(shapely.intersection(cells, polygon)))
        inside = shapely.contains_xy(polygon, centroids[:, 0], centroids[:, 1])
        seeds = np.where(inside[:, None], centroids, seeds)
    return seeds


def partition(
    parents: Sequence[BaseGeometry], zones: Sequence[Zone], child_count: int, grid_size: float
) -> list[BaseGeometry]:
    """Split parents among children; return one polygon per child, indexed by child id.

    Parameters
    ----------
    parents : sequence of geometries
        The polygons to split; they must not overlap.
    zones : sequence of Zone
        The zones of every parent, each with seeds labelled by child id (0 to ``child_count``).
    child_count : int
        Number of children over all parents.
    grid_size : float
        Snap-rounding grid; every output vertex lies on it.

    Returns
    -------
    list of geometries
        Polygon or MultiPolygon of each child; detached pieces are merged into the neighbour
        they share most border with when one exists.
    """
    faces = _faces(parents, zones, grid_size)
    labels, seed_faces = _label_faces(faces, zones, child_count)
    parent_of = np.empty(child_count, dtype=np.intp)
    for zone in zones:
        parent_of[zone.children] = zone.parent
    labels = _merge_detached(faces, labels, seed_faces, parent_of)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(child_count + 1))
    result = []
    for child in range(child_count):
        members = faces[order[bounds[child] : bounds[child + 1]]]
        result.append(shapely.coverage_union_all(members))
    return result


def _faces(
    parents: Sequence[BaseGeometry], zones: Sequence[Zone], grid_size: float
) -> NDArray[np.object_]:
    lines = [shapely.boundary(parent) for parent in parents]
    for zone in zones:
        if not zone.whole_parent:
            lines.append(shapely.boundary(zone.polygon))
        if len(zone.seeds) > 1:
            edges = shapely.voronoi_polygons(
                shapely.multipoints(zone.seeds), extend_to=zone.polygon, only_edges=True
            )
            lines.append(shapely.intersection(edges, zone.polygon))
    noded = shapely.union_all(lines, grid_size=grid_size)
    faces: NDArray[np.object_] = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return faces


def _label_faces(
    faces: NDArray[np.object_], zones: Sequence[Zone], child_count: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Give each face the child whose seed is nearest within the face's zone."""
    probes = shapely.point_on_surface(faces)
    zone_polygons = np.array([zone.polygon for zone in zones], dtype=object)
    face_index, zone_index = shapely.STRtree(zone_polygons).query(probes, predicate="within")
    zone_of = np.full(len(faces), -1, dtype=np.intp)
    # A probe on a zone outline (a face thinner than the grid) falls in no zone or two: the
    # zone it overlaps most decides, which also settles snap-rounding slivers.
    hits = np.bincount(face_index, minlength=len(faces))
    single = hits[face_index] == 1
    zone_of[face_index[single]] = zone_index[single]
    for face in np.flatnonzero(hits != 1).tolist():
        overlap = shapely.area(shapely.intersection(faces[face], zone_polygons))
        zone_of[face] = int(np.argmax(overlap))
    labels = np.empty(len(faces), dtype=np.intp)
    xy = shapely.get_coordinates(probes)
    for number, zone in enumerate(zones):
        members = np.flatnonzero(zone_of == number)
        if not members.size:
            continue
        distances = ((xy[members, None, :] - zone.seeds[None, :, :]) ** 2).sum(axis=2)
        labels[members] = zone.children[np.argmin(distances, axis=1)]
    seed_faces = np.full(child_count, -1, dtype=np.intp)
    tree = shapely.STRtree(faces)
    for zone in zones:
        seed_index, face_index = tree.query(shapely.points(zone.seeds), predicate="within")
        seed_faces[zone.children[seed_index]] = face_index
        # The face holding a seed belongs to that seed's child, whatever its probe said: this is
        # what guarantees every child a non-empty polygon.
        labels[face_index] = zone.children[seed_index]
    missing = np.flatnonzero(seed_faces < 0)
    if missing.size:
        raise RuntimeError(f"seeds of children {missing.tolist()} fell in no face")
    return labels, seed_faces


def _merge_detached(
    faces: NDArray[np.object_],
    labels: NDArray[np.intp],
    seed_faces: NDArray[np.intp],
    parent_of: NDArray[np.intp],
) -> NDArray[np.intp]:
    """Hand pieces of a child cut off from its seed to the sibling they border most.

    Clipping a convex Voronoi cell to a concave parent can leave a piece of the cell on the far
    side of a bay; a village in two pieces is not what a map of villages looks like.
    """
    left, right = shapely.STRtree(faces).query(faces, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.length(shapely.intersection(faces[left], faces[right]))
    edge = shared > 0
    left, right, shared = left[edge], right[edge], shared[edge]
    labels = labels.copy()
    for _ in range(100):
        component = _components(len(faces), left, right, labels)
        main = component[seed_faces]
        in_main = np.zeros(len(faces), dtype=bool)
        in_main[np.isin(component, main)] = True
        detached = np.flatnonzero(~in_main)
        if not detached.size:
            break
        # Border length from each detached component to the main component of each sibling.
        borders: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for a, b, length in zip(left.tolist(), right.tolist(), shared.tolist(), strict=True):
            for here, there in ((a, b), (b, a)):
                if in_main[here] or not in_main[there]:
                    continue
                if parent_of[labels[here]] != parent_of[labels[there]]:
                    continue
                borders[int(component[here])][int(labels[there])] += length
        if not borders:
            break
        for piece, lengths in sorted(borders.items()):
            best = max(sorted(lengths), key=lambda child: lengths[child])
            labels[component == piece] = best
    return labels


def _components(
    count: int, left: NDArray[np.intp], right: NDArray[np.intp], labels: NDArray[np.intp]
) -> NDArray[np.intp]:
    """Label connected components of faces joined by an edge to a face of the same child."""
    parent = np.arange(count)

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = int(parent[node])
        return node

    same = labels[left] == labels[right]
    for a, b in zip(left[same].tolist(), right[same].tolist(), strict=True):
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    return np.array([find(node) for node in range(count)], dtype=np.intp)
