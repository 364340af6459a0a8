//! The offline page (`--trace run.html`): the same Chrome trace JSON inside one HTML
//! file, with a small script that draws it as SVG: a track per rank and one for the
//! launcher, a box per call (colored by kind, its waiting part in red below it), an
//! arrow per message, the launcher's markers. No network and no external script, so it
//! opens from a USB stick in a classroom. The wheel zooms around the pointer, dragging
//! pans, a double click shows the whole run; `#t=START,END` (microseconds) in the
//! address opens on that window. In one view at most `MAX_ARROWS` arrows are drawn
//! (zoom in for more) and at most one box per pixel of each track, so that a run of a
//! million events stays responsive.

use super::chrome::esc;
use super::model::Model;

/// The page for `json` (the Chrome trace of `m`).
pub(crate) fn page(json: &str, m: &Model) -> String {
    let title = format!("shmrun trace: {} ranks, {} messages", m.n, m.msgs.len());
    PAGE.replace("{{TITLE}}", &html_text(&title))
        .replace("{{TITLE_JS}}", &esc(&title))
        .replace("{{JSON}}", json)
}

fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{TITLE}}</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 0; color: #222; background: #fff; }
header { padding: 8px 12px; border-bottom: 1px solid #ccc; background: #f6f6f6; }
header h1 { font-size: 16px; margin: 0 12px 0 0; display: inline; }
header button { font: inherit; margin-right: 4px; }
#summary, #note { color: #555; margin-left: 8px; }
.legend span { display: inline-block; margin-right: 12px; }
.legend i { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: middle; }
#view { position: relative; overflow: hidden; user-select: none; cursor: grab; }
svg { display: block; }
.lane { fill: #fafafa; stroke: #e4e4e4; }
.label { font-weight: 600; fill: #333; }
.axis text { fill: #666; font-size: 11px; }
.axis line { stroke: #ddd; }
.span { stroke: none; }
.send { fill: #3b7dd8; } .recv { fill: #2e9e5b; } .sendrecv { fill: #7b5cc4; }
.coll { fill: #e08a1e; } .other { fill: #8a8a8a; }
.blocked { fill: #d62828; opacity: .75; }
.failed { stroke: #900; stroke-width: 1.5; }
.unfinished { stroke: #000; stroke-width: 2; stroke-dasharray: 3 2; }
.arrow { stroke: #111; stroke-width: 1; opacity: .55; }
.marker { fill: #b00; } .instant { fill: #555; }
.mtext { font-size: 11px; fill: #900; }
#tip { position: fixed; display: none; background: #fffbe6; border: 1px solid #caa;
  padding: 4px 6px; font: 12px monospace; white-space: pre; pointer-events: none; z-index: 2; }
</style></head>
<body>
<header>
<h1>shmrun trace</h1>
<button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">&minus;</button><button id="whole">whole run</button>
<span id="summary"></span><span id="note"></span>
<div class="legend">
<span><i class="send" style="background:#3b7dd8"></i>send</span>
<span><i style="background:#2e9e5b"></i>receive / wait</span>
<span><i style="background:#7b5cc4"></i>sendrecv</span>
<span><i style="background:#e08a1e"></i>collective</span>
<span><i style="background:#8a8a8a"></i>other call</span>
<span><i style="background:#d62828"></i>blocked (waiting for another rank)</span>
<span>&#8594; message</span>
<span style="color:#b00">&#9660; launcher event</span>
</div>
</header>
<div id="view"><svg id="tl" xmlns="http://www.w3.org/2000/svg"></svg></div>
<div id="tip"></div>
<script id="trace" type="application/json">{{JSON}}</script>
<script>
"use strict";
(function () {
  const TITLE = {{TITLE_JS}};
  const MAX_ARROWS = 3000;
  const LABEL = 120, TRACK = 36, TOP = 24, BOX = 20;
  const data = JSON.parse(document.getElementById("trace").textContent);
  const other = data.otherData, n = other.ranks, launcher = n;
  const tracks = [];
  for (let r = 0; r <= n; r++) tracks.push({ spans: [], blocked: [], instants: [] });
  const names = {};
  const flows = {};
  for (const e of data.traceEvents) {
    if (e.ph === "M" && e.name === "thread_name") names[e.pid] = e.args.name;
    else if (e.ph === "X") {
      const t = tracks[e.pid];
      if (!t) continue;
      const s = { ts: e.ts, end: e.ts + e.dur, name: e.name, args: e.args, cat: e.cat };
      if (e.name === "blocked") t.blocked.push(s); else t.spans.push(s);
    } else if (e.ph === "s" || e.ph === "f") {
      (flows[e.id] = flows[e.id] || {})[e.ph] = e;
    } else if (e.ph === "i" && tracks[e.pid]) {
      tracks[e.pid].instants.push(e);
    }
  }
  for (const t of tracks) {
    t.spans.sort((a, b) => a.ts - b.ts);
    t.blocked.sort((a, b) => a.ts - b.ts);
  }
  const arrows = [];
  for (const id in flows) {
    const f = flows[id];
    if (f.s && f.f) arrows.push({ a: f.s.pid, ta: f.s.ts, b: f.f.pid, tb: f.f.ts, bytes: f.s.args.bytes, tag: f.s.args.tag });
  }
  const total = Math.max(other.duration_us, 1);
  let v0 = 0, v1 = total;
  const m = /#t=([0-9.]+),([0-9.]+)/.exec(location.hash);
  if (m && +m[2] > +m[1]) { v0 = +m[1]; v1 = +m[2]; }
  const svg = document.getElementById("tl"), view = document.getElementById("view");
  const tip = document.getElementById("tip"), note = document.getElementById("note");
  document.title = TITLE;
  const lost = other.lost_events.reduce((a, b) => a + b, 0);
  document.getElementById("summary").textContent =
    n + " ranks, " + fmt(total) + ", " + other.messages + " messages" +
    (lost ? ", " + lost + " events lost (full buffers)" : "");
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    const x = document.createElementNS(NS, name);
    for (const k in attrs) x.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(x);
    return x;
  }
  function fmt(us) {
    if (us >= 1e6) return (us / 1e6).toFixed(3) + " s";
    if (us >= 1e3) return (us / 1e3).toFixed(3) + " ms";
    return us.toFixed(3) + " \u00b5s";
  }
  function kind(s) {
    if (s.cat === "collective") return "coll";
    const a = s.args;
    if (a.dest !== undefined && a.source !== undefined) return "sendrecv";
    if (a.dest !== undefined) return "send";
    if (a.source !== undefined) return "recv";
    return "other";
  }
  // The first span that ends at or after t (spans of a track do not overlap).
  function first(list, t) {
    let lo = 0, hi = list.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (list[mid].end < t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  let W = 800;
  const X = (t) => LABEL + (t - v0) / (v1 - v0) * (W - LABEL - 10);
  const Y = (r) => TOP + r * TRACK;
  let shown = [];
  function render() {
    W = Math.max(view.clientWidth, 400);
    const H = TOP + (n + 1) * TRACK + 8;
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    shown = [];
    const defs = el("defs", {}, svg);
    const mk = el("marker", { id: "head", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "6", markerHeight: "6", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#111" }, mk);
    const axis = el("g", { class: "axis" }, svg);
    const step = niceStep((v1 - v0) / 8);
    for (let t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      const x = X(t);
      el("line", { x1: x, x2: x, y1: TOP - 6, y2: H }, axis);
      el("text", { x: x + 2, y: TOP - 10 }, axis).textContent = fmt(t);
    }
    for (let r = 0; r <= n; r++) {
      const t = tracks[r], y = Y(r);
      const g = el("g", { class: r === launcher ? "track launcher" : "track rank", "data-rank": r }, svg);
      el("rect", { class: "lane", x: LABEL, y: y, width: W - LABEL - 10, height: TRACK - 6 }, g);
      el("text", { class: "label", x: 6, y: y + 18 }, g).textContent = r === launcher ? "shmrun" : "rank " + r;
      let lastX = -1;
      for (let i = first(t.spans, v0); i < t.spans.length && t.spans[i].ts <= v1; i++) {
        const s = t.spans[i];
        const x0 = Math.max(X(s.ts), LABEL), x1 = Math.min(X(s.end), W - 10);
        if (x1 < lastX + 1 && x0 < lastX + 1) continue; // one box per pixel when zoomed out
        const w = Math.max(x1 - x0, 1);
        let cls = "span " + kind(s);
        if (s.args.error) cls += " failed";
        if (s.args.unfinished) cls += " unfinished";
        el("rect", { class: cls, x: x0, y: y + 2, width: w, height: BOX - 4, "data-i": shown.length }, g);
        shown.push(s);
        lastX = x0 + w;
      }
      lastX = -1;
      for (let i = first(t.blocked, v0); i < t.blocked.length && t.blocked[i].ts <= v1; i++) {
        const s = t.blocked[i];
        const x0 = Math.max(X(s.ts), LABEL), x1 = Math.min(X(s.end), W - 10);
        if (x1 < lastX + 1 && x0 < lastX + 1) continue;
        const w = Math.max(x1 - x0, 1);
        el("rect", { class: "blocked", x: x0, y: y + BOX - 2, width: w, height: 6 }, g);
        lastX = x0 + w;
      }
      let lastText = -1e9;
      for (const e of t.instants) {
        if (e.ts < v0 || e.ts > v1) continue;
        const x = X(e.ts);
        const p = el("path", { class: r === launcher ? "marker" : "instant", d: `M ${x - 5} ${y} L ${x + 5} ${y} L ${x} ${y + 9} z`, "data-i": shown.length }, g);
        shown.push({ ts: e.ts, end: e.ts, name: e.name, args: e.args });
        if (r === launcher && x > lastText + 90) {
          el("text", { class: "mtext", x: x + 6, y: y + 22 }, g).textContent = e.name;
          lastText = x;
        }
        void p;
      }
    }
    const inView = arrows.filter((a) => Math.max(a.ta, a.tb) >= v0 && Math.min(a.ta, a.tb) <= v1);
    const ag = el("g", { class: "arrows" }, svg);
    if (inView.length <= MAX_ARROWS) {
      for (const a of inView) {
        el("line", { class: "arrow", x1: X(a.ta), y1: Y(a.a) + BOX / 2, x2: X(a.tb), y2: Y(a.b) + BOX / 2, "marker-end": "url(#head)" }, ag);
      }
      note.textContent = "";
    } else {
      note.textContent = inView.length + " messages in view: zoom in to draw their arrows";
    }
    svg.setAttribute("data-arrows", ag.childNodes.length);
  }
  function niceStep(x) {
    const p = Math.pow(10, Math.floor(Math.log10(Math.max(x, 1e-3))));
    for (const k of [1, 2, 5, 10]) if (k * p >= x) return k * p;
    return 10 * p;
  }
  function zoom(f, at) {
    const c = at === undefined ? (v0 + v1) / 2 : at;
    let a = c - (c - v0) * f, b = c + (v1 - c) * f;
    if (b - a < 0.01) return;
    if (a < 0) { b -= a; a = 0; }
    if (b > total) { a -= b - total; b = total; }
    v0 = Math.max(a, 0); v1 = Math.min(b, total);
    render();
  }
  const tAt = (px) => v0 + (px - LABEL) / (W - LABEL - 10) * (v1 - v0);
  view.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, tAt(e.clientX - r.left));
  }, { passive: false });
  let drag = null;
  view.addEventListener("mousedown", (e) => { drag = { x: e.clientX, v0: v0, v1: v1 }; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (drag) {
      const dt = (e.clientX - drag.x) / (W - LABEL - 10) * (drag.v1 - drag.v0);
      let a = drag.v0 - dt, b = drag.v1 - dt;
      if (a < 0) { b -= a; a = 0; }
      if (b > total) { a -= b - total; b = total; }
      v0 = a; v1 = b; render();
      return;
    }
    const i = e.target.getAttribute && e.target.getAttribute("data-i");
    if (i === null || i === undefined) { tip.style.display = "none"; return; }
    const s = shown[+i];
    let text = s.name + "\n" + fmt(s.ts) + (s.end > s.ts ? " .. " + fmt(s.end) + "  (" + fmt(s.end - s.ts) + ")" : "");
    for (const k in s.args) text += "\n" + k + ": " + (typeof s.args[k] === "string" ? s.args[k] : JSON.stringify(s.args[k]));
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = Math.min(e.clientX + 12, window.innerWidth - 420) + "px";
    tip.style.top = (e.clientY + 12) + "px";
  });
  view.addEventListener("dblclick", () => { v0 = 0; v1 = total; render(); });
  document.getElementById("zin").onclick = () => zoom(0.5);
  document.getElementById("zout").onclick = () => zoom(2);
  document.getElementById("whole").onclick = () => { v0 = 0; v1 = total; render(); };
  window.addEventListener("resize", render);
  render();
})();
</script>
</body></html>
"##;
