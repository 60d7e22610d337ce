"use strict";
// The box editor of detection projects: draw, move, resize and delete boxes, a class per box.
// Boxes are whole image pixels, {x0, y0, x1, y1, label} with x1 and y1 exclusive (crackal's
// convention); submitting stores them as the VOC file 'crackal al import' would.

const boxes = {
  id: Number(location.pathname.split("/").pop()),
  width: 0, height: 0, image: null, view: null,
  list: [], selected: -1, value: 1, show: true,
  undo: [], redo: [],
  drag: null,         // {kind: "new" | "move" | "resize", index, start: [x, y], original, handle}
  editable: false, dirty: false, frame: 0,
  prelabel: null,     // the pre-annotated boxes as loaded (null: no round has run)
  effort: null,       // EffortClock: active time, strokes (box changes), undos
};
const HANDLE = 6;  // screen px around a corner or an edge that grab it

function clampBox(b) {
  const x0 = Math.max(0, Math.min(b.x0, b.x1)), x1 = Math.min(boxes.width, Math.max(b.x0, b.x1));
  const y0 = Math.max(0, Math.min(b.y0, b.y1)), y1 = Math.min(boxes.height, Math.max(b.y0, b.y1));
  return { x0, y0, x1, y1, label: b.label };
}

function remember() {  // before a change: the list as it was, for undo
  boxes.undo.push(JSON.stringify(boxes.list));
  if (boxes.effort) boxes.effort.strokes += 1;
  boxes.redo = [];
  boxes.dirty = true;
}

function forget() {  // what remember() kept was no change after all (a click)
  boxes.undo.pop();
  if (boxes.effort) boxes.effort.strokes -= 1;
}

function restore(from, to) {
  const state = from.pop();
  if (state === undefined) return;
  if (from === boxes.undo) boxes.effort.undos += 1;
  to.push(JSON.stringify(boxes.list));
  boxes.list = JSON.parse(state);
  boxes.selected = Math.min(boxes.selected, boxes.list.length - 1);
  boxes.dirty = true;
  changed();
}

function changed() {
  const names = crackal.me.class_names;
  document.getElementById("list").replaceChildren(...boxes.list.map((b, i) => crackal.el("div", {
    class: i === boxes.selected ? "on" : "", onclick: () => { boxes.selected = i; changed(); } },
  crackal.el("span", { style: { color: crackal.me.colours[b.label] } }, "■ "),
  names[b.label] + " " + (b.x1 - b.x0) + "×" + (b.y1 - b.y0))));
  for (const button of document.querySelectorAll("[data-class]")) {
    const label = boxes.selected >= 0 ? boxes.list[boxes.selected].label : boxes.value;
    button.classList.toggle("on", Number(button.dataset.class) === label);
  }
  draw();
}

function draw() {
  if (boxes.frame) return;
  boxes.frame = requestAnimationFrame(() => { boxes.frame = 0; render(); });
}

function render() {
  const view = boxes.view;
  if (!view || !boxes.image) return;
  const ctx = view.context();
  ctx.imageSmoothingEnabled = view.scale < 1;
  ctx.drawImage(boxes.image, 0, 0);
  if (!boxes.show) return;
  const screen = view.screenContext();
  boxes.list.forEach((b, i) => {
    const [x0, y0] = view.toScreen(b.x0, b.y0), [x1, y1] = view.toScreen(b.x1, b.y1);
    screen.strokeStyle = crackal.me.colours[b.label];
    screen.lineWidth = i === boxes.selected ? 3 : 2;
    screen.strokeRect(x0, y0, x1 - x0, y1 - y0);
    if (i === boxes.selected) {
      screen.fillStyle = "#ffffff";
      for (const [hx, hy] of handles(b)) {
        const [sx, sy] = view.toScreen(hx, hy);
        screen.fillRect(sx - 3, sy - 3, 6, 6);
      }
    }
  });
}

function handles(b) {  // corners and edge midpoints, named by the edges they move
  const mx = (b.x0 + b.x1) / 2, my = (b.y0 + b.y1) / 2;
  return [[b.x0, b.y0, "nw"], [b.x1, b.y0, "ne"], [b.x0, b.y1, "sw"], [b.x1, b.y1, "se"],
    [mx, b.y0, "n"], [mx, b.y1, "s"], [b.x0, my, "w"], [b.x1, my, "e"]];
}

