// The labeling page: lease a task, show it, answer with buttons or keys, then the next
// task without a reload. Keys: 1-9 the numbered classes (the model's suggestions first,
// then the label set in natural, case-insensitive order), / filters the classes (Enter
// picks the first match, Esc clears), s skip, u unsure, z undo the previous answer
// (while its lease runs: the task comes back to answer again).
"use strict";
let task = null, lastShown = null, shownAt = 0, busy = false;
let previous = null;  // the last task answered (label or unsure) and the answer: undo
let ordered = [];  // the classes as shown: suggestions, then the rest (buttons)
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

// Lower case, "_" "-" and runs of spaces as one space: "refund not" finds Refund_not_...
function norm(s) { return String(s).toLowerCase().replace(/[\s_\-]+/g, " ").trim(); }

function button(lab) {
  const b = LT.el("button", { type: "button", class: "label-btn", "data-label": lab });
  b.append(LT.el("kbd"), lab);
  b.addEventListener("click", () => answer("label", lab));
  return b;
}

function showMeta(t) {
  const meta = document.getElementById("meta");
  meta.replaceChildren();
  if (!t) return;
  const pairs = [["id", t.sample_id]];
  for (const [k, v] of Object.entries(t.meta || {})) {
    if (k === "media" && t.media_url) continue;  // shown as the image
    pairs.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  for (const [k, v] of pairs.slice(0, 24)) {  // textContent only: metadata is never HTML
    meta.append(LT.el("div", {}, LT.el("dt", { text: k }), LT.el("dd", { text: String(v) })));
  }
}

// Show the classes the filter matches, numbering the first nine in order.
function applyFilter() {
  const q = norm(document.getElementById("filter").value);
  let n = 0;
  for (const b of ordered) {
    const hit = !q || norm(b.dataset.label).includes(q);
    b.hidden = !hit;
    b.classList.toggle("first", hit && q !== "" && n === 0);
    b.querySelector("kbd").textContent = hit && n < 9 ? String(n + 1) : "";
    b.querySelector("kbd").hidden = !(hit && n < 9);
    if (hit) n += 1;
  }
  document.getElementById("no-match").classList.toggle("hidden", n > 0 || !ordered.length);
}

function visible() { return ordered.filter((b) => !b.hidden); }

function clearFilter() {
  const f = document.getElementById("filter");
  f.value = "";
  f.blur();
  applyFilter();
}

function show(t) {
  task = t;
  lastShown = t;
  const text = document.getElementById("text");
  const labels = document.getElementById("labels");
  const suggested = document.getElementById("suggested");
  labels.replaceChildren();
  suggested.replaceChildren();
  ordered = [];
  document.getElementById("error").textContent = "";
  document.getElementById("filter").value = "";
  showMeta(t);
  if (!t) {
    text.textContent = "Nothing left to label for you right now.";
    text.dataset.task = "";
    document.getElementById("media").replaceChildren();
    document.getElementById("free").style.display = "none";
    applyFilter();
    return;
  }
  const media = document.getElementById("media");
  media.replaceChildren();
  if (t.media_url) {
    // A signed, expiring URL: the <img> sends no token, the URL is its own permission.
    media.append(LT.el("img", { src: t.media_url, alt: "the sample's image", class: "sample-image" }));
  }
  text.textContent = t.text || (t.media_url ? "" : "(no text)");
  text.dataset.task = String(t.id);
  const set = t.labels || [];
  // The model's suggestions lead (only classes of the set, when there is one).
  const sugg = (t.suggestions || []).filter((x) => !t.labels || set.includes(x));
  for (const lab of sugg) { const b = button(lab); suggested.append(b); ordered.push(b); }
  for (const lab of [...set].sort(collator.compare)) {
    if (sugg.includes(lab)) continue;
    const b = button(lab);
    labels.append(b);
    ordered.push(b);
  }
  applyFilter();
  document.getElementById("free").style.display = t.labels ? "none" : "flex";
  shownAt = performance.now();
}

async function progress() {
  const p = await LT.api("/api/progress");
  document.getElementById("progress").textContent =
    `You answered ${p.answered}` + ` · ${p.remaining} left in the open rounds`;
  document.getElementById("progress").dataset.answered = String(p.answered);
}

async function next() {
  const r = await LT.api("/tasks/lease", { method: "POST" });
  show(r.task);
  await progress();
}

async function answer(kind, label) {
  if (!task || busy) return;
  busy = true;
  const id = task.id;
  task = null;  // keys wait for the next task: the answered one is never sent twice
  const seconds = Math.round((performance.now() - shownAt) / 100) / 10;
  const body = kind === "label" ? { kind, label, seconds } : { kind, seconds };
  let notice = "", recorded = true;
  try {
    await LT.api(`/tasks/${id}/label`, { method: "POST", body });
  } catch (e) {
    document.getElementById("error").textContent = e.message;
    if (e.status !== 409) { task = { ...lastShown }; busy = false; return; }  // retry this one
    const reason = e.data && e.data.reason;
    if (reason === "expired" || reason === "not_leased") {
      notice = await again(id, body);  // the chosen answer is kept, never dropped silently
      busy = false;
      if (notice === null) return;  // the same task is shown again, the answer kept
    } else {
      notice = e.message;  // answered already, or someone else's: said, not swallowed
      recorded = false;
    }
  }
  // Recorded: the previous-item view offers it back while its lease runs.
  setPrevious(recorded && kind !== "skip" ? { task: { ...lastShown }, body } : null);
  busy = false;
  await next();  // answered or taken (409) too: move on
  say(notice);
}

// The previous task and its answer, with undo (z) while the task is the last answered.
function setPrevious(p) {
  previous = p;
  const box = document.getElementById("previous");
  box.classList.toggle("hidden", !p);
  if (!p) return;
  const t = p.task.text || p.task.sample_id;
  document.getElementById("prev-text").textContent = t.length > 80 ? t.slice(0, 79) + "…" : t;
  document.getElementById("prev-answer").textContent = said(p.body);
  box.dataset.task = String(p.task.id);
}

// Take the previous answer back: the server withdraws it while its lease runs and gives
// the task back (the one shown now returns to the queue); show it with the old answer
// marked, to answer again. Refused after the lease: said, the answer stays.
async function undo() {
  if (!previous || busy) return;
  busy = true;
  const p = previous;
  setPrevious(null);
  try {
    const r = await LT.api(`/tasks/${p.task.id}/undo`, { method: "POST" });
    show(r.task);
    for (const b of ordered) b.classList.toggle("chosen", b.dataset.label === p.body.label);
    say(`Your answer ${said(p.body)} was withdrawn: answer this task again.`);
    await progress();
  } catch (e) {
    say(`Your answer ${said(p.body)} stays: ${e.message}`);
  }
  busy = false;
}

function said(body) {
  return body.kind === "label" ? `"${body.label}"` : body.kind;
}

function say(msg) {
  document.getElementById("notice").textContent = msg || "";
}

// The lease ran out before the answer arrived: lease again; when the same task comes
// back, send the answer the annotator chose; otherwise keep it on screen with the task
// and say so (someone else holds it now, or the round moved on).
async function again(id, body) {
  let r;
  try {
    r = await LT.api("/tasks/lease", { method: "POST" });
  } catch (e) {
    task = { ...lastShown };
    say(`Your lease expired and leasing again failed (${e.message}): your answer ` +
        `${said(body)} is kept; press it again to retry.`);
    return null;
  }
  if (r.task && r.task.id === id) {
    try {
      await LT.api(`/tasks/${id}/label`, { method: "POST", body });
      document.getElementById("error").textContent = "";
      return `Your lease had expired: the task was leased to you again and your answer ` +
             `${said(body)} recorded.`;
    } catch (e) {
      show(r.task);
      say(`Your lease had expired and your answer ${said(body)} could not be sent ` +
          `(${e.message}): it is kept here; answer again to retry.`);
      return null;
    }
  }
  show(r.task);
  say(`Your lease on the previous task expired and it is no longer yours: your answer ` +
      `${said(body)} was not recorded.`);
  await progress();
  return null;
}

document.addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "INPUT" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "z") {  // also once nothing is left to label
    if (previous) { ev.preventDefault(); undo(); }
    return;
  }
  if (!task) return;
  if (ev.key >= "1" && ev.key <= "9") {
    const b = visible()[Number(ev.key) - 1];
    if (b !== undefined) { ev.preventDefault(); answer("label", b.dataset.label); }
  } else if (ev.key === "s") { ev.preventDefault(); answer("skip"); }
  else if (ev.key === "u") { ev.preventDefault(); answer("unsure"); }
  else if (ev.key === "/" && ordered.length) {
    ev.preventDefault();
    document.getElementById("filter").focus();
  }
});
const filter = document.getElementById("filter");
filter.addEventListener("input", applyFilter);
filter.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") { ev.preventDefault(); clearFilter(); }
  else if (ev.key === "Enter") {
    ev.preventDefault();
    const b = visible()[0];
    if (b && task && filter.value.trim()) { clearFilter(); answer("label", b.dataset.label); }
  }
});
document.getElementById("skip").addEventListener("click", () => answer("skip"));
document.getElementById("unsure").addEventListener("click", () => answer("unsure"));
document.getElementById("undo").addEventListener("click", () => undo());
document.getElementById("free").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = document.getElementById("free-label").value.trim();
  if (v) { document.getElementById("free-label").value = ""; answer("label", v); }
});

LT.login(() => { document.getElementById("work").classList.remove("hidden"); next(); });
