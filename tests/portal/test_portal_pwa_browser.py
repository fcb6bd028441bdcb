"""The installable portal in Chromium through the running campus: the service worker controls the
pages and Chromium finds the app installable; a learner saves a text lesson for offline reading,
reads it with the network cut, meets the offline page for a page they did not save, marks the
lesson complete offline (queued in IndexedDB), and once back online the completion is sent and
recorded exactly once, with the time it was made offline, even when the queue is sent again."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser

from tests.api import PASSWORD
from tests.browser import ARGS, assert_accessible, chromium_path, sign_in
from tests.learning import Setup, client, setup, wait_progress
from tests.support import Campus

if TYPE_CHECKING:
    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.slow

QUEUE = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("lmsd-offline", 1);
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const all = open.result.transaction("progress").objectStore("progress").getAll();
    all.onsuccess = () => { open.result.close(); resolve(all.result); };
    all.onerror = () => reject(all.error);
  };
})"""
REQUEUE = """(entry) => new Promise((resolve, reject) => {
  const open = indexedDB.open("lmsd-offline", 1);
  open.onsuccess = () => {
    const tx = open.result.transaction("progress", "readwrite");
    tx.objectStore("progress").put(entry);
    tx.oncomplete = () => { open.result.close(); resolve(true); };
    tx.onerror = () => reject(tx.error);
  };
})"""


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run async set-up from this sync test (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _prepare(campus: Campus) -> Setup:
    async with client(campus) as c:
        return await setup(c, learners=1)


async def _completions(campus: Campus, s: Setup, lesson: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The learner's progress once the lesson shows as completed, and the lesson's completion
    statements (one per lesson_completed event: the statement id is the event id)."""
    async with client(campus) as c:
        learner = s.learners[0]
        progress = await wait_progress(
            c, learner, s.enrolments[0],
            lambda p: any(x["lesson_id"] == lesson and x["completed_at"] for x in p["lessons"]),
        )
        r = await c.get(
            "/api/v1/xapi/statements",
            params={"agent": learner.id, "verb": "http://adlnet.gov/expapi/verbs/completed", "limit": 500},
            headers=learner.h,
        )
        assert r.status_code == 200, r.text
        mine = [st for st in r.json()["statements"] if st["object"]["id"].endswith(f"/lessons/{lesson}")]
        return progress, mine


def _statements_settled(campus: Campus, s: Setup, lesson: str, seconds: float = 3.0) -> list[dict[str, Any]]:
    """The completion statements after a pause long enough for a duplicate to have arrived."""
    time.sleep(seconds)
    return list(_run(_completions(campus, s, lesson))[1])


def _installability_errors(browser: Browser, base: str) -> list[dict[str, Any]]:
    """What Chromium says stops it from offering to install the portal (CDP), in a profile that
    is not incognito, once the service worker controls the page."""
    with tempfile.TemporaryDirectory() as profile:
        context = browser.browser_type.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=ARGS,
        )
        try:
            page = context.new_page()
            page.goto(base + "/login")
            page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
            page.reload()
            assert page.evaluate("() => navigator.serviceWorker.controller !== null")
            cdp = context.new_cdp_session(page)
            deadline = time.monotonic() + 15
            while True:  # the manifest and the icons are fetched in the background
                errors: list[dict[str, Any]] = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
                if not errors or time.monotonic() > deadline:
                    return errors
                time.sleep(0.5)
        finally:
            context.close()


def test_offline_reading_and_progress_sent_once_when_back_online(
    browser_campus: Campus, browser: Browser, browser_page: BrowserPage
) -> None:
    s = _run(_prepare(browser_campus))
    learner, lesson, other = s.learners[0], s.lessons["text"], s.lessons["text2"]
    page, context, base = browser_page.page, browser_page.context, browser_campus.url.rstrip("/")
    sign_in(page, base, learner.email, PASSWORD, f"/lessons/{lesson}")
    title = page.inner_text("main h1")
    assert title == "Intro"

    # the worker installs and, after a reload, controls the page; Chromium finds the app installable
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    assert page.evaluate("() => navigator.serviceWorker.controller !== null")
    cdp = context.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"].endswith("/manifest.webmanifest") and not manifest["errors"], manifest
    # a test context is off the record, where Chromium never offers to install ("in-incognito"):
    # the whole check runs in a browser with a profile of its own
    assert _installability_errors(browser, base) == []

    # save the lesson for offline reading: the button says so, and offers to remove it
    button = page.locator("button.save-offline")
    button.wait_for(state="visible")
    button.click()
    page.wait_for_function("() => document.querySelector('.pwa-status')?.textContent === 'Saved for offline reading'")
    assert page.locator(".pwa-status").get_attribute("role") == "status"
    page.wait_for_function("() => document.querySelector('button.save-offline').textContent === 'Remove from offline'")

    # the network goes: the banner says so, the saved lesson still opens (from the cache)
    context.set_offline(True)
    page.wait_for_selector(".offline-banner")
    response = page.goto(f"{base}/lessons/{lesson}")
    assert response is not None and response.from_service_worker
    assert page.inner_text("main h1") == title
    banner = page.locator(".offline-status[role=status] .offline-banner")
    assert "You are offline — saved lessons are available" in banner.inner_text()
    assert_accessible(page, "saved lesson, offline")
    browser_page.screenshot("portal-pwa-saved-lesson")

    # a page that was not saved: the offline page, listing what was
    for path in (f"/lessons/{other}", "/my"):
        response = page.goto(base + path)
        assert response is not None and response.from_service_worker
        assert page.inner_text("main h1") == "Offline reading", path
    page.wait_for_selector("[data-saved-lessons] a")
    links = page.locator("[data-saved-lessons] a")
    assert links.count() == 1 and links.inner_text() == title and links.get_attribute("href") == f"/lessons/{lesson}"
    assert page.locator("[data-saved-empty]").is_hidden()
    # the offline page cached by the worker holds no session: no token, no sign-out form
    assert page.get_attribute('meta[name="csrf-token"]', "content") == ""
    assert_accessible(page, "offline page")
    browser_page.screenshot("portal-pwa-offline")

    # complete the lesson offline: queued, with the time it was done
    links.click()
    page.wait_for_selector("form.complete-lesson")
    before = datetime.now().astimezone()
    page.click("form.complete-lesson button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('form.complete-lesson + .pwa-status')?.textContent"
        " === 'Saved; it will be sent when you are back online'"
    )
    queued = page.evaluate(QUEUE)
    assert len(queued) == 1 and queued[0]["lesson_id"] == lesson and set(queued[0]) == {"id", "lesson_id", "occurred_at"}
    assert page.evaluate("() => window.lmsdOffline.pending()") == 1
    time.sleep(1.5)  # so that the offline time and the recording time differ visibly

    # back online: the queue is sent and emptied; the lesson shows as completed
    context.set_offline(False)
    page.wait_for_function("() => window.lmsdOffline.pending().then((n) => n === 0)", timeout=30_000)
    page.wait_for_selector(".offline-status .notice:not(.offline-banner)")
    assert page.locator(".offline-banner").count() == 0
    progress, statements = _run(_completions(browser_campus, s, lesson))
    assert progress["lessons_completed"] >= 1
    assert [st["id"] for st in statements] == [queued[0]["id"]]
    done_at = datetime.fromisoformat(statements[0]["timestamp"].replace("Z", "+00:00"))
    stored = datetime.fromisoformat(statements[0]["stored"].replace("Z", "+00:00"))
    assert done_at == datetime.fromisoformat(queued[0]["occurred_at"].replace("Z", "+00:00"))
    assert before.timestamp() - 5 <= done_at.timestamp() < stored.timestamp() - 1  # the offline time, kept

    # the answer could have been lost: the same entry sent again is not recorded twice
    page.evaluate(REQUEUE, queued[0])
    page.evaluate("() => window.lmsdOffline.flush()")
    assert page.evaluate("() => window.lmsdOffline.pending()") == 0
    page.reload()  # and every page load sends the (now empty) queue
    assert [st["id"] for st in _statements_settled(browser_campus, s, lesson)] == [queued[0]["id"]]

    # signing out leaves nothing of the learner on the device
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url("**/login")
    assert not page.evaluate("() => caches.has('lmsd-saved-lessons')")

    # nothing to forgive: offline, every request of the pages was answered by the worker
    browser_page.log.assert_clean()