function hit(sx, sy) {  // what the pointer is on: a handle of the selected box, else a box (topmost first)
  const view = boxes.view;
  if (boxes.selected >= 0) {
    for (const [hx, hy, name] of handles(boxes.list[boxes.selected])) {
      const [px, py] = view.toScreen(hx, hy);
      if (Math.abs(px - sx) <= HANDLE && Math.abs(py - sy) <= HANDLE) return { kind: "resize", index: boxes.selected, handle: name };
    }
  }
  const [x, y] = view.toImage(sx, sy);
  for (let i = boxes.list.length - 1; i >= 0; i--) {
    const b = boxes.list[i];
    if (x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1) return { kind: "move", index: i };
  }
  return null;
}

function onDown(e) {
  const view = boxes.view;
  if (view.startPan(e)) { view.canvas.setPointerCapture(e.pointerId); return; }
  if (e.button !== 0 || !boxes.editable) return;
  view.canvas.setPointerCapture(e.pointerId);
  const [sx, sy] = view.local(e);
  const [x, y] = view.toImage(sx, sy);
  const target = hit(sx, sy);
  remember();
  if (target) {
    boxes.selected = target.index;
    boxes.drag = { ...target, start: [x, y], original: { ...boxes.list[target.index] } };
  } else {
    const px = Math.round(x), py = Math.round(y);
    boxes.list.push({ x0: px, y0: py, x1: px, y1: py, label: boxes.value });
    boxes.selected = boxes.list.length - 1;
    boxes.drag = { kind: "new", index: boxes.selected, start: [px, py] };
  }
  changed();
}

function onMove(e) {
  const view = boxes.view;
  if (view.movePan(e) || !boxes.drag) return;
  const [x, y] = view.toImage(...view.local(e));
  const d = boxes.drag, b = boxes.list[d.index];
  if (d.kind === "new") {
    Object.assign(b, { x0: d.start[0], y0: d.start[1], x1: Math.round(x), y1: Math.round(y) });
  } else if (d.kind === "move") {
    const o = d.original, w = o.x1 - o.x0, h = o.y1 - o.y0;
    const x0 = Math.max(0, Math.min(boxes.width - w, o.x0 + Math.round(x - d.start[0])));
    const y0 = Math.max(0, Math.min(boxes.height - h, o.y0 + Math.round(y - d.start[1])));
    Object.assign(b, { x0, y0, x1: x0 + w, y1: y0 + h });
  } else {
    const o = d.original, rx = Math.round(x), ry = Math.round(y);
    Object.assign(b, o);
    if (d.handle.includes("w")) b.x0 = rx;
    if (d.handle.includes("e")) b.x1 = rx;
    if (d.handle.includes("n")) b.y0 = ry;
    if (d.handle.includes("s")) b.y1 = ry;
  }
  changed();
}

function onUp() {
  if (boxes.view.endPan() || !boxes.drag) return;
  const d = boxes.drag;
  boxes.drag = null;
  let b = clampBox(boxes.list[d.index]);
  if (b.x1 - b.x0 < 1 || b.y1 - b.y0 < 1) {
    if (d.kind === "new") {  // a click on the image, not a box
      boxes.list.splice(d.index, 1);
      boxes.selected = -1;
      forget();
      changed();
      return;
    }
    b = d.original;  // a box is not resized to nothing
  }
  boxes.list[d.index] = b;
  if (d.kind !== "new" && JSON.stringify(d.original) === JSON.stringify(b)) forget();  // a click selects
  changed();
}

function setClass(value) {
  if (value < 1 || value >= crackal.me.class_names.length) return;
  boxes.value = value;
  if (boxes.selected >= 0 && boxes.list[boxes.selected].label !== value) {
    remember();
    boxes.list[boxes.selected].label = value;
  }
  changed();
}

function deleteSelected() {
  if (boxes.selected < 0 || !boxes.editable) return;
  remember();
  boxes.list.splice(boxes.selected, 1);
  boxes.selected = -1;
  changed();
}

function onKey(e) {
  if (isTyping(e)) return;
  const ctrl = e.ctrlKey || e.metaKey;
  if (ctrl && e.key === "Enter") { e.preventDefault(); submit(); return; }
  if (ctrl && (e.key === "z" || e.key === "Z")) { e.preventDefault(); if (e.shiftKey) restore(boxes.redo, boxes.undo); else restore(boxes.undo, boxes.redo); return; }
  if (ctrl && (e.key === "y" || e.key === "Y")) { e.preventDefault(); restore(boxes.redo, boxes.undo); return; }
  if (ctrl || e.altKey) return;
  if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); deleteSelected(); }
  else if (e.key === "Escape") { boxes.selected = -1; changed(); }
  else if (e.key === "h" || e.key === "H") { boxes.show = !boxes.show; document.getElementById("show").checked = boxes.show; draw(); }
  else if (e.key === "f" || e.key === "F") boxes.view.fit();
  else if (/^[1-9]$/.test(e.key)) setClass(Number(e.key));
}

