// The review page: deliberate reveal, re-blur on release / timeout / hidden tab, exposure
// reporting, lease heartbeat, single-key decisions. The original is fetched only on reveal.
(function () {
  "use strict";
  var root = document.getElementById("review");
  if (!root) return;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var img = document.getElementById("media");
  var badge = document.getElementById("badge");
  var revealButton = document.getElementById("reveal");
  var form = document.getElementById("decision");
  var keys = document.getElementById("keys");
  var breakBox = document.getElementById("break");
  var mode = root.dataset.mode;
  var revealSeconds = parseFloat(root.dataset.revealSeconds) || 4;
  var previewSrc = img.dataset.previewSrc;

  // --- Reveal ---------------------------------------------------------------------------
  var wanted = false;      // the reviewer is asking to see the original now
  var shown = null;        // {url, viewId, since} while the original is on screen
  var timer = null;

  function post(url, body, type) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: {"X-CSRFToken": csrf, "Content-Type": type || "application/x-www-form-urlencoded"},
      body: body
    });
  }

  function reveal() {
    if (wanted) return;
    wanted = true;
    post(root.dataset.originalUrl, "mode=" + encodeURIComponent(mode)).then(function (response) {
      if (!response.ok) throw new Error("reveal refused: " + response.status);
      var viewId = response.headers.get("X-View-Id");
      return response.blob().then(function (blob) {
        if (!wanted) { report(viewId, 0); return; }  // released before the bytes arrived
        shown = {url: URL.createObjectURL(blob), viewId: viewId, since: performance.now()};
        img.src = shown.url;
        img.classList.add("revealed");
        badge.textContent = "Revealed";
        root.classList.add("is-revealed");
        var hint = document.getElementById("reveal-hint");
        if (hint) hint.hidden = true;
        if (mode === "click") timer = setTimeout(reblur, revealSeconds * 1000);
      });
    }).catch(function () { wanted = false; badge.textContent = "Could not reveal"; });
  }

  function reblur() {
    wanted = false;
    clearTimeout(timer);
    if (!shown) return;
    var seconds = (performance.now() - shown.since) / 1000;
    img.src = previewSrc;
    img.classList.remove("revealed");
    URL.revokeObjectURL(shown.url);
    badge.textContent = "Blurred";
    root.classList.remove("is-revealed");
    report(shown.viewId, seconds);
    shown = null;
  }

  function report(viewId, seconds) {
    if (viewId) post(root.dataset.viewsUrl + viewId + "/", JSON.stringify({seconds: seconds}), "application/json");
  }

  if (mode === "hold") {
    revealButton.addEventListener("pointerdown", function (e) { e.preventDefault(); reveal(); });
    ["pointerup", "pointerleave", "pointercancel"].forEach(function (name) {
      revealButton.addEventListener(name, reblur);
    });
  } else {
    revealButton.addEventListener("click", function () { if (wanted) reblur(); else reveal(); });
  }
  // Never left revealed behind the reviewer's back.
  document.addEventListener("visibilitychange", function () { if (document.hidden) reblur(); });
  window.addEventListener("blur", reblur);
  window.addEventListener("pagehide", reblur);

  // --- Keys -----------------------------------------------------------------------------
  function choose(selector) {
    var input = form && form.querySelector(selector);
    if (!input) return;
    input.checked = true;
    syncVerdict(input);
  }

  function syncVerdict(input) {
    var verdict = input.dataset.verdict;
    if (verdict) document.getElementById("v-" + verdict).checked = true;
  }

  if (form) {
    form.addEventListener("change", function (e) { if (e.target.dataset.verdict) syncVerdict(e.target); });
  }

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"));
  }

  function toggleKeys(show) { keys.hidden = !show; }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) {
      if (e.key === "Enter" && form && typing(e.target)) { e.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.key === " " || e.code === "Space") {
      e.preventDefault();
      if (e.repeat) return;
      if (mode === "hold") reveal(); else if (wanted) reblur(); else reveal();
      return;
    }
    var key = e.key;
    if (key === "?") { toggleKeys(keys.hidden); return; }
    if (key === "Escape") {
      toggleKeys(false);
      if (form) form.querySelectorAll("input[type=radio]").forEach(function (r) { r.checked = false; });
      return;
    }
    if (!form) return;
    if ("1234".indexOf(key) >= 0) choose('input[name=classification][data-key="' + key + '"]');
    else if ("abmu".indexOf(key) >= 0) choose('input[name=reason][data-key="' + key + '"]');
    else if (key === "g") { var g = document.getElementById("a-generativeAi"); g.checked = !g.checked; }
    else if (key === "e") { choose("#v-escalated"); e.preventDefault(); document.getElementById("note").focus(); }
    else if (key === "s") { reblur(); document.getElementById("skip-form").requestSubmit(); }
    else if (key === "Enter") { e.preventDefault(); reblur(); form.requestSubmit(); }
  });
  document.addEventListener("keyup", function (e) {
    if ((e.key === " " || e.code === "Space") && mode === "hold") reblur();
  });
  var showKeys = document.getElementById("show-keys");
  if (showKeys) showKeys.addEventListener("click", function () { toggleKeys(true); });
  document.getElementById("close-keys").addEventListener("click", function () { toggleKeys(false); });
  if (form) form.addEventListener("submit", reblur);

  // --- Lease and wellness heartbeat -------------------------------------------------------
  var dismissedBreak = false;
  document.getElementById("dismiss-break").addEventListener("click", function () {
    dismissedBreak = true; breakBox.hidden = true;
  });

  // Only a reviewer who is here keeps the lease, the session and the active-time meter going:
  // after two minutes without a key, a click or a move, the page falls silent, the lease runs
  // out and the item goes back to the queue.
  var lastInput = Date.now();
  ["keydown", "pointerdown", "pointermove", "wheel"].forEach(function (name) {
    document.addEventListener(name, function () { lastInput = Date.now(); }, {passive: true});
  });

  function heartbeat() {
    if (document.hidden || Date.now() - lastInput > 120000) return;
    post(root.dataset.heartbeatUrl, "").then(function (r) { return r.json(); }).then(function (state) {
      var meter = document.getElementById("meter-value");
      if (meter) meter.textContent = state.cap_percent + "%";
      if (state.break_due && !dismissedBreak) { reblur(); breakBox.hidden = false; }
      if (root.dataset.held === "1" && !state.held) {
        reblur();
        root.classList.add("lost");
        badge.textContent = "Lease ended";
        if (form) form.querySelectorAll("button, input, textarea").forEach(function (el) { el.disabled = true; });
      }
    }).catch(function () {});
  }
  heartbeat();
  setInterval(heartbeat, 20000);
})();
