// The review page: deliberate reveal, synchronous re-blur on release / timeout / hidden tab /
// lost focus / leaving, reliable exposure reports, lease heartbeat, break dialog, single-key
// decisions. The original is fetched only on reveal.
//
// Two layers in the frame: the blurred preview (#media, an <img> loaded with the page and kept
// decoded) and the original's first frame drawn on a canvas (#original). Re-blur hides the canvas
// and clears it in the same task as the trigger, before any request, so the next painted frame
// already shows only the preview; nothing needs fetching to blur again.
(function () {
  "use strict";
  var root = document.getElementById("review");
  if (!root) return;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var preview = document.getElementById("media");
  var canvas = document.getElementById("original");
  var badge = document.getElementById("badge");
  var revealButton = document.getElementById("reveal");
  var alertSlot = document.getElementById("reveal-alert");
  var form = document.getElementById("decision");
  var keys = document.getElementById("keys");
  var breakBox = document.getElementById("break");
  var mode = root.dataset.mode;
  var greyscale = root.dataset.greyscale === "1";
  var revealSeconds = parseFloat(root.dataset.revealSeconds) || 4;
  var viewsUrl = root.dataset.viewsUrl;

  function post(url, body, type, keepalive) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", keepalive: !!keepalive,
      headers: {"X-CSRFToken": csrf, "Content-Type": type || "application/x-www-form-urlencoded"},
      body: body
    });
  }

  // --- Reveal reports -------------------------------------------------------------------
  // Each report is kept in sessionStorage until the server has answered it, retried with
  // backoff, sent with keepalive so it outlives the page, and sent again by the next page if the
  // tab moved on first. The server records the first report of a view and ignores repeats.
  var PENDING = "tsreview.pendingViews";
  var RETRY_MS = [250, 750, 2000, 5000, 10000];
  var leaving = false;

  function pendingLoad() {
    try { return JSON.parse(sessionStorage.getItem(PENDING)) || {}; } catch (e) { return {}; }
  }
  function pendingSave(pending) {
    try { sessionStorage.setItem(PENDING, JSON.stringify(pending)); } catch (e) { /* private mode */ }
  }
  function pendingDone(viewId) {
    var pending = pendingLoad();
    delete pending[viewId];
    pendingSave(pending);
  }

  var inflight = {};

  function deliver(viewId, body, attempt, fresh) {
    inflight[viewId] = true;
    post(viewsUrl + viewId + "/", JSON.stringify(body), "application/json", true).then(function (response) {
      delete inflight[viewId];
      if (response.status >= 500 || response.status === 408 || response.status === 429) throw new Error(response.status);
      pendingDone(viewId);  // answered (or refused for good: retrying would change nothing)
      if (response.ok && fresh) response.json().then(function (r) { meterAdd(r.counted); if (r.painted) viewed(); }).catch(function () {});
    }).catch(function () {
      delete inflight[viewId];
      if (leaving) return;  // kept in sessionStorage for the next page
      if (attempt < RETRY_MS.length) setTimeout(function () { deliver(viewId, body, attempt + 1, fresh); }, RETRY_MS[attempt]);
    });
  }

  function report(viewId, paintedMs) {
    if (!viewId) return;
    var painted = paintedMs !== null;
    var body = {seconds: painted ? paintedMs / 1000 : 0, painted: painted, painted_ms: painted ? Math.round(paintedMs) : 0};
    var pending = pendingLoad();
    pending[viewId] = body;
    pendingSave(pending);
    deliver(viewId, body, 0, true);
  }

  function flushPending(lastChance) {
    var pending = pendingLoad();
    Object.keys(pending).forEach(function (viewId) {
      if (!inflight[viewId]) deliver(viewId, pending[viewId], lastChance ? RETRY_MS.length : 0, false);
    });
  }

  // The server counted a painted view of this file: a confirmation no longer needs a reveal.
  function viewed() {
    var hint = document.getElementById("reveal-hint");
    if (hint) hint.hidden = true;
  }

  // --- Exposure meter in the top bar ------------------------------------------------------
  var meterTime = document.getElementById("meter-time");
  function meterAdd(counted) {
    if (!meterTime || typeof counted !== "number") return;
    var seconds = (parseFloat(meterTime.dataset.seconds) || 0) + counted;
    meterSet(seconds);
  }
  function meterSet(seconds) {
    if (!meterTime) return;
    meterTime.dataset.seconds = seconds;
    meterTime.textContent = Math.round(seconds) + " s";
  }

  // --- Reveal ---------------------------------------------------------------------------
  var wanted = false;    // the reviewer is asking to see the original now
  var seq = 0;           // which reveal request is the current one
  var shown = null;      // {viewId, paintedAt} while the original is on the canvas
  var timer = null;
  var capped = false;    // the server said today's cap is reached: no more reveals here

  function alertShow(text) {
    alertSlot.textContent = "";
    var p = document.createElement("p");
    p.className = "notice";
    p.id = "reveal-refused";
    p.textContent = text;
    alertSlot.appendChild(p);
  }

  function refused(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      var cap = body && body.errors && body.errors.cap;
      if (response.status === 403 && cap && cap.length) {
        capped = true;
        revealButton.setAttribute("aria-disabled", "true");
        badge.textContent = "Daily limit reached";
        alertShow(cap.join(" "));
      } else {
        badge.textContent = "Could not reveal";
        if (response.status === 503) {
          alertShow("The file could not be fetched: the server cannot reach its storage just now. Nothing was " +
                    "shown or counted; try again in a minute.");
        }
      }
    });
  }

  function reveal() {
    if (wanted || capped) return;
    wanted = true;
    badge.textContent = "Loading original…";  // on a slow network the wait is visible
    var mine = ++seq;
    var body = "mode=" + encodeURIComponent(mode) + (root.dataset.frame ? "&frame=" + root.dataset.frame : "");
    post(root.dataset.originalUrl, body).then(function (response) {
      if (!response.ok) { wanted = false; return refused(response); }
      alertSlot.textContent = "";  // an earlier refusal no longer holds
      var viewId = response.headers.get("X-View-Id");
      return response.blob().then(function (blob) {
        // The first frame only, decoded off screen: an animated file never animates here.
        return createImageBitmap(blob).catch(function (e) { report(viewId, null); throw e; });
      }).then(function (bitmap) {
        if (!wanted || mine !== seq) {  // released before the bytes arrived: never painted
          bitmap.close();
          report(viewId, null);
          return;
        }
        show(bitmap, viewId);
      });
    }).catch(function () { if (mine === seq) { wanted = false; badge.textContent = "Could not reveal"; } });
  }

  function show(bitmap, viewId) {
    canvas.width = bitmap.width;   // natural size; CSS shrinks it to the frame, never enlarges it
    canvas.height = bitmap.height;
    var ctx = canvas.getContext("2d");
    if (greyscale) ctx.filter = "grayscale(1)";
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    var current = {viewId: viewId, paintedAt: null};
    shown = current;
    canvas.hidden = false;
    root.classList.add("is-revealed");
    badge.textContent = "Revealed";
    // The frame this callback precedes is the first one that paints the canvas.
    requestAnimationFrame(function () {
      if (shown === current) current.paintedAt = performance.now();
    });
    if (mode === "click") timer = setTimeout(reblur, revealSeconds * 1000);
  }

  // Synchronous: the original leaves the screen in this task, before anything else happens.
  function reblur() {
    clearTimeout(timer);
    if (!shown) {
      if (wanted) badge.textContent = "Blurred";  // released while the original was on its way
      wanted = false;
      return;
    }
    wanted = false;
    var now = performance.now();
    canvas.hidden = true;
    root.classList.remove("is-revealed");
    canvas.width = 0;  // drops the pixels too
    if (shown.url) {  // a playing segment: stopped, hidden and unloaded in the same task
      segment.pause();
      segment.hidden = true;
      segment.removeAttribute("src");
      segment.load();
      URL.revokeObjectURL(shown.url);
    }
    badge.textContent = "Blurred";
    var ended = shown;
    shown = null;
    report(ended.viewId, ended.paintedAt === null ? null : Math.max(0, now - ended.paintedAt));
  }

  // --- Play a segment (videos): a second deliberate act, a reduced clip without sound -------
  var segment = document.getElementById("segment");
  var playButton = document.getElementById("play");

  function play(sound) {
    if (!segment || wanted || capped) return;
    wanted = true;
    badge.textContent = "Loading segment…";
    var mine = ++seq;
    var body = "mode=" + encodeURIComponent(mode) + "&frame=" + (root.dataset.frame || "0") + (sound ? "&sound=1" : "");
    post(root.dataset.segmentUrl, body).then(function (response) {
      if (!response.ok) { wanted = false; return refused(response); }
      alertSlot.textContent = "";  // an earlier refusal no longer holds
      var viewId = response.headers.get("X-View-Id");
      return response.blob().then(function (blob) {
        if (!wanted || mine !== seq) { report(viewId, null); return; }  // released before it arrived
        var current = {viewId: viewId, paintedAt: null, url: URL.createObjectURL(blob)};
        shown = current;
        segment.muted = !sound;  // no sound unless asked for apart (the server sends none then)
        segment.loop = false;
        segment.src = current.url;
        segment.hidden = false;
        root.classList.add("is-revealed");
        badge.textContent = sound ? "Playing with sound" : "Playing, no sound";
        segment.addEventListener("playing", function () {
          requestAnimationFrame(function () { if (shown === current && current.paintedAt === null) current.paintedAt = performance.now(); });
        }, {once: true});
        segment.addEventListener("ended", function () { if (shown === current) reblur(); }, {once: true});
        segment.play().catch(function () { if (shown === current) reblur(); });
      });
    }).catch(function () { if (mine === seq) { wanted = false; badge.textContent = "Could not play"; } });
  }

  [[playButton, false], [document.getElementById("play-sound"), true]].forEach(function (pair) {
    var button = pair[0], sound = pair[1];
    if (!button) return;
    if (mode === "hold") {
      button.addEventListener("pointerdown", function (e) { e.preventDefault(); play(sound); });
      ["pointerup", "pointerleave", "pointercancel"].forEach(function (name) { button.addEventListener(name, reblur); });
    } else {
      button.addEventListener("click", function () { if (wanted) reblur(); else play(sound); });
    }
  });

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
  window.addEventListener("pagehide", function () {
    leaving = true;
    reblur();
    flushPending(true);  // reports still waiting for a retry go now, with keepalive
  });
  window.addEventListener("pageshow", function (e) { if (e.persisted) { leaving = false; flushPending(); } });

  // --- Frames of a video ---------------------------------------------------------------------
  // Frame first: choosing a frame re-blurs at once and shows that frame's blurred still; a
  // reveal then asks the server for that one frame's still (the video never reaches the page).
  var framePicks = Array.prototype.slice.call(document.querySelectorAll(".frame-pick"));
  function frameIndex() { return parseInt(root.dataset.frame || "0", 10); }
  function framePick(n) {
    if (n < 0 || n >= framePicks.length) return;
    reblur();
    root.dataset.frame = String(n);
    preview.src = framePicks[n].dataset.src;
    framePicks.forEach(function (button, i) {
      button.classList.toggle("picked", i === n);
      button.setAttribute("aria-selected", i === n ? "true" : "false");
    });
    framePicks[n].scrollIntoView({block: "nearest", inline: "nearest"});
  }
  framePicks.forEach(function (button, i) { button.addEventListener("click", function () { framePick(i); }); });

  // --- A cluster: the representative and its near-duplicates, one task ----------------------
  // Showing a file re-blurs at once and puts that file's blurred preview in the frame; a reveal
  // then asks for that file's original. Ticked members get the same decision.
  var members = Array.prototype.slice.call(document.querySelectorAll("#cluster-strip .member"));
  var memberShown = 0;
  function memberShow(n) {
    if (n < 0 || n >= members.length) return;
    reblur();
    memberShown = n;
    root.dataset.originalUrl = members[n].dataset.original;
    preview.src = members[n].dataset.preview;
    members.forEach(function (li, i) {
      li.classList.toggle("picked", i === n);
      if (i === n) li.setAttribute("aria-current", "true"); else li.removeAttribute("aria-current");
    });
    document.getElementById("cluster-showing").textContent = "Showing " + members[n].dataset.name + ".";
  }
  members.forEach(function (li, i) { li.querySelector(".member-show").addEventListener("click", function () { memberShow(i); }); });
  function memberTick() {
    var tick = members.length && members[memberShown].querySelector(".member-tick");
    if (tick && !tick.disabled) tick.checked = !tick.checked;
  }

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
    if (breakBox.open) {
      // The break dialog is modal: no reveal, decision or navigation key works behind it. Its
      // own buttons keep their keys; Esc closes it (the dialog's cancel).
      if ((e.key === " " || e.key === "Enter") && e.target === breakBox) e.preventDefault();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) {
      if (e.key === "Enter" && form && typing(e.target)) { e.preventDefault(); reblur(); form.requestSubmit(); }
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
    if ((key === "[" || key === "]") && framePicks.length) { framePick(frameIndex() + (key === "]" ? 1 : -1)); return; }
    if ((key === "," || key === ".") && members.length) { memberShow(memberShown + (key === "." ? 1 : -1)); return; }
    if (key === "x" && members.length) { memberTick(); return; }
    if ((key === "p" || key === "P") && segment) {  // P (with Shift): the same segment with its sound
      if (e.repeat) return;
      if (mode === "hold") play(key === "P"); else if (wanted) reblur(); else play(key === "P");
      return;
    }
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
    if ((e.key === " " || e.code === "Space" || ((e.key === "p" || e.key === "P") && segment)) && mode === "hold") reblur();
  });
  var showKeys = document.getElementById("show-keys");
  if (showKeys) showKeys.addEventListener("click", function () { toggleKeys(true); });
  document.getElementById("close-keys").addEventListener("click", function () { toggleKeys(false); });
  // The decision carries the reports still pending (the server records them first, exactly as
  // /views/ does), so a report in flight cannot lose the race with "a confirmation needs a
  // painted view".
  if (form) form.addEventListener("submit", function () {
    reblur();
    var pending = pendingLoad();
    var carried = Object.keys(pending).slice(-20).map(function (viewId) {
      return {view: Number(viewId), seconds: pending[viewId].seconds, painted: pending[viewId].painted};
    });
    document.getElementById("view-reports").value = JSON.stringify(carried);
  });
  var skipForm = document.getElementById("skip-form");
  if (skipForm) skipForm.addEventListener("submit", reblur);

  // --- Break dialog ------------------------------------------------------------------------
  var dismissedBreak = false;
  function breakOpen() {
    reblur();
    if (breakBox.open) return;
    breakBox.showModal();
    breakBox.focus();  // the dialog itself (labelled by its title), so Space presses nothing
  }
  document.getElementById("dismiss-break").addEventListener("click", function () { breakBox.close(); });
  breakBox.addEventListener("close", function () { dismissedBreak = true; });

  // --- Lease and wellness heartbeat -------------------------------------------------------
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
      if (typeof state.unblurred_seconds === "number") meterSet(state.unblurred_seconds);
      if (state.break_due && !dismissedBreak) breakOpen();
      if (root.dataset.held === "1" && !state.held) {
        reblur();
        root.classList.add("lost");
        badge.textContent = "Lease ended";
        if (form) form.querySelectorAll("button, input, textarea").forEach(function (el) { el.disabled = true; });
      }
    }).catch(function () {});
  }
  flushPending();
  heartbeat();
  setInterval(heartbeat, 20000);
})();
