// Shared by every page of crackal's labelling app: API calls (session cookie, CSRF header),
// the navigation bar, small DOM helpers. Plain JavaScript, no build step.
"use strict";

const crackal = {
  me: null,
  mePromise: null,

  // fetch wrapper: JSON in and out, the CSRF token on writes, a 401 sends the user to the login.
  // A write made before the page's init has fetched the token (a quick click) waits for it.
  async api(path, { method = "GET", json, body, headers = {}, raw = false } = {}) {
    const options = { method, headers: { ...headers }, credentials: "same-origin" };
    if (method !== "GET" && !path.startsWith("/api/login")) options.headers["X-CSRF-Token"] = (await crackal.whoami()).csrf;
    if (json !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(json);
    } else if (body !== undefined) {
      options.body = body;
    }
    const response = await fetch(path, options);
    if (response.status === 401 && !path.startsWith("/api/login")) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      throw new Error("signed out");
    }
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return raw ? response : response.json();
  },

  // Who is signed in and the session's CSRF token, fetched once per page.
  whoami() {
    if (!crackal.mePromise) {
      crackal.mePromise = crackal.api("/api/me").then((me) => (crackal.me = me), (error) => {
        crackal.mePromise = null;
        throw error;
      });
    }
    return crackal.mePromise;
  },

  // Who is signed in, and the navigation bar.
  async init(active) {
    await crackal.whoami();
    const nav = document.getElementById("nav");
    if (nav) {
      nav.replaceChildren(
        crackal.el("span", { class: "brand" }, "crackal · " + crackal.me.project),
        ...[["queue", "/queue"], ["dashboard", "/dashboard"], ["review", "/review"]].map(([name, href]) =>
          crackal.el("a", { href, class: name === active ? "active" : "" }, name)),
        crackal.el("span", { class: "who" }, crackal.me.name + " (" + crackal.me.role + ")"),
        crackal.el("button", { id: "logout", type: "button", onclick: crackal.logout }, "sign out"));
    }
    return crackal.me;
  },

  async logout() {
    try { await crackal.api("/api/logout", { method: "POST" }); } finally { location.href = "/login"; }
  },

  // el("a", {href: "/x", onclick: f}, "text", child...)
  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") for (const [name, v] of Object.entries(value)) node.style.setProperty(name, v);  // CSSOM: allowed by the CSP
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  },

  message(text, kind = "info") {
    const box = document.getElementById("message");
    if (!box) return;
    box.textContent = text;
    box.className = "message " + kind;
  },

  // Class colours as [r, g, b] from "#rrggbb".
  rgb(hex) {
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  },

  time(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  },

  // After a label is stored (or an image skipped): lease the next image and open it.
  async openNext() {
    const next = await crackal.api("/api/queue/next", { method: "POST" });
    if (next.id === null) location.href = "/queue?done=" + encodeURIComponent(next.message);
    else location.href = "/label/" + next.id;
  },
};

// Zoom and pan of a W x H image drawn into a canvas: screen = image * scale + offset (CSS px).
// Wheel zooms around the pointer; dragging with the space bar held (or the middle button) pans.
class View {
  constructor(canvas, width, height, redraw) {
    this.canvas = canvas;
    this.width = width;
    this.height = height;
    this.redraw = redraw;
    this.scale = 1;
    this.ox = 0;
    this.oy = 0;
    this.space = false;
    this.panning = null;
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = this.local(e);
      this.zoomAt(x, y, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
    addEventListener("keydown", (e) => {
      if (e.code === "Space" && !e.repeat && !isTyping(e)) { this.space = true; canvas.classList.add("pan"); e.preventDefault(); }
    });
    addEventListener("keyup", (e) => {
      if (e.code === "Space") { this.space = false; canvas.classList.remove("pan"); }
    });
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
    this.fit();
  }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = box.width + "px";
    this.canvas.style.height = box.height + "px";
    this.canvas.width = Math.max(1, Math.round(box.width * dpr));
    this.canvas.height = Math.max(1, Math.round(box.height * dpr));
    this.redraw();
  }

  fit() {
    const box = this.canvas.getBoundingClientRect();
    this.scale = Math.min(box.width / this.width, box.height / this.height) * 0.98;
    this.ox = (box.width - this.width * this.scale) / 2;
    this.oy = (box.height - this.height * this.scale) / 2;
    this.redraw();
  }

  set(scale, ox, oy) {
    this.scale = scale;
    this.ox = ox;
    this.oy = oy;
    this.redraw();
  }

