"""The portal's shell in Chromium through the running campus: the sign-in page is accessible
(axe-core), keyboard users can skip to the content, the language picker switches the whole page,
bad sign-in input gets a message, and there is no console error or CSP violation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser import assert_accessible
from tests.support import Campus

if TYPE_CHECKING:
    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.slow


def test_sign_in_page_accessible_keyboard_and_languages(browser_campus: Campus, browser_page: BrowserPage) -> None:
    page, base = browser_page.page, browser_campus.url.rstrip("/")
    response = page.goto(base + "/")
    assert response is not None and response.status == 200 and page.url.endswith("/login")
    assert_accessible(page, "sign-in")
    # keyboard: the first Tab reaches the skip link, which moves the focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # bad input: a wrong password is said so on the page, with the address kept
    page.fill("#f-email", "nobody@example.org")
    page.fill("#f-password", "wrong-password")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_selector(".form-error")
    assert "not right" in page.inner_text(".form-error")
    assert page.input_value("#f-email") == "nobody@example.org"
    # the language picker: the page comes back in French, and stays so
    page.select_option("#language-picker", "fr")
    page.click(".language-picker button")
    page.wait_for_selector("html[lang=fr]")
    assert page.inner_text("h1") == "Se connecter"
    page.goto(base + "/login")
    assert page.inner_text("h1") == "Se connecter"
    assert_accessible(page, "sign-in (fr)")
    browser_page.screenshot("portal-sign-in-fr")
    # the other pages a visitor can meet: an unknown page, the password-reset form with a mistake
    response = page.goto(base + "/no/such/page")
    assert response is not None and response.status == 404 and page.inner_text("h1") == "Page introuvable"
    assert_accessible(page, "not found (fr)")
    page.goto(base + "/password-reset?token=not-a-real-token")
    page.fill("#f-password", "short")
    page.fill("#f-confirm", "short")
    page.click("form[action='/password-reset'] button[type=submit]")
    page.wait_for_selector("#e-password")
    assert page.get_attribute("#f-password", "aria-invalid") == "true"
    assert_accessible(page, "password reset with an error (fr)")
    browser_page.screenshot("portal-password-reset-error")
    browser_page.log.assert_clean(allow=[r"status of 401", r"status of 404", r"status of 422"])
