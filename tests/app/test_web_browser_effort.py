"""Labelling time measured in headless Chromium against a live ``crackal serve``: two images
labelled with the trace tool, their active time, strokes and undos stored with the labels, shown
on the dashboard, and still there after the server restarts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from crackal.active.store import ProjectStore
from tests.app.web_helpers import LiveServer, browser_page, chromium_or_skip, make_web_project, screenshot, sign_in_page

SIZE, SCALE = 64, 8
CRACK_ROW = {0: 20, 1: 40, 2: 30, 3: 12}  # one straight dark crack per image, at this row


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("effort")
    data = root / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i, row in CRACK_ROW.items():
        image = np.clip(rng.normal(150, 8, (SIZE, SIZE)), 0, 255).astype(np.uint8)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        image[row:row + 2, 6:58] = 50
        mask[row:row + 2, 6:58] = 255
        Image.fromarray(np.repeat(image[:, :, None], 3, 2)).save(data / "images" / f"crack{i}.png")
        Image.fromarray(mask).save(data / "masks" / f"crack{i}.png")
    project = make_web_project(root / "project", data, initial=3, heldout=1)
    with sync_playwright() as playwright:
        page = browser_page(playwright, chromium, height=1000)
        try:
            yield project, page, root
        finally:
            page.context.browser.close()


def trace_and_submit(page, url: str, reload: bool = False) -> int:
    """Open the next image (``reload``: reload its page first, whose old page then releases the
    lease while the new one renews it), trace its crack with two clicks (moving the pointer for
    about a second), undo a slip once, submit; returns the image id."""
    page.wait_for_url(f"{url}/label/*")
    page.wait_for_selector("body[data-ready=true]")
    if reload:
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
    image_id = int(page.url.rsplit("/", 1)[1])
    page.evaluate(f"crackalEditor.setView({SCALE}, 0, 0)")
    left, top = page.evaluate("(() => { const r = document.getElementById('canvas').getBoundingClientRect(); return [r.left, r.top]; })()")
    info = page.evaluate("crackalEditor.state()")
    assert info["width"] == SIZE
    store_name = page.text_content("#image-name").split(" ")[0]
    row = CRACK_ROW[int(store_name.removeprefix("crack"))]
    page.keyboard.press("t")
    for x in (8, 56):
        for step in range(5):  # the labeller's hand on the way to the next point
            page.mouse.move(left + (x - 4 + step) * SCALE, top + (row + 1) * SCALE)
            page.wait_for_timeout(100)
        page.mouse.click(left + (x + 0.5) * SCALE, top + (row + 1) * SCALE)
    for _ in range(600):
        if page.evaluate("crackalEditor.assisting()") == 0:
            break
        page.wait_for_timeout(50)
    page.keyboard.press("Enter")
    page.keyboard.press("b")
    page.mouse.click(left + 30 * SCALE, top + 60 * SCALE)  # a slip of the brush, undone
    page.keyboard.press("Control+z")
    effort = page.evaluate("crackalEditor.effort()")
    assert effort["strokes"] == 2 and effort["undos"] == 1 and effort["prelabel"] == "none", effort
    assert 0.8 <= effort["active_seconds"] <= 30, effort
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda u: u != f"{url}/label/{image_id}")
    return image_id


def test_two_traced_images_show_their_measured_times_on_the_dashboard_after_a_restart(served):
    project, page, tmp = served
    server = LiveServer(project)
    try:
        sign_in_page(page, server.url, "ana")
        page.click("#start")
        labelled = [trace_and_submit(page, server.url, reload=True), trace_and_submit(page, server.url)]
    finally:
        server.stop()
    store = ProjectStore(project)
    rows = {row["image_id"]: row for row in store.label_efforts()}
    store.close()
    assert sorted(rows) == sorted(labelled)
    for row in rows.values():
        assert row["labelled_by"] == "ana" and row["strokes"] == 2 and row["undos"] == 1 and row["source"] == "app"
        assert 0.8 <= row["active_seconds"] <= 30
    median = round(float(np.median([row["active_seconds"] for row in rows.values()])), 1)

    server = LiveServer(project)  # a restart: the times come from the project database
    try:
        sign_in_page(page, server.url, "root")
        page.goto(server.url + "/dashboard")
        page.wait_for_selector("body[data-ready=true]")
        card = " ".join(page.text_content("#card-time").split())
        assert f"{median} s" in card and "median active time of 2 labels" in card, card
        row = page.text_content("#labellers tbody tr[data-name=ana]")
        assert f"{median} s (2 timed)" in row, row
        assert page.eval_on_selector_all("#chart-time circle", "cs => cs.length") == 1  # one round's median
        assert "estimate" in page.text_content("#card-cost")  # fewer than ten timed: the estimate prices them
        screenshot(page, "dashboard_time.png", tmp, full_page=True)
    finally:
        server.stop()


def test_the_clock_counts_input_gaps_up_to_the_idle_window(served):
    project, page, _ = served
    server = LiveServer(project)
    try:
        sign_in_page(page, server.url, "bob")
        seconds = page.evaluate("""(() => {
            const clock = new EffortClock(1);  // a 1 s idle window
            clock.input(0); clock.input(500); clock.input(5000);  // 0.5 s counted, then a 4.5 s pause counts 1 s
            clock.pause(5200);  // the page is hidden 0.2 s later
            clock.input(9000); clock.input(9300);
            return clock.seconds(9300);
        })()""")
        assert seconds == pytest.approx(0.5 + 1 + 0.2 + 0.3)
    finally:
        server.stop()
