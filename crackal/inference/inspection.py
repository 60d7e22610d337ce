"""The inspection outputs of ``crackal predict --defects``: one row per defect, their
geometry, and the condition summary.

```
OUT/defects.csv        one row per defect: image, class, type, severity, length, widths, area, box, centroid (+ map position)
OUT/defects.json       the same with the centre lines and outlines (pixel coordinates), the options and the images
OUT/defects.geojson    the defects as features in pixel coordinates, the GeoTIFF's CRS or WGS84 (photos with GPS)
OUT/condition_images.csv    per image: counts, crack length and area by type and severity, density
OUT/condition_segments.csv  the same per segment (--segments CSV or --chainage bins)
OUT/condition.md / .html    the summary, with OUT/severity_map.png
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from crackal.inference.condition import (
    chainage_bins,
    draw_map,
    read_segments,
    segment_of,
    summarise,
    write_csv,
    write_report,
)
from crackal.inference.defect_list import DefectList
from crackal.inference.defects import DefectOptions
from crackal.inference.geo import WGS84, Georef, chainage, geojson_features, geojson_head, track_order


def flat_row(defect: dict, georef: Georef | None = None) -> dict:
    """A defect as one CSV row: the box and centroid split into columns, the geometry left out;
    the centroid's map position added when the image is georeferenced."""
    row = {k: v for k, v in defect.items() if k not in ("lines", "polygons", "bbox", "centroid")}
    row.update(zip(("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"), defect["bbox"]))
    row["centroid_x"], row["centroid_y"] = defect["centroid"]
    if georef is not None and georef.kind != "pixel":
        x, y = georef.to_map([defect["centroid"]])[0]
        geographic = georef.crs == WGS84
        row["map_x" if not geographic else "lon"] = round(float(x), 9)
        row["map_y" if not geographic else "lat"] = round(float(y), 9)
        row["crs"] = georef.crs
    return row


def assign_segments(images: list[dict], georefs: dict[str, Georef], segments_csv: str | Path | None,
                    chainage_m: float | None) -> bool:
    """Put a ``segment`` (and for chainage bins a ``chainage_m``) into each image record; False
    when no segmentation was asked for."""
    if segments_csv:
        table = read_segments(segments_csv)
        for record in images:
            record["segment"] = segment_of(record["image"], table) or "unassigned"
        return True
    if chainage_m:
        positions = {r["image"]: georefs[r["image"]].position() for r in images
                     if r["image"] in georefs and georefs[r["image"]].kind == "gps"}
        taken = {r["image"]: r.get("taken") for r in images}
        distance = chainage({n: p for n, p in positions.items() if p is not None},
                            track_order({n: p for n, p in positions.items() if p is not None}, taken))
        bins = chainage_bins(distance, chainage_m)
        for record in images:
            record["segment"] = bins.get(record["image"], "no GPS")
            if record["image"] in distance:
                record["chainage_m"] = round(distance[record["image"]], 2)
        return True
    return False


def write_json_streamed(path: Path, head: dict, key: str, items: Iterable) -> None:
    """``{**head, key: [*items]}`` as JSON, one item per line, written as ``items`` are read."""
    for _ in _json_streamed(path, head, key, items):
        pass


def _json_streamed(path: Path, head: dict, key: str, items: Iterable) -> Iterator:
    """``write_json_streamed`` yielding each item once written: the file is written by whoever
    reads the items on (one pass over them for several outputs)."""
    with path.open("w") as f:
        f.write("{\n")
        for name, value in head.items():
            f.write(f" {json.dumps(name)}: {json.dumps(value)},\n")
        f.write(f" {json.dumps(key)}: [")
        for number, item in enumerate(items):
            f.write(("," if number else "") + "\n  " + json.dumps(item))
            yield item
        f.write("\n ]\n}\n")


SUMMARY_KEYS = ("image", "class", "type", "severity", "length_px", "length_m", "area_px", "area_m2")


