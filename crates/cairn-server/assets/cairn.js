// cairn web UI: times in the viewer's zone, live run pages. Progressive
// enhancement only: every page is complete without this script. On a run page whose run is not final, it
// follows GET /api/runs/{id}/events (Server-Sent Events: run, stage, log, end)
// and updates the run's status, its stages' statuses and durations, and the
// log. It only ever sets textContent and attributes, never HTML.
// On the exposures page it counts each open exposure's deadline clock down
// (and up past it, as OVERDUE) every second, from its data-deadline-ms.
"use strict";

// Times: each <time datetime> reads as how long ago (as the server wrote it),
// with the exact time in the viewer's own zone on hover; kept current.
function cairnDressTime(t) {
  var iso = t.getAttribute("datetime");
  var ms = Date.parse(iso);
  if (!isFinite(ms)) return;
  var away = Date.now() - ms;
  var s = Math.floor(Math.abs(away) / 1000);
  var amount;
  if (s < 45) {
    t.textContent = "just now";
  } else if (s < 30 * 86400) {
    if (s < 3600) amount = Math.max(1, Math.floor(s / 60)) + " min";
    else if (s < 86400) amount = Math.floor(s / 3600) + " h";
    else amount = Math.floor(s / 86400) + " d";
    t.textContent = away >= 0 ? amount + " ago" : "in " + amount;
  } else {
    t.textContent = iso.slice(0, 10);
  }
  t.setAttribute("title", new Date(ms).toLocaleString() + " (" + iso + ")");
}

(function () {
  function all() {
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) cairnDressTime(times[i]);
  }
  all();
  setInterval(all, 30000);
})();

(function () {
  var clocks = document.querySelectorAll("span.clock[data-deadline-ms]");
  if (!clocks.length) return;
  function text(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return Math.floor(s / 3600) + "h" + pad(Math.floor((s % 3600) / 60)) + "m" + pad(s % 60) + "s";
  }
  function tick() {
    var now = Date.now();
    for (var i = 0; i < clocks.length; i++) {
      var deadline = Number(clocks[i].getAttribute("data-deadline-ms"));
      if (!isFinite(deadline)) continue;
      if (now > deadline) {
        clocks[i].textContent = "OVERDUE by " + text(now - deadline);
        clocks[i].setAttribute("data-overdue", "true");
      } else {
        clocks[i].textContent = text(deadline - now) + " left";
        clocks[i].setAttribute("data-overdue", "false");
      }
    }
  }
  tick();
  setInterval(tick, 1000);
})();

(function () {
  var run = document.getElementById("run");
  if (!run || run.getAttribute("data-final") !== "false" || !window.EventSource) {
    return;
  }
  var id = run.getAttribute("data-run-id");
  var statusEl = document.getElementById("run-status");
  var log = document.getElementById("log");

  function setStatus(el, status) {
    if (!el || !status) return;
    el.textContent = status;
    el.setAttribute("data-status", status);
  }

  function duration(ms) {
    if (ms === null || ms === undefined || ms < 0) return "";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return Math.floor(ms / 1000) + "." + Math.floor((ms % 1000) / 100) + " s";
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (ms < 3600000) return Math.floor(ms / 60000) + " min " + pad(Math.floor((ms % 60000) / 1000)) + " s";
    return Math.floor(ms / 3600000) + " h " + pad(Math.floor((ms % 3600000) / 60000)) + " min";
  }

  function byData(name, value) {
    var all = document.querySelectorAll("[" + name + "]");
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute(name) === value) return all[i];
    }
    return null;
  }

  function updateStage(stage) {
    var row = byData("data-stage", stage.name);
    if (!row) return;
    setStatus(row.querySelector(".status"), stage.status);
    var d = row.querySelector(".duration");
    if (d) d.textContent = duration(stage.duration_ms);
    var code = row.querySelector(".exit-code");
    if (code && stage.exit_code !== null && stage.exit_code !== undefined) {
      code.textContent = String(stage.exit_code);
    }
  }

  function setTime(id, text) {
    var el = document.getElementById(id);
    if (!el || !text) return;
    var t = document.createElement("time");
    t.setAttribute("datetime", text);
    t.textContent = text;
    cairnDressTime(t);
    el.textContent = "";
    el.appendChild(t);
  }

  function updateRun(r) {
    setStatus(statusEl, r.status);
    run.setAttribute("data-status", r.status);
    var d = document.getElementById("run-duration");
    if (d) d.textContent = duration(r.duration_ms);
    setTime("run-started", r.started_at);
    setTime("run-finished", r.finished_at);
  }

  function linesOf(stage) {
    var box = byData("data-log-stage", stage);
    if (!box) {
      box = document.createElement("details");
      box.setAttribute("data-log-stage", stage);
      box.open = true;
      var summary = document.createElement("summary");
      summary.textContent = stage;
      box.appendChild(summary);
      var pre = document.createElement("pre");
      pre.className = "lines";
      pre.setAttribute("data-last-seq", "-1");
      box.appendChild(pre);
      var empty = document.getElementById("log-empty");
      if (empty) empty.remove();
      log.appendChild(box);
    }
    return box.querySelector("pre.lines");
  }

  function appendLine(line) {
    if (!log) return;
    var pre = linesOf(line.stage);
    var last = parseInt(pre.getAttribute("data-last-seq") || "-1", 10);
    if (line.seq <= last) return; // already rendered by the server
    var span = document.createElement("span");
    span.className = "line";
    span.setAttribute("data-seq", String(line.seq));
    span.setAttribute("data-stream", line.stream);
    span.textContent = line.text + "\n";
    pre.appendChild(span);
    pre.setAttribute("data-last-seq", String(line.seq));
    var count = pre.parentNode.querySelector("summary .count");
    if (count) count.textContent = String(pre.querySelectorAll(".line").length);
    pre.scrollTop = pre.scrollHeight;
  }

  function parse(event) {
    try { return JSON.parse(event.data); } catch (e) { return null; }
  }

  var source = new EventSource("/api/runs/" + encodeURIComponent(id) + "/events");
  source.addEventListener("run", function (e) {
    var r = parse(e);
    if (r) updateRun(r);
  });
  source.addEventListener("stage", function (e) {
    var s = parse(e);
    if (s) updateStage(s);
  });
  source.addEventListener("log", function (e) {
    var l = parse(e);
    if (l) appendLine(l);
  });
  source.addEventListener("end", function (e) {
    source.close();
    var r = parse(e);
    if (!r) return;
    (r.stages || []).forEach(updateStage);
    updateRun(r);
    run.setAttribute("data-final", "true");
    var note = document.getElementById("live-note");
    if (note) note.textContent = "";
    if (r.status === "failed" || r.status === "interrupted") {
      // Why it failed is explained by the server: show it.
      window.location.reload();
    }
  });
  source.addEventListener("shutdown", function () { source.close(); });
  source.addEventListener("error", function () {
    // A closed stream after the end is normal; otherwise the browser retries.
    if (run.getAttribute("data-final") === "true") source.close();
  });
})();
