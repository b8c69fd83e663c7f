// worldwalk browser demo: keys and pointer-lock mouse-look in, JPEG frames + HUD + path map out.
// Loaded once per page by Gradio (launch js=). Talks to the demo's own routes (app/web/server.py):
//   GET  worldwalk/frame/<walk>?after=<seq>   the newest frame (image/jpeg, header X-Frame-Seq), long-polled
//   GET  worldwalk/status/<walk>              HUD numbers, path, state (waiting / live / ended ...)
//   POST worldwalk/input/<walk>               {keys: [...], dx, dy, n}: the held keys and mouse motion since the last post
// <walk> is an unguessable token that only this tab was given (by the Start button's Gradio event).
(() => {
  if (window.worldwalk) return;
  const KEYMAP = {
    KeyW: "w", KeyA: "a", KeyS: "s", KeyD: "d", KeyQ: "q", KeyE: "e", KeyZ: "z", KeyC: "c",
    ShiftLeft: "shift", ShiftRight: "shift",
    ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down",
    Equal: "faster", NumpadAdd: "faster", Minus: "slower", NumpadSubtract: "slower",  // one speed step a press
  };
  const ww = {
    token: null, seq: 0, keys: new Set(), dx: 0, dy: 0, n: 0, status: null, url: null, shown: 0,
    statusTimer: null, dragging: false,
  };
  window.worldwalk = ww;
  const el = (id) => document.getElementById(id);
  const route = (p) => new URL(p, document.baseURI).toString();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const esc = (t) => String(t ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  // ------------------------------------------------------------------------------------------ input
  function typing(e) {
    const t = e.target;
    if (!t || !t.tagName) return false;
    const tag = t.tagName.toUpperCase();
    return t.isContentEditable || tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && !["button", "checkbox", "radio", "range", "file"].includes((t.type || "").toLowerCase()));
  }

  function sendInput() {
    if (!ww.token) return;
    const body = JSON.stringify({ keys: [...ww.keys], dx: ww.dx, dy: ww.dy, n: ++ww.n });
    ww.dx = 0; ww.dy = 0;
    fetch(route(`worldwalk/input/${ww.token}`), {
      method: "POST", headers: { "Content-Type": "application/json" }, body, keepalive: true,
    }).catch(() => {});
    showKeys();
  }

  document.addEventListener("keydown", (e) => {
    const k = KEYMAP[e.code];
    if (!k || !ww.token || typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    e.preventDefault();  // arrows must not scroll the page
    if (!ww.keys.has(k)) { ww.keys.add(k); sendInput(); }
  }, true);
  document.addEventListener("keyup", (e) => {
    const k = KEYMAP[e.code];
    if (!k || !ww.keys.has(k)) return;
    // one Shift released while the other is held still counts as released: fine for a demo
    ww.keys.delete(k);
    sendInput();
  }, true);
  const releaseAll = () => { if (ww.keys.size) { ww.keys.clear(); sendInput(); } };
  window.addEventListener("blur", releaseAll);
  document.addEventListener("visibilitychange", () => { if (document.hidden) releaseAll(); });

  // mouse-look: pointer lock on a click in the view; dragging works too where pointer lock is refused
  document.addEventListener("click", (e) => {
    const view = el("ww-view");
    if (!view || !ww.token || !view.contains(e.target) || document.pointerLockElement === view) return;
    view.focus({ preventScroll: true });
    try {
      const p = view.requestPointerLock();
      if (p && p.catch) p.catch(() => {});
    } catch (err) { /* not available: drag to look */ }
  });
  document.addEventListener("pointerlockchange", () => {
    const view = el("ww-view");
    if (view) view.classList.toggle("ww-locked", document.pointerLockElement === view);
  });
  document.addEventListener("mousedown", (e) => {
    const view = el("ww-view");
    ww.dragging = !!(view && view.contains(e.target) && document.pointerLockElement !== view);
  });
  document.addEventListener("mouseup", () => { ww.dragging = false; });
  document.addEventListener("mousemove", (e) => {
    const view = el("ww-view");
    if (!ww.token || !view) return;
    if (document.pointerLockElement === view || (ww.dragging && e.buttons)) {
      ww.dx += e.movementX || 0;
      ww.dy += e.movementY || 0;
    }
  });
  setInterval(() => { if (ww.token && (ww.dx || ww.dy)) sendInput(); }, 50);  // mouse motion, batched

  // ------------------------------------------------------------------------------------------ frames
  function show(blob, seq) {
    const img = el("ww-frame");
    if (!img) return;
    const u = URL.createObjectURL(blob);
    const old = ww.url;
    ww.url = u;
    img.src = u;
    img.dataset.seq = String(seq);
    ww.seq = seq;
    ww.shown += 1;
    if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
    el("ww-view")?.classList.add("ww-has-frame");
  }

  async function frameLoop(token) {
    while (ww.token === token) {
      if (document.hidden) { await sleep(500); continue; }  // a hidden tab pulls nothing: its walk stops generating
      let r;
      try {
        r = await fetch(route(`worldwalk/frame/${token}?after=${ww.seq}`), { cache: "no-store" });
      } catch (err) { await sleep(500); continue; }
      if (ww.token !== token) return;
      if (r.status === 200) {
        const seq = Number(r.headers.get("X-Frame-Seq"));
        const blob = await r.blob();
        if (ww.token === token) show(blob, seq);
      } else if (r.status !== 204) {
        await sleep(r.status === 404 ? 2000 : 500);  // ended or busy server: the status loop says why
      }
    }
  }

  // ------------------------------------------------------------------------------------------ HUD, map, overlay
  const fmt = (v, d = 2) => (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(d);

  function showKeys() {
    document.querySelectorAll("#ww-keys [data-key]").forEach((k) => {
      k.classList.toggle("on", ww.keys.has(k.dataset.key));
    });
  }

  // the status line under Start (a Gradio Markdown): kept in step with the walk when its state changes by itself
  // (its place in line moves, it starts, it ends); the next Gradio event writes it again as usual
  function statusLine(html) {
    const box = el("ww-status");
    const md = box && (box.querySelector("span.md") || box.querySelector(".prose"));
    if (md) md.innerHTML = `<p>${html}</p>`;
  }

  // "this walk has ended (idle for 180 s; ...)" -> "idle for 180 s; ..."
  const reason = (m) => String(m || "").replace(/^this walk has ended\s*/i, "").replace(/^\((.*)\)$/, "$1").trim();

  function overlay(html) {
    const o = el("ww-overlay");
    if (!o) return;
    o.innerHTML = html || "";
    o.classList.toggle("ww-hidden", !html);
  }

  function drawMap(s) {
    const c = el("ww-map");
    if (!c || !c.getContext) return;
    const g = c.getContext("2d");
    const W = c.width, H = c.height;
    g.clearRect(0, 0, W, H);
    g.fillStyle = "rgba(12, 16, 24, 0.72)";
    g.fillRect(0, 0, W, H);
    const pts = (s && s.path) || [[0, 0]];
    let x0 = 0, x1 = 0, z0 = 0, z1 = 0;
    for (const [x, z] of pts) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); z0 = Math.min(z0, z); z1 = Math.max(z1, z); }
    const span = Math.max(2, x1 - x0, z1 - z0) * 1.25;
    const cx = (x0 + x1) / 2, cz = (z0 + z1) / 2, k = (W - 16) / span;
    const px = (x) => W / 2 + (x - cx) * k, pz = (z) => H / 2 - (z - cz) * k;  // forward (+z) is up on the map
    // 1 m grid
    g.strokeStyle = "rgba(255,255,255,0.08)";
    g.lineWidth = 1;
    const step = span > 40 ? 10 : 1;
    for (let v = Math.floor((cx - span) / step) * step; v <= cx + span; v += step) {
      g.beginPath(); g.moveTo(px(v), 0); g.lineTo(px(v), H); g.stroke();
    }
    for (let v = Math.floor((cz - span) / step) * step; v <= cz + span; v += step) {
      g.beginPath(); g.moveTo(0, pz(v)); g.lineTo(W, pz(v)); g.stroke();
    }
    g.strokeStyle = "#7dd3fc";
    g.lineWidth = 2;
    g.lineJoin = "round";
    g.beginPath();
    pts.forEach(([x, z], i) => (i ? g.lineTo(px(x), pz(z)) : g.moveTo(px(x), pz(z))));
    g.stroke();
    g.fillStyle = "#a3e635";
    g.beginPath(); g.arc(px(0), pz(0), 3.5, 0, 2 * Math.PI); g.fill();
    if (s && s.pos) {
      const x = px(s.pos[0]), z = pz(s.pos[2]), a = (s.heading || 0) * Math.PI / 180;
      g.save();
      g.translate(x, z);
      g.rotate(a);
      g.fillStyle = "#f97316";
      g.beginPath(); g.moveTo(0, -8); g.lineTo(5, 5); g.lineTo(0, 2); g.lineTo(-5, 5); g.closePath(); g.fill();
      g.restore();
    }
    g.fillStyle = "rgba(255,255,255,0.55)";
    g.font = "10px ui-monospace, monospace";
    g.fillText(step === 1 ? "grid 1 m" : "grid 10 m", 6, H - 6);
  }

  function showStatus(s) {
    const before = ww.status ? ww.status.state : null;
    const moved = before !== s.state || (s.state === "waiting" && ww.status.position !== s.position);
    ww.status = s;
    const hud = el("ww-hud");
    const view = el("ww-view");
    if (!hud || !view) return;
    const state = s.state;
    hud.dataset.state = state;
    view.dataset.state = state;
    if (state === "waiting") {
      hud.innerHTML = `<span class="ww-badge ww-wait">● IN LINE</span>`;
      overlay(`<b>busy — you are ${s.position} in line</b><br><small>every walk is in use; yours starts by itself ` +
        `when a place frees up</small>`);
      if (moved) statusLine(`⏳ busy — you are <b>${s.position}</b> in line. Your walk starts by itself when a place ` +
        `frees up.`);
      return;
    }
    if (state === "ended" || state === "error" || state === "gone") {
      const why = state === "error" ? String(s.error || s.message || "") : reason(s.message);
      hud.innerHTML = `<span class="ww-badge ww-off">● ${state === "error" ? "ERROR" : "ENDED"}</span>`;
      overlay(`<b>${state === "error" ? "Something went wrong" : "This walk has ended"}</b>` +
        (why ? `<br><small>${esc(why)}</small>` : "") + `<br><small>Press <b>Start walking</b> to walk again.</small>`);
      if (moved) statusLine(state === "error" ? `⚠️ Something went wrong: ${esc(why)}` :
        `Your walk has ended${why ? ` (${esc(why)})` : ""}. Press <b>▶ Start walking</b> to walk again.`);
      return;
    }
    if (moved && (before === "waiting" || before === "starting") && state === "live") {
      statusLine(`Your turn: walking in <b>${esc(s.label)}</b> (seed ${esc(s.seed)}). Click the view and use ` +
        `<kbd>W</kbd> <kbd>A</kbd> <kbd>S</kbd> <kbd>D</kbd> to walk.`);
    }
    if (state === "starting") {
      overlay("<b>Opening the world…</b>");
      if (moved && before === "waiting") statusLine("Your turn: opening the world…");
      return;
    }
    const p = s.pos || [0, 0, 0];
    hud.dataset.x = p[0]; hud.dataset.y = p[1]; hud.dataset.z = p[2];
    hud.dataset.heading = s.heading; hud.dataset.fps = s.fps;
    hud.dataset.latency = s.latency_ms == null ? "" : s.latency_ms;
    const badge = s.paused ? `<span class="ww-badge ww-pause">❚❚ PAUSED</span>` : `<span class="ww-badge ww-live">● LIVE</span>`;
    const rec = s.recording ? ` <span class="ww-badge ww-rec">● REC</span>` : "";
    const lat = s.latency_ms == null ? "–" : `${s.latency_ms} ms`;
    const idle = s.idle_left != null && s.idle_left < 30 ? `<div class="ww-idle">idle — ends in ${Math.ceil(s.idle_left)} s; press a key to stay</div>` : "";
    hud.innerHTML =
      `<div>${badge}${rec} <span class="ww-num">${s.fps.toFixed(1)}</span> fps ` +
      `<span class="ww-dim">(generating ${s.gen_fps.toFixed(0)})</span> · latency <span class="ww-num">${lat}</span></div>` +
      `<div class="ww-pos">x <span class="ww-num">${fmt(p[0])}</span> y <span class="ww-num">${fmt(-p[1])}</span> ` +
      `z <span class="ww-num">${fmt(p[2])}</span> m · heading <span class="ww-num">${Math.round(s.heading)}°</span>` +
      (s.speed == null ? "" : ` · <span class="ww-num">${s.speed.toFixed(2)}</span> m/s`) + `</div>` + idle;
    drawMap(s);
    if (s.error) overlay(`<b>Something went wrong</b><br><small>${esc(s.error)}</small><br><small>Press <b>Reset</b> or <b>Start walking</b> to try again.</small>`);
    else overlay("");
  }

  async function statusTick() {
    const token = ww.token;
    if (!token) return;
    try {
      const r = await fetch(route(`worldwalk/status/${token}`), { cache: "no-store" });
      if (ww.token !== token) return;
      if (r.status === 404) {
        const j = await r.json().catch(() => ({}));
        showStatus({ state: "ended", message: j.detail || "" });
        ww.status = null;
        ww.token = null;
        releaseAll();
        return;
      }
      if (r.ok) showStatus(await r.json());
    } catch (err) { /* server busy or restarting: try again */ }
  }

  ww.attach = (token) => {
    if (!token || token === ww.token) return;
    ww.token = token;
    ww.status = null;
    ww.seq = 0;
    ww.keys.clear();
    showKeys();
    el("ww-view")?.focus({ preventScroll: true });
    frameLoop(token);
    statusTick();
    if (!ww.statusTimer) ww.statusTimer = setInterval(statusTick, 250);
  };
  ww.detach = () => { ww.token = null; releaseAll(); };
})();
