"use strict";
// A read-only viewer for any pool or held-out image: the image, the current model's prediction,
// its defect probability, the per-pixel uncertainty (the project's heuristic, BALD by default)
// and the ground truth or the current label.

const LAYERS = [
  ["image", "image", false],
  ["prediction", "prediction of the latest round's model", true],
  ["probability", "defect probability (white = 1)", false],
  ["uncertainty", "per-pixel uncertainty (white = the most a pixel can have)", false],
  ["truth", "ground truth, or the current label", true],
];
let images = [];
let round = null;

function layerCard(id, name, caption, overlay) {
  const stack = crackal.el("div", { class: "stack" });
  const figure = crackal.el("figure", { class: "layer", dataset: { layer: name } }, stack, crackal.el("p", {}, caption));
  const url = name === "image" ? "/api/images/" + id + "/image" : "/api/review/" + id + "/" + name;
  const top = crackal.el("img", { src: url, alt: caption, dataset: { layer: name } });
  top.addEventListener("error", () => {
    figure.dataset.missing = "true";
    stack.replaceChildren(crackal.el("p", { class: "hint" }, name === "truth" ? "no ground truth or label" :
      round === null ? "no round has run yet" : "not available for this project"));
  });
  top.addEventListener("load", () => { figure.dataset.loaded = "true"; });
  if (overlay) stack.append(crackal.el("img", { src: "/api/images/" + id + "/image", alt: "" }));
  stack.append(top);
  return figure;
}

function show(id) {
  const image = images.find((i) => i.id === id);
  if (!image) return;
  history.replaceState(null, "", "/review?image=" + id);
  for (const link of document.querySelectorAll("#images a")) link.classList.toggle("on", Number(link.dataset.id) === id);
  document.getElementById("title").textContent = image.name + " (" + (image.role === "heldout" ? "held out" : "pool") +
    (image.labelled ? ", labelled" : image.queued ? ", queued" : "") + ")" + (round === null ? "" : " — model of round " + round);
  document.getElementById("layers").replaceChildren(...LAYERS.map(([name, caption, overlay]) => layerCard(id, name, caption, overlay)));
}

function list() {
  const filter = document.getElementById("filter").value;
  const shown = images.filter((i) => filter === "all" || i.role === filter || (filter === "labelled" && i.labelled) ||
    (filter === "queued" && i.queued));
  document.getElementById("images").replaceChildren(...shown.map((i) => crackal.el("li", {}, crackal.el("a", {
    href: "/review?image=" + i.id, dataset: { id: i.id }, onclick: (e) => { e.preventDefault(); show(i.id); } },
  i.name + (i.role === "heldout" ? " · held out" : "")))));
}

(async () => {
  await crackal.init("review");
  const data = await crackal.api("/api/review");
  images = data.images;
  round = data.round;
  document.getElementById("filter").addEventListener("change", list);
  list();
  const wanted = Number(new URLSearchParams(location.search).get("image"));
  show(wanted || (images.find((i) => i.role === "heldout") || images[0] || {}).id);
  document.body.dataset.ready = "true";
})().catch((e) => crackal.message(e.message, "error"));
