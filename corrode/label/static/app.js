// corrode label: one image at a time, labelled from the keyboard.
// The page moves on at once; saves go to the server one after another, in key order,
// so an undo always follows the label it takes back.
"use strict";

const token = document.querySelector('meta[name="label-token"]').content;
const PRELOAD = 5;
const el = (id) => document.getElementById(id);

const state = {
  items: [], levels: [], others: [], counts: {}, done: 0, total: 0, pos: 0,
  keymap: {}, preloaded: new Map(),
};
// Read by the browser test: pending saves, saves done, and each save's round trip (ms).
// `shown`: ms from a label key to the next image painted on screen.
window.__labeler = { ready: false, pending: 0, saved: 0, latencies: [], shown: [], errors: 0 };

let chain = Promise.resolve();

function post(path, body) {
  return fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Label-Token": token },
    body: JSON.stringify(body),
  }).then(async (response) => {
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  });
}

function enqueue(path, body, then, fail) {
  const started = performance.now();
  window.__labeler.pending += 1;
  setStatus("saving\u2026");
  chain = chain
    .then(() => post(path, body))
    .then((data) => {
      window.__labeler.latencies.push(performance.now() - started);
      window.__labeler.saved += 1;
      applyProgress(data);
      if (then) then(data);
    })
    .catch((error) => {
      window.__labeler.errors += 1;
      toast(`not saved: ${error.message}`, true);
      if (fail) fail(error);
    })
    .finally(() => {
      window.__labeler.pending -= 1;
      if (window.__labeler.pending === 0) setStatus("all saved");
    });
}

function setStatus(text) { el("status").textContent = text; }

let toastTimer = null;
function toast(text, sticky) {
  const box = el("toast");
  box.textContent = text;
  box.hidden = false;
  box.className = sticky ? "error" : "";
  clearTimeout(toastTimer);
  if (!sticky) toastTimer = setTimeout(() => { box.hidden = true; }, 2500);
}

function labelText(label) { return label === null || label === undefined ? "" : label; }

function buildLegend() {
  const legend = el("legend");
  legend.innerHTML = "";
  const rows = [...state.levels.map((l) => ({ ...l, level: true })), ...state.others];
  for (const row of rows) {
    state.keymap[row.key] = row.name;
    const li = document.createElement("li");
    li.dataset.label = row.name;
    li.className = row.level ? "level" : "other";
    li.innerHTML = `<kbd></kbd><span class="name"></span><span class="count"></span>` +
      (row.level ? `<span class="bar"><span></span></span>` : "");
    li.querySelector("kbd").textContent = row.key;
    li.querySelector(".name").textContent = row.name;
    legend.appendChild(li);
  }
}

function applyProgress(data) {
  state.counts = data.counts; state.done = data.done; state.total = data.total;
  el("done").textContent = state.done;
  el("total").textContent = state.total;
  el("percent").textContent = state.total ? `${Math.round((100 * state.done) / state.total)}%` : "";
  el("progress-fill").style.width = state.total ? `${(100 * state.done) / state.total}%` : "0";
  const most = Math.max(1, ...state.levels.map((l) => state.counts[l.name] || 0));
  for (const li of el("legend").children) {
    const count = state.counts[li.dataset.label] || 0;
    li.querySelector(".count").textContent = count;
    const bar = li.querySelector(".bar > span");
    if (bar) bar.style.width = `${(100 * count) / most}%`;
  }
}

function preload() {
  const keep = new Set();
  for (let i = state.pos + 1; i <= state.pos + PRELOAD && i < state.items.length; i++) {
    const id = state.items[i].id;
    keep.add(id);
    if (!state.preloaded.has(id)) {
      const img = new Image();
      img.src = `/image/${id}`;
      state.preloaded.set(id, img);
    }
  }
  for (const id of [...state.preloaded.keys()]) if (!keep.has(id)) state.preloaded.delete(id);
}

