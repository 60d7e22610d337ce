"""The dashboard in headless Chromium against a live ``crackal serve``: its charts show every
finished round; an admin starts the next round, watches its progress, and it joins the charts."""

from __future__ import annotations

import numpy as np
import pytest

from crackal.active.labels import NewLabel, store_labels
from crackal.active.store import ProjectStore
from tests.app.web_helpers import LiveServer, browser_page, chromium_or_skip, make_web_project, screenshot, sign_in_page

F1 = (0.21, 0.34, 0.41)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("dashboard")
    project = make_web_project(root / "project", count=14, size=64, initial=4, query_size=2, heldout=2)
    store = ProjectStore(project)
    rng = np.random.default_rng(0)

    def label(records, labeller):  # through the one label path, the way the app stores them
        labels = []
        for record in records:
            mask = np.zeros((64, 64), np.uint8)
            if rng.random() < 0.7:
                row = int(rng.integers(5, 55))
                mask[row:row + 3, 5:60] = 1
            labels.append(NewLabel(record, record.name, mask, labeller))
        store_labels(store, labels, ["background", "crack"])

    label([record for record, _, _ in store.queue()], "ana")
    for round_, f1 in enumerate(F1, start=1):  # three finished rounds (their figures made up), two labels after each
        store.start_round(round_, len(store.labelled()))
        store.update_round(round_, metrics={"strict": {"f1": f1, "precision": f1 + 0.1, "recall": f1 - 0.05},
                                            "tol2": {"f1": f1 + 0.2}, "loss": 1.2 - f1}, checkpoint=str(project / "none.pt"))
        store.finish_round(round_, {}, [], [], 0.2 / round_)
        label(store.unlabelled()[:2], "bob" if round_ % 2 else "ana")
    store.close()
    server = LiveServer(project)
    with sync_playwright() as playwright:
        page = browser_page(playwright, chromium, height=1000)
        try:
            yield project, server.url, page, root
        finally:
            page.context.browser.close()
            server.stop()


def rounds_in(page, chart: str, series: str) -> list[int]:
    return [int(r) for r in page.eval_on_selector_all(f"#{chart} circle[data-series='{series}']", "cs => cs.map(c => c.dataset.round)")]


def test_the_charts_show_every_finished_round_and_a_new_one_joins_them(served):
    project, url, page, tmp = served
    sign_in_page(page, url, "root")
    page.goto(url + "/dashboard")
    page.wait_for_selector("body[data-ready=true]")
    for series in ("F1", "precision", "recall"):
        assert rounds_in(page, "chart-score", series) == [1, 2, 3]
    assert rounds_in(page, "chart-loss", "loss") == [1, 2, 3]
    assert rounds_in(page, "chart-uncertainty", "pool uncertainty") == [1, 2, 3]
    assert page.eval_on_selector_all("#chart-balance rect[data-batch]", "rs => rs.length") == 8  # 4 batches, two series
    assert page.text_content("#advice").startswith("held-out F1 still rising (0.340 -> 0.410)")
    assert [r.strip() for r in page.eval_on_selector_all("#labellers tbody td:first-child", "t => t.map(c => c.textContent)")] == \
        ["ana", "bob"]
    assert "$5.00" in page.text_content("#cards")  # 10 labels at $0.50
    screenshot(page, "dashboard.png", tmp, full_page=True)

    page.click("#start-round")  # the admin starts round 4 in the background
    page.wait_for_selector("#worker-state[data-state=running]")
    page.wait_for_selector("#worker-state[data-state=done]", timeout=240_000)  # (the page's CSP forbids wait_for_function)
    page.wait_for_selector("#chart-score circle[data-series=F1][data-round='4']")
    assert rounds_in(page, "chart-score", "F1") == [1, 2, 3, 4]
    assert "Round 4 finished: 10 labelled images, 2 new images queued" in page.text_content("#worker-state")
    assert page.eval_on_selector_all("#rounds tbody tr", "rows => rows.map(r => r.dataset.round)") == ["1", "2", "3", "4"]

    # the review viewer shows round 4's maps of a held-out image
    store = ProjectStore(project)
    held = store.heldout()[0]
    store.close()
    page.goto(f"{url}/review?image={held.id}")
    page.wait_for_selector("body[data-ready=true]")
    for layer in ("image", "prediction", "probability", "uncertainty", "truth"):
        page.wait_for_selector(f"figure[data-layer={layer}][data-loaded=true]")
    assert "model of round 4" in page.text_content("#title")

