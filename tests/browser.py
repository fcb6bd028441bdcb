"""Real-browser tests: Debian's Chromium driven by Playwright, headless, nothing downloaded.

Playwright's own browser builds cannot be fetched here, so the browser is the system one:
``/usr/bin/chromium`` or ``$LMSD_TEST_CHROMIUM``. A missing browser fails the test with the
reason; it never skips, so a green run means the browser tests ran.

Use the ``browser_page`` fixture (load this module as a plugin in the test module)::

    from tests.browser import BrowserPage

    pytest_plugins = ["tests.browser"]

    def test_x(browser_page: BrowserPage) -> None:
        browser_page.page.goto(url)
        browser_page.screenshot("x")          # test-artifacts/screenshots/x.png
        browser_page.log.assert_clean()       # no console error, page error or CSP violation

Each page records console errors, uncaught page errors and CSP violations (from the
``securitypolicyviolation`` event, which also names the blocked URL and directive).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from tests.conftest import running_campus
from tests.support import Campus

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--autoplay-policy=no-user-gesture-required",  # video.play() without a click
    "--mute-audio",
    "--disable-dev-shm-usage",  # containers have a small /dev/shm
]

# Runs in every frame before the page's own scripts; not subject to the page's CSP.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__lmsdReportCsp(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}` +
    (e.sourceFile ? ` (${e.sourceFile}:${e.lineNumber})` : ""));
});
"""


def chromium_path() -> str:
    """The Chromium to drive; raises with what to do when there is none."""
    path = os.environ.get("LMSD_TEST_CHROMIUM", DEFAULT_CHROMIUM)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"no Chromium at {path}: install Debian's (apt-get install chromium) "
            "or point LMSD_TEST_CHROMIUM at a Chromium/Chrome executable"
        )
    return path


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=ARGS)


@dataclass
class PageLog:
    """What went wrong in a page, as the browser reported it."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def problems(self, allow: Iterable[str] = ()) -> list[str]:
        """Every entry not matched by one of the ``allow`` regular expressions."""
        patterns = [re.compile(p) for p in allow]
        found = (
            [f"console: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"CSP: {m}" for m in self.csp_violations]
        )
        return [m for m in found if not any(p.search(m) for p in patterns)]

    def assert_clean(self, allow: Iterable[str] = ()) -> None:
        problems = self.problems(allow)
        assert not problems, "the browser reported:\n" + "\n".join(problems)


def watch(page: Page) -> PageLog:
    """Start recording ``page``'s console errors, page errors and CSP violations."""
    log = PageLog()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            log.console_errors.append(f"{message.text} [{where}]" if where else message.text)
            if "Content Security Policy" in message.text:
                log.csp_violations.append(message.text)

    page.on("console", on_console)

    def on_csp(text: str) -> None:
        log.csp_violations.append(text)

    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.expose_function("__lmsdReportCsp", on_csp)
    page.add_init_script(_CSP_LISTENER)
    return log


def sign_in(page: Page, base: str, email: str, password: str, next_path: str = "/") -> None:
    """Sign in through the portal's form, as a person would; waits for the page it lands on."""
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    assert "/login" not in page.url, f"sign-in failed: still on {page.url}"


AXE = ROOT / "lmsd" / "portal" / "web" / "node_modules" / "axe-core" / "axe.min.js"


def assert_accessible(page: Page, name: str = "", impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core (npm, a devDependency of lmsd/portal/web) on the page as it is now, for WCAG
    2.0/2.1 A and AA rules; fail on any violation of the given impacts. The script is evaluated
    through the DevTools protocol, so the page's CSP does not block it. Returns the violations of
    lower impact, for the test to report if it likes."""
    if not AXE.is_file():
        raise AssertionError(f"axe-core is missing at {AXE}: run scripts/bootstrap (npm ci in lmsd/portal/web)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            // <video> is left out: axe copies the elements it inspects, and a copy of the player's
            // <video> loads the object URL hls.js already released (a console error); the player's
            // controls and captions are in the scan all the same (they are not inside <video>)
            const r = await axe.run({exclude: [["video"]]}, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + ": " + n.failureSummary)}));
        }"""
    )
    bad = [v for v in result if v["impact"] in impacts]
    where = name or page.url
    assert not bad, f"accessibility violations on {where}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in bad
    )
    return [f"{v['id']} ({v['impact']})" for v in result if v not in bad]


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of the page as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class BrowserPage:
    context: BrowserContext
    page: Page
    log: PageLog
    name: str

    def screenshot(self, name: str | None = None) -> Path:
        return screenshot(self.page, name or self.name)


@pytest.fixture(scope="session")
def browser_campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """One running campus per test worker for the browser journeys that only add to it (each
    makes its own people, course and video): installed once, not once per module. The admin's
    journey, which renames the campus and adds a sign-in provider, keeps a campus of its own."""
    yield from running_campus(tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (the sync API must not outlive it into async tests)."""
    try:
        chromium_path()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    with sync_playwright() as playwright:
        instance = launch(playwright)
        yield instance
        instance.close()


@pytest.fixture
def browser_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserPage]:
    """A page in a fresh context (own cookies and cache); its last state is kept as a screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    handle = BrowserPage(context=context, page=page, log=watch(page), name=request.node.name)
    try:
        yield handle
    finally:
        try:
            if not page.is_closed() and page.url != "about:blank":
                handle.screenshot(f"{request.node.name}-last")
        finally:
            context.close()