  zoomAt(x, y, factor) {
    const scale = Math.min(64, Math.max(0.02, this.scale * factor));
    this.ox = x - (x - this.ox) * (scale / this.scale);
    this.oy = y - (y - this.oy) * (scale / this.scale);
    this.scale = scale;
    this.redraw();
  }

  local(e) {  // pointer position in CSS px relative to the canvas
    const rect = this.canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  toImage(x, y) {
    return [(x - this.ox) / this.scale, (y - this.oy) / this.scale];
  }

  toScreen(x, y) {
    return [x * this.scale + this.ox, y * this.scale + this.oy];
  }

  // Start a pan if this pointer event asks for one; returns true when it did.
  startPan(e) {
    if (!(this.space || e.button === 1)) return false;
    this.panning = { x: e.clientX, y: e.clientY, ox: this.ox, oy: this.oy };
    return true;
  }

  movePan(e) {
    if (!this.panning) return false;
    this.ox = this.panning.ox + e.clientX - this.panning.x;
    this.oy = this.panning.oy + e.clientY - this.panning.y;
    this.redraw();
    return true;
  }

  endPan() {
    const was = this.panning !== null;
    this.panning = null;
    return was;
  }

  // The canvas context with the image transform applied (device pixels included).
  context() {
    const ctx = this.canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, dpr * this.ox, dpr * this.oy);
    return ctx;
  }

  // The same context in screen CSS px (for cursors and handles).
  screenContext() {
    const ctx = this.canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }
}

function isTyping(e) {
  const tag = (e.target && e.target.tagName) || "";
  return tag === "INPUT" && e.target.type !== "range" && e.target.type !== "checkbox" || tag === "TEXTAREA" || tag === "SELECT";
}

// Load an image by URL into an HTMLImageElement.
function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot load " + url));
    img.src = url;
  });
}

// Take an image's lease for this page (or renew it when it is already ours), renew it while the
// page is open and release it when the page is left (closed, reloaded or navigated away from: the
// image goes back to the queue at once instead of after the lease's time). The page names itself
// with a random id, so a reload's release cannot end the lease its new page has just renewed.
// Returns the lease as taken; throws when someone else holds it.
async function holdLease(id, minutes, onLost) {
  const page = crypto.randomUUID(), headers = { "X-Lease-Page": page };
  const taken = await crackal.api("/api/images/" + id + "/lease", { method: "POST", headers });
  const timer = setInterval(async () => {
    try { await crackal.api("/api/images/" + id + "/lease", { method: "POST", headers }); } catch (e) { clearInterval(timer); onLost(e); }
  }, Math.max(5000, minutes * 60000 / 3));
  addEventListener("pagehide", () => {
    clearInterval(timer);
    fetch("/api/images/" + id + "/lease?if_mine=1&page=" + page, { method: "DELETE", keepalive: true, credentials: "same-origin",
      headers: { "X-CSRF-Token": crackal.me.csrf } }).catch(() => {});
  });
  addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });  // back from the cache: lease again
  return { user: taken.leased_by, expires_at: taken.lease_expires, mine: true };
}

// The labelling effort of one image, measured while its editor is open: active time (the page
// visible and some input, a pointer move or press, a key or the wheel, in the last `idleSeconds`:
// a longer pause adds only `idleSeconds`), strokes and undos. Sent with the label in the
// X-Label-Effort header; crackal.active.effort documents and checks the figures.
class EffortClock {
  constructor(idleSeconds) {
    this.idle = idleSeconds * 1000;
    this.active = 0;
    this.last = null;  // time of the last input while visible
    this.strokes = 0;
    this.undos = 0;
    for (const type of ["pointerdown", "pointermove", "keydown", "wheel"]) {
      addEventListener(type, () => this.input(), { capture: true, passive: true });
    }
    document.addEventListener("visibilitychange", () => { if (document.hidden) this.pause(); });
  }

  input(now = performance.now()) {
    if (document.hidden) return;
    this.pause(now);
    this.last = now;
  }

  pause(now = performance.now()) {  // count the time since the last input, up to the idle window
    if (this.last !== null) this.active += Math.min(now - this.last, this.idle);
    this.last = null;
  }

  seconds(now = performance.now()) {
    const open = this.last === null ? 0 : Math.min(now - this.last, this.idle);
    return Math.round((this.active + open) / 10) / 100;
  }

  report(prelabel) {
    return JSON.stringify({ active_seconds: this.seconds(), strokes: this.strokes, undos: this.undos, prelabel });
  }
}
