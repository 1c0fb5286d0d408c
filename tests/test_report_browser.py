"""The HTML report of a small real run, opened in a real headless Chromium (Playwright): it loads
with no console error and no network request, and its key sections are visible. A screenshot is
kept under reports/test-artifacts/.

Chromium comes from the system (Debian: ``apt-get install -y chromium``); the test skips without it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} is missing (Debian/Ubuntu: apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A report set from a real run: three catalog checks on torch (a pass, an expected failure with
    its reproducer, the compatibility table), a planted failing loss, and a trend from a history."""
    pytest.importorskip("torch")
    from losscheck import nightly, runner
    from losscheck.history import History
    from losscheck.report import json_report
    from tests.test_reports import planted_spec

    tasks = [runner.Task("torch.nn.MSELoss", "torch", "value", "float64"),
             runner.Task("torch.nn.SoftMarginLoss", "torch", "numerics", "float32"),
             runner.Task("torch.nn.CrossEntropyLoss", "torch", "compat", "float64")]
    rows, versions = runner.run(tasks, examples=2, seed=0, jobs=1)
    spec = planted_spec()
    rows.append(runner.run_check(spec, runner.Task(spec.id, "torch", "value", "float64"), examples=5, seed=0))
    out = tmp_path_factory.mktemp("browser")
    with History.open(str(out / "history.sqlite")) as history:
        for status in ("pass", "fail"):
            run = history.begin_run(seed=0, examples=2, versions=versions)
            history.add_results(run, [{**r, "status": status if r["id"] == spec.id else r["status"]} for r in rows])
            history.finish_run(run)
        changes = history.changes(run, rows).to_json()
        trend = history.trend()
    doc = json_report.document(rows, versions=versions, seed=0, examples=2, command=["losscheck", "nightly"],
                               changes=changes, trend=trend)
    assert not nightly.write_report_set(str(out), doc, specs={spec.id: spec})
    return out


def test_report_opens_in_chromium_without_errors_or_requests(report_dir):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (the dev extra)")
    page_url = (report_dir / "report.html").resolve().as_uri()
    console_errors, page_errors, requests = [], [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_url, wait_until="load")
            for sid in ("summary", "heatmap", "errors", "devices", "matrix", "compat", "deviations", "failures",
                        "trend"):
                assert page.locator(f"section#{sid}").is_visible(), sid
            assert page.locator("#devices").inner_text().find("No GPU in this run") >= 0
            assert page.locator("#heatmap td.cell").count() >= 4
            assert page.locator("#errors svg").count() == 1 and page.locator("#trend svg").count() == 1
            assert "torch.nn.CrossEntropyLoss" in page.locator("#compat").inner_text()
            assert "torch.nn.SoftMarginLoss" in page.locator("#deviations").inner_text()
            failure = page.locator("#failures details.failure").first
            assert "planted.mse_sum" in failure.inner_text() and "new" in failure.inner_text()
            failure.locator("summary").first.click()
            assert failure.locator("text=reproducer").first.is_visible()
            failure.locator("details summary").click()   # the reproducer script, shown inline
            assert failure.locator("pre.script").is_visible()
            assert "REPRODUCED" in failure.locator("pre.script").inner_text()
            # the filter box hides losses that do not match
            page.fill("#heatmap input.filter", "softmargin")
            visible = page.locator("#heatmap-grid tr[data-filter]:visible")
            assert visible.count() == 1 and "SoftMarginLoss" in visible.inner_text()
            page.fill("#heatmap input.filter", "")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert not console_errors and not page_errors, console_errors + page_errors
    assert requests == [page_url], requests
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
