"""The report in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

Asserts what a reader relies on: the table has one row per ranked cluster, the map one shape per
cluster, sorting works, profiles open and close, the GII 2023 comparison lists the 34 published
clusters with its differences highlighted, nothing is logged as an error and nothing is requested
from outside the file. Saves screenshots under artifacts/ (gitignored). Installs nothing: when
chromium is missing the test fails and says how to install it (tools/ensure-chromium.sh, run by
the test set-up).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from fixtures.report.edition import build_edition, diff_doc
from stclusters.report import figures, marts, report

CHROMIUM = Path(os.environ.get("STCLUSTERS_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1400,1000",
)
TIMEOUT = 60.0

pytestmark = pytest.mark.e2e


class DevTools:
    """A minimal DevTools-protocol client: one page session, every event kept in order."""

    def __init__(self, ws_url: str) -> None:
        self.ws = connect(ws_url, max_size=None, open_timeout=TIMEOUT)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def call(self, method: str, params: dict[str, Any] | None = None, session: bool = True) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        seen = len(self.events)
        for e in self.events[:seen]:
            if e["method"] == method:
                return e
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(f"no {method} within {TIMEOUT} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        # the browser may close the socket before it answers
        with contextlib.suppress(Exception):
            self.call("Browser.close", session=False)
        self.ws.close()


@pytest.fixture
def browser() -> Iterator[DevTools]:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium with `tools/ensure-chromium.sh` "
            "(as root: apt-get update && apt-get install -y chromium)"
        )
    profile = Path(tempfile.mkdtemp(prefix="stclusters-chromium-"))
    proc = subprocess.Popen(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{CHROMIUM} did not start (exit code {proc.poll()})")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        tools = DevTools(f"ws://127.0.0.1:{port}{path}")
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        tools.session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _screenshot(tools: DevTools, name: str, full_page: bool) -> Path:
    params: dict[str, Any] = {"format": "png"}
    if full_page:
        size = tools.call("Page.getLayoutMetrics")["cssContentSize"]
        params |= {
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        }
    data = base64.b64decode(tools.call("Page.captureScreenshot", params)["data"])
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / name
    out.write_bytes(data)
    return out


def _screenshot_of(tools: DevTools, selector: str, name: str) -> Path:
    """A screenshot of one element of the page (its whole box, also beyond the viewport)."""
    box = tools.evaluate(
        f"(function () {{ var b = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
        " return [b.left + window.scrollX, b.top + window.scrollY, b.width, b.height]; })()"
    )
    clip = {"x": box[0], "y": box[1], "width": box[2], "height": min(box[3], 4000), "scale": 1}
    data = tools.call(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / name
    out.write_bytes(base64.b64decode(data["data"]))
    return out


def _type(tools: DevTools, selector: str, event: str, value: str) -> None:
    """Set a form field's value and fire the event a user's typing or choice fires."""
    tools.evaluate(
        f"(function () {{ var e = document.querySelector({json.dumps(selector)});"
        f" e.value = {json.dumps(value)};"
        f" e.dispatchEvent(new Event({json.dumps(event)}, {{ bubbles: true }})); }})()"
    )


def _problems(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in {"error", "assert", "warning"}:
            found.append(
                f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}"
            )
        elif e["method"] == "Runtime.exceptionThrown":
            found.append(
                f"exception: {p['exceptionDetails'].get('text')} {p['exceptionDetails'].get('exception')}"
            )
        elif e["method"] == "Log.entryAdded" and p["entry"].get("level") in {"error", "warning"}:
            found.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
    return found


def test_report_in_chromium(tmp_path: Path, browser: DevTools) -> None:
    params, summary = build_edition(tmp_path)
    dest = tmp_path / "publication"
    dest.mkdir()
    (dest / report.DIFF_FILE).write_text(json.dumps(diff_doc()), encoding="utf-8")
    report.write_outputs(params, dest, summary)
    page = (dest / "report.html").resolve()
    n_ranked = len(json.loads((dest / "clusters.geojson").read_text())["features"])
    assert n_ranked == params.top_n

    browser.call("Page.navigate", {"url": page.as_uri()})
    browser.wait_for("Page.loadEventFired")

    rows = browser.evaluate("document.querySelectorAll('#ranking tbody tr').length")
    shapes = browser.evaluate("document.querySelectorAll('#map g.cluster').length")
    ranks_on_map = browser.evaluate(
        "Array.from(document.querySelectorAll('#map g.cluster'))"
        ".map(g => Number(g.dataset.rank)).sort((a, b) => a - b)"
    )
    footprints_drawn = browser.evaluate(
        "Array.from(document.querySelectorAll('#map g.cluster .footprint'))"
        ".filter(p => p.getBBox().width > 0 && p.getBBox().height > 0).length"
    )
    assert rows == params.top_n
    assert shapes == params.top_n
    assert ranks_on_map == list(range(1, params.top_n + 1))
    assert footprints_drawn == params.top_n
    assert browser.evaluate("document.querySelector('#map .land').getBBox().width") > 1000  # the countries
    assert browser.evaluate("document.getElementById('top20').naturalWidth") > 500  # the data: PNG decoded
    assert browser.evaluate("document.getElementById('data-docs').getAttribute('href')") == report.DATA_DOCS

    # Sorting: by score descending is the rank order; by name ascending is alphabetical.
    first_rank = "document.querySelector('#ranking tbody tr').dataset.rank"
    browser.evaluate("document.querySelectorAll('#ranking th button')[7].click()")  # score, ascending
    assert int(browser.evaluate(first_rank)) == params.top_n
    browser.evaluate("document.querySelectorAll('#ranking th button')[1].click()")  # cluster name
    names = browser.evaluate(
        "Array.from(document.querySelectorAll('#ranking tbody tr td:nth-child(2)')).map(t => t.textContent)"
    )
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    # Clicking a row selects its cluster on the map and zooms to it.
    browser.evaluate("document.querySelector('#ranking tbody tr[data-rank=\"1\"]').click()")
    assert browser.evaluate("document.querySelector('#map g.cluster.on').dataset.rank") == "1"
    assert browser.evaluate("document.getElementById('map').viewBox.baseVal.width") < figures.MAP_WIDTH / 4
    shot_zoomed = _screenshot(browser, "report-zoomed.png", full_page=False)
    # The info box links to the cluster's profile, which it opens.
    browser.evaluate("Array.from(document.querySelectorAll('#info a')).pop().click()")
    assert browser.evaluate("document.getElementById('profile-1').hidden") is False
    browser.evaluate("document.getElementById('profiles-close').click()")

    # Profiles: one summary row per ranked cluster; a click opens its detail, a second closes it.
    summaries = "document.querySelectorAll('#profiles tr.profile')"
    hidden = (
        "Array.from(document.querySelectorAll('#profiles tr.profile-detail')).filter(r => r.hidden).length"
    )
    assert browser.evaluate(f"{summaries}.length") == params.top_n
    assert browser.evaluate(hidden) == params.top_n
    browser.evaluate("document.querySelector('#profiles tr.profile[data-profile-rank=\"2\"]').click()")
    assert browser.evaluate("document.getElementById('profile-2').hidden") is False
    assert browser.evaluate("document.getElementById('profile-2').getBoundingClientRect().height") > 150
    assert (
        browser.evaluate(
            "document.querySelector('#profiles tr.profile[data-profile-rank=\"2\"] button.expand')"
            ".getAttribute('aria-expanded')"
        )
        == "true"
    )
    assert browser.evaluate(hidden) == params.top_n - 1
    browser.evaluate("document.getElementById('profiles-open').click()")
    assert browser.evaluate(hidden) == 0
    browser.evaluate("document.getElementById('profiles-close').click()")
    assert browser.evaluate(hidden) == params.top_n
    browser.evaluate("document.querySelector('#profiles tr.profile[data-profile-rank=\"2\"]').click()")
    shot_profiles = _screenshot_of(browser, "#profiles-section", "report-profiles.png")

    # The GII 2023 comparison: every published cluster, the differences highlighted and explained.
    assert browser.evaluate("document.querySelectorAll('#gii-comparison tbody tr').length") == 34
    highlighted = browser.evaluate(
        "Array.from(document.querySelectorAll('#gii-comparison td.diff')).map(td => td.textContent)"
    )
    assert "Köln" in highlighted
    why_cologne = browser.evaluate(
        "document.querySelector('#gii-comparison tr[data-published-rank=\"25\"] td:last-child').textContent"
    )
    assert why_cologne == "GeoNames' main name for Cologne is “Köln”"
    shot_comparison = _screenshot_of(browser, "#gii-2023", "report-gii-2023.png")
    # The search box and the economy filter hide the other rows; economy names stand beside codes.
    visible = "Array.from(document.querySelectorAll('#ranking tbody tr')).filter(r => !r.hidden)"
    assert "Japan" in browser.evaluate(
        "document.querySelector('#ranking tr[data-rank=\"1\"] td:nth-child(3)').textContent"
    )
    _type(browser, "#ranking-search", "input", "yokoHAMA")
    assert browser.evaluate(f"{visible}.map(r => r.dataset.rank)") == ["1"]
    assert "1 of" in browser.evaluate("document.getElementById('ranking-count').textContent")
    _type(browser, "#ranking-search", "input", "kyoto osaka")  # every word, in any order
    assert browser.evaluate(f"{visible}.map(r => r.cells[1].textContent)") == ["Osaka–Kobe–Kyoto"]
    _type(browser, "#ranking-search", "input", "")
    _type(browser, "#economy-filter", "change", "US")
    us = browser.evaluate(f"{visible}.map(r => r.dataset.economies)")
    expected_us = [
        r
        for r in marts.ranking_records(marts.read_tables(params.duckdb_path).ranking)
        if "US" in r["economies"].split("/")
    ]
    assert len(us) == len(expected_us) > 0 and all("US" in e.split() for e in us)
    _type(browser, "#ranking-search", "input", "united states")  # by economy name too
    assert browser.evaluate(f"{visible}.length") == len(expected_us)
    shot_search = _screenshot_of(browser, "#ranking-section", "report-ranking-filtered.png")
    _type(browser, "#ranking-search", "input", "")
    _type(browser, "#economy-filter", "change", "")
    assert browser.evaluate(f"{visible}.length") == params.top_n

    # A cluster's name links to #cluster-<id>, which opens its profile and scrolls to it.
    link = browser.evaluate(
        "document.querySelector('#ranking tr[data-rank=\"5\"] a.cluster-link').getAttribute('href')"
    )
    cluster_5 = browser.evaluate("document.querySelector('#ranking tr[data-rank=\"5\"]').dataset.clusterId")
    assert link == f"#cluster-{cluster_5}"
    browser.evaluate("document.querySelector('#ranking tr[data-rank=\"5\"] a.cluster-link').click()")
    time.sleep(0.3)
    assert browser.evaluate("document.getElementById('profile-5').hidden") is False
    top = browser.evaluate(f"document.getElementById('cluster-{cluster_5}').getBoundingClientRect().top")
    assert -2 <= top < browser.evaluate("window.innerHeight") / 2
    browser.evaluate("document.getElementById('profiles-close').click()")

    # The edition diff: the summary first, then the readable table; the method as prose.
    assert browser.evaluate("document.querySelectorAll('#diff-table tbody tr').length") == 5
    diff_text = browser.evaluate("document.getElementById('diff').innerText")
    assert diff_text.index("Entries") < diff_text.index("Every cluster in either top list")
    assert "``" not in browser.evaluate("document.getElementById('diff').textContent")
    assert browser.evaluate("document.querySelectorAll('#diff-table .up, #diff-table .down').length") == 2
    shot_diff = _screenshot_of(browser, "#diff", "report-diff.png")

    # The validation table: one row per check, by id, with the real observed values.
    checks = browser.evaluate(
        "Array.from(document.querySelectorAll('#validation-table tbody tr')).map(r => r.dataset.check)"
    )
    assert checks == [r["check"] for r in summary["results"]]
    observed = browser.evaluate(
        "document.querySelector('#validation-table tr[data-check=\"raw.quarantine_share\"] td:nth-child(4)')"
        ".textContent"
    )
    assert observed.startswith("patents: 0.00")
    assert (
        browser.evaluate("document.getElementById('validation-page').getAttribute('href')")
        == "validation.html"
    )
    shot_validation = _screenshot_of(browser, "#validation", "report-validation.png")

    browser.evaluate("document.querySelector('.maptools button[data-view=\"world\"]').click()")
    browser.evaluate("window.scrollTo(0, 0)")

    time.sleep(0.3)  # let late events (console, requests) arrive before they are read
    browser.call("Runtime.evaluate", {"expression": "1"})
    shot = _screenshot(browser, "report.png", full_page=True)

    requests = [
        e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"
    ]
    assert requests, "the browser reported no request at all: the Network domain is not being observed"
    outside = [u for u in requests if not (u.startswith("file://") or u.startswith("data:"))]
    assert outside == [], f"the report requested {outside}"
    assert _problems(browser.events) == []
    assert shot.stat().st_size > 10_000 and shot_zoomed.stat().st_size > 10_000
    assert shot_profiles.stat().st_size > 10_000 and shot_comparison.stat().st_size > 10_000
    assert min(p.stat().st_size for p in (shot_search, shot_diff, shot_validation)) > 10_000

    # A link from outside: report.html#cluster-<id> opens the page at that cluster's profile.
    cluster_7 = browser.evaluate("document.querySelector('#ranking tr[data-rank=\"7\"]').dataset.clusterId")
    browser.call("Page.navigate", {"url": f"{page.as_uri()}#cluster-{cluster_7}"})
    browser.wait_for("Page.loadEventFired")
    time.sleep(0.3)
    assert browser.evaluate("document.getElementById('profile-7').hidden") is False
    top = browser.evaluate(f"document.getElementById('cluster-{cluster_7}').getBoundingClientRect().top")
    assert -2 <= top < browser.evaluate("window.innerHeight") / 2
    _screenshot(browser, "report-linked-profile.png", full_page=False)


def test_validation_page_offline(tmp_path: Path, browser: DevTools) -> None:
    """validation.html: every check with its observed value and threshold, nothing requested."""
    params, summary = build_edition(tmp_path)
    dest = tmp_path / "publication"
    report.write_outputs(params, dest, summary)
    page = (dest / report.VALIDATION_PAGE).resolve()
    browser.call("Page.navigate", {"url": page.as_uri()})
    browser.wait_for("Page.loadEventFired")
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('#validation-table tbody tr'))"
        ".map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    assert [r[0] for r in rows] == [r["check"] for r in summary["results"]]
    by_id = {r[0]: r for r in rows}
    assert by_id["raw.quarantine_share"][3:] == [
        "patents: 0.001976; publications: 0.0021",
        "quarantine_share ≤ 0.01",
        "pass",
    ]
    assert "passed" in browser.evaluate("document.body.innerText")
    time.sleep(0.3)
    browser.call("Runtime.evaluate", {"expression": "1"})
    shot = _screenshot(browser, "validation.png", full_page=True)
    requests = [
        e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"
    ]
    assert requests and all(u.startswith("file://") for u in requests), requests
    assert _problems(browser.events) == []
    assert shot.stat().st_size > 10_000
