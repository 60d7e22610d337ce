"use strict";
// The mask editor. The mask is a Uint8Array of class indices at the image's full resolution;
// brush, eraser and polygon set its values directly (no anti-aliasing: a pixel is painted when
// its centre lies within the brush or the polygon). A full-resolution offscreen canvas holds
// the mask's colours and is updated only where a stroke changed it; the view draws the image
// and that canvas scaled, so a 4000x3000 photo stays responsive. Submitting uploads the mask as
// a single-channel PNG of class indices, encoded here.

const editor = {
  id: Number(location.pathname.split("/").pop()),
  width: 0, height: 0,
  mask: null,          // Uint8Array, width * height class indices
  snapshot: null,      // the mask when the current stroke began (for its undo patch)
  prelabel: null,      // the pre-annotation as loaded (null: no round has run)
  effort: null,        // EffortClock: active time, strokes, undos
  image: null,         // HTMLImageElement
  overlay: null,       // canvas width x height: the mask's colours
  overlayData: null,   // its ImageData (RGBA), packed colours written through a Uint32Array
  overlayWords: null,
  palette: null,       // Uint32Array: packed RGBA of each class (0: transparent)
  tool: "brush", value: 1, size: 8, opacity: 0.55, show: true,
  undo: [], redo: [], undoBytes: 0,
  stroke: null,        // {last: [x, y], box: [x0, y0, x1, y1], value}
  polygon: [],         // image points of the polygon being drawn
  tracePoints: [],     // image points clicked with the trace tool (the path between them is painted)
  assisting: 0,        // trace and fill requests on their way
  assistQueue: Promise.resolve(),
  pointer: null,       // last pointer position (screen CSS px)
  dirty: false,        // unsaved changes
  editable: false,
  view: null,
  frame: 0,
};
const UNDO_BYTES = 256 * 2 ** 20;

// --- painting (image coordinates, pixel centres at i + 0.5) -------------------------------------

// Set every pixel whose centre is within r of the segment a-b to value; returns the touched box.
function paintCapsule(ax, ay, bx, by, r, value) {
  const W = editor.width, H = editor.height, mask = editor.mask;
  const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - r)), x1 = Math.min(W, Math.ceil(Math.max(ax, bx) + r));
  const y0 = Math.max(0, Math.floor(Math.min(ay, by) - r)), y1 = Math.min(H, Math.ceil(Math.max(ay, by) + r));
  if (x0 >= x1 || y0 >= y1) return null;
  const dx = bx - ax, dy = by - ay, length2 = dx * dx + dy * dy, r2 = r * r;
  for (let y = y0; y < y1; y++) {
    const py = y + 0.5;
    for (let x = x0; x < x1; x++) {
      const px = x + 0.5;
      let t = length2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / length2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = px - (ax + t * dx), ey = py - (ay + t * dy);
      if (ex * ex + ey * ey <= r2) mask[y * W + x] = value;
    }
  }
  return [x0, y0, x1, y1];
}

// Fill the pixels whose centre is inside the polygon (even-odd rule); returns the touched box.
function fillPolygon(points, value) {
  const W = editor.width, H = editor.height, mask = editor.mask;
  const ys = points.map((p) => p[1]), xs = points.map((p) => p[0]);
  const y0 = Math.max(0, Math.floor(Math.min(...ys))), y1 = Math.min(H, Math.ceil(Math.max(...ys)));
  const bx0 = Math.max(0, Math.floor(Math.min(...xs))), bx1 = Math.min(W, Math.ceil(Math.max(...xs)));
  for (let y = y0; y < y1; y++) {
    const py = y + 0.5, crossings = [];
    for (let i = 0; i < points.length; i++) {
      const [ax, ay] = points[i], [bx, by] = points[(i + 1) % points.length];
      if ((ay <= py && by > py) || (by <= py && ay > py)) crossings.push(ax + (py - ay) * (bx - ax) / (by - ay));
    }
    crossings.sort((a, b) => a - b);
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const from = Math.max(0, Math.ceil(crossings[k] - 0.5)), to = Math.min(W, Math.ceil(crossings[k + 1] - 0.5));
      for (let x = from; x < to; x++) mask[y * W + x] = value;
    }
  }
  return bx0 < bx1 && y0 < y1 ? [bx0, y0, bx1, y1] : null;
}

