"""The playground in a real browser: Playwright drives Debian's Chromium (``.ci/run`` installs
it with apt; Playwright's own browser download cannot reach its host here). Screenshots go to
``out/`` (kept by CI as artifacts). Skips, saying why, only where no Chromium is found."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the playground needs: pip install "
                    "'layerwise[playground]'")
uvicorn = pytest.importorskip("uvicorn", reason="the playground needs uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need "
                               "Playwright: pip install playwright")

CHROMIUM = os.environ.get("LAYERWISE_CHROMIUM") or shutil.which("chromium") or \
    shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium found (apt-get install -y chromium, or set LAYERWISE_CHROMIUM "
                "to a Chromium executable)", allow_module_level=True)

OUT = Path(__file__).resolve().parents[1] / "out"


@pytest.fixture(scope="module")
def address():
    from layerwise.playground.server import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "the playground server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, address):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(address)
    page.wait_for_selector("#output-0")
    page.wait_for_function("document.querySelector('#run-0 .test-loss').textContent !== ''")
    yield page
    page.close()
    assert not errors, errors


def _number(page, selector):
    text = page.inner_text(selector)
    return float(text) if text not in ("", "–") else None


def _colours(page, selector):
    """How many different colours the canvas shows (a blank one shows one)."""
    return page.eval_on_selector(selector, """canvas => {
        const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
        return seen.size;
    }""")


def _shot(page, name):
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / f"playground-{name}.png"), full_page=True)


def test_xor_is_learned_while_you_watch(page):
    page.click("#dataset-xor")
    page.wait_for_function("document.querySelector('#dataset-xor').classList.contains"
                           "('selected')")
    first = _number(page, "#run-0 .test-loss")
    page.click("#play")
    start, accuracy = time.time(), 0.0
    while time.time() - start < 20:
        time.sleep(0.5)
        accuracy = _number(page, "#run-0 .test-accuracy") or 0.0
        if accuracy >= 0.95:
            break
    seconds = time.time() - start
    _shot(page, "xor")
    page.click("#play")  # pause
    assert accuracy >= 0.95, f"test accuracy {accuracy} after {seconds:.0f} s"
    assert _number(page, "#run-0 .test-loss") < first
    assert int(page.inner_text("#epoch")) > 0
    assert _colours(page, "#output-0") > 20  # the decision region, not a blank square
    neurons = page.query_selector_all("#run-0 .node:not(.input) canvas")
    assert len(neurons) == 4 + 2 + 1
    assert all(_colours(page, f"#run-0 .node[data-layer='{n.get_attribute('data-layer')}']"
                        f"[data-unit='{n.get_attribute('data-unit')}'] canvas") > 1
               for n in [c.query_selector("xpath=..") for c in neurons])
    weight = page.query_selector("#run-0 path.link title").text_content()
    assert weight.startswith("weight ")


def test_activation_layers_and_batch_size_change_the_run(page):
    page.select_option("#activation", "relu")
    page.wait_for_function("document.querySelector('#activation-note').textContent"
                           ".startsWith('relu')")
    page.click("#run-0 .add-layer")
    page.wait_for_function("document.querySelector('#run-0 .layer-count').textContent"
                           " === '3 hidden layers'")
    page.eval_on_selector("#batch_size", "e => { e.value = 1; e.dispatchEvent("
                                         "new Event('change')); }")
    page.wait_for_function("document.querySelector('#batch_size-value').textContent === '1'")
    page.click("#run-0 .layer-buttons button")  # one more neuron in the first layer
    page.wait_for_function("document.querySelectorAll(\"#run-0 .node[data-layer='1']\")"
                           ".length === 5")
    page.click("#step")
    page.wait_for_function("Number(document.querySelector('#epoch').textContent) === 1")
    assert page.input_value("#activation") == "relu"
    assert _colours(page, "#output-0") > 1
    assert _colours(page, "#run-0 .gradient-chart") > 1
    _shot(page, "relu-3-layers-batch-1")


def test_side_by_side_and_the_activation_plot(page):
    page.check("#compare")
    page.wait_for_selector("#run-1")
    page.check("input[name=editing][value='1']")
    page.select_option("#activation", "sigmoid")
    page.wait_for_function("document.querySelector('#activation-note').textContent"
                           ".startsWith('sigmoid')")
    page.click("#step")
    page.wait_for_function("Number(document.querySelector('#epoch').textContent) === 1")
    assert _colours(page, "#output-1") > 1
    assert _colours(page, "#activation-plot") > 2
    _shot(page, "side-by-side")


def test_a_bad_upload_shows_an_error(page):
    page.set_input_files("#upload", files=[{"name": "bad.csv", "mimeType": "text/csv",
                                            "buffer": b"x1,x2\n1\n2,3\n"}])
    page.wait_for_selector("#error:not([hidden])")
    assert "Upload refused" in page.inner_text("#error")
    _shot(page, "bad-upload")
