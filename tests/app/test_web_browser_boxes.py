"""The box editor of a detection project in headless Chromium against a live ``crackal serve``:
draw boxes, resize, change a class, delete, undo, submit; the VOC file holds the boxes."""

from __future__ import annotations

import pytest

from crackal.active.store import ProjectStore
from crackal.data.boxes import read_voc
from tests.app.web_helpers import LiveServer, browser_page, chromium_or_skip, make_web_project, sign_in_page

SIZE = 128
CLASSES = ["background", "crack", "pothole"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("boxes")
    project = make_web_project(root / "project", count=5, size=SIZE, task="detection", classes=CLASSES, initial=3, heldout=1)
    server = LiveServer(project)
    with sync_playwright() as playwright:
        page = browser_page(playwright, chromium)
        try:
            yield project, server.url, page
        finally:
            page.context.browser.close()
            server.stop()


def test_draw_a_box_and_submit_it_as_voc(served):
    project, url, page = served
    sign_in_page(page, url, "bob")
    page.click("#start")
    page.wait_for_url(f"{url}/label/*")
    page.wait_for_selector("body[data-ready=true]")
    image_id = int(page.url.rsplit("/", 1)[1])
    assert page.evaluate("crackalBoxes.boxes()") == [] and page.evaluate("crackalBoxes.state()")["editable"]
    scale = 4
    page.evaluate(f"crackalBoxes.setView({scale}, 0, 0)")
    left, top = page.evaluate("(() => { const r = document.getElementById('canvas').getBoundingClientRect(); return [r.left, r.top]; })()")
    screen = lambda x, y: (round(left + x * scale), round(top + y * scale))  # noqa: E731

    def drag(start, end):
        page.mouse.move(*screen(*start))
        page.mouse.down()
        page.mouse.move(*screen(*end), steps=4)
        page.mouse.up()

    drag((10, 20), (60, 50))  # a crack box
    drag((60, 50), (70, 56))  # its south-east corner pulled out
    page.keyboard.press("2")  # the selected box becomes a pothole
    drag((80, 80), (120, 100))  # a second box ...
    page.keyboard.press("Delete")  # ... deleted
    drag((90, 10), (100, 30))  # a third box ...
    page.keyboard.press("Control+z")  # ... undone
    assert page.evaluate("crackalBoxes.boxes()") == [{"x0": 10, "y0": 20, "x1": 70, "y1": 56, "label": 2}]
    drag((30, 30), (35, 40))  # moved by (5, 10)
    drag((100, 100), (110, 125))  # a crack box (the class picked last is pothole)
    page.keyboard.press("1")
    expected = [{"x0": 15, "y0": 30, "x1": 75, "y1": 66, "label": 2}, {"x0": 100, "y0": 100, "x1": 110, "y1": 125, "label": 1}]
    assert page.evaluate("crackalBoxes.boxes()") == expected
    effort = page.evaluate("crackalBoxes.effort()")  # 4 boxes drawn, a resize, a move, 2 class changes, a delete; 1 undo
    assert (effort["strokes"], effort["undos"], effort["prelabel"]) == (9, 1, "none") and effort["active_seconds"] > 0
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda u: u != f"{url}/label/{image_id}")

    store = ProjectStore(project)
    record = store.images("id = ?", (image_id,))[0]
    store.close()
    assert record.labelled_by == "bob" and record.label_path.suffix == ".xml"
    boxes = read_voc(record.label_path, CLASSES)
    assert boxes.boxes.tolist() == [[b["x0"], b["y0"], b["x1"], b["y1"]] for b in expected]
    assert boxes.labels.tolist() == [2, 1]
    store = ProjectStore(project)
    (timed,) = store.label_efforts()
    store.close()
    assert timed["image_id"] == image_id and (timed["strokes"], timed["undos"]) == (9, 1)