function union(a, b) {
  if (!a) return b;
  if (!b) return a;
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}

// Copy the colours of a box of the mask into the offscreen canvas.
function refresh(box) {
  if (!box) return;
  const [x0, y0, x1, y1] = box, W = editor.width, words = editor.overlayWords, palette = editor.palette, mask = editor.mask;
  for (let y = y0; y < y1; y++) {
    for (let i = y * W + x0, end = y * W + x1; i < end; i++) words[i] = palette[mask[i]];
  }
  editor.overlay.getContext("2d").putImageData(editor.overlayData, 0, 0, x0, y0, x1 - x0, y1 - y0);
  draw();
}

function patch(box, source) {
  const [x0, y0, x1, y1] = box, W = editor.width, w = x1 - x0, out = new Uint8Array(w * (y1 - y0));
  for (let y = y0; y < y1; y++) out.set(source.subarray(y * W + x0, y * W + x1), (y - y0) * w);
  return out;
}

function put(box, data) {
  const [x0, y0, x1, y1] = box, W = editor.width, w = x1 - x0;
  for (let y = y0; y < y1; y++) editor.mask.set(data.subarray((y - y0) * w, (y - y0 + 1) * w), y * W + x0);
  refresh(box);
}

// One undo step: the box a change touched, its pixels before and after.
function record(box) {
  if (!box) return;
  const step = { box, before: patch(box, editor.snapshot), after: patch(box, editor.mask) };
  editor.undo.push(step);
  editor.undoBytes += step.before.length * 2;
  while (editor.undoBytes > UNDO_BYTES && editor.undo.length > 1) {
    const old = editor.undo.shift();
    editor.undoBytes -= old.before.length * 2;
  }
  editor.redo = [];
  editor.dirty = true;
  if (editor.effort) editor.effort.strokes += 1;
}

function change(apply) {  // a whole change at once (polygon, clear): snapshot, apply, record
  editor.snapshot.set(editor.mask);
  const box = apply();
  refresh(box);
  record(box);
}

function undo() {
  const step = editor.undo.pop();
  if (!step) return;
  editor.effort.undos += 1;
  editor.undoBytes -= step.before.length * 2;
  put(step.box, step.before);
  editor.redo.push(step);
  editor.dirty = true;
}

function redo() {
  const step = editor.redo.pop();
  if (!step) return;
  put(step.box, step.after);
  editor.undo.push(step);
  editor.undoBytes += step.before.length * 2;
  editor.dirty = true;
}

// --- assists: crack tracing and click-to-fill (computed by the server, crackal/app/assist.py) -------

// Run assist steps one after another: a click made while a request is on its way waits its turn.
function assist(step) {
  editor.assisting++;
  editor.assistQueue = editor.assistQueue.then(step).catch((error) => crackal.message(error.message, "error"))
    .finally(() => { editor.assisting--; draw(); });
  return editor.assistQueue;
}

// A click of the trace tool: the server's path from the previous point to this one is painted at
// the brush size in the current class (Shift: erased), one undo step per segment.
function tracePoint(x, y, erase) {
  const points = editor.tracePoints, last = points[points.length - 1];
  if (last && Math.hypot(last[0] - x, last[1] - y) < 1) return;  // the second click of a double-click
  points.push([x, y]);
  draw();
  if (!last) return;
  const value = erase ? 0 : editor.value, r = editor.size / 2;
  assist(async () => {
    const answer = await crackal.api("/api/images/" + editor.id + "/trace", { method: "POST", json: { points: [last, [x, y]] } });
    if (!editor.editable) return;
    const centres = answer.path.map(([px, py]) => [px + 0.5, py + 0.5]);
    change(() => {
      let box = paintCapsule(...centres[0], ...centres[0], r, value);
      for (let i = 1; i < centres.length; i++) box = union(box, paintCapsule(...centres[i - 1], ...centres[i], r, value));
      return box;
    });
  });
}

