"""The mask editor's crack-tracing tool on CrackForest, in the real browser: each image's
ground-truth mask is skeletonised and split into crack branches; k clicks per branch (its two
ends and evenly spaced points between) are made with the editor's Trace tool in headless
Chromium against a live ``crackal serve``, the mask is submitted, and the stored mask is scored
against the ground truth (pixel F1 strict and within 2 px, ``crackal.metrics.segmentation``,
counts pooled over the images and the mean of per-image F1).

Clicks and a simulated labelling time are set against painting the same cracks with the brush:
tracing costs ``clicks x --seconds-per-click`` plus ``--seconds-per-end`` for each branch (the
key or double-click that ends a trace), painting costs ``skeleton length / --paint-speed`` plus
``--seconds-per-stroke`` for each branch. The constants are assumptions (see the page), not
measurements; the tool's server time is measured.

There is no model here: the cost is the image ridge filter (the path a labeller gets before the
first round).

    .venv/bin/python benchmarks/tracing_assist.py [--images 40] [--clicks 2 4 8]

Skips cleanly when ../shared/data/crackforest is absent (or chromium / playwright are).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, dataset_or_skip, hardware, write_docs
from PIL import Image

SECONDS_PER_CLICK = 1.5  # pointing at a visible spot on a crack (Fitts' law: ~1 s) plus a look at the path drawn
SECONDS_PER_END = 0.5  # the Enter key (or double-click) that ends a crack's trace
PAINT_SPEED = 40.0  # image px per second along a thin crack, painted carefully enough to stay on it
SECONDS_PER_STROKE = 1.0  # finding the start of each crack branch for the brush
SCALE = 2  # the editor's zoom: 480 x 320 CrackForest images shown at 960 x 640 screen px
MIN_BRANCH = 10  # skeleton branches shorter than this (px) are left out: stubs at junctions and wide spots, within the brush


def branches(mask: np.ndarray) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """The skeleton of a binary mask and its branches: the skeleton minus its junction pixels
    (3 or more neighbours) and their neighbours, split into 8-connected pieces, each as the
    pixels ``(x, y)`` of its longest path, end to end (found by two breadth-first walks)."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    skeleton = skeletonize(mask > 0)
    neighbours = ndimage.convolve(skeleton.astype(np.int32), np.ones((3, 3), np.int32), mode="constant") - 1
    junctions = ndimage.binary_dilation(skeleton & (neighbours >= 3), np.ones((3, 3), bool))
    pieces, count = ndimage.label(skeleton & ~junctions, np.ones((3, 3), np.int32))
    out = []
    for index in range(1, count + 1):
        rows, cols = np.nonzero(pieces == index)
        pixels = set(zip(cols.tolist(), rows.tolist()))

        def walk(start: tuple[int, int]) -> tuple[tuple[int, int], dict]:
            before: dict = {start: None}
            order = [start]
            for x, y in order:
                for dx in (-1, 0, 1):
                    for dy in (-1, 0, 1):
                        near = (x + dx, y + dy)
                        if near in pixels and near not in before:
                            before[near] = (x, y)
                            order.append(near)
            return order[-1], before

        far, _ = walk(next(iter(pixels)))
        end, before = walk(far)
        line = [end]
        while before[line[-1]] is not None:
            line.append(before[line[-1]])
        if len(line) >= MIN_BRANCH:
            out.append(line)
    return skeleton, out


