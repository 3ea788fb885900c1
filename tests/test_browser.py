"""The chat page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser download)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: install Debian's chromium to run the "
                                                     "browser tests (.ci/run does)"),
]


@pytest.fixture(scope="module")
def base_url(tiny_model_dir):
    app = create_app(tiny_model_dir, preset="greedy", preset_overrides={"max_new_tokens": 6},
                     skills=SkillsConfig(disabled=["weather", "stock"]))
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def test_chat_page_in_chromium(browser, base_url, tmp_path):
    page = browser.new_page(viewport={"width": 900, "height": 760}, locale="ko-KR")
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/")
    assert page.locator("#help-card li").count() >= 5

    page.fill("#input", "안녕")
    page.press("#input", "Enter")
    page.wait_for_selector(".row.bot[data-done='1']", timeout=30_000)
    assert page.locator(".row.me .text").first.text_content() == "안녕"
    assert page.locator(".row.bot .text").first.text_content().strip()
    assert page.locator(".row.me time").first.text_content().strip()

    page.fill("#input", "지금 몇 시야")
    page.click("#send")
    page.wait_for_selector(".row.bot[data-done='1'] >> nth=1", timeout=30_000)
    assert page.locator(".row.bot .text").nth(1).text_content().startswith("지금은 한국 시간으로")
    assert page.locator(".row.bot .skill").nth(1).text_content() == "시각"

    page.fill("#input", XSS)
    page.press("#input", "Enter")
    page.wait_for_selector(".row.bot[data-done='1'] >> nth=2", timeout=30_000)
    assert page.locator(".row.me .text").nth(2).text_content() == XSS  # shown as text
    assert page.locator("#log img").count() == 0 and page.locator("img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == [] and errors == []
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    assert (tmp_path / "chat.png").stat().st_size > 10_000

    page.click("#reset")
    page.wait_for_function("document.querySelectorAll('.row').length === 1")
    assert page.locator(".row.bot .text").first.text_content().startswith("새 대화를 시작했어요")
    page.close()