function endTrace() {
  editor.tracePoints = [];
  draw();
}

// A click of the fill tool: the server's region around the point, in the current class (Shift:
// erased), as one undo step. The region comes as its box and the zlib-compressed 0/1 bytes of it.
function fillAt(x, y, erase) {
  const value = erase ? 0 : editor.value;
  assist(async () => {
    const answer = await crackal.api("/api/images/" + editor.id + "/fill", { method: "POST", json: { x, y } });
    const packed = Uint8Array.from(atob(answer.mask), (c) => c.charCodeAt(0));
    const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
    const bits = new Uint8Array(await new Response(stream).arrayBuffer());
    if (!editor.editable) return;
    const { x0, y0, x1, y1 } = answer, w = x1 - x0, W = editor.width, mask = editor.mask;
    change(() => {
      for (let row = y0; row < y1; row++) {
        for (let col = x0; col < x1; col++) if (bits[(row - y0) * w + col - x0]) mask[row * W + col] = value;
      }
      return [x0, y0, x1, y1];
    });
    crackal.message((erase ? "erased " : "filled ") + answer.pixels + " pixels", "ok");
  });
}

// --- drawing ---------------------------------------------------------------------------------------

function draw() {
  if (editor.frame) return;
  editor.frame = requestAnimationFrame(() => {
    editor.frame = 0;
    render();
  });
}

function render() {
  const view = editor.view;
  if (!view || !editor.image) return;
  const ctx = view.context();
  ctx.imageSmoothingEnabled = view.scale < 1;  // pixels stay square when zoomed in
  ctx.drawImage(editor.image, 0, 0);
  if (editor.show) {
    ctx.globalAlpha = editor.opacity;
    ctx.drawImage(editor.overlay, 0, 0);
    ctx.globalAlpha = 1;
  }
  const screen = view.screenContext();
  if (editor.polygon.length) {
    screen.strokeStyle = "#ffffff";
    screen.lineWidth = 1.5;
    screen.setLineDash([4, 3]);
    screen.beginPath();
    for (const [x, y] of editor.polygon) screen.lineTo(...view.toScreen(x, y));
    if (editor.pointer) screen.lineTo(...editor.pointer);
    screen.stroke();
    screen.setLineDash([]);
  }
  if (editor.tracePoints.length) {  // the trace's points, and a dashed line to the pointer
    const last = editor.tracePoints[editor.tracePoints.length - 1];
    screen.strokeStyle = "#ffffff";
    screen.lineWidth = 1.5;
    if (editor.pointer) {
      screen.setLineDash([4, 3]);
      screen.beginPath();
      screen.moveTo(...view.toScreen(...last));
      screen.lineTo(...editor.pointer);
      screen.stroke();
      screen.setLineDash([]);
    }
    screen.fillStyle = crackal.me.colours[editor.value];
    for (const [x, y] of editor.tracePoints) {
      screen.beginPath();
      screen.arc(...view.toScreen(x, y), 4, 0, 2 * Math.PI);
      screen.fill();
      screen.stroke();
    }
  }
  if (editor.pointer && editor.tool !== "polygon" && editor.tool !== "fill" && !view.space) {
    screen.strokeStyle = editor.tool === "eraser" ? "#ffffff" : crackal.me.colours[editor.value];
    screen.lineWidth = 1;
    screen.beginPath();
    screen.arc(...editor.pointer, Math.max(1, editor.size / 2 * view.scale), 0, 2 * Math.PI);
    screen.stroke();
  }
}

// --- pointer and keys ------------------------------------------------------------------------------------

