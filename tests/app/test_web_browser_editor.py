"""The mask editor in headless Chromium against a live ``crackal serve``: sign in, open the first
queued image, paint, erase, undo, submit, and the mask file holds exactly the painted pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crackal.active.store import ProjectStore
from crackal.data.io import read_raw_mask, to_class_mask
from tests.app.web_helpers import LiveServer, browser_page, chromium_or_skip, make_web_project, screenshot, sign_in_page

SIZE = 128


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("editor")
    project = make_web_project(root / "project", count=6, size=SIZE, initial=3, heldout=1)
    server = LiveServer(project)
    with sync_playwright() as playwright:
        page = browser_page(playwright, chromium)
        try:
            yield project, server.url, page, root
        finally:
            page.context.browser.close()
            server.stop()


def capsule(mask: np.ndarray, a: tuple[float, float], b: tuple[float, float], r: float, value: int) -> None:
    """The editor's brush in Python, operation for operation: pixels whose centre lies within r
    of the segment a-b."""
    (ax, ay), (bx, by) = a, b
    height, width = mask.shape
    x0, x1 = max(0, math.floor(min(ax, bx) - r)), min(width, math.ceil(max(ax, bx) + r))
    y0, y1 = max(0, math.floor(min(ay, by) - r)), min(height, math.ceil(max(ay, by) + r))
    dx, dy = bx - ax, by - ay
    length2, r2 = dx * dx + dy * dy, r * r
    for y in range(y0, y1):
        py = y + 0.5
        for x in range(x0, x1):
            px = x + 0.5
            t = ((px - ax) * dx + (py - ay) * dy) / length2 if length2 > 0 else 0
            t = min(1.0, max(0.0, t))
            ex, ey = px - (ax + t * dx), py - (ay + t * dy)
            if ex * ex + ey * ey <= r2:
                mask[y, x] = value


def test_paint_erase_undo_submit_stores_exactly_the_painted_pixels(served):
    project, url, page, tmp = served
    sign_in_page(page, url, "ana")
    page.click("#start")  # label the next image
    page.wait_for_url(f"{url}/label/*")
    page.wait_for_selector("body[data-ready=true]")
    image_id = int(page.url.rsplit("/", 1)[1])
    store = ProjectStore(project)
    first = store.queue()[0][0]
    store.close()
    assert image_id == first.id  # the queue's first image
    state = page.evaluate("crackalEditor.state()")
    assert state["editable"] and (state["width"], state["height"]) == (SIZE, SIZE) and state["size"] == 8

    scale = 4  # a power of two: screen and image coordinates convert exactly
    page.evaluate(f"crackalEditor.setView({scale}, 0, 0)")
    box = page.evaluate("(() => { const r = document.getElementById('canvas').getBoundingClientRect(); return [r.left, r.top]; })()")
    left, top = box

    def image_point(px: int, py: int) -> tuple[float, float]:
        return (px - left) / scale, (py - top) / scale

    def stroke(start: tuple[int, int], end: tuple[int, int]) -> None:
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end)
        page.mouse.up()

    screen = lambda x, y: (round(left + x * scale), round(top + y * scale))  # noqa: E731
    for _ in range(3):
        page.keyboard.press("[")  # brush 8 -> 5 px
    a, b = screen(10, 40), screen(110, 52)
    stroke(a, b)
    page.keyboard.press("e")  # eraser, 6 px
    page.keyboard.press("]")
    c, d = screen(40, 20), screen(46, 70)
    stroke(c, d)
    e, f = screen(80, 30), screen(84, 66)
    stroke(e, f)
    page.keyboard.press("Control+z")  # the second erase is undone
    state = page.evaluate("crackalEditor.state()")
    assert (state["tool"], state["size"], state["undo"], state["redo"]) == ("eraser", 6, 2, 1)

    expected = np.zeros((SIZE, SIZE), np.uint8)
    capsule(expected, image_point(*a), image_point(*b), 2.5, 1)
    painted = int(expected.sum())
    capsule(expected, image_point(*c), image_point(*d), 3.0, 0)
    assert 0 < expected.sum() < painted  # part of the stroke was erased
    in_page = np.array(page.evaluate("crackalEditor.mask()"), np.uint8).reshape(SIZE, SIZE)
    assert np.array_equal(in_page, expected)

    page.keyboard.press("f")
    page.mouse.move(*screen(100, 100))
    screenshot(page, "editor.png", tmp)
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda u: u != f"{url}/label/{image_id}")
    assert page.url.startswith(f"{url}/label/")  # the next image

    store = ProjectStore(project)
    record = store.images("id = ?", (image_id,))[0]
    store.close()
    assert record.labelled_by == "ana"
    stored = to_class_mask(read_raw_mask(record.label_path), 2, record.label_path)
    assert np.array_equal(stored, expected)  # pixel by pixel


def test_a_click_before_the_page_knows_its_user_still_opens_the_next_image(served):
    """A write sent while ``/api/me`` is still on its way waits for the CSRF token instead of
    failing with 403 (a quick click on a slow, loaded machine)."""
    project, url, page, tmp = served
    sign_in_page(page, url, "ana")
    held = []

    def hold(route) -> None:
        held.append(route)

    page.route("**/api/me", hold)  # hold the page's "who am I" request
    page.goto(f"{url}/queue")
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    page.click("#start")
    page.wait_for_timeout(300)  # the write would have gone out (and failed) by now
    assert page.text_content("#message") == ""
    held[0].continue_()
    page.unroute("**/api/me", hold)
    page.wait_for_url(f"{url}/label/*")
    page.wait_for_selector("body[data-ready=true]")