def summary_record(defect: dict) -> dict:
    """What the condition summary reads of a defect: its image, class, type, severity, length and
    area; a crack keeps an empty ``lines`` (the summary's mark of a crack), the geometry goes."""
    record = {k: defect[k] for k in SUMMARY_KEYS if k in defect}
    if "lines" in defect:
        record["lines"] = []
    return record


def write_inspection(out: str | Path, defects: Iterable[dict], images: list[dict], georefs: dict[str, Georef],
                     options: DefectOptions, *, segments: str | Path | None = None, chainage_m: float | None = None,
                     threshold: float | None = None) -> dict:
    """Write the defect tables, GeoJSON and condition summary (see the module docstring) into
    ``out``; returns the paths written. The defects are numbered (``id``) in the order given and
    kept on disk (``DefectList``) while the outputs are written, so their number is not
    limited by memory."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    segmented = assign_segments(images, georefs, segments, chainage_m)
    segment_by_image = {r["image"]: r.get("segment") for r in images}

    def row(d: dict) -> dict:
        flat = flat_row(d, georefs.get(d["image"]))
        return {"id": flat["id"], "image": flat["image"], "segment": segment_by_image.get(d["image"]), **flat} if segmented else flat

    written = {"defects_csv": out / "defects.csv", "defects_json": out / "defects.json", "geojson": out / "defects.geojson"}
    settings = {"threshold": threshold, "options": options.to_dict(),
                "georeferencing": {name: g.kind + (f" ({g.crs})" if g.crs else "") for name, g in georefs.items()}}
    # one pass over the full records (centre lines and outlines are most of their size): as it reads
    # them it numbers them, writes defects.json, makes the CSV rows and the summary's light records, and
    # makes the GeoJSON features and writes defects.geojson; the features stay on disk for the map
    rows, light = DefectList(), DefectList()
    numbered = ({"id": number, **{k: v for k, v in d.items() if k != "id"}} for number, d in enumerate(defects, start=1))

    def read_once() -> Iterator[dict]:
        for d in _json_streamed(written["defects_json"], {**settings, "images": images}, "defects", numbered):
            rows.append(row(d))
            light.append(summary_record(d))
            yield d

    head = geojson_head(georefs)
    features = DefectList(_json_streamed(written["geojson"], head, "features", geojson_features(read_once(), georefs, images)))
    write_csv(rows or [{"id": None, "image": None, "class": None, "type": None, "severity": None}], written["defects_csv"])

    severities = list(options.severity.names) if any(r.get("gsd_m") for r in images) else None
    per_image = summarise(light, images, severity_names=severities)
    written["condition_images"] = out / "condition_images.csv"
    write_csv(per_image, written["condition_images"])
    per_segment = None
    if segmented:
        per_segment = summarise(light, images, key="segment", severity_names=severities)
        written["condition_segments"] = out / "condition_segments.csv"
        write_csv(per_segment, written["condition_segments"])
    counts: dict[str, int] = {}
    for d in light:
        counts[d["image"]] = counts.get(d["image"], 0) + 1
    written["map"] = draw_map(head, features, light, images, list(options.severity.names), out / "severity_map.png",
                              counts=counts)
    gsds = sorted({r["gsd_m"] for r in images if r.get("gsd_m")})
    summary_settings = {
        "ground sampling distance": ", ".join(f"{g * 1000:.3g} mm/px" for g in gsds) or "unknown (lengths in px, no severity)",
        "severity bands (width in mm, upper bounds)": ", ".join(
            f"{n} <= {b:g}" for n, b in zip(options.severity.names, options.severity.bounds_mm)) + f", {options.severity.names[-1]} above",
        "severity from the width statistic": options.severity_width,
        "gap bridged": f"{options.gap_px:g} px",
        "direction of travel": f"{options.travel_direction_deg:g} deg from the image x axis",
    }
    if threshold is not None:
        summary_settings["crack threshold"] = f"{threshold:.2f}"
    written["summary_md"], written["summary_html"] = write_report(out, light, images, per_image, per_segment,
                                                                  summary_settings, "severity_map.png",
                                                                  severity_names=severities)
    return {k: str(v) for k, v in written.items()} | {"count": len(light)}
