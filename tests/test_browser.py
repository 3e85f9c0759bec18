"""End to end in Debian's headless Chromium (Playwright, never a downloaded browser) against a real
uvicorn server on a free loopback port and a real catalogue: sign in, approve an image from the
keyboard, publish a style set, read a run's provenance. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest

from stylevault.governance.web.app import create_app
from stylevault.governance.web.config import WebConfig
from tests.desk import PASSWORD, SECRET, give_passwords, states
from tests.factories import encode, picture, run_generate, write, write_csv

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the playwright package (pip install -e '.[dev]')"
)


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve():
    """Start the desk over a catalogue in a uvicorn server thread; stopped at the end of the test."""
    import uvicorn

    servers = []

    def start(catalogue) -> str:
        port = free_port()
        app = create_app(catalogue, WebConfig(secret_key=SECRET))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the test server on port {port} did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(chromium, artifacts, request):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    tab.screenshot(path=str(artifacts / f"{request.node.name}-last.png"), full_page=True)
    context.close()


def sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/queue")
    assert "/signin" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/queue.*"))
    assert page.inner_text("#signed-in-as") == name


def test_a_legal_reviewer_signs_in_and_approves_an_image_from_the_keyboard(
    page, serve, catalogue, team, tmp_path, artifacts
):
    from stylevault.governance.ingest.run import ingest

    rows = []
    for n in range(3):
        write(tmp_path / "in" / f"{n}.png", encode(picture(500 + n, size=(64, 48))))
        rows.append(
            {"path": f"{n}.png", "licence": "CC BY 4.0", "collection": "harbour", "title": f"Pier {n}"}
        )
    ingest(catalogue, "sam", tmp_path / "in", manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    give_passwords(catalogue, ["lee"])
    base = serve(catalogue)

    sign_in(page, base, "lee")
    assert page.locator("a.image-link").count() == 3
    # The thumbnails load after the page does: wait (up to playwright's 30 s) for every one to have
    # pixels; one that never loads fails here.
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("img.thumb").count() == 3
    page.screenshot(path=str(artifacts / "desk-queue.png"), full_page=True)
    page.click("a.image-link >> nth=0")
    page.wait_for_url(re.compile(r".*/images/1\?.*"))
    assert page.inner_text("#licence-spdx").startswith("CC-BY-4.0")
    assert "harbour" in page.inner_text("section.facts")
    page.screenshot(path=str(artifacts / "desk-image-before.png"), full_page=True)
    page.keyboard.press("a")  # approve, and the next image of the queue opens
    page.wait_for_url(re.compile(r".*/images/2\?.*"))
    assert "Image 1 approved." in page.inner_text(".flash")
    page.screenshot(path=str(artifacts / "desk-image-after-approve.png"), full_page=True)
    assert states(catalogue) == {1: "approved", 2: "pending", 3: "pending"}
    page.keyboard.press("q")  # back to the queue: j moves to the first row, x ticks it
    page.wait_for_url(re.compile(r".*/queue\?.*"))
    assert page.locator("a.image-link").count() == 2
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.is_checked("tr.current input[type=checkbox]")
    page.click("#approve-ticked")
    page.wait_for_url(re.compile(r".*/queue\?.*"))
    assert "1 image approved." in page.inner_text(".flash")
    assert states(catalogue) == {1: "approved", 2: "approved", 3: "pending"}


def test_a_steward_publishes_a_style_set(page, serve, catalogue, team, tmp_path, artifacts):
    from stylevault.governance.ingest.run import ingest
    from stylevault.governance.legal import review

    for n in range(4):
        write(tmp_path / "in" / f"{n}.png", encode(picture(600 + n)))
    ingest(catalogue, "sam", tmp_path / "in", licence="CC0", progress=False)
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", ["1", "2", "3", "4"], None)
    give_passwords(catalogue, ["sam"])
    base = serve(catalogue)

    sign_in(page, base, "sam")
    page.click("text=Style sets")
    page.fill("#create-styleset input[name=name]", "harbour-light")
    page.fill("#create-styleset input[name=description]", "pale harbour studies")
    page.click("#create-styleset button")
    page.wait_for_url(re.compile(r".*/stylesets/harbour-light$"))
    page.fill("#add-form input[name=images]", "1 2 3")
    page.click("#add-form button")
    assert "3 added; 3 members." in page.inner_text(".flash")
    assert page.locator("ul.grid img.thumb").count() == 3
    page.fill("#publish-form input[name=note]", "first cut")
    page.click("#publish")
    assert "Published harbour-light@1 with 3 members." in page.inner_text(".flash")
    assert "harbour-light@1" in page.inner_text("#versions")
    page.select_option("#check-form select[name=policy]", "commercial")
    page.click("#check-form button")
    assert "3 cleared" in page.inner_text("#check-summary")
    page.go_back()
    page.screenshot(path=str(artifacts / "desk-styleset-published.png"), full_page=True)


def test_an_auditor_reads_a_runs_provenance(page, serve, indexed, rdm_dir, tmp_path, artifacts):
    catalogue, folder = indexed
    made = run_generate(catalogue, folder, rdm_dir, tmp_path / "out", prompt="a harbour at dawn")
    give_passwords(catalogue, ["val"])
    base = serve(catalogue)

    sign_in(page, base, "val")
    page.click("text=Runs")
    page.click(f"a[href='/runs/{made.run_id}']")
    page.wait_for_url(re.compile(rf".*/runs/{made.run_id}$"))
    assert page.inner_text("#run-prompt") == "a harbour at dawn"
    assert page.locator("table.neighbours img.mini").count() == 3
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    notice = (tmp_path / "out" / "ATTRIBUTION.md").read_text()
    shown = page.inner_text("#attribution-notice")
    assert [line for line in notice.splitlines() if line.strip()] == [
        line for line in shown.splitlines() if line.strip()
    ]
    page.screenshot(path=str(artifacts / "desk-run-provenance.png"), full_page=True)
