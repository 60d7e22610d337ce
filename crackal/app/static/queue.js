"use strict";
// The images waiting for labels, in acquisition order (highest score first), with who is on each.

async function showQueue() {
  const data = await crackal.api("/api/queue");
  const rows = data.items.map((item) => {
    const who = item.leased_by ? item.leased_by + " until " + crackal.time(item.lease_expires) : (item.skipped ? "skipped" : "");
    const release = item.leased_by && (item.mine || crackal.me.role === "admin")
      ? crackal.el("button", { type: "button", onclick: () => release(item.id) }, "release") : "";
    return crackal.el("tr", { dataset: { id: item.id }, class: item.leased_by && !item.mine ? "taken" : "" },
      crackal.el("td", {}, crackal.el("img", { class: "thumb", src: "/api/images/" + item.id + "/thumb", alt: "", loading: "lazy" })),
      crackal.el("td", {}, item.rank + 1),
      crackal.el("td", {}, crackal.el("a", { href: "/label/" + item.id }, item.name)),
      crackal.el("td", {}, item.score === null ? "-" : item.score.toPrecision(3)),
      crackal.el("td", {}, item.round === 0 ? "initial" : item.round - 1),
      crackal.el("td", {}, who),
      crackal.el("td", {}, release));
  });
  document.querySelector("#queue tbody").replaceChildren(...rows);
  document.getElementById("summary").textContent = data.items.length + " images wait for labels; " + data.labelled + " labelled so far.";
}

async function release(id) {
  try { await crackal.api("/api/images/" + id + "/lease", { method: "DELETE" }); } catch (e) { crackal.message(e.message, "error"); }
  showQueue();
}

document.getElementById("start").addEventListener("click", () => crackal.openNext().catch((e) => crackal.message(e.message, "error")));

(async () => {
  await crackal.init("queue");
  const done = new URLSearchParams(location.search).get("done");
  if (done) crackal.message(done, "info");
  await showQueue();
  setInterval(showQueue, 15000);
})();
