"""The dashboard in headless Chromium names the label files found damaged when the server
started, with a link to each image and what to do. (Its own module: the charts' module holds a
browser open for all its tests, and one process runs one Playwright at a time.)"""

from __future__ import annotations

import numpy as np

from crackal.active.labels import NewLabel, store_labels
from crackal.active.store import ProjectStore
from tests.app.web_helpers import LiveServer, browser_page, chromium_or_skip, make_web_project, sign_in_page


def test_the_dashboard_names_a_damaged_label_found_at_start_up(tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    project = make_web_project(tmp_path / "project", count=8, size=48, initial=3, query_size=2, heldout=2)
    with ProjectStore(project) as store:
        records = [record for record, _, _ in store.queue()][:2]
        store_labels(store, [NewLabel(r, r.name, np.zeros((48, 48), np.uint8), "ana") for r in records], ["background", "crack"])
        damaged = store.images("id = ?", (records[0].id,))[0]
    damaged.label_path.write_bytes(b"not a PNG")
    server = LiveServer(project)
    try:
        with sync_playwright() as playwright:
            page = browser_page(playwright, chromium)
            try:
                sign_in_page(page, server.url, "root")
                page.goto(server.url + "/dashboard")
                page.wait_for_selector(f"#damaged li[data-image='{damaged.id}']")  # after the start-up check, reloaded
                assert page.eval_on_selector_all("#damaged li", "items => items.length") == 1
                text = page.text_content("#damaged")
                assert text.startswith("1 damaged label file found at start-up") and damaged.name in text
                assert "labelled by ana" in text and "crackal al restore" in text
                assert page.get_attribute(f"#damaged li[data-image='{damaged.id}'] a", "href") == f"/label/{damaged.id}"
            finally:
                page.context.browser.close()
    finally:
        server.stop()