function onDown(e) {
  const view = editor.view;
  if (view.startPan(e)) { editor.view.canvas.setPointerCapture(e.pointerId); return; }
  if (e.button !== 0 || !editor.editable) return;
  const [x, y] = view.toImage(...view.local(e));
  if (editor.tool === "polygon") {
    const first = editor.polygon[0];
    if (first && editor.polygon.length > 2) {
      const [fx, fy] = view.toScreen(...first), [sx, sy] = view.local(e);
      if (Math.hypot(fx - sx, fy - sy) < 8) { closePolygon(e.shiftKey); return; }
    }
    editor.polygon.push([x, y]);
    draw();
    return;
  }
  if (editor.tool === "trace") { tracePoint(x, y, e.shiftKey); return; }
  if (editor.tool === "fill") { fillAt(x, y, e.shiftKey); return; }
  editor.view.canvas.setPointerCapture(e.pointerId);
  editor.snapshot.set(editor.mask);
  const value = editor.tool === "eraser" ? 0 : editor.value;
  editor.stroke = { last: [x, y], box: null, value };
  editor.stroke.box = paintCapsule(x, y, x, y, editor.size / 2, value);
  refresh(editor.stroke.box);
}

function onMove(e) {
  const view = editor.view;
  editor.pointer = view.local(e);
  if (view.movePan(e)) return;
  if (editor.stroke) {
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const event of events.length ? events : [e]) {
      const [x, y] = view.toImage(...view.local(event));
      const [lx, ly] = editor.stroke.last;
      const box = paintCapsule(lx, ly, x, y, editor.size / 2, editor.stroke.value);
      editor.stroke.box = union(editor.stroke.box, box);
      editor.stroke.last = [x, y];
      refresh(box);
    }
  }
  draw();
}

function onUp() {
  if (editor.view.endPan()) return;
  if (!editor.stroke) return;
  record(editor.stroke.box);
  editor.stroke = null;
}

function closePolygon(erase) {
  const points = editor.polygon;
  editor.polygon = [];
  if (points.length > 2) change(() => fillPolygon(points, erase ? 0 : editor.value));
  draw();
}

function setTool(tool) {
  editor.tool = tool;
  editor.polygon = [];
  editor.tracePoints = [];
  for (const button of document.querySelectorAll("[data-tool]")) button.classList.toggle("on", button.dataset.tool === tool);
  draw();
}

function setSize(size) {
  editor.size = Math.max(1, Math.min(200, Math.round(size)));
  document.getElementById("size").value = editor.size;
  document.getElementById("size-value").textContent = editor.size;
  draw();
}

function setClass(value) {
  if (value < 1 || value >= crackal.me.class_names.length) return;
  editor.value = value;
  for (const button of document.querySelectorAll("[data-class]")) button.classList.toggle("on", Number(button.dataset.class) === value);
  if (editor.tool === "eraser") setTool("brush");
  draw();
}

function setShow(show) {
  editor.show = show;
  document.getElementById("show").checked = show;
  draw();
}

function onKey(e) {
  if (isTyping(e)) return;
  const ctrl = e.ctrlKey || e.metaKey;
  if (ctrl && e.key === "Enter") { e.preventDefault(); submit(); return; }
  if (ctrl && (e.key === "z" || e.key === "Z")) { e.preventDefault(); if (e.shiftKey) redo(); else undo(); return; }
  if (ctrl && (e.key === "y" || e.key === "Y")) { e.preventDefault(); redo(); return; }
  if (ctrl || e.altKey) return;
  if (e.key === "[") setSize(editor.size > 10 ? editor.size / 1.2 : editor.size - 1);
  else if (e.key === "]") setSize(editor.size >= 10 ? editor.size * 1.2 : editor.size + 1);
  else if (e.key === "b" || e.key === "B") setTool("brush");
  else if (e.key === "e" || e.key === "E") setTool("eraser");
  else if (e.key === "p" || e.key === "P") setTool("polygon");
  else if (e.key === "t" || e.key === "T") setTool("trace");
  else if (e.key === "g" || e.key === "G") setTool("fill");
  else if (e.key === "h" || e.key === "H") setShow(!editor.show);
  else if (e.key === "f" || e.key === "F") editor.view.fit();
  else if (e.key === "Enter" && editor.polygon.length) closePolygon(e.shiftKey);
  else if (e.key === "Enter" && editor.tracePoints.length) endTrace();
  else if (e.key === "Escape") { editor.polygon = []; editor.tracePoints = []; draw(); }
  else if (e.key === "Backspace" && editor.polygon.length) { editor.polygon.pop(); draw(); }
  else if (/^[1-9]$/.test(e.key)) setClass(Number(e.key));
}

