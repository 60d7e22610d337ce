"""Where defects are on the ground: pixel coordinates, a GeoTIFF's coordinate reference system
(from its geotransform), or a photo's GPS position (EXIF) with offsets from the GSD and heading;
GeoJSON of the defects; chainage along a GPS track.

An image's ``Georef`` maps continuous pixel coordinates (x = column, y = row, the top-left
corner at (0, 0)) to map coordinates:

- ``pixel``: no georeferencing; coordinates stay pixels (y down);
- ``raster``: a GeoTIFF's affine geotransform, into the raster's CRS (``x = a col + b row + c``,
  ``y = d col + e row + f``);
- ``gps``: a photo whose EXIF holds GPS latitude and longitude, taken looking straight down,
  its GPS position at the image centre. With a ground sampling distance and a heading (the
  direction the top of the image faces, degrees clockwise from north; ``--heading`` or the
  EXIF GPSImgDirection) a pixel is placed at its offset from the centre (east, north metres)
  on the WGS84 ellipsoid's local radii; without them every defect of the photo sits at the
  photo's position. Output in WGS84 longitude / latitude (EPSG:4326).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from crackal.errors import CrackalError

WGS84 = "EPSG:4326"
_A, _E2 = 6378137.0, 6.69437999014e-3  # WGS84 semi-major axis (m) and first eccentricity squared
_GPS_IFD, _EXIF_IFD, _DATETIME_ORIGINAL = 0x8825, 0x8769, 0x9003


@dataclass
class Georef:
    """How one image's pixel coordinates map to map coordinates (see the module docstring)."""

    kind: Literal["pixel", "raster", "gps"] = "pixel"
    crs: str | None = None
    transform: tuple[float, float, float, float, float, float] | None = None  # a, b, c, d, e, f
    lat: float | None = None
    lon: float | None = None
    heading_deg: float | None = None
    gsd_m: float | None = None
    width: int = 0
    height: int = 0

    @property
    def places_pixels(self) -> bool:
        """Whether each pixel has its own map position (a raster, or a photo with GSD and heading)."""
        return self.kind == "raster" or (self.kind == "gps" and self.gsd_m is not None and self.heading_deg is not None)

    def offsets_m(self, points: np.ndarray) -> np.ndarray:
        """``(N, 2)`` east / north metres of pixel points from a photo's centre (gps with GSD and heading)."""
        assert self.gsd_m is not None and self.heading_deg is not None
        right = (points[:, 0] - self.width / 2) * self.gsd_m
        up = (self.height / 2 - points[:, 1]) * self.gsd_m
        h = math.radians(self.heading_deg)
        return np.stack([right * math.cos(h) + up * math.sin(h), -right * math.sin(h) + up * math.cos(h)], 1)

    def to_map(self, points) -> np.ndarray:
        """``(N, 2)`` pixel points -> map coordinates (x, y / longitude, latitude)."""
        points = np.asarray(points, float).reshape(-1, 2)
        if self.kind == "raster":
            assert self.transform is not None
            a, b, c, d, e, f = self.transform
            return np.stack([a * points[:, 0] + b * points[:, 1] + c, d * points[:, 0] + e * points[:, 1] + f], 1)
        if self.kind == "gps":
            assert self.lat is not None and self.lon is not None
            if not self.places_pixels:
                return np.tile([self.lon, self.lat], (len(points), 1))
            east_north = self.offsets_m(points)
            return offset_lonlat(self.lon, self.lat, east_north[:, 0], east_north[:, 1])
        return points

    def position(self) -> tuple[float, float] | None:
        """The image's own position in map coordinates: a photo's GPS point, a raster's centre."""
        if self.kind == "gps":
            assert self.lat is not None and self.lon is not None
            return self.lon, self.lat
        if self.kind == "raster":
            x, y = self.to_map([[self.width / 2, self.height / 2]])[0]
            return float(x), float(y)
        return None


def offset_lonlat(lon: float, lat: float, east_m, north_m) -> np.ndarray:
    """Longitude / latitude of points ``east_m, north_m`` metres from (lon, lat), on the WGS84
    ellipsoid's meridional and normal radii of curvature there (exact to well under a
    centimetre over a photo's footprint).

    >>> offset_lonlat(0.0, 0.0, [0.0], [1852.0]).round(4).tolist()   # one nautical mile north ~ 1'
    [[0.0, 0.0167]]
    """
    phi = math.radians(lat)
    w = 1 - _E2 * math.sin(phi) ** 2
    meridional, normal = _A * (1 - _E2) / w**1.5, _A / math.sqrt(w)
    east_m, north_m = np.asarray(east_m, float), np.asarray(north_m, float)
    return np.stack([lon + np.degrees(east_m / (normal * math.cos(phi))), lat + np.degrees(north_m / meridional)], 1)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(min(1.0, h)))