function render() {
  const photo = el("photo");
  const finished = state.pos >= state.items.length;
  el("finished").hidden = !finished;
  photo.hidden = finished;
  if (finished) {
    photo.dataset.id = "";
    el("name").textContent = "";
    el("position").textContent = "";
    el("current").hidden = true;
    return;
  }
  const item = state.items[state.pos];
  if (photo.dataset.id !== String(item.id)) {
    photo.dataset.id = String(item.id);
    photo.src = `/image/${item.id}`;
  }
  el("position").textContent = `${state.pos + 1} of ${state.items.length}`;
  el("name").textContent = item.name;
  const current = el("current");
  current.hidden = !item.label;
  current.textContent = labelText(item.label);
  current.dataset.label = labelText(item.label);
  preload();
}

function flash(label) {
  const li = el("legend").querySelector(`li[data-label="${label}"]`);
  if (!li) return;
  li.classList.remove("flash");
  void li.offsetWidth; // restart the animation
  li.classList.add("flash");
}

// The next image to label after `from`: unlabelled ones first (wrapping round), then skipped ones;
// the end of the list ("all labelled") when none is left.
function nextOpen(from) {
  const n = state.items.length;
  for (const wanted of [null, "skip"]) {
    for (let step = 1; step < n; step++) {
      const i = (from + step) % n;
      if (state.items[i].label === wanted) return i;
    }
  }
  return n;
}

function choose(label, eventTime) {
  if (state.pos >= state.items.length) return;
  const item = state.items[state.pos];
  const before = item.label;
  item.label = label;
  flash(label);
  enqueue("/api/label", { id: item.id, label }, null, () => { item.label = before; render(); });
  state.pos = nextOpen(state.pos);
  render();
  const photo = el("photo");
  if (!photo.hidden) {
    const started = eventTime;
    photo.decode().catch(() => {}).then(() => requestAnimationFrame(() => {
      window.__labeler.shown.push(performance.now() - started);
    }));
  }
}

function undo() {
  enqueue("/api/undo", {}, (data) => {
    if (data.id === null) { toast("nothing to undo"); return; }
    const index = state.items.findIndex((item) => item.id === data.id);
    if (index < 0) return;
    state.items[index].label = data.label;
    state.pos = index;
    render();
    toast(`undone: ${state.items[index].name}`);
  });
}

function move(step) {
  state.pos = Math.min(Math.max(0, state.pos + step), state.items.length);
  render();
}

document.addEventListener("keydown", (event) => {
  if (!window.__labeler.ready || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (state.keymap[key]) { choose(state.keymap[key], performance.now()); }
  else if (key === "z" || key === "backspace") { undo(); }
  else if (key === "arrowleft") { move(-1); }
  else if (key === "arrowright") { move(1); }
  else return;
  event.preventDefault();
});

el("photo").addEventListener("error", () => {
  // The server could not read this file (it says why in its console); drop it and go on.
  const photo = el("photo");
  const index = state.items.findIndex((item) => String(item.id) === photo.dataset.id);
  if (index < 0) return;
  const [item] = state.items.splice(index, 1);
  toast(`unreadable, left out: ${item.name}`);
  // The server has marked it bad before answering; take the totals from it.
  fetch("/api/state", { cache: "no-store" }).then((r) => r.json()).then(applyProgress).catch(() => {});
  photo.dataset.id = "";
  render();
});

async function start() {
  const response = await fetch("/api/state", { cache: "no-store" });
  if (!response.ok) { toast(`cannot load: HTTP ${response.status}`, true); return; }
  const data = await response.json();
  state.items = data.items; state.levels = data.levels; state.others = data.others;
  buildLegend();
  applyProgress(data);
  // Start at the first image this annotator has not labelled (skipped ones come after those).
  let pos = state.items.findIndex((item) => item.label === null);
  if (pos < 0) pos = state.items.findIndex((item) => item.label === "skip");
  state.pos = pos < 0 ? state.items.length : pos;
  render();
  setStatus("ready");
  window.__labeler.ready = true;
}

start();
