"""The campus admin's journey in Chromium through the whole running campus (gateway included):
sign in, the overview, users (a refused form with a message per field, then an instructor made
and their role changed), campus settings (a new name and a logo upload that shows in the header,
a sign-in provider that the sign-in page then offers), and the health page listing the running
components. axe-core checks every page; no console error or CSP violation is allowed."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import FilePayload

from tests.browser import assert_accessible, screenshot, sign_in, watch
from tests.portal.test_portal_admin import png
from tests.support import ADMIN_PASSWORD, Campus

if TYPE_CHECKING:
    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.slow

ALLOWED = [r"status of 422"]  # the refused form comes back with 422, which Chromium logs


def test_admin_manages_users_campus_and_reads_health(shared_campus: Campus, browser_page: BrowserPage) -> None:
    page, base = browser_page.page, shared_campus.url.rstrip("/")
    sign_in(page, base, "admin@test.example", ADMIN_PASSWORD, "/admin")
    assert page.inner_text("h1") == "Administration"
    assert page.is_visible(".site-header a[href='/admin'][aria-current=page]")
    assert_accessible(page, "admin overview")
    browser_page.screenshot("portal-admin-overview")

    # users: a refused form first, every message next to its field and what was typed kept
    page.click(".admin-nav a[href='/admin/users']")
    page.wait_for_url(f"{base}/admin/users")
    assert page.inner_text("h1") == "Users"
    assert "admin@test.example" in page.inner_text("table")
    assert_accessible(page, "admin users")
    browser_page.screenshot("portal-admin-users")
    email = f"ada-{uuid.uuid4().hex[:6]}@test.example"
    page.fill("#f-email", "not-an-email")
    page.fill("#f-display_name", "")
    page.fill("#f-password", "short")
    with page.expect_navigation():
        page.click("button:has-text('Create account')")
    assert page.is_visible(".error-summary")
    assert "like name@example.org" in page.inner_text("#e-email")
    assert "name" in page.inner_text("#e-display_name")
    assert "12 characters" in page.inner_text("#e-password")
    assert page.get_attribute("#f-email", "aria-invalid") == "true"
    assert page.input_value("#f-email") == "not-an-email" and page.input_value("#f-password") == ""
    assert_accessible(page, "admin users, refused form")
    browser_page.screenshot("portal-admin-users-invalid")
    page.fill("#f-email", email)
    page.fill("#f-display_name", "Ada Teacher")
    page.select_option("#f-role", "instructor")
    page.fill("#f-password", "ada-initial-password")
    with page.expect_navigation():
        page.click("button:has-text('Create account')")
    assert f"Account created for {email}." in page.inner_text(".admin-status")
    row = page.locator("tr", has_text=email)
    assert row.locator("select[name=role]").input_value() == "instructor"
    # the admin's own row offers no role change
    assert page.locator("tr", has_text="admin@test.example").locator("select[name=role]").count() == 0
    row.locator("select[name=role]").select_option("learner")
    with page.expect_navigation():
        row.locator("button:has-text('Change role')").click()
    assert f"The role of {email} is now Learner" in page.inner_text(".admin-status")
    assert page.locator("tr", has_text=email).locator("select[name=role]").input_value() == "learner"
    assert_accessible(page, "admin users, role changed")

    # campus settings: a new name, a logo in the header, a sign-in provider
    page.click(".admin-nav a[href='/admin/campus']")
    page.wait_for_url(f"{base}/admin/campus")
    assert_accessible(page, "admin campus settings")
    page.fill("#f-name", "Browser Test University")
    with page.expect_navigation():
        page.click("button:has-text('Save settings')")
    assert page.inner_text(".site-header .brand span") == "Browser Test University"
    assert page.locator(".site-header .brand img").count() == 0
    page.set_input_files("#f-logo", files=FilePayload(name="logo.png", mimeType="image/png", buffer=png(32, 32, (240, 150, 20))))
    with page.expect_navigation():
        page.click("button:has-text('Upload logo')")
    assert "The new logo is saved." in page.inner_text(".admin-status")
    page.wait_for_function("() => { const i = document.querySelector('.site-header .brand img'); return i && i.complete && i.naturalWidth === 32; }")
    # a text file named .png is refused, the logo stays
    page.set_input_files("#f-logo", files=FilePayload(name="notes.png", mimeType="image/png", buffer=b"not an image at all"))
    with page.expect_navigation():
        page.click("button:has-text('Upload logo')")
    assert "not a PNG, JPEG, WebP or SVG" in page.inner_text("#e-logo")
    assert page.locator(".site-header .brand img").count() == 1
    slug = f"idp-{uuid.uuid4().hex[:4]}"
    page.fill("#f-provider_name", "Test IdP")
    page.fill("#f-slug", slug)
    page.fill("#f-issuer", "https://idp.test.example/realms/main")
    page.fill("#f-client_id", "lmsd-portal")
    page.fill("#f-client_secret", "idp-client-secret-value")
    with page.expect_navigation():
        page.click("button:has-text('Add provider')")
    assert "The sign-in provider is added." in page.inner_text(".admin-status")
    provider_row = page.locator("tr", has_text="Test IdP")
    assert slug in provider_row.inner_text() and "set" in provider_row.inner_text()
    assert "idp-client-secret-value" not in page.content()
    assert_accessible(page, "admin campus settings, saved")
    browser_page.screenshot("portal-admin-campus")

    # a visitor's sign-in page: the new name, the logo and the provider
    visitor = page.context.browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[union-attr]
    try:
        anonymous = visitor.new_page()
        visitor_log = watch(anonymous)
        anonymous.goto(f"{base}/login")
        assert anonymous.inner_text(".site-header .brand span") == "Browser Test University"
        anonymous.wait_for_function("() => { const i = document.querySelector('.site-header .brand img'); return i && i.complete && i.naturalWidth === 32; }")
        link = anonymous.locator("a", has_text="Sign in with Test IdP")
        assert link.get_attribute("href", timeout=5000) is not None and f"/{slug}/login" in (link.get_attribute("href") or "")
        assert_accessible(anonymous, "sign-in page with logo and provider")
        screenshot(anonymous, "portal-admin-sign-in-branded")
        visitor_log.assert_clean()
    finally:
        visitor.close()

    # health: every component of the running campus, from the supervisor's records and probes
    page.click(".admin-nav a[href='/admin/health']")
    page.wait_for_url(f"{base}/admin/health")
    assert page.inner_text("h1") == "Health"
    assert "The campus is healthy." in page.inner_text("main")
    for name in ("postgres", "nats", "api-0", "relay", "projector-0", "gateway"):
        row = page.locator(f"tr[data-component='{name}']")
        assert row.locator("td.state").inner_text() == "running", name
        assert row.locator("td.probe").inner_text().startswith("up"), name
    events = page.inner_text(".events-line")
    assert re.search(r"Relay backlog \d+", events) and "dead letters: 0" in events
    assert "not running under the supervisor" not in page.inner_text("main")
    assert_accessible(page, "admin health")
    browser_page.screenshot("portal-admin-health")
    with page.expect_navigation():
        page.click("main a:has-text('Refresh')")
    assert page.locator("tr[data-component='postgres'] td.state").inner_text() == "running"
    browser_page.log.assert_clean(allow=ALLOWED)
