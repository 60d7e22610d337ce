"""The mask editor's trace and fill tools in headless Chromium against a live ``crackal serve``:
a few clicks along each synthetic crack and one in a pothole give a stored mask within 2 px of
the ground truth (F1 >= 0.9), as undoable steps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.draw import disk, line

from crackal.active.store import ProjectStore
from crackal.data.io import read_raw_mask, to_class_mask
from crackal.metrics.segmentation import scores_from_counts, threshold_counts
from tests.app.web_helpers import LiveServer, browser_page, chromium_or_skip, make_web_project, screenshot, sign_in_page

HEIGHT, WIDTH, SCALE = 96, 128, 4  # a power of two: screen and image coordinates convert exactly
CRACKS = [[(6, 14), (50, 40), (120, 30)], [(20, 88), (70, 62), (100, 90)]]  # polylines (x, y)
POTHOLE = (96, 66, 8)  # x, y, radius


def road(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A grey road with the two cracks (2 px wide) and the pothole; the image and its mask."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(150, 10, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    for corners in CRACKS:
        for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
            rows, cols = line(y0, x0, y1, x1)
            mask[rows, cols] = mask[rows, np.minimum(cols + 1, WIDTH - 1)] = True
    image[mask] = 55
    x, y, r = POTHOLE
    rows, cols = disk((y, x), r)
    image[rows, cols] = 80
    mask[rows, cols] = True
    return image, mask


def f1(predicted: np.ndarray, truth: np.ndarray, tolerance: int) -> float:
    counts = threshold_counts(predicted.astype(np.float32), truth, tolerance, np.array([0.5]))
    return float(scores_from_counts(counts)["f1"][0])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("assist")
    data = root / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(4):
        image, mask = road(i)
        Image.fromarray(np.repeat(image[:, :, None], 3, 2)).save(data / "images" / f"road{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(data / "masks" / f"road{i}.png")
    project = make_web_project(root / "project", data, initial=2, heldout=1)
    server = LiveServer(project)
    with sync_playwright() as playwright:
        page = browser_page(playwright, chromium)
        try:
            yield project, server.url, page, root
        finally:
            page.context.browser.close()
            server.stop()


def test_tracing_cracks_and_filling_a_pothole_store_the_ground_truth(served):
    project, url, page, tmp = served
    sign_in_page(page, url, "ana")
    page.click("#start")
    page.wait_for_url(f"{url}/label/*")
    page.wait_for_selector("body[data-ready=true]")
    image_id = int(page.url.rsplit("/", 1)[1])
    store = ProjectStore(project)
    record = store.images("id = ?", (image_id,))[0]
    store.close()
    _, truth = road(int(record.name.removeprefix("road")))
    page.evaluate(f"crackalEditor.setView({SCALE}, 0, 0)")
    left, top = page.evaluate("(() => { const r = document.getElementById('canvas').getBoundingClientRect(); return [r.left, r.top]; })()")

    def click(x: float, y: float) -> None:
        page.mouse.click(left + (x + 0.5) * SCALE, top + (y + 0.5) * SCALE)

    def settle() -> None:  # (wait_for_function evaluates a string: the page's CSP forbids it)
        for _ in range(600):
            if page.evaluate("crackalEditor.assisting()") == 0:
                return
            page.wait_for_timeout(50)
        raise AssertionError("the trace or fill requests were not answered in 30 s")

    for _ in range(5):
        page.keyboard.press("[")  # brush 8 -> 3 px: about the cracks' width
    page.keyboard.press("t")
    assert page.evaluate("crackalEditor.state()")["tool"] == "trace"
    clicks = 0
    for number, corners in enumerate(CRACKS):
        (ax, ay), _, (bx, by) = corners
        points = [(ax, ay), ((ax + bx) // 2 + 1, None), (bx, by)]  # the ends and one point on the crack half-way across
        column = points[1][0]
        rows = np.nonzero(truth[:, column] & (np.abs(np.arange(HEIGHT) - (ay + by) / 2) < 30))[0]
        points[1] = (column, int(rows.mean()))
        for x, y in points:
            click(x, y)
            clicks += 1
        settle()
        if number == 0:
            assert len(page.evaluate("crackalEditor.tracePoints()")) == 3
            page.keyboard.press("f")  # the whole image, for the screenshot
            page.mouse.move(left + 900, top + 330)
            screenshot(page, "trace.png", tmp)
            page.evaluate(f"crackalEditor.setView({SCALE}, 0, 0)")
        page.keyboard.press("Enter")  # ends this crack's trace
        assert page.evaluate("crackalEditor.tracePoints()") == []
    assert page.evaluate("crackalEditor.state()")["undo"] == 4  # one step per segment

    page.keyboard.press("g")
    x, y, r = POTHOLE
    click(x, y)
    settle()
    assert page.evaluate("crackalEditor.state()")["undo"] == 5
    painted = np.array(page.evaluate("crackalEditor.mask()"), np.uint8).reshape(HEIGHT, WIDTH) > 0
    pothole = np.zeros_like(truth)
    pothole[disk((y, x), r)] = True
    assert (painted & pothole).sum() >= 0.9 * pothole.sum()

    page.keyboard.down("Shift")  # Shift erases: the pothole, undone at once
    click(x, y)
    page.keyboard.up("Shift")
    settle()
    erased = np.array(page.evaluate("crackalEditor.mask()"), np.uint8).reshape(HEIGHT, WIDTH) > 0
    assert not (erased & pothole).sum() and (erased == painted)[~pothole].all()
    page.keyboard.press("Control+z")
    assert np.array_equal(np.array(page.evaluate("crackalEditor.mask()"), np.uint8).reshape(HEIGHT, WIDTH) > 0, painted)

    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda u: u != f"{url}/label/{image_id}")
    store = ProjectStore(project)
    record = store.images("id = ?", (image_id,))[0]
    store.close()
    stored = to_class_mask(read_raw_mask(record.label_path), 2, record.label_path) > 0
    assert np.array_equal(stored, painted)
    score = f1(stored, truth, 2)
    assert score >= 0.9, f"F1 (2 px) {score:.3f} from {clicks} trace clicks and 1 fill"
