"use strict";
// The convergence dashboard: rounds as a table and as charts drawn here in SVG, labels per
// labeller, cost and time, the stopping state in words, and the admin's "start next round"
// with the worker's progress.

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f6feb", "#e8590c", "#2f9e44", "#ae3ec9", "#c92a2a", "#1098ad"];
let polling = null;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined && value !== null) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function fmt(value, digits = 3) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

// Lines with a point per round: series = [{name, points: [{x, y, round}]}]
function lineChart(target, series, xLabel, empty) {
  const root = document.getElementById(target);
  const W = 420, H = 240, L = 48, R = 12, T = 24, B = 36;
  const points = series.flatMap((s) => s.points).filter((p) => p.y !== null && p.y !== undefined);
  if (!points.length) {
    root.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, empty));
    return;
  }
  let [x0, x1] = [Math.min(...points.map((p) => p.x)), Math.max(...points.map((p) => p.x))];
  let [y0, y1] = [Math.min(...points.map((p) => p.y)), Math.max(...points.map((p) => p.y))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 0.05; y1 += 0.05; }
  const pad = (y1 - y0) * 0.08;
  y0 -= pad; y1 += pad;
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), sy = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  const children = [
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#98a2b3" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#98a2b3" }),
    svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, xLabel),
  ];
  for (const y of [y0 + pad, (y0 + y1) / 2, y1 - pad]) {
    children.push(svg("text", { x: L - 4, y: sy(y) + 4, "text-anchor": "end" }, fmt(y, 3)));
    children.push(svg("line", { x1: L, y1: sy(y), x2: W - R, y2: sy(y), stroke: "#eaecf0" }));
  }
  for (const x of [...new Set(points.map((p) => p.x))]) {
    children.push(svg("text", { x: sx(x), y: H - B + 14, "text-anchor": "middle" }, x));
  }
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const shown = s.points.filter((p) => p.y !== null && p.y !== undefined);
    children.push(svg("polyline", { points: shown.map((p) => sx(p.x) + "," + sy(p.y)).join(" "), fill: "none", stroke: colour,
      "stroke-width": 2, "data-series": s.name }));
    for (const p of shown) {
      children.push(svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 3.5, fill: colour, "data-series": s.name, "data-round": p.round },
        svg("title", {}, s.name + ", round " + p.round + ": " + fmt(p.y, 4) + " at " + p.x)));
    }
    children.push(svg("rect", { x: L + 8 + i * 110, y: 6, width: 10, height: 10, fill: colour }));
    children.push(svg("text", { x: L + 22 + i * 110, y: 15 }, s.name));
  });
  root.replaceChildren(...children);
}

// Grouped bars per labelling batch: series = [{name, values: [share per batch]}] (0..1)
function barChart(target, series, empty) {
  const root = document.getElementById(target);
  const W = 420, H = 240, L = 40, R = 12, T = 24, B = 36;
  const batches = Math.max(0, ...series.map((s) => s.values.length));
  if (!batches) {
    root.replaceChildren(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, empty));
    return;
  }
  const top = Math.max(0.05, ...series.flatMap((s) => s.values));
  const group = (W - L - R) / batches, bar = Math.min(28, group * 0.8 / series.length);
  const sy = (v) => H - B - v / top * (H - T - B);
  const children = [svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#98a2b3" }),
    svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, "labelling batch (0 = the initial one)"),
    svg("text", { x: L - 4, y: sy(top) + 4, "text-anchor": "end" }, fmt(top, 2)),
    svg("text", { x: L - 4, y: H - B + 4, "text-anchor": "end" }, "0")];
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    s.values.forEach((v, b) => {
      const x = L + b * group + (group - bar * series.length) / 2 + i * bar;
      children.push(svg("rect", { x, y: sy(v), width: bar - 1, height: H - B - sy(v), fill: colour, "data-batch": b,
        "data-series": s.name }, svg("title", {}, s.name + ", batch " + b + ": " + fmt(v, 3))));
    });
    children.push(svg("rect", { x: L + 8 + i * 140, y: 6, width: 10, height: 10, fill: colour }));
    children.push(svg("text", { x: L + 22 + i * 140, y: 15 }, s.name));
  });
  for (let b = 0; b < batches; b++) children.push(svg("text", { x: L + (b + 0.5) * group, y: H - B + 14, "text-anchor": "middle" }, b));
  root.replaceChildren(...children);
}