// --- PNG of class indices (single channel, 8 bits), compressed by the browser's zlib ---------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length), view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set([...type].map((c) => c.charCodeAt(0)), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function encodePng(mask, width, height) {
  const rows = new Uint8Array((width + 1) * height);  // each row: filter type 0, then its pixels
  for (let y = 0; y < height; y++) rows.set(mask.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const stream = new Blob([rows]).stream().pipeThrough(new CompressionStream("deflate"));
  const compressed = new Uint8Array(await new Response(stream).arrayBuffer());
  const header = new Uint8Array(13), view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8);  // 8 bits, grey, deflate, no filter method, no interlace
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([signature, chunk("IHDR", header), chunk("IDAT", compressed), chunk("IEND", new Uint8Array())], { type: "image/png" });
}

// --- the image, its lease, submit --------------------------------------------------------------------------

async function submit() {
  if (!editor.editable) return;
  editor.editable = false;
  crackal.message("storing the mask…");
  try {
    const png = await encodePng(editor.mask, editor.width, editor.height);
    await crackal.api("/api/images/" + editor.id + "/mask", { method: "POST", body: png,
      headers: { "Content-Type": "image/png", "X-Label-Effort": editor.effort.report(prelabelOutcome()) } });
    editor.dirty = false;
    crackal.message("stored", "ok");
    await crackal.openNext();
  } catch (error) {
    editor.editable = true;
    crackal.message(error.message, "error");
  }
}

// What became of the pre-annotation: none (no round yet), accepted (submitted unchanged), redrawn
// (fewer than half of its defect pixels kept) or edited.
function prelabelOutcome() {
  const before = editor.prelabel, after = editor.mask;
  if (!before) return "none";
  let same = true, defects = 0, kept = 0;
  for (let i = 0; i < after.length; i++) {
    if (before[i] !== after[i]) same = false;
    if (before[i] > 0) { defects++; if (after[i] === before[i]) kept++; }
  }
  if (same) return "accepted";
  return defects > 0 && kept < defects / 2 ? "redrawn" : "edited";
}

async function noDefect() {
  if (!editor.editable) return;
  change(() => { editor.mask.fill(0); return [0, 0, editor.width, editor.height]; });
  await submit();
}

async function skip() {
  try {
    await crackal.api("/api/images/" + editor.id + "/skip", { method: "POST" });
    editor.dirty = false;
    await crackal.openNext();
  } catch (error) {
    crackal.message(error.message, "error");
  }
}

async function loadMask() {
  const response = await crackal.api("/api/images/" + editor.id + "/prelabel", { raw: true });
  const stream = response.body.pipeThrough(new DecompressionStream("deflate"));
  const mask = new Uint8Array(await new Response(stream).arrayBuffer());
  if (mask.length !== editor.width * editor.height) throw new Error("the pre-annotation does not match the image size");
  return [mask, response.headers.get("x-round")];
}