// What became of the pre-annotated boxes: none (no round yet), accepted (unchanged), redrawn (fewer
// than half of them kept as they were) or edited.
function prelabelOutcome(list) {
  if (!boxes.prelabel) return "none";
  const submitted = new Set(list.map((b) => JSON.stringify(b)));
  const kept = boxes.prelabel.filter((b) => submitted.has(JSON.stringify(b))).length;
  if (kept === boxes.prelabel.length && list.length === kept) return "accepted";
  return boxes.prelabel.length && kept < boxes.prelabel.length / 2 ? "redrawn" : "edited";
}

async function submit(list = boxes.list) {
  if (!boxes.editable) return;
  boxes.editable = false;
  crackal.message("storing the boxes…");
  try {
    await crackal.api("/api/images/" + boxes.id + "/boxes", { method: "POST", json: { boxes: list },
      headers: { "X-Label-Effort": boxes.effort.report(prelabelOutcome(list)) } });
    boxes.dirty = false;
    await crackal.openNext();
  } catch (error) {
    boxes.editable = true;
    crackal.message(error.message, "error");
  }
}

async function start() {
  const me = await crackal.init("");
  const info = await crackal.api("/api/images/" + boxes.id);
  boxes.width = info.width;
  boxes.height = info.height;
  document.getElementById("image-name").textContent = info.name + " (" + info.width + "×" + info.height + ")";
  document.getElementById("classes").replaceChildren(...me.class_names.slice(1).map((name, i) => crackal.el("button", {
    type: "button", "data-class": i + 1, title: name + " (" + (i + 1) + ")", style: { "--swatch": me.colours[i + 1] },
    onclick: () => setClass(i + 1) }, name)));
  const [image, prelabel] = await Promise.all([loadImage("/api/images/" + boxes.id + "/image"),
    crackal.api("/api/images/" + boxes.id + "/prelabel")]);
  boxes.image = image;
  boxes.list = prelabel.boxes.map((b) => clampBox({ x0: Math.round(b.x0), y0: Math.round(b.y0), x1: Math.round(b.x1),
    y1: Math.round(b.y1), label: b.label }));
  boxes.prelabel = prelabel.round ? JSON.parse(JSON.stringify(boxes.list)) : null;
  boxes.effort = new EffortClock(me.effort_idle_seconds);
  const canvas = document.getElementById("canvas");
  boxes.view = new View(canvas, boxes.width, boxes.height, draw);
  if (info.queued) {
    try {
      await holdLease(boxes.id, me.lease_minutes, (e) => { boxes.editable = false; crackal.message(e.message, "error"); });
      boxes.editable = true;
      document.getElementById("lease").textContent = "yours" + (prelabel.round ? " · pre-annotated by round " + prelabel.round : "");
    } catch (error) {
      crackal.message(error.message, "error");
    }
  } else {
    crackal.message("this image is not in the labelling queue", "error");
  }
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointercancel", onUp);
  addEventListener("keydown", onKey);
  addEventListener("beforeunload", (e) => { if (boxes.dirty) e.preventDefault(); });
  document.getElementById("show").addEventListener("change", (e) => { boxes.show = e.target.checked; draw(); });
  document.getElementById("delete").addEventListener("click", deleteSelected);
  document.getElementById("undo").addEventListener("click", () => restore(boxes.undo, boxes.redo));
  document.getElementById("redo").addEventListener("click", () => restore(boxes.redo, boxes.undo));
  document.getElementById("fit").addEventListener("click", () => boxes.view.fit());
  document.getElementById("submit").addEventListener("click", () => submit());
  document.getElementById("nodefect").addEventListener("click", () => submit([]));
  document.getElementById("skip").addEventListener("click", async () => {
    try {
      await crackal.api("/api/images/" + boxes.id + "/skip", { method: "POST" });
      boxes.dirty = false;
      await crackal.openNext();
    } catch (error) { crackal.message(error.message, "error"); }
  });
  setClass(1);
  document.body.dataset.ready = "true";
}

window.crackalBoxes = {
  setView: (scale, ox, oy) => boxes.view.set(scale, ox, oy),
  boxes: () => JSON.parse(JSON.stringify(boxes.list)),
  state: () => ({ selected: boxes.selected, value: boxes.value, undo: boxes.undo.length, editable: boxes.editable }),
  effort: () => JSON.parse(boxes.effort.report(prelabelOutcome(boxes.list))),
};

start().catch((error) => crackal.message(error.message, "error"));
