"""Condition summaries: defects added up per image and per road segment or bridge element,
a Markdown / HTML report and a map of the defects coloured by severity.

Segments come from a CSV mapping images to segment ids (columns ``image,segment``) or from
fixed-length chainage bins along the GPS track (images in the order taken, distance summed
from one GPS position to the next). Per image and per segment: the number of defects, the
crack length and area by type and by severity, the other classes' counts and areas, the area
surveyed and the crack density (crack length per surveyed area, m/m^2; px/px^2 without a
ground sampling distance).
"""

from __future__ import annotations

import csv
import html
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crackal.errors import CrackalError
from crackal.inference.defects import CRACK_TYPES, UNKNOWN

SEVERITY_COLORS = {"low": "#2ca02c", "moderate": "#ff7f0e", "high": "#d62728", UNKNOWN: "#7f7f7f"}


def read_segments(path: str | Path) -> dict[str, str]:
    """``image -> segment`` from a CSV with columns ``image`` and ``segment`` (image names
    with or without their extension)."""
    path = Path(path)
    if not path.is_file():
        raise CrackalError(f"segments file not found: {path}; give a CSV with columns image,segment")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error):
        rows = []
    if not rows or not {"image", "segment"} <= set(rows[0]):
        raise CrackalError(f"{path} needs a header with the columns image and segment (one row per image)")
    return {row["image"].strip(): row["segment"].strip() for row in rows if row.get("image")}


def segment_of(name: str, segments: dict[str, str]) -> str | None:
    """The segment of an image by its file name or its stem."""
    return segments.get(name, segments.get(Path(name).stem))


