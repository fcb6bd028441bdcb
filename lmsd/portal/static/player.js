// lmsd video player. Loaded as a file (the pages' CSP has no 'unsafe-inline' for scripts), after
// vendor/hls.min.js, both with `defer`. It enhances every
//   <video class="lmsd-player" data-src="MASTER.m3u8" data-captions="on|off" data-lang="en"
//          data-progress-url="..." data-csrf="..." [data-progress-interval="15"]>
// with HLS playback (hls.js over Media Source Extensions, or the browser's own HLS when there is
// no MSE), a quality menu, a captions toggle and reporting of the watched ranges, and every
//   <div class="lmsd-transcoding" data-status-url="..." [data-poll-interval="3"]>
// with a progress bar that follows the transcoding and reloads the page once the video is ready.
// Only window.lmsdPlayers is exposed (for tests and the browser console).
(() => {
  "use strict";

  const HLS_TYPE = "application/vnd.apple.mpegurl";
  const players = [];
  let counter = 0;

  const round = (x) => Math.round(x * 1000) / 1000;

  // The page's translations of the player's strings (data-i18n, JSON, written by the server in
  // the page's language); a string without one stays English. "%s" is filled in by tr(s, x).
  let messages = {};
  try {
    const holder = document.querySelector("[data-i18n]");
    if (holder) messages = JSON.parse(holder.getAttribute("data-i18n")) || {};
  } catch (_) {
    messages = {};
  }
  const tr = (text, value) => {
    const out = messages[text] || text;
    return value === undefined ? out : out.replace("%s", value);
  };

  // Sorted, non-overlapping ranges; ranges that touch (within 10 ms) are joined.
  function mergeRanges(ranges) {
    const sorted = ranges
      .filter((r) => Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[1] > r[0])
      .map((r) => [r[0], r[1]])
      .sort((a, b) => a[0] - b[0]);
    const out = [];
    for (const r of sorted) {
      const last = out[out.length - 1];
      if (last && r[0] <= last[1] + 0.01) last[1] = Math.max(last[1], r[1]);
      else out.push(r);
    }
    return out;
  }

  function element(tag, attrs, text) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // Watched ranges: the range being played grows on `timeupdate`; a seek, a pause or a jump
  // closes it. Closed ranges wait in `pending` until a POST of them succeeds; a failed POST puts
  // them back, so nothing is lost and nothing is sent twice (except on page exit, see flush).
  class ProgressReporter {
    constructor(video, url, csrf, intervalS) {
      this.video = video;
      this.url = url;
      this.csrf = csrf;
      this.intervalMs = Math.max(1, intervalS) * 1000;
      this.pending = [];
      this.inflight = null;
      this.again = false;
      this.openStart = null;
      this.last = 0;
      this.lastPosition = null;
      this.failures = 0;
      this.timer = null;
      this.retryTimer = null;
      this.posts = 0;

      video.addEventListener("playing", () => this.onPlaying());
      video.addEventListener("timeupdate", () => this.onTimeUpdate());
      video.addEventListener("seeking", () => this.onSeeking());
      video.addEventListener("seeked", () => this.onSeeked());
      video.addEventListener("pause", () => this.onStop());
      video.addEventListener("ended", () => this.onStop());
      window.addEventListener("pagehide", () => this.flush(true));
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "hidden") this.flush(true);
      });
    }

    // Largest step between two timeupdates (fired every 15-250 ms) that is still playback.
    maxStep() {
      return 3 * Math.max(1, this.video.playbackRate || 1);
    }

    open() {
      this.openStart = this.last = this.video.currentTime;
    }

    // Move the open range into pending; it stays open from where it stopped.
    checkpoint() {
      if (this.openStart === null) return;
      if (this.last > this.openStart) this.pending = mergeRanges(this.pending.concat([[this.openStart, this.last]]));
      this.openStart = this.last;
    }

    advance() {
      const t = this.video.currentTime;
      if (t >= this.last && t - this.last <= this.maxStep()) {
        this.last = t;
        return;
      }
      this.checkpoint(); // a jump we were not told about (a seek without events, a stall recovery)
      this.open();
    }

    onPlaying() {
      if (this.openStart === null) this.open();
      if (this.timer === null) this.timer = setInterval(() => this.flush(false), this.intervalMs);
    }

    onTimeUpdate() {
      if (this.openStart !== null && !this.video.seeking) this.advance();
    }

    onSeeking() {
      // currentTime is already the target: the range ends where the last timeupdate left it.
      this.checkpoint();
      this.openStart = null;
    }

    onSeeked() {
      if (!this.video.paused) this.open();
    }

    onStop() {
      if (this.openStart !== null && !this.video.seeking) this.advance();
      this.checkpoint();
      this.openStart = null;
      clearInterval(this.timer);
      this.timer = null;
      this.flush(false);
    }

    payload(segments) {
      const d = this.video.duration;
      return {
        segments: segments.map((r) => [round(r[0]), round(r[1])]),
        position_s: round(this.video.currentTime || 0),
        duration_s: Number.isFinite(d) ? round(d) : null,
      };
    }

    // `final` is page exit: the request must outlive the page (keepalive), and a POST still in
    // flight may be cancelled with the page, so its ranges are sent again (the server merges).
    flush(final) {
      this.checkpoint();
      if (this.inflight !== null && !final) {
        this.again = true;
        return;
      }
      const segments = final && this.inflight !== null ? mergeRanges(this.inflight.concat(this.pending)) : this.pending;
      const body = this.payload(segments);
      // Nothing new to say: no range, and the position moved less than playing between two events.
      if (segments.length === 0 && this.lastPosition !== null && Math.abs(body.position_s - this.lastPosition) < 0.5) return;
      if (final) {
        this.sendFinal(segments, body);
        return;
      }
      this.inflight = segments;
      this.pending = [];
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      fetch(this.url, this.request(body, false))
        .then((response) => {
          if (!response.ok) throw new Error(`progress POST answered ${response.status}`);
          this.posts += 1;
          this.failures = 0;
          this.lastPosition = body.position_s;
          this.inflight = null;
        })
        .catch(() => {
          this.pending = mergeRanges((this.inflight || []).concat(this.pending));
          this.inflight = null;
          this.failures += 1;
          this.again = false;
          // While playing, the interval retries; when paused, back off: 5 s, 10 s, ... 60 s.
          if (this.timer === null) {
            const delay = Math.min(60, 5 * 2 ** (this.failures - 1)) * 1000;
            this.retryTimer = setTimeout(() => this.flush(false), delay);
          }
        })
        .finally(() => {
          if (this.again && this.inflight === null) {
            this.again = false;
            this.flush(false);
          }
        });
    }

    request(body, keepalive) {
      return {
        method: "POST",
        credentials: "same-origin",
        keepalive,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": this.csrf },
        body: JSON.stringify(body),
      };
    }

    sendFinal(segments, body) {
      // Taken out of pending now; put back if the page lives on and the request turns out failed.
      this.pending = [];
      this.lastPosition = body.position_s;
      const restore = () => {
        this.pending = mergeRanges(this.pending.concat(segments));
        this.lastPosition = null;
      };
      let sent;
      try {
        sent = fetch(this.url, this.request(body, true));
      } catch (_) {
        // No keepalive fetch: a beacon cannot carry headers, so the token travels in the body.
        const blob = new Blob([JSON.stringify({ ...body, csrf_token: this.csrf })], { type: "application/json" });
        if (!navigator.sendBeacon(this.url, blob)) restore();
        return;
      }
      sent
        .then((response) => {
          if (!response.ok) throw new Error(`progress POST answered ${response.status}`);
          this.posts += 1;
        })
        .catch(restore);
    }
  }

  class Player {
    constructor(video) {
      this.video = video;
      this.id = ++counter;
      this.hls = null;
      const lang = (video.dataset.lang || "").toLowerCase();
      this.lang = lang;
      this.captionsOn = video.dataset.captions === "on";
      this.subtitleIndex = -1;
      this.buildControls();
      const url = video.dataset.progressUrl;
      const interval = Number(video.dataset.progressInterval || 15);
      this.progress = url ? new ProgressReporter(video, url, video.dataset.csrf || "", interval) : null;
      this.load(video.dataset.src || "");
    }

    buildControls() {
      const qid = `lmsd-quality-${this.id}`;
      this.controls = element("div", { class: "lmsd-player-controls" });
      this.qualityBox = element("span", { class: "lmsd-quality" });
      this.qualityBox.hidden = true;
      this.quality = element("select", { id: qid });
      this.qualityBox.append(element("label", { for: qid }, tr("Quality")), this.quality);
      this.quality.addEventListener("change", () => this.chooseLevel(Number(this.quality.value)));
      this.captions = element("button", { type: "button", class: "lmsd-captions", "aria-pressed": "false" }, tr("Captions"));
      this.captions.hidden = true;
      this.captions.addEventListener("click", () => this.setCaptions(!this.captionsOn));
      this.message = element("p", { class: "lmsd-player-error", role: "alert" });
      this.message.hidden = true;
      this.controls.append(this.qualityBox, this.captions);
      this.video.after(this.controls, this.message);
    }

    fail(text) {
      this.message.textContent = text;
      this.message.hidden = false;
    }

    load(src) {
      const Hls = window.Hls;
      if (!src) {
        this.fail(tr("This video has no source."));
      } else if (Hls && Hls.isSupported()) {
        this.attachHls(Hls, src);
      } else if (this.video.canPlayType(HLS_TYPE)) {
        this.attachNative(src);
      } else {
        this.fail(tr("This browser cannot play this video."));
      }
    }

    attachHls(Hls, src) {
      const hls = new Hls({
        // Our ladders are fMP4 (CMAF): hls.js passes the segments through, there is nothing to
        // transmux in a worker (and the page ships no worker script; no blob: worker either).
        enableWorker: false,
        capLevelToPlayerSize: true,
        renderTextTracksNatively: true,
        subtitleDisplay: this.captionsOn,
      });
      this.hls = hls;
      let recoveries = 0;
      hls.on(Hls.Events.MANIFEST_PARSED, () => this.fillLevels());
      hls.on(Hls.Events.LEVEL_SWITCHED, () => this.showLevel());
      hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => this.pickSubtitles());
      hls.on(Hls.Events.FRAG_BUFFERED, () => {
        recoveries = 0;
      });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        recoveries += 1;
        if (recoveries <= 3 && data.type === Hls.ErrorTypes.NETWORK_ERROR) {
          setTimeout(() => hls.startLoad(), 1000 * recoveries);
        } else if (recoveries <= 3 && data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
        } else {
          hls.destroy();
          this.hls = null;
          this.fail(tr("The video could not be played. Reload the page to try again."));
        }
      });
      hls.attachMedia(this.video);
      hls.loadSource(src);
    }

    attachNative(src) {
      // The browser's own HLS (Safari, iOS): no level API, captions through video.textTracks.
      this.video.src = src;
      this.video.textTracks.addEventListener("addtrack", () => this.pickSubtitles());
      this.pickSubtitles();
    }

    static levelName(level, sameHeight) {
      if (!level.height) return `${Math.round(level.bitrate / 1000)} kbps`;
      const name = `${level.height}p`;
      return sameHeight > 1 ? `${name} (${(level.bitrate / 1e6).toFixed(1)} Mbps)` : name;
    }

    fillLevels() {
      const levels = this.hls.levels;
      const heights = new Map();
      for (const l of levels) heights.set(l.height, (heights.get(l.height) || 0) + 1);
      const order = levels
        .map((level, index) => ({ level, index }))
        .sort((a, b) => b.level.height - a.level.height || b.level.bitrate - a.level.bitrate);
      this.quality.replaceChildren(
        element("option", { value: "-1" }, tr("Auto")),
        ...order.map(({ level, index }) =>
          element("option", { value: String(index) }, Player.levelName(level, heights.get(level.height))),
        ),
      );
      this.quality.value = "-1";
      this.qualityBox.hidden = levels.length < 2;
    }

    chooseLevel(index) {
      if (!this.hls) return;
      if (index < 0) this.hls.nextLevel = -1; // back to automatic, without flushing the buffer
      else this.hls.currentLevel = index; // now: drop what is buffered at the old quality
    }

    showLevel() {
      const auto = this.quality.querySelector('option[value="-1"]');
      if (!auto || !this.hls) return;
      const level = this.hls.levels[this.hls.currentLevel];
      auto.textContent = this.hls.autoLevelEnabled && level ? tr("Auto (%s)", Player.levelName(level, 1)) : tr("Auto");
    }

    matchLanguage(tracks, langOf) {
      const base = this.lang.split("-")[0];
      const langs = tracks.map((t) => (langOf(t) || "").toLowerCase());
      let i = langs.indexOf(this.lang);
      if (i < 0 && base) i = langs.findIndex((l) => l.split("-")[0] === base);
      return i;
    }

    pickSubtitles() {
      if (this.hls) {
        const tracks = this.hls.subtitleTracks;
        let i = this.matchLanguage(tracks, (t) => t.lang);
        if (i < 0) i = tracks.findIndex((t) => t.default);
        if (i < 0 && tracks.length) i = 0;
        this.subtitleIndex = i;
      } else {
        const tracks = Array.from(this.video.textTracks).filter((t) => t.kind === "subtitles" || t.kind === "captions");
        const i = this.matchLanguage(tracks, (t) => t.language);
        this.subtitleIndex = i < 0 && tracks.length ? 0 : i;
        this.nativeTracks = tracks;
      }
      this.captions.hidden = this.subtitleIndex < 0;
      this.setCaptions(this.captionsOn);
    }

    setCaptions(on) {
      this.captionsOn = on;
      this.captions.setAttribute("aria-pressed", String(on));
      if (this.subtitleIndex < 0) return;
      if (this.hls) {
        // The track stays loaded (mode "hidden") when off, so turning captions on is instant.
        if (this.hls.subtitleTrack !== this.subtitleIndex) this.hls.subtitleTrack = this.subtitleIndex;
        this.hls.subtitleDisplay = on;
      } else {
        this.nativeTracks.forEach((t, i) => {
          t.mode = i === this.subtitleIndex ? (on ? "showing" : "hidden") : "disabled";
        });
      }
    }
  }

  function watchTranscoding(box) {
    const url = box.dataset.statusUrl;
    const every = Math.max(1, Number(box.dataset.pollInterval || 3)) * 1000;
    const bar = box.querySelector("progress");
    const text = box.querySelector(".lmsd-transcoding-text");
    const alert = box.querySelector(".lmsd-transcoding-alert");
    const poll = async () => {
      try {
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
        if (response.ok) {
          const status = await response.json();
          if (status.state === "ready") {
            location.reload();
            return;
          }
          if (status.state === "failed") {
            if (alert) alert.textContent = status.detail || tr("The video could not be transcoded.");
            if (bar) bar.hidden = true;
            return;
          }
          const pct = Math.min(100, Math.max(0, Math.round(Number(status.percent) || 0)));
          if (bar) {
            bar.value = pct;
            bar.setAttribute("aria-valuenow", String(pct));
            bar.setAttribute("aria-valuetext", `${pct}%`);
          }
          if (text) text.textContent = tr("Transcoding: %s", `${pct}%`);
        }
      } catch (_) {
        // Offline for a moment: the next poll tries again.
      }
      setTimeout(poll, every);
    };
    setTimeout(poll, every);
  }

  function init() {
    for (const video of document.querySelectorAll("video.lmsd-player")) {
      if (!players.some((p) => p.video === video)) players.push(new Player(video));
    }
    for (const box of document.querySelectorAll(".lmsd-transcoding[data-status-url]")) watchTranscoding(box);
  }

  window.lmsdPlayers = players;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
