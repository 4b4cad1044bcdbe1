"""A three-turn conversation in the app, in headless Chromium: "a coat" → "darker" → pick the
third result → "as a dress".

Runs on the planted tiny models (a generator that draws the asked class and shade, a catalog
whose titles state each item's shade) in seconds. With
``SEARCH_CONVERSATION_SCREENSHOT=reports/figures/search/conversation.png`` it serves the
project's trained models instead (run from the project root after ``kedro run
--pipelines=search_index``) and saves the README screenshots there: the conversation and
(beside it, ``dark_wide_coat.png``) the query "a dark wide coat".
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fashiongan.attributes import measure
from tests.search.test_app import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, playwright, serve_app

expect = playwright.expect
SCREENSHOT = os.environ.get("SEARCH_CONVERSATION_SCREENSHOT")
_ID = re.compile(r"\(([^()\s]+)\)\s*$")


@pytest.fixture(scope="module")
def served(request):
    """(service, url) of the app on 127.0.0.1."""
    with serve_app(request, "conversation_service", bool(SCREENSHOT)) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(served, browser):
    """A fresh page: a new conversation."""
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served[1])
    page.wait_for_selector("#chat-input textarea")
    yield page
    page.close()


def _say(page, text: str, turn: int) -> list[str]:
    """Send a message, wait for its turn to be answered; the result ids in gallery order."""
    page.fill("#chat-input textarea", text)
    page.press("#chat-input textarea", "Enter")
    expect(page.locator("#keywords")).to_contain_text(f"Turn {turn}:")
    return _result_ids(page)


def _result_ids(page) -> list[str]:
    captions = page.locator("#results .thumbnail-item .caption-label").all_inner_texts()
    return [_ID.search(caption).group(1) for caption in captions]


def _intensity(service, ids: list[str]) -> float:
    rows = [service.catalog.table.index[service.catalog.table["id"] == i][0] for i in ids]
    return float(measure(service.catalog.thumbnails[rows])["intensity"].mean())


def test_darker_then_the_picked_third_result_as_a_dress(served, page, tmp_path):
    service = served[0]
    coats = _say(page, "a coat", 1)
    darker = _say(page, "darker", 2)
    expect(page.locator("#keywords")).to_contain_text("modify")
    expect(page.locator("#previous img")).to_have_count(1)  # the previous drawing, beside
    assert _intensity(service, darker) < _intensity(service, coats)

    page.locator("#results .thumbnail-item").nth(2).click()
    expect(page.locator("#selected")).to_contain_text(f"Selected result 3 ({darker[2]})")
    page.click("#use-reference")
    expect(page.locator("#keywords")).to_contain_text(f"Reference: catalog item {darker[2]}")

    dresses = _say(page, "as a dress", 4)
    reply = page.locator("#chat").get_by_text(f"Starting from catalog item {darker[2]}").last
    expect(reply).to_be_visible()
    categories = [str(service.catalog.table.set_index("id").at[i, "category"]) for i in dresses]
    assert categories.count("Dress") >= 8
    expect(page.locator("#generated img")).to_have_count(1)
    expect(page.locator("#previous img")).to_have_count(1)
    path = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "conversation.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000


def test_a_dark_wide_coat_returns_coats(served, page, tmp_path):
    ids = _say(page, "a dark wide coat", 1)
    table = served[0].catalog.table.set_index("id")
    assert [str(table.at[i, "category"]) for i in ids].count("Coat") >= 8
    expect(page.locator("#generated img")).to_have_count(1)
    path = Path(SCREENSHOT).with_name("dark_wide_coat.png") if SCREENSHOT else tmp_path / "c.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000


def test_a_misspelt_new_item_in_the_second_message_draws_that_item(served, page):
    """ "no, a dres instead" after a coat names a new class, misspelt: dresses, not a coat."""
    table = served[0].catalog.table.set_index("id")
    coats = _say(page, "a patterned coat", 1)
    assert [str(table.at[i, "category"]) for i in coats].count("Coat") >= 8
    dresses = _say(page, "no, a dres instead", 2)
    expect(page.locator("#keywords")).to_contain_text("'dres' → dress")
    categories = [str(table.at[i, "category"]) for i in dresses]
    assert categories.count("Dress") >= 8 and categories.count("Coat") <= 1