function showDashboard(data) {
  const names = data.score_names, finished = data.rounds.filter((r) => r.state === "done" && r.score !== null && r.score !== undefined);
  const advice = document.getElementById("advice");
  advice.textContent = data.stopping.text;
  advice.classList.toggle("stop", data.stopping.stop);
  const c = data.counts, cost = data.cost, effort = data.effort;
  const card = (title, value, detail, id) => crackal.el("div", { class: "card", id }, title, crackal.el("b", {}, value), detail || "");
  const seconds = Number(cost.seconds_per_image).toFixed(0) + " s per image (" + cost.seconds_source + ")";
  const saving = { reached: "saved", projected: "projected saving", none: "saving" }[cost.saving];
  document.getElementById("cards").replaceChildren(
    card("labelled", c.labelled + " of " + c.pool, c.budget ? "budget " + c.budget : "pool images"),
    card("waiting for labels", c.queued, c.unlabelled + " never selected"),
    card("labelling time", effort.measured ? effort.median_seconds + " s" : "-", effort.measured
      ? "median active time of " + effort.measured + " labels timed in the editor (" + effort.total_hours + " h in all)"
      : "no label timed yet", "card-time"),
    card("labelling cost", "$" + cost.spent.toFixed(2), cost.hours_spent + " h at $" + cost.per_image + " and " + seconds, "card-cost"),
    card(saving, cost.saved === null ? "-" : "$" + cost.saved.toFixed(2),
      (cost.hours_saved === null ? "" : cost.hours_saved + " h · ") + cost.saving_text, "card-saving"),
    card("finished rounds", finished.length, c.heldout + " held-out images score each"));

  document.getElementById("chart-score-title").textContent = "held-out " + names.score + " / " + names.precision + " / " + names.recall +
    " against labelled images (" + names.protocol + ")";
  const points = (key) => finished.map((r) => ({ x: r.labelled, y: r[key], round: r.round }));
  lineChart("chart-score", [{ name: names.score, points: points("score") }, { name: names.precision, points: points("precision") },
    { name: names.recall, points: points("recall") }], "labelled images", "no finished round yet");
  lineChart("chart-loss", [{ name: "loss", points: points("loss") }], "labelled images",
    data.task === "detection" ? "detection rounds report no held-out loss" : "no finished round yet");
  lineChart("chart-uncertainty", [{ name: "pool uncertainty", points: data.rounds.filter((r) => r.state === "done")
    .map((r) => ({ x: r.round, y: r.pool_uncertainty, round: r.round })) }], "round", "no pool score yet (or random sampling)");
  const h = data.history, balance = [{ name: "images with a defect", values: h.batch_defect_images },
    { name: "defect pixels", values: h.batch_defect_pixels }];
  for (const [name, values] of Object.entries(h.batch_class_images || {})) balance.push({ name: "images with " + name, values });
  barChart("chart-balance", balance, "no labelled batch yet");

  const columns = ["round", "state", "labelled", names.score, names.precision, names.recall, names.score_2, "loss", "pool uncertainty", "finished"];
  document.querySelector("#rounds thead").replaceChildren(crackal.el("tr", {}, ...columns.map((n) => crackal.el("th", {}, n))));
  document.querySelector("#rounds tbody").replaceChildren(...data.rounds.map((r) => crackal.el("tr", { dataset: { round: r.round } },
    ...[r.round, r.state, r.labelled, fmt(r.score), fmt(r.precision), fmt(r.recall), fmt(r.score_2), fmt(r.loss),
      r.pool_uncertainty === null ? "-" : Number(r.pool_uncertainty).toPrecision(3), r.finished_at || ""].map((v) => crackal.el("td", {}, v)))));
  const timed = Object.fromEntries(effort.labellers.map((l) => [l.name, l]));
  document.querySelector("#labellers tbody").replaceChildren(...data.labellers.map((l) => crackal.el("tr", { dataset: { name: l.name } },
    crackal.el("td", {}, l.name), crackal.el("td", {}, l.current), crackal.el("td", {}, l.all),
    crackal.el("td", {}, timed[l.name] ? timed[l.name].median_seconds + " s (" + timed[l.name].measured + " timed)" : "-"))));
  lineChart("chart-time", [{ name: "median seconds per image", points: effort.rounds.map((r) => ({ x: r.round, y: r.median_seconds, round: r.round })) }],
    "round", "no label timed yet");
  document.getElementById("start-round").hidden = !data.admin;
  showDamaged(data);
  showWorker(data.worker);
}

let damagedCheck = null;

function showDamaged(data) {  // label files found unreadable when the server started (checked in the background)
  const box = document.getElementById("damaged"), found = data.damaged_labels || [];
  box.hidden = found.length === 0;
  box.replaceChildren(crackal.el("b", {}, found.length + " damaged label file" + (found.length === 1 ? "" : "s") + " found at start-up"),
    crackal.el("ul", {}, ...found.map((d) => crackal.el("li", { dataset: { image: d.image_id } },
      crackal.el("a", { href: "/label/" + d.image_id }, d.image), " (" + d.path + "): " + d.problem +
      (d.labelled_by ? " (labelled by " + d.labelled_by + ", round " + d.round + ")" : "") + ". " +
      d.advice.charAt(0).toUpperCase() + d.advice.slice(1) + "."))));
  if (!data.labels_checked && !damagedCheck) damagedCheck = setTimeout(() => { damagedCheck = null; load(); }, 3000);
}

function showWorker(w) {
  const state = document.getElementById("worker-state"), bar = document.getElementById("worker-bar");
  const button = document.getElementById("start-round");
  let text;
  if (w.state === "idle") text = "No round has been started from this page.";
  else if (w.running) text = "Running: " + (w.phase || "starting") + (w.total ? " — " + w.done + " of " + w.total + " " + w.unit : "");
  else if (w.state === "done") text = "Round " + w.round + " finished: " + w.labelled + " labelled images, " + w.selected + " new images queued.";
  else text = (w.state === "failed" ? "The last round failed: " : "") + (w.error || w.state);
  state.textContent = text;
  state.dataset.state = w.running ? "running" : w.state;
  bar.style.width = (w.running && w.total ? Math.round(100 * w.done / w.total) : w.state === "done" ? 100 : 0) + "%";
  document.getElementById("worker-news").textContent = w.running && w.news ? w.news : "";
  button.disabled = Boolean(w.running);
  if (w.running && !polling) polling = setInterval(pollWorker, 1000);
  if (!w.running && polling) { clearInterval(polling); polling = null; load(); }
}

async function pollWorker() {
  try { showWorker(await crackal.api("/api/worker")); } catch (e) { crackal.message(e.message, "error"); }
}

async function load() {
  showDashboard(await crackal.api("/api/dashboard"));
  document.body.dataset.ready = "true";
}

document.getElementById("start-round").addEventListener("click", async () => {
  crackal.message("");
  try { showWorker(await crackal.api("/api/worker/start", { method: "POST" })); } catch (e) { crackal.message(e.message, "error"); }
});

(async () => {
  await crackal.init("dashboard");
  await load();
})().catch((e) => crackal.message(e.message, "error"));