def _rational(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        numerator, denominator = value
        return float(numerator) / float(denominator)


def _dms(values, ref: str, negative: str) -> float:
    degrees, minutes, seconds = (_rational(v) for v in values)
    sign = -1.0 if str(ref).strip().upper().startswith(negative) else 1.0
    return sign * (degrees + minutes / 60 + seconds / 3600)


def read_gps(path: str | Path) -> dict | None:
    """GPS latitude, longitude (degrees, WGS84), altitude (m), image direction (degrees from
    north) and the time taken from a photo's EXIF; None when it has no GPS position.

    Returns ``{"lat", "lon", "altitude_m", "heading_deg", "taken"}`` (the last three may be None).
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            exif = img.getexif()
            gps = exif.get_ifd(_GPS_IFD)
            taken = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(0x0132)
    except Exception:  # noqa: BLE001 - no readable EXIF: no position
        return None
    if not gps or 2 not in gps or 4 not in gps:
        return None
    try:
        lat = _dms(gps[2], gps.get(1, "N"), "S")
        lon = _dms(gps[4], gps.get(3, "E"), "W")
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    altitude = None
    if 6 in gps:
        try:
            altitude = _rational(gps[6]) * (-1 if gps.get(5) in (1, b"\x01") else 1)
        except (TypeError, ValueError, ZeroDivisionError):
            altitude = None
    heading = None
    if 17 in gps:
        try:
            heading = _rational(gps[17]) % 360
        except (TypeError, ValueError, ZeroDivisionError):
            heading = None
    return {"lat": lat, "lon": lon, "altitude_m": altitude, "heading_deg": heading, "taken": str(taken) if taken else None}


def raster_georef(dataset) -> Georef | None:
    """The ``Georef`` of an open rasterio dataset, or None when it has neither a CRS nor a
    geotransform other than the identity."""
    transform = dataset.transform
    crs = dataset.crs
    if crs is None and transform.is_identity:
        return None
    return Georef("raster", crs=crs.to_string() if crs else None, transform=tuple(transform)[:6], width=dataset.width,
                  height=dataset.height, gsd_m=raster_gsd(dataset))


def raster_gsd(dataset) -> float | None:
    """Metres per pixel of a raster in a projected CRS (the square root of a pixel's area);
    None for a geographic CRS (degrees) or none."""
    crs = dataset.crs
    if crs is None or not crs.is_projected:
        return None
    try:
        _, factor = crs.linear_units_factor
    except Exception:  # noqa: BLE001 - units rasterio cannot name
        return None
    t = dataset.transform
    return float(math.sqrt(abs(t.a * t.e - t.b * t.d)) * factor)


def gps_georef(info: dict, height: int, width: int, gsd_m: float | None, heading_deg: float | None) -> Georef:
    """The ``Georef`` of a photo with the GPS fix ``info`` (``read_gps``); ``heading_deg``
    overrides the EXIF image direction."""
    heading = heading_deg if heading_deg is not None else info.get("heading_deg")
    return Georef("gps", crs=WGS84, lat=info["lat"], lon=info["lon"], heading_deg=heading, gsd_m=gsd_m, width=width,
                  height=height)


def _ring(points: list) -> list:
    return points if points and points[0] == points[-1] else [*points, points[0]]


def _counter_clockwise(ring: np.ndarray) -> np.ndarray:
    x, y = ring[:, 0], ring[:, 1]
    signed = float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
    return ring if signed >= 0 else ring[::-1]


def defect_geometry(defect: dict, georef: Georef, transform_to=None) -> dict | None:
    """The GeoJSON geometry of a defect record in the georef's map coordinates (``transform_to``:
    an optional function mapping ``(N, 2)`` map points into another CRS)."""

    def convert(points) -> list:
        mapped = georef.to_map(points)
        if transform_to is not None:
            mapped = transform_to(mapped)
        return np.round(mapped, 9).tolist()

    def convert_all(groups: list) -> list[list]:  # one mapping for all of a defect's lines: thousands of lines a survey
        if len(groups) < 2:
            return [convert(np.asarray(points, float).reshape(-1, 2)) for points in groups]
        mapped = convert(np.asarray(list(itertools.chain.from_iterable(groups)), float).reshape(-1, 2))
        ends = np.cumsum([len(points) for points in groups]).tolist()
        return [mapped[start:end] for start, end in zip([0, *ends[:-1]], ends)]

    if georef.kind == "gps" and not georef.places_pixels:
        position = georef.position()
        if position is None:
            return None
        return {"type": "Point", "coordinates": convert([[georef.width / 2, georef.height / 2]])[0]}
    if "lines" in defect:
        lines = convert_all(defect["lines"])
        return {"type": "LineString", "coordinates": lines[0]} if len(lines) == 1 else {"type": "MultiLineString", "coordinates": lines}
    polygons = []
    for points in defect.get("polygons", []):
        ring = np.asarray(convert(_ring(points)))
        if georef.kind != "pixel":  # RFC 7946: exterior rings counter-clockwise (in map axes, y up)
            ring = _counter_clockwise(ring)
        polygons.append([ring.tolist()])
    if not polygons:
        return None
    return {"type": "Polygon", "coordinates": polygons[0]} if len(polygons) == 1 else {"type": "MultiPolygon", "coordinates": polygons}


GEOMETRY_KEYS = ("lines", "polygons")


def _target_crs(georefs: dict[str, Georef]) -> str | None:
    """The one CRS of a GeoJSON of these images: None (pixel coordinates), their CRS, or WGS84."""
    crss = {g.crs for g in georefs.values() if g.kind != "pixel"}
    return None if not crss else next(iter(crss)) if len(crss) == 1 else WGS84


def geojson_head(georefs: dict[str, Georef]) -> dict:
    """The FeatureCollection's members other than its features (see ``geojson_features``)."""
    target = _target_crs(georefs)
    collection: dict = {"type": "FeatureCollection"}
    if target is None:
        collection["coordinates"] = "pixel"
    elif target != WGS84:
        collection["crs"] = {"type": "name", "properties": {"name": _ogc_urn(target)}}
    return collection


def geojson_features(defects: Iterable[dict], georefs: dict[str, Georef], images: list[dict] | None = None) -> Iterator[dict]:
    """The features of a GeoJSON FeatureCollection of the defects (each with an ``image`` key),
    one at a time, in one CRS (``geojson_head`` names it):

    - no image georeferenced: pixel coordinates (``"coordinates": "pixel"``, y down);
    - all georeferenced images in one CRS: that CRS (named in a ``crs`` member unless WGS84);
      a defect of an image without georeferencing then has a null geometry;
    - several CRSs: everything in WGS84 longitude / latitude (reprojected with rasterio).

    Photos with a GPS position also get one Point feature each (``"feature": "image"``, with
    the image's defect count; ``images``: per-image records to copy into it).
    """
    target = _target_crs(georefs)

    def reproject(crs):
        if target is None or crs == target or crs is None:
            return None
        from rasterio.warp import transform as warp

        def run(points: np.ndarray) -> np.ndarray:
            xs, ys = warp(crs, target, points[:, 0].tolist(), points[:, 1].tolist())
            return np.stack([xs, ys], 1)

        return run

    per_image = {r["image"]: r for r in images or []}
    counts: dict[str, int] = {}
    for defect in defects:
        name = defect["image"]
        counts[name] = counts.get(name, 0) + 1
        georef = georefs.get(name, Georef())
        if target is None or georef.kind != "pixel":
            geometry = defect_geometry(defect, georef, reproject(georef.crs))
        else:
            geometry = None
        properties = {k: v for k, v in defect.items() if k not in GEOMETRY_KEYS}
        if georef.kind == "gps" and georef.places_pixels:
            east, north = georef.offsets_m(np.asarray([defect["centroid"]], float))[0]
            properties.update(offset_east_m=round(float(east), 3), offset_north_m=round(float(north), 3))
        yield {"type": "Feature", "geometry": geometry, "properties": properties}
    for name, georef in georefs.items():
        if georef.kind != "gps":
            continue
        move = reproject(georef.crs)
        point = np.asarray([georef.position()], float)
        point = move(point) if move else point
        properties = {"feature": "image", "image": name, "defects": counts.get(name, 0), **per_image.get(name, {})}
        properties["image"] = name
        yield {"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(float(v), 9) for v in point[0]]},
               "properties": properties}


def _ogc_urn(crs: str) -> str:
    """``EPSG:32633`` -> ``urn:ogc:def:crs:EPSG::32633`` (the CRS naming GDAL and QGIS read); a
    CRS without an EPSG code is kept as its WKT / PROJ string."""
    if crs.upper().startswith("EPSG:"):
        return f"urn:ogc:def:crs:EPSG::{crs.split(':', 1)[1]}"
    return crs


def track_order(positions: dict[str, tuple[float, float]], taken: dict[str, str | None]) -> list[str]:
    """Images in the order they were taken (EXIF time, then name)."""
    return sorted(positions, key=lambda n: (taken.get(n) or "", n))


def chainage(positions: dict[str, tuple[float, float]], order: list[str]) -> dict[str, float]:
    """Distance in metres along the GPS track (``positions``: name -> (lon, lat)) of each image."""
    result: dict[str, float] = {}
    total, previous = 0.0, None
    for name in order:
        lon, lat = positions[name]
        if previous is not None:
            total += distance_m(previous[0], previous[1], lon, lat)
        result[name] = total
        previous = (lon, lat)
    return result


def check_heading(heading_deg: float | None) -> None:
    """A heading is a finite number of degrees."""
    if heading_deg is not None and not math.isfinite(heading_deg):
        raise CrackalError(f"--heading must be a number of degrees clockwise from north, got {heading_deg}")
