// The portal's service worker, served at /sw.js by lmsd.portal.pwa, which puts `CONFIG` above
// this line: {version, precache: [urls], offline: "/offline", saved: "<cache name>"}.
//
// - /static/ files (and the favicon and the translated strings of the scripts): cache first,
//   in a cache named after the release; a new release's worker deletes the old caches.
// - page navigations: the network first; without it, the copy the learner saved of that page
//   (the "saved" cache, written by portal.js when they press "Save for offline reading"),
//   else the offline page (precached).
// - nothing else is cached: no API answer, no sign-in page, no POST, no page the learner did
//   not save (a shared computer must not keep what the previous person read).
// - signing out (a POST to /logout) empties the saved pages.
"use strict";

const STATIC = `lmsd-static-${CONFIG.version}`;
const SAVED = CONFIG.saved;
const OFFLINE = CONFIG.offline;
const NEVER = ["/api/", "/media/", "/login", "/logout", "/sw.js"];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(STATIC);
    await cache.addAll(CONFIG.precache);
    await refreshOffline(cache);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("lmsd-") && name !== STATIC && name !== SAVED) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// The offline page is cached without the visitor's session (no name, no token in it), in the
// language of the page that asked; portal.js says which language each page is in.
async function refreshOffline(cache) {
  const response = await fetch(OFFLINE, { headers: { "X-Lmsd-Precache": "1" } });
  if (response.ok) await cache.put(OFFLINE, response);
}

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "lang" && typeof data.lang === "string") {
    event.waitUntil((async () => {
      const cache = await caches.open(STATIC);
      const cached = await cache.match(OFFLINE);
      if (!cached || cached.headers.get("Content-Language") !== data.lang) await refreshOffline(cache);
    })().catch(() => undefined));
  } else if (data.type === "signed-out") {
    event.waitUntil(caches.delete(SAVED));
  }
});

function isStatic(url) {
  return url.pathname.startsWith("/static/") || url.pathname === "/favicon.ico"
    || url.pathname === "/offline/messages.json" || url.pathname === "/manifest.webmanifest";
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    if (url.pathname === "/logout") event.waitUntil(caches.delete(SAVED));
    return;
  }
  if (NEVER.some((prefix) => url.pathname.startsWith(prefix))) return;
  if (request.mode === "navigate") {
    event.respondWith(navigate(event, request));
  } else if (isStatic(url)) {
    event.respondWith(url.pathname === "/manifest.webmanifest" ? networkFirst(request) : cacheFirst(request));
  }
});

async function cacheFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") {
    const cache = await caches.open(STATIC);
    await cache.put(request, response.clone());
  }
  return response;
}

async function networkFirst(request) {
  try {
    const response = await fetch(request);
    if (response.ok) (await caches.open(STATIC)).put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await caches.match(request);
    if (cached) return cached;
    throw error;
  }
}

async function navigate(event, request) {
  const saved = await caches.open(SAVED);
  try {
    const response = await fetch(request);
    // a saved lesson is kept current when it is read online (and only a saved one)
    if (response.ok && !response.redirected && response.type === "basic" && await saved.match(request.url)) {
      event.waitUntil(saved.put(request.url, response.clone()));
    }
    return response;
  } catch (error) {
    const copy = await saved.match(request.url, { ignoreSearch: true }); // ?notice=… is the same page
    if (copy) return markedOffline(copy);
    const offline = await caches.match(OFFLINE);
    if (offline) return markedOffline(offline);
    throw error;
  }
}

// A page answered from the cache says so (<html data-offline-copy>): portal.js shows the
// offline banner and checks for the connection to come back, whatever navigator.onLine says.
async function markedOffline(response) {
  const html = await response.text();
  return new Response(html.replace(/<html\b/i, "<html data-offline-copy"), {
    status: response.status, statusText: response.statusText, headers: new Headers(response.headers),
  });
}