async function start() {
  const me = await crackal.init("");
  const info = await crackal.api("/api/images/" + editor.id);
  editor.width = info.width;
  editor.height = info.height;
  document.getElementById("image-name").textContent = info.name + " (" + info.width + "×" + info.height + ")";
  document.title = "crackal · " + info.name;

  // the class picker in the project's colours (background is the eraser)
  const picker = document.getElementById("classes");
  picker.replaceChildren(...me.class_names.slice(1).map((name, i) => crackal.el("button", {
    type: "button", "data-class": i + 1, title: name + " (" + (i + 1) + ")", style: { "--swatch": me.colours[i + 1] },
    onclick: () => setClass(i + 1) }, name)));
  editor.palette = new Uint32Array(256);
  const bytes = new Uint8Array(editor.palette.buffer);
  me.colours.forEach((hex, c) => { if (c > 0) bytes.set([...crackal.rgb(hex), 255], c * 4); });
  bytes.set([128, 128, 128, 255], 255 * 4);  // ignored pixels

  let round;
  [editor.image, [editor.mask, round]] = await Promise.all([loadImage("/api/images/" + editor.id + "/image"), loadMask()]);
  editor.snapshot = new Uint8Array(editor.mask.length);
  editor.prelabel = round ? editor.mask.slice() : null;
  editor.effort = new EffortClock(me.effort_idle_seconds);
  editor.overlay = document.createElement("canvas");
  editor.overlay.width = editor.width;
  editor.overlay.height = editor.height;
  editor.overlayData = new ImageData(editor.width, editor.height);
  editor.overlayWords = new Uint32Array(editor.overlayData.data.buffer);
  const canvas = document.getElementById("canvas");
  editor.view = new View(canvas, editor.width, editor.height, draw);
  refresh([0, 0, editor.width, editor.height]);

  // the lease: taken (or renewed) for this page; someone else's leaves the editor read-only
  if (!info.queued) {
    crackal.message("this image is not in the labelling queue" + (info.labelled_by ? " (labelled by " + info.labelled_by + ")" : ""), "error");
  } else {
    try {
      await holdLease(editor.id, me.lease_minutes, (e) => { editor.editable = false; crackal.message(e.message, "error"); });
      editor.editable = true;
      document.getElementById("lease").textContent = "yours" + (round ? " · pre-annotated by round " + round : "");
    } catch (error) {
      crackal.message(error.message, "error");
    }
  }

  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointercancel", onUp);
  canvas.addEventListener("pointerleave", () => { editor.pointer = null; draw(); });
  canvas.addEventListener("dblclick", (e) => { if (editor.tool === "polygon") { e.preventDefault(); editor.polygon.pop(); closePolygon(e.shiftKey); } });
  addEventListener("keydown", onKey);
  addEventListener("beforeunload", (e) => { if (editor.dirty) e.preventDefault(); });
  for (const button of document.querySelectorAll("[data-tool]")) button.addEventListener("click", () => setTool(button.dataset.tool));
  document.getElementById("size").addEventListener("input", (e) => setSize(Number(e.target.value)));
  document.getElementById("opacity").addEventListener("input", (e) => { editor.opacity = Number(e.target.value) / 100; draw(); });
  document.getElementById("show").addEventListener("change", (e) => setShow(e.target.checked));
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("redo").addEventListener("click", redo);
  document.getElementById("fit").addEventListener("click", () => editor.view.fit());
  document.getElementById("submit").addEventListener("click", submit);
  document.getElementById("nodefect").addEventListener("click", noDefect);
  document.getElementById("skip").addEventListener("click", skip);
  setTool("brush");
  setClass(1);
  setSize(editor.size);
  document.body.dataset.ready = "true";  // for tests and screenshots
}

document.getElementById("canvas").addEventListener("dblclick", () => { if (editor.tool === "trace") endTrace(); });

// For tests and scripting: the view and the mask.
window.crackalEditor = {
  setView: (scale, ox, oy) => editor.view.set(scale, ox, oy),
  mask: () => Array.from(editor.mask),
  assisting: () => editor.assisting,  // trace and fill requests not answered yet
  tracePoints: () => editor.tracePoints.map((p) => p.slice()),
  state: () => ({ tool: editor.tool, size: editor.size, value: editor.value, undo: editor.undo.length, redo: editor.redo.length,
                  editable: editor.editable, width: editor.width, height: editor.height }),
  effort: () => JSON.parse(editor.effort.report(prelabelOutcome())),
};

start().catch((error) => crackal.message(error.message, "error"));