def clicks_on(line: list[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    """``k`` points evenly spaced along a branch, its two ends included (fewer on a short one)."""
    index = np.unique(np.round(np.linspace(0, len(line) - 1, max(2, min(k, len(line))))).astype(int))
    return [line[i] for i in index]


def make_project(root: Path, names: list[str], data: Path, ks: list[int]) -> Path:
    """A labelling project holding each image once per k (named NAME-kK), all queued."""
    from crackal.active.config import ALConfig
    from crackal.active.project import create_project
    from crackal.active.store import ProjectStore
    from crackal.app.accounts import add_user
    from tests.app.web_helpers import PASSWORDS

    pool = [(f"{name}-k{k}", data / "images" / f"{name}.jpg", None) for k in ks for name in names]
    held = sorted(p.stem for p in (data / "images").glob("*.jpg") if p.stem not in names)[:1]
    heldout = [(n, data / "images" / f"{n}.jpg", data / "masks" / f"{n}.png") for n in held]
    create_project(root, pool, heldout, ALConfig(initial=len(pool), query_size=1)).close()
    store = ProjectStore(root)
    add_user(store, "ana", PASSWORDS["ana"], "labeller")
    store.close()
    return root


def f1_counts(predicted: np.ndarray, truth: np.ndarray, tolerance: int) -> np.ndarray:
    from crackal.metrics.segmentation import threshold_counts

    return threshold_counts(predicted.astype(np.float32), truth, tolerance, np.array([0.5]))[:, 0]


def f1(counts: np.ndarray) -> float:
    from crackal.metrics.segmentation import scores_from_counts

    return float(scores_from_counts(counts[:, None])["f1"][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40, help="the first N CrackForest images (by name); 0: all")
    parser.add_argument("--clicks", type=int, nargs="+", default=[2, 4, 8], help="clicks per crack branch")
    parser.add_argument("--seconds-per-click", type=float, default=SECONDS_PER_CLICK)
    parser.add_argument("--paint-speed", type=float, default=PAINT_SPEED, help="brush painting speed, image px per second")
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")
    sys.path.insert(0, str(ROOT))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("skip: playwright is not installed")
        return
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("skip: no chromium binary")
        return
    from crackal.active.store import ProjectStore
    from crackal.data.io import read_raw_mask, to_class_mask
    from tests.app.web_helpers import LiveServer, browser_page, sign_in_page

    names = sorted(p.stem for p in (data / "masks").glob("*.png"))
    names = names[:args.images] if args.images else names[:-1]  # one is kept as the held-out image
    truths = {n: np.asarray(Image.open(data / "masks" / f"{n}.png")) > 0 for n in names}
    cracks = {n: branches(truths[n]) for n in names}
    results: dict[int, dict] = {k: {"counts0": np.zeros(4, np.int64), "counts2": np.zeros(4, np.int64), "f1_0": [], "f1_2": [],
                                    "clicks": 0, "ends": 0, "segments": 0, "seconds": 0.0} for k in args.clicks}
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "project", names, data, args.clicks)
        store = ProjectStore(project)
        images_of = {r.id: r.name for r in store.images()}
        store.close()
        server = LiveServer(project)
        try:
            with sync_playwright() as playwright:
                page = browser_page(playwright, chromium, width=1400, height=900)
                sign_in_page(page, server.url, "ana")
                page.click("#start")  # as a labeller: each submit opens the next queued image
                for number in range(1, len(names) * len(args.clicks) + 1):
                    page.wait_for_url(f"{server.url}/label/*")
                    page.wait_for_selector("body[data-ready=true]")
                    image_id = int(page.url.rsplit("/", 1)[1])
                    name, k = images_of[image_id].rsplit("-k", 1)[0], int(images_of[image_id].rsplit("-k", 1)[1])
                    truth, (skeleton, lines) = truths[name], cracks[name]
                    width = int(np.clip(round(truth.sum() / max(1, skeleton.sum())), 2, 12))  # the crack's width, by eye
                    page.evaluate(f"crackalEditor.setView({SCALE}, 0, 0)")
                    page.evaluate(f"(() => {{ const s = document.getElementById('size'); s.value = {width}; "
                                  "s.dispatchEvent(new Event('input')); })()")
                    left, top = page.evaluate("(() => { const r = document.getElementById('canvas')"
                                              ".getBoundingClientRect(); return [r.left, r.top]; })()")
                    page.keyboard.press("t")
                    started = time.perf_counter()
                    for line in lines:
                        points = clicks_on(line, k)
                        for x, y in points:
                            page.mouse.click(left + (x + 0.5) * SCALE, top + (y + 0.5) * SCALE)
                        page.keyboard.press("Enter")
                        results[k]["clicks"] += len(points)
                        results[k]["segments"] += len(points) - 1
                        results[k]["ends"] += 1
                    for _ in range(2400):
                        if page.evaluate("crackalEditor.assisting()") == 0:
                            break
                        page.wait_for_timeout(25)
                    results[k]["seconds"] += time.perf_counter() - started
                    page.keyboard.press("Control+Enter")
                    try:
                        page.wait_for_url(lambda u, i=image_id: u != f"{server.url}/label/{i}")
                    except Exception:  # noqa: BLE001 - say why, then stop
                        print(f"{name} (k={k}): the submit did not open the next image; the page says "
                              f"{page.text_content('#message')!r}", flush=True)
                        raise
                    store = ProjectStore(project)
                    record = store.images("id = ?", (image_id,))[0]
                    store.close()
                    assert record.label_path is not None, f"{name}: nothing stored"
                    stored = to_class_mask(read_raw_mask(record.label_path), 2, record.label_path) > 0
                    for tolerance in (0, 2):
                        counts = f1_counts(stored, truth, tolerance)
                        results[k][f"counts{tolerance}"] += counts
                        results[k][f"f1_{tolerance}"].append(f1(counts))
                    if number % 20 == 0:
                        print(f"{number}/{len(names) * len(args.clicks)} images, F1 (2 px) so far "
                              + ", ".join(f"k={c}: {f1(results[c]['counts2']):.3f}" for c in args.clicks), flush=True)
                page.context.browser.close()
        finally:
            server.stop()

    images = len(names)
    length = sum(int(cracks[n][0].sum()) for n in names)
    branch_count = sum(len(cracks[n][1]) for n in names)
    paint = (length / args.paint_speed + branch_count * SECONDS_PER_STROKE) / images
    rows = []
    for k, r in results.items():
        trace_seconds = (r["clicks"] * args.seconds_per_click + r["ends"] * SECONDS_PER_END) / images
        rows.append({"clicks per branch (k)": k, "F1 strict (pooled)": f1(r["counts0"]), "F1 2 px (pooled)": f1(r["counts2"]),
                     "F1 2 px (mean per image)": float(np.mean(r["f1_2"])), "clicks per image": r["clicks"] / images,
                     "simulated s per image": trace_seconds, "brush painting s per image": paint,
                     "time vs painting": trace_seconds / paint,
                     "measured wait per segment (s)": r["seconds"] / max(1, r["segments"])})
        print(rows[-1], flush=True)
    subset = f"the first {images} of the 118 images (by name)" if images < 117 else f"all {images} images but one (held out)"
    doc = write_docs("tracing_assist",
        f"CrackForest, {subset}; {branch_count} crack branches ({branch_count / images:.1f} per image), skeleton "
        f"{length / images:.0f} px per image. No model: the path's cost is the ridge filter of the image. Brush width "
        "per image: ground-truth area / skeleton length, 2-12 px. Simulated time: tracing "
        f"{args.seconds_per_click:g} s per click + {SECONDS_PER_END:g} s per branch ended; brush painting "
        f"skeleton length / {args.paint_speed:g} px/s + {SECONDS_PER_STROKE:g} s per branch. The measured wait is "
        "the scripted session's wall time per traced segment (server path search and the page's painting, no human).",
        rows, hardware=hardware())
    print(doc)


if __name__ == "__main__":
    main()
