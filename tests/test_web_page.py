"""The web page in headless Chromium (Debian's ``chromium``, driven by Playwright).

A real server streams a real SmolLM2 answer; the page must show it growing,
list the cited sources with their text, and show the server's error message
for an empty question.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_serve_fixtures import TorchThreads, copy_index

from dl2llm.serve.server import BackgroundServer, wait_until_ready
from dl2llm.serve.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = copy_index(tmp_path_factory.mktemp("page"))
    settings = Settings(str(data_dir), build_missing=False, max_new_tokens=16)
    with TorchThreads(), BackgroundServer(settings) as running:
        wait_until_ready(running.url, timeout_s=300)
        yield running


@pytest.fixture(scope="module")
def page(server):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page()
        page.goto(server.url)
        yield page
        browser.close()


@pytest.mark.slow
def test_page_streams_an_answer_and_shows_sources(page):
    from playwright.sync_api import expect

    page.fill("#question", "What does functools.lru_cache do?")
    page.click("#ask")
    expect(page.locator("#sources li").first).to_contain_text("functools", timeout=60_000)
    expect(page.locator("#sources li").first.locator(".path")).to_contain_text(
        "library/functools.rst"
    )
    expect(page.locator("#status")).to_contain_text("Done in", timeout=120_000)
    assert len(page.inner_text("#answer").strip()) > 10
    assert page.locator("#sources li").count() == 5
    assert len(page.locator("#sources li .text").first.inner_text()) > 50
    assert page.locator("#error").is_hidden()


@pytest.mark.slow
def test_page_shows_the_error_for_an_empty_question(page):
    from playwright.sync_api import expect

    page.fill("#question", "   ")
    page.click("#ask")
    expect(page.locator("#error")).to_be_visible(timeout=30_000)
    expect(page.locator("#error")).to_contain_text("Error 422")
    expect(page.locator("#error")).to_contain_text("must not be empty or only whitespace")


@pytest.mark.slow
def test_page_says_why_the_service_is_not_ready(page, tmp_path):
    from playwright.sync_api import expect

    settings = Settings(str(tmp_path), build_missing=False)  # no index: never ready
    with BackgroundServer(settings) as running:
        other = page.context.browser.new_page()
        other.goto(running.url)
        expect(other.locator("#status")).to_contain_text(
            "The service could not start: no index in", timeout=30_000
        )
        other.close()
