// Lecture uploads on a course's Videos page (/teach/courses/<id>/videos).
//
// tus 1.0 through tus-js-client (vendor/tus.min.js, global `tus`) against the API's
// /api/v1/uploads, authenticated by the session cookie; every request carries the page's CSRF
// token. The upload's URL is remembered in localStorage (tus "fingerprint": name, type, size,
// date of the file, endpoint), so after a reload or a lost connection choosing the same file
// continues from the server's offset. Unfinished uploads of this course are listed on load with
// how far the server got. When the last byte is in, the video's transcoding is followed by
// polling GET /api/v1/videos/<id> every 2 s until it is ready or failed. Status text goes to one
// polite live region, every 10 % at most. All visible strings come translated from data-msg-*.
"use strict";
(() => {
  const form = document.querySelector("form[data-upload]");
  if (!form) return;
  const $ = (selector, root = document) => root.querySelector(selector);
  const csrf = ($('meta[name="csrf-token"]') || {}).content || "";
  const lang = document.documentElement.lang || "en";
  const percentFormat = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 });
  const pct = (fraction) => percentFormat.format(Math.floor(Math.min(1, Math.max(0, fraction)) * 100) / 100);
  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
  const msg = (name, values = {}) => fill(form.dataset[name] || "", values);
  const POLL_MS = 2000;
  const TUS = { "Tus-Resumable": "1.0.0" };

  const courseId = form.dataset.courseId;
  // absolute, as tus-js-client resolves it: the fingerprint of a file includes the endpoint
  const endpoint = new URL(form.dataset.endpoint, window.location.href).href;
  const fileInput = $('input[type="file"]', form);
  const titleInput = $('input[name="title"]', form);
  const button = $('button[type="submit"]', form);
  const live = $("[data-upload-status]");
  const bar = $("[data-upload-progress]");
  const barElement = $("progress", bar);
  const barText = $("[data-upload-percent]", bar);
  const remembered = $("[data-upload-remembered]");
  const rememberedList = $("ul", remembered);
  const videoBox = $("[data-upload-video]");
  const addForm = $('form[action$="/video-lessons"]');

  const announce = (text) => {
    live.textContent = text;
  };

  if (!window.tus || !window.tus.isSupported) {
    announce(msg("msgUnsupported"));
    return;
  }
  for (const note of document.querySelectorAll("[data-upload-nojs]")) note.hidden = true;
  button.disabled = false;

  const storage = window.tus.defaultOptions.urlStorage;
  const headers = { "X-CSRF-Token": csrf };
  let upload = null;
  let announcedStep = -1;

  // -- what the server has of an upload -------------------------------------------------------------
  async function serverState(url) {
    const response = await fetch(url, { method: "HEAD", headers: { ...TUS }, credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return { gone: [403, 404, 410].includes(response.status), offset: 0, length: 0 };
    return {
      gone: false,
      offset: Number(response.headers.get("Upload-Offset")) || 0,
      length: Number(response.headers.get("Upload-Length")) || 0,
    };
  }

  const ofThisCourse = (stored) => stored.uploadUrl && stored.metadata && stored.metadata.course_id === courseId;

  // -- unfinished uploads remembered by this browser ---------------------------------------------------
  async function showRemembered() {
    const found = (await storage.findAllUploads()).filter(ofThisCourse);
    const items = [];
    for (const stored of found) {
      if (upload && upload.url === stored.uploadUrl) continue; // the one going on now
      let state;
      try {
        state = await serverState(stored.uploadUrl);
      } catch (_error) {
        continue; // offline: try again on the next visit
      }
      if (state.gone) {
        await storage.removeUpload(stored.urlStorageKey);
        continue;
      }
      if (!state.length || state.offset >= state.length) continue;
      const name = stored.metadata.filename || "";
      const item = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = msg("msgRemembered", { percent: pct(state.offset / state.length), file: name });
      const discard = document.createElement("button");
      discard.type = "button";
      discard.className = "link";
      discard.textContent = msg("msgDiscard", { file: name });
      discard.addEventListener("click", async () => {
        try {
          await window.tus.Upload.terminate(stored.uploadUrl, { headers });
        } catch (_error) {
          // already gone on the server: forgetting it here is all that is left
        }
        await storage.removeUpload(stored.urlStorageKey);
        item.remove();
        remembered.hidden = rememberedList.children.length === 0;
      });
      item.append(text, " ", discard);
      items.push(item);
    }
    rememberedList.replaceChildren(...items);
    remembered.hidden = items.length === 0;
  }

  // -- choosing a file: say whether it continues an unfinished upload ----------------------------------
  async function previousOf(file) {
    const probe = new window.tus.Upload(file, { endpoint });
    const found = (await probe.findPreviousUploads()).filter(ofThisCourse);
    found.sort((a, b) => new Date(b.creationTime) - new Date(a.creationTime));
    return found;
  }

  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    if (!file || upload) return;
    const found = await previousOf(file);
    if (!found.length) return;
    try {
      const state = await serverState(found[0].uploadUrl);
      if (!state.gone && state.length) announce(msg("msgFound", { percent: pct(state.offset / state.length), file: file.name }));
    } catch (_error) {
      // offline: the upload says so when it starts
    }
  });

  // -- the upload -----------------------------------------------------------------------------------
  function progress(sent, total, file) {
    const fraction = total ? sent / total : 0;
    barElement.value = Math.floor(fraction * 100);
    barText.textContent = pct(fraction);
    const step = Math.floor(fraction * 10);
    if (step > announcedStep) {
      announcedStep = step;
      if (step > 0 && step < 10) announce(msg("msgProgress", { percent: pct(step / 10), file: file.name }));
    }
  }

  function reasonOf(error) {
    const response = error && error.originalResponse;
    if (response) {
      try {
        const body = JSON.parse(response.getBody());
        if (body && (body.detail || body.title)) return `${body.detail || body.title}.`;
      } catch (_error) {
        // not problem+json: the error's own message follows
      }
    }
    return error && error.message ? `${error.message.split("\n")[0]}.` : "";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (upload) return;
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      announce(msg("msgNofile"));
      fileInput.focus();
      return;
    }
    button.disabled = true;
    const metadata = {
      course_id: courseId,
      filename: file.name,
      filetype: file.type || "application/octet-stream",
    };
    const title = titleInput.value.trim();
    if (title) metadata.title = title;
    const current = new window.tus.Upload(file, {
      endpoint,
      chunkSize: Number(form.dataset.chunkSize) || 5 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      headers,
      metadata,
      onProgress: (sent, total) => progress(sent, total, file),
      onSuccess: (payload) => finished(current, payload, file),
      onError: (error) => failed(error, file),
    });
    upload = current;
    announcedStep = -1;
    bar.hidden = false;
    barElement.value = 0;
    barText.textContent = pct(0);
    const previous = await previousOf(file);
    if (previous.length) {
      current.resumeFromPreviousUpload(previous[0]);
      announce(msg("msgResuming", { file: file.name }));
    } else {
      announce(msg("msgStarted", { file: file.name }));
    }
    current.start();
  });

  function finished(current, payload, file) {
    const response = payload && payload.lastResponse;
    const videoId = (response && response.getHeader("Lmsd-Video-Id")) || String(current.url).split("/").pop();
    upload = null;
    button.disabled = false;
    fileInput.value = "";
    barElement.value = 100;
    barText.textContent = pct(1);
    announce(msg("msgDone", { file: file.name }));
    showRemembered();
    follow(videoId, file.name, true);
  }

  function failed(error, file) {
    upload = null;
    button.disabled = false;
    announce(msg("msgFailed", { file: file.name, reason: reasonOf(error) }));
    showRemembered();
  }

  // -- transcoding ----------------------------------------------------------------------------------
  function statusLabel(status) {
    const key = `status${status.charAt(0).toUpperCase()}${status.slice(1)}`;
    return form.dataset[key] || status;
  }

  // Poll one video until it is ready or failed; `view` is the element to update (a table row or
  // the box of the video just uploaded).
  function follow(videoId, name, isNew) {
    const view = isNew ? videoBox : document.querySelector(`[data-video-poll="${CSS.escape(videoId)}"]`);
    if (!view) return;
    const label = $("[data-video-label]", view);
    const meter = $("[data-video-progress]", view);
    const percent = $("[data-video-percent]", view);
    let step = -1;
    if (isNew) {
      $("[data-video-name]", view).textContent = name;
      $("[data-video-next]", view).hidden = true;
      view.hidden = false;
    }
    const show = (video) => {
      if (isNew && video.title) $("[data-video-name]", view).textContent = video.title;
      label.textContent = statusLabel(video.status);
      const fraction = (video.status === "ready" ? 100 : video.progress || 0) / 100;
      if (meter) {
        meter.value = Math.round(fraction * 100);
        meter.parentElement.hidden = video.status === "ready" || video.status === "failed";
      }
      if (percent) percent.textContent = pct(fraction);
      if (!isNew) return;
      const now = Math.floor(fraction * 10);
      if (video.status === "transcoding" && now > step && now < 10) {
        step = now;
        announce(msg("msgTranscoding", { file: name, percent: pct(now / 10) }));
      }
    };
    const poll = async () => {
      let video = null;
      try {
        const response = await fetch(`/api/v1/videos/${encodeURIComponent(videoId)}`, {
          credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
        });
        if (response.ok) video = await response.json();
      } catch (_error) {
        video = null; // a lost connection: ask again
      }
      if (video) {
        show(video);
        if (video.status === "ready" || video.status === "failed") {
          if (isNew) done(video, name);
          return;
        }
      }
      window.setTimeout(poll, POLL_MS);
    };
    poll();
  }

  function done(video, name) {
    if (video.status === "failed") {
      announce(msg("msgVideoFailed", { file: name, reason: video.error || "" }));
      return;
    }
    announce(msg("msgReady", { file: name }));
    $("[data-video-next]", videoBox).hidden = false;
    const select = addForm && addForm.querySelector('select[name="video"]');
    if (select) {
      let option = Array.from(select.options).find((o) => o.value === video.id);
      if (!option) {
        option = new Option(video.title, video.id);
        select.add(option);
      }
      select.value = video.id;
    }
  }

  // -- on load ---------------------------------------------------------------------------------------
  showRemembered().catch(() => {
    remembered.hidden = true;
  });
  for (const row of document.querySelectorAll("[data-video-poll]")) follow(row.dataset.videoPoll, "", false);
})();
