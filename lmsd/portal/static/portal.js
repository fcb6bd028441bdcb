// The portal's shared script (loaded deferred on every page; no inline script anywhere).
// Page-specific behaviour lives in its own file, included by that page's template.
"use strict";
(() => {
  // An error summary takes the focus so keyboard and screen-reader users land on it.
  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
})();

// The installable app and offline reading (lmsd/portal/pwa.py, the worker is /sw.js):
// - registers the service worker;
// - "Save for offline reading" buttons (button.save-offline[data-lesson-url]) keep a copy of the
//   lesson page and of the files it uses in the "saved lessons" cache, which the worker answers
//   from when there is no connection; the offline page (/offline) lists them;
// - a status banner says when the browser is offline;
// - completing a lesson (form.complete-lesson) without a connection queues the completion in
//   IndexedDB ({id, lesson_id, occurred_at}: no token is stored; the session stays in its
//   HttpOnly cookie and the CSRF token is read from the page when sending) and sends the queue
//   to /offline/progress when back online and on every page load; an entry is deleted only once
//   the server has it (the server records each id once, so sending again is harmless);
// - signing out empties the saved lessons (a shared computer keeps nothing of the person).
(() => {
  const SAVED = "lmsd-saved-lessons";
  const DB_NAME = "lmsd-offline";
  const STORE = "progress";
  const MAX_BATCH = 100;
  const NOT_SAVED = ["/api/", "/media/", "/login", "/logout"];
  const lang = document.documentElement.lang || "en";
  const canCache = "caches" in window && "serviceWorker" in navigator && window.isSecureContext;
  const ENGLISH = {
    offline: "You are offline — saved lessons are available",
    savedLessons: "Saved lessons",
    saved: "Saved for offline reading",
    remove: "Remove from offline",
    removed: "Removed from offline reading",
    saveFailed: "This lesson could not be saved for offline reading.",
    queued: "Saved; it will be sent when you are back online",
    sent: "Your progress made offline has been recorded.",
  };
  let strings = null;
  // the translated strings (the worker caches them, so they are there offline too)
  const text = () => {
    strings ||= fetch(`/offline/messages.json?lang=${encodeURIComponent(lang)}`, { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : {}))
      .catch(() => ({}))
      .then((found) => ({ ...ENGLISH, ...found }));
    return strings;
  };
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  // offline: the browser says so, or this page is a copy the worker answered from its cache
  // (navigator.onLine is not always right: a network that answers nothing looks online)
  let offline = !navigator.onLine || document.documentElement.hasAttribute("data-offline-copy");
  const PROBE_MS = 5000;
  let probe = null;

  // -- the service worker ---------------------------------------------------------------------
  if (canCache) {
    // offline, the worker is there already (or cannot be fetched): no update check then
    (offline ? Promise.resolve() : navigator.serviceWorker.register("/sw.js", { scope: "/" }))
      .then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        // the worker keeps the offline page in the language of the pages the learner reads
        if (registration.active && !offline) registration.active.postMessage({ type: "lang", lang });
      })
      .catch((error) => console.warn("service worker not registered:", error));
  }

  // -- the offline banner ---------------------------------------------------------------------
  const main = document.querySelector("main");
  const live = document.createElement("div");
  live.className = "offline-status";
  live.setAttribute("role", "status");
  if (main) main.prepend(live);

  async function showConnection() {
    const s = await text();
    if (!offline) {
      live.querySelector(".offline-banner")?.remove();
      return;
    }
    if (live.querySelector(".offline-banner")) return;
    const p = document.createElement("p");
    p.className = "notice offline-banner";
    p.append(s.offline);
    if (location.pathname !== "/offline") {
      const a = document.createElement("a");
      a.href = "/offline";
      a.textContent = s.savedLessons;
      p.append(" ", a);
    }
    live.prepend(p);
  }

  // the connection went or came back: the banner, a check every few seconds while offline, and
  // the queue is sent when it is back
  function setOffline(value) {
    const back = offline && !value;
    offline = value;
    showConnection();
    if (offline && probe === null) probe = setInterval(checkConnection, PROBE_MS);
    if (!offline && probe !== null) {
      clearInterval(probe);
      probe = null;
    }
    if (back) flush();
  }

  async function checkConnection() {
    try {
      await fetch("/offline/ping", { cache: "no-store", credentials: "omit" });
      setOffline(false);
    } catch {
      // still offline
    }
  }

  function say(where, message) {
    where.textContent = message;
  }

  // a status line after an element, for what its button did (a span inside a paragraph)
  function statusAfter(element) {
    const next = element.nextElementSibling;
    if (next && next.classList.contains("pwa-status")) return next;
    const inline = element.parentElement && element.parentElement.tagName === "P";
    const status = document.createElement(inline ? "span" : "p");
    status.className = "meta pwa-status";
    status.setAttribute("role", "status");
    if (inline) element.after(" ", status);
    else element.after(status);
    return status;
  }

  // -- saved lessons ----------------------------------------------------------------------------
  const sameSite = (url) => url.origin === location.origin && !NOT_SAVED.some((p) => url.pathname.startsWith(p));
  const isPage = (response) => (response.headers.get("content-type") || "").startsWith("text/html");

  // the files a page uses (styles, scripts, images) on this site
  function assetsOf(html, base) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const found = new Set();
    const selector = "link[rel~=stylesheet][href], link[rel~=icon][href], script[src], img[src], source[src], track[src], video[poster]";
    for (const element of doc.querySelectorAll(selector)) {
      const raw = element.getAttribute("href") || element.getAttribute("src") || element.getAttribute("poster");
      const url = new URL(raw, base);
      url.hash = "";
      if (sameSite(url)) found.add(url.href);
    }
    return [...found];
  }

  async function saveLesson(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok || response.redirected || !isPage(response)) throw new Error(`${url}: HTTP ${response.status}`);
    const html = await response.clone().text();
    const cache = await caches.open(SAVED);
    // the files first, each on its own (one missing image does not stop the saving), then the page
    await Promise.allSettled(assetsOf(html, url).map((asset) => cache.add(asset)));
    await cache.put(url, response);
  }

  async function savedPages(cache) {
    const pages = [];
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      if (response && isPage(response)) pages.push({ url: request.url, html: await response.text() });
    }
    return pages;
  }

  async function removeLesson(url) {
    const cache = await caches.open(SAVED);
    await cache.delete(url);
    // files no other saved page uses go too
    const used = new Set();
    for (const page of await savedPages(cache)) {
      used.add(page.url);
      for (const asset of assetsOf(page.html, page.url)) used.add(asset);
    }
    for (const request of await cache.keys()) {
      if (!used.has(request.url)) await cache.delete(request);
    }
  }

  async function isSaved(url) {
    return (await caches.has(SAVED)) && Boolean(await (await caches.open(SAVED)).match(url));
  }

  function setUpSaveButton(button) {
    const url = new URL(button.dataset.lessonUrl, location.href);
    url.hash = "";
    if (!sameSite(url)) return;
    const label = button.textContent.trim();
    const status = statusAfter(button);
    const show = async () => {
      const saved = await isSaved(url.href);
      button.dataset.saved = saved ? "true" : "false";
      button.textContent = saved ? (await text()).remove : label;
    };
    button.addEventListener("click", async () => {
      const s = await text();
      button.disabled = true;
      try {
        if (button.dataset.saved === "true") {
          await removeLesson(url.href);
          say(status, s.removed);
        } else {
          await saveLesson(url.href);
          say(status, s.saved);
        }
      } catch (error) {
        console.warn("offline reading:", error);
        say(status, s.saveFailed);
      } finally {
        button.disabled = false;
        await show();
      }
    });
    show().then(() => { button.hidden = false; });
  }

  async function listSavedLessons(list) {
    const empty = document.querySelector("[data-saved-empty]");
    if (!(await caches.has(SAVED))) return;
    const pages = await savedPages(await caches.open(SAVED));
    for (const page of pages) {
      const doc = new DOMParser().parseFromString(page.html, "text/html");
      const heading = doc.querySelector("main h1") || doc.querySelector("h1");
      const url = new URL(page.url);
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = url.pathname + url.search;
      a.textContent = (heading ? heading.textContent : doc.title).trim() || url.pathname;
      li.append(a);
      list.append(li);
    }
    if (pages.length) {
      list.hidden = false;
      if (empty) empty.hidden = true;
    }
  }

  // -- the queue of completions made offline --------------------------------------------------
  function openQueue() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function inQueue(mode, work) {
    const db = await openQueue();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const result = work(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  const queued = async () => ((await inQueue("readonly", (store) => store.getAll())) || [])
    .sort((a, b) => a.occurred_at.localeCompare(b.occurred_at));
  const dequeue = (ids) => inQueue("readwrite", (store) => { for (const id of ids) store.delete(id); });
  const enqueue = (entry) => inQueue("readwrite", (store) => { store.put(entry); });

  let sending = null;
  // send the queue; resolves when done (or when it must wait: offline, no session, server down)
  function flush() {
    sending ||= (async () => {
      if (offline || !csrf() || !("indexedDB" in window)) return;
      const run = () => sendQueue();
      if (navigator.locks) await navigator.locks.request("lmsd-offline-progress", run);
      else await run();
    })().catch((error) => console.warn("offline progress not sent:", error)).finally(() => { sending = null; });
    return sending;
  }

  async function sendQueue() {
    let sentAny = false;
    for (let round = 0; round < 1000; round += 1) {
      const entries = (await queued()).slice(0, MAX_BATCH);
      if (!entries.length) break;
      let response;
      try {
        response = await fetch("/offline/progress", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({
            events: entries.map((e) => ({ id: e.id, lesson_id: e.lesson_id, type: "lesson_completed", occurred_at: e.occurred_at })),
          }),
        });
      } catch {
        setOffline(true); // no network after all: sent when it is back
        return;
      }
      if (response.ok) {
        await dequeue(entries.map((e) => e.id));
        sentAny = true;
        continue;
      }
      // 5xx: later; 401/403: no session or a stale page token (the next page has a fresh one)
      if (response.status >= 500 || [401, 403, 408, 429].includes(response.status)) return;
      const problem = await response.json().catch(() => ({}));
      if (problem.event_id && entries.some((e) => e.id === problem.event_id)) {
        // that one event is refused for good (e.g. no longer enrolled): drop it, send the rest
        console.warn(`offline progress ${problem.event_id} refused: ${problem.detail || response.status}`);
        await dequeue([problem.event_id]);
        continue;
      }
      console.warn(`offline progress refused: ${problem.detail || response.status}`);
      return;
    }
    if (sentAny) {
      const s = await text();
      const p = document.createElement("p");
      p.className = "notice";
      p.textContent = s.sent;
      live.append(p);
    }
  }

  async function queueCompletion(form, submitter) {
    const s = await text();
    await enqueue({ id: crypto.randomUUID(), lesson_id: form.dataset.lessonId, occurred_at: new Date().toISOString() });
    if (submitter) submitter.disabled = true;
    say(statusAfter(form), s.queued);
  }

  async function completeLesson(event, form) {
    event.preventDefault();
    const submitter = event.submitter || form.querySelector("[type=submit]");
    if (offline) {
      await queueCompletion(form, submitter);
      return;
    }
    if (submitter) submitter.disabled = true;
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(form)),
      });
    } catch {
      await queueCompletion(form, submitter); // the connection failed on the way
      setOffline(true);
      return;
    }
    if (response.redirected) location.assign(response.url);
    else if (response.ok) location.reload();
    else HTMLFormElement.prototype.submit.call(form); // refused (nothing recorded): show the server's page
  }

  async function signOut(event, form) {
    event.preventDefault();
    // what this person did offline goes first; then nothing of theirs stays on this device
    await Promise.race([flush(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    try {
      const left = "indexedDB" in window ? await queued() : [];
      if (left.length) {
        console.warn(`signing out: ${left.length} offline completion(s) could not be sent and are discarded`);
        await dequeue(left.map((e) => e.id));
      }
      if (canCache) await caches.delete(SAVED);
      navigator.serviceWorker?.controller?.postMessage({ type: "signed-out" });
    } catch (error) {
      console.warn("signing out:", error);
    }
    HTMLFormElement.prototype.submit.call(form);
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.matches("form.complete-lesson[data-lesson-id]") && "indexedDB" in window) completeLesson(event, form);
    else if (form.getAttribute("action") === "/logout" && !offline) signOut(event, form); // offline: it fails, nothing is lost
  });

  window.addEventListener("online", () => setOffline(false));
  window.addEventListener("offline", () => setOffline(true));
  if (offline) setOffline(true);

  if (canCache) {
    for (const button of document.querySelectorAll("button.save-offline[data-lesson-url]")) setUpSaveButton(button);
    const list = document.querySelector("[data-saved-lessons]");
    if (list) listSavedLessons(list).catch((error) => console.warn("saved lessons:", error));
  }
  flush();

  // for tests and for other scripts: how many completions wait to be sent, and send them now
  window.lmsdOffline = { pending: async () => (await queued()).length, flush };
})();