def chainage_bins(chainage_m: dict[str, float], bin_m: float) -> dict[str, str]:
    """``image -> "0-100 m"`` bins of ``bin_m`` metres along the track.

    >>> chainage_bins({"a.jpg": 0.0, "b.jpg": 99.0, "c.jpg": 150.0}, 100)
    {'a.jpg': '0-100 m', 'b.jpg': '0-100 m', 'c.jpg': '100-200 m'}
    """
    if not bin_m > 0:
        raise CrackalError(f"--chainage must be a positive length in metres, got {bin_m}")
    result = {}
    for name, distance in chainage_m.items():
        start = int(distance // bin_m) * bin_m
        result[name] = f"{start:g}-{start + bin_m:g} m"
    return result


def _unit(images: list[dict]) -> str:
    return "m" if images and all(r.get("gsd_m") for r in images) else "px"


def _severities(defects: Iterable[dict], names: list[str] | None) -> list[str]:
    """The severity classes to report: the bands' names, then any other seen (unknown)."""
    return list(dict.fromkeys([*(names or []), *(d["severity"] for d in defects if "lines" in d)]))


def summarise(defects: Iterable[dict], images: list[dict], key: str | None = None, severity_names: list[str] | None = None) -> list[dict]:
    """One row per image (``key`` None) or per value of ``key`` in the image records (e.g.
    ``segment``): images, area surveyed, defect counts, crack length and area by type and by
    severity (``severity_names`` always, others when seen), other classes' counts and areas,
    crack density."""
    unit = _unit(images)
    length_key, area_key = ("length_m", "area_m2") if unit == "m" else ("length_px", "area_px")
    area_unit = "m2" if unit == "m" else "px2"
    severities = _severities(defects, severity_names)
    regions = list(dict.fromkeys(d["class"] for d in defects if "lines" not in d))
    group_of = {r["image"]: (r["image"] if key is None else r.get(key)) for r in images}
    order = list(dict.fromkeys(group_of[r["image"]] for r in images))
    rows: dict[object, dict[str, Any]] = {g: {"segment" if key else "image": g, "images": 0, f"surveyed_{area_unit}": 0.0}
                                          for g in order}
    for record in images:
        row = rows[group_of[record["image"]]]
        row["images"] += 1
        pixels = record["height"] * record["width"]
        row[f"surveyed_{area_unit}"] += pixels * record["gsd_m"] ** 2 if unit == "m" else pixels
    for row in rows.values():
        row.update(defects=0, cracks=0, **{f"crack_length_{unit}": 0.0, f"crack_area_{area_unit}": 0.0})
        for kind in CRACK_TYPES:
            row[f"{kind}_count"], row[f"{kind}_length_{unit}"] = 0, 0.0
        for severity in severities:
            row[f"{severity}_count"], row[f"{severity}_length_{unit}"] = 0, 0.0
        for name in regions:
            row[f"{name}_count"], row[f"{name}_area_{area_unit}"] = 0, 0.0
    for d in defects:
        group = group_of.get(d["image"])
        if group not in rows:
            continue
        row = rows[group]
        row["defects"] += 1
        if "lines" in d:
            row["cracks"] += 1
            length, area = d.get(length_key) or 0.0, d.get(area_key) or 0.0
            row[f"crack_length_{unit}"] += length
            row[f"crack_area_{area_unit}"] += area
            row[f"{d['type']}_count"] += 1
            row[f"{d['type']}_length_{unit}"] += length
            row[f"{d['severity']}_count"] += 1
            row[f"{d['severity']}_length_{unit}"] += length
        else:
            row[f"{d['class']}_count"] += 1
            row[f"{d['class']}_area_{area_unit}"] += d.get(area_key) or 0.0
    result = []
    for row in rows.values():
        surveyed = row[f"surveyed_{area_unit}"]
        density = row[f"crack_length_{unit}"] / surveyed if surveyed else None
        row[f"crack_density_{unit}_per_{area_unit}"] = None if density is None else round(density, 6 if unit == "m" else 9)
        result.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    return result


def type_by_severity(defects: Iterable[dict], unit: str, severity_names: list[str] | None = None) -> tuple[list[str], list[list]]:
    """Crack count and length for each type (rows) and severity (columns), as table cells."""
    length_key = "length_m" if unit == "m" else "length_px"
    totals: dict[tuple[str, str], list] = {}  # (type, severity) -> [count, length], in the order first seen
    for d in defects:
        if "lines" in d:
            cell = totals.setdefault((d["type"], d["severity"]), [0, 0.0])
            cell[0] += 1
            cell[1] += d.get(length_key) or 0
    named = severity_names if unit == "m" else None
    severities = list(dict.fromkeys([*(named or []), *(s for _, s in totals)])) or [UNKNOWN]
    rows = []
    for kind in CRACK_TYPES:
        cells = [kind]
        for severity in [*severities, None]:
            chosen = [v for (k, s), v in totals.items() if k == kind and severity in (None, s)]
            count = sum(c for c, _ in chosen)
            cells.append(f"{count} / {sum(length for _, length in chosen):.2f} {unit}" if count else "-")
        rows.append(cells)
    return ["type", *severities, "total"], rows


def write_csv(rows: Iterable[dict], path: Path) -> None:
    """Rows as CSV, one column per key seen in any row (``rows`` is read twice: a list, or a
    ``DefectList`` for many)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _md_table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return "-" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def _html_table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _as_table(records: list[dict], columns: list[str]) -> tuple[list[str], list[list]]:
    return columns, [[r.get(c) for c in columns] for r in records]


def write_report(out: Path, defects: Sequence[dict], images: list[dict], per_image: list[dict], per_segment: list[dict] | None,
                 settings: dict, map_file: str | None, max_rows: int = 50,
                 severity_names: list[str] | None = None) -> tuple[Path, Path]:
    """``condition.md`` and ``condition.html``: settings, cracks by type and severity, the
    segments, the images (the first ``max_rows``), the severity map."""
    unit = _unit(images)
    area_unit = "m2" if unit == "m" else "px2"
    sections: list[tuple[str, str | tuple[list[str], list[list]]]] = []
    totals = summarise(defects, [{**r, "all": "all"} for r in images], key="all")[0] if images else {}
    facts = [f"{len(images)} image(s), {len(defects)} defect(s), {totals.get('cracks', 0)} crack(s)"]
    if totals:
        facts.append(f"crack length {totals[f'crack_length_{unit}']:.2f} {unit}, surveyed "
                     f"{totals[f'surveyed_{area_unit}']:.2f} {area_unit.replace('2', '^2')}, crack density "
                     f"{totals[f'crack_density_{unit}_per_{area_unit}']} {unit}/{area_unit.replace('2', '^2')}")
    facts += [f"{k}: {v}" for k, v in settings.items()]
    sections.append(("Survey", "\n".join(f"- {f}" for f in facts)))
    sections.append(("Cracks by type and severity (count / length)", type_by_severity(defects, unit, severity_names)))
    columns = ["images", f"surveyed_{area_unit}", "defects", "cracks", f"crack_length_{unit}",
               f"crack_density_{unit}_per_{area_unit}", *[f"{k}_count" for k in CRACK_TYPES]]
    if per_segment:
        sections.append(("Segments", _as_table(per_segment, ["segment", *columns])))
    shown = per_image[:max_rows]
    title = "Images" + (f" (first {max_rows} of {len(per_image)}; all in condition_images.csv)" if len(per_image) > max_rows else "")
    sections.append((title, _as_table(shown, ["image", *columns[1:]])))

    md = ["# Condition summary", ""]
    body = ["<h1>Condition summary</h1>"]
    for heading, content in sections:
        md += [f"## {heading}", ""]
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, str):
            md += [content, ""]
            body.append("<ul>" + "".join(f"<li>{html.escape(line[2:])}</li>" for line in content.splitlines()) + "</ul>")
        else:
            md += [_md_table(*content), ""]
            body.append(_html_table(*content))
    if map_file:
        md += ["## Map of the defects by severity", "", f"![defects coloured by severity]({map_file})", ""]
        body += ["<h2>Map of the defects by severity</h2>", f'<img src="{html.escape(map_file)}" alt="defects by severity">']
    md_path, html_path = out / "condition.md", out / "condition.html"
    md_path.write_text("\n".join(md))
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}")
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Condition summary</title><style>{style}</style>"
                         f"</head><body>{''.join(body)}</body></html>")
    return md_path, html_path


def severity_color(severity: str, names: list[str]) -> str:
    """Green to red along the severity classes (grey for unknown)."""
    if severity in SEVERITY_COLORS and set(names) <= set(SEVERITY_COLORS):
        return SEVERITY_COLORS[severity]
    if severity == UNKNOWN or severity not in names:
        return SEVERITY_COLORS[UNKNOWN]
    import matplotlib

    position = names.index(severity) / max(1, len(names) - 1)
    return matplotlib.colors.to_hex(matplotlib.colormaps["RdYlGn_r"](0.1 + 0.8 * position))


def _points(geometry: dict) -> list:
    """Every coordinate pair of a GeoJSON geometry."""
    coords = geometry["coordinates"]
    depth = {"Point": 0, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}[geometry["type"]]
    points = [coords]
    for _ in range(depth):
        points = [p for group in points for p in group]
    return points


def draw_map(head: dict, features: Iterable[dict], defects: Iterable[dict], images: list[dict], severity_names: list[str],
             path: Path, max_panels: int = 6, counts: dict[str, int] | None = None) -> Path:
    """A PNG of the defects coloured by severity: in map coordinates (the GeoJSON's ``head`` and
    ``features``, read twice), or, for pixel coordinates, one panel per image (those with the
    most defects first, by ``counts`` per image, else counted in a pass over ``defects``; then
    ``features``, in pixel coordinates, are read once for all the panels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = [*severity_names, UNKNOWN]
    handles = [Line2D([], [], color=severity_color(n, severity_names), lw=2, label=n) for n in names]

    origin, scale = np.zeros(2), np.ones(2)

    def plane(coords) -> np.ndarray:  # map coordinates as plotted
        return (np.asarray(coords, float).reshape(-1, 2) - origin) * scale

    # shapes gathered per colour, as read, and drawn at the end as one artist per colour and kind:
    # a survey has thousands of crack lines, and an artist (or a path, or an array) per line costs
    # more than its points. A bucket keeps, per kind, arrays of points and the length of each shape.
    buckets: dict[str, dict[str, tuple[list, list]]] = {}

    def draw(buckets: dict[str, dict[str, tuple[list, list]]], geometry: dict | None, color: str) -> None:
        if geometry is None:
            return
        kind, coords = geometry["type"], geometry["coordinates"]
        if kind in ("LineString", "MultiLineString"):
            key, shapes = "lines", [coords] if kind == "LineString" else coords
        elif kind in ("Polygon", "MultiPolygon"):  # outer rings
            key, shapes = "polygons", [coords[0]] if kind == "Polygon" else [polygon[0] for polygon in coords]
        else:
            key, shapes = "points", [[coords]]
        arrays, lengths = buckets.setdefault(color, {}).setdefault(key, ([], []))
        arrays.append(np.asarray(list(itertools.chain.from_iterable(shapes)), float).reshape(-1, 2))
        lengths += [len(shape) for shape in shapes]

    def joined(arrays: list, lengths: list) -> tuple[np.ndarray, np.ndarray]:
        """The shapes' points on the plotting plane in one array, and where each shape ends."""
        return plane(np.concatenate(arrays)), np.cumsum(lengths)

    def flush(ax, buckets: dict[str, dict[str, tuple[list, list]]]) -> None:
        from matplotlib.collections import PolyCollection

        for color, bucket in buckets.items():
            if "lines" in bucket:  # one line broken by NaN rows: matplotlib draws it as one path
                points, ends = joined(*bucket["lines"])
                ax.plot(*np.insert(points, ends[:-1], np.nan, axis=0).T, color=color, lw=1.2)
            if "polygons" in bucket:
                points, ends = joined(*bucket["polygons"])
                ax.add_collection(PolyCollection(np.split(points, ends[:-1]), facecolors=color, edgecolors=color, alpha=0.5))
            if "points" in bucket:
                ax.plot(*joined(*bucket["points"])[0].T, "o", color=color, ms=4)
        buckets.clear()
        ax.autoscale_view()

    if head.get("coordinates") != "pixel":
        # one pass: the shapes gathered in map coordinates while the survey's middle is summed, then
        # moved to the plotting plane (a second pass would read every feature again)
        total, count = np.zeros(2), 0
        photos = []
        for feature in features:
            if feature["geometry"]:
                points = np.asarray(_points(feature["geometry"]), float).reshape(-1, 2)
                total, count = total + points.sum(0), count + len(points)
            props = feature["properties"]
            if props.get("feature") == "image":
                if feature["geometry"]:
                    photos.append(feature["geometry"]["coordinates"])
                continue
            draw(buckets, feature["geometry"], severity_color(props.get("severity", UNKNOWN), severity_names))
        origin = total / count if count else np.zeros(2)
        geographic = "crs" not in head
        # plotted in metres from the survey's middle (longitude / latitude on a local plane)
        if geographic:
            scale = np.array([111320.0 * np.cos(np.radians(origin[1])), 110574.0])
        photos = [plane(photo)[0] for photo in photos]
        fig, ax = plt.subplots(figsize=(8, 8))
        flush(ax, buckets)
        if photos:
            ax.plot(*np.asarray(photos).T, "s", color="#1f77b4", ms=4, mfc="none", ls="")
        ax.set_aspect("equal", adjustable="datalim")
        ax.margins(0.1)
        place = f"{origin[0]:.6f}, {origin[1]:.6f} (lon, lat)" if geographic else f"{origin[0]:.2f}, {origin[1]:.2f}"
        ax.set_xlabel(f"east (m) of {place}" if geographic else f"x - {origin[0]:.2f} (map units)")
        ax.set_ylabel("north (m)" if geographic else f"y - {origin[1]:.2f}")
        photo = [Line2D([], [], color="#1f77b4", marker="s", mfc="none", ls="", label="photo")] if photos else []
        # beside the plot: loc="best" tests every vertex of every path against each candidate place
        ax.legend(handles=[*handles, *photo], title="severity", loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
        ax.set_title("defects by severity")
    else:
        if counts is None:
            counts = {}
            for d in defects:
                counts[d["image"]] = counts.get(d["image"], 0) + 1
        counts = {**{r["image"]: 0 for r in images}, **counts}
        chosen: list[str | None] = [*sorted(counts, key=lambda n: -counts[n])[:max_panels]] or [None]
        columns = min(3, len(chosen))
        rows = int(np.ceil(len(chosen) / columns))
        fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.8 * rows), squeeze=False)
        sizes = {r["image"]: (r["width"], r["height"]) for r in images}
        panels: dict[str, dict[str, dict[str, tuple[list, list]]]] = {name: {} for name in chosen if name is not None}
        for feature in features:  # one pass for every panel
            props = feature["properties"]
            if props.get("image") in panels:
                draw(panels[props["image"]], feature["geometry"], severity_color(props.get("severity", UNKNOWN), severity_names))
        for ax, name in zip(axes.ravel(), chosen):
            if name is None:
                continue
            width, height = sizes.get(name, (1, 1))
            ax.add_patch(plt.Rectangle((0, 0), width, height, fill=False, color="#999999", lw=0.8))
            flush(ax, panels[name])
            ax.set_xlim(0, width)
            ax.set_ylim(height, 0)
            ax.set_aspect("equal")
            ax.set_title(f"{name} ({counts[name]} defects)", fontsize=9)
        for ax in axes.ravel()[len(chosen):]:
            ax.axis("off")
        axes.ravel()[0].legend(handles=handles, title="severity", loc="upper right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
