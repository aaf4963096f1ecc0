// The dashboard: status, the accuracy by the project's estimator (which one, eval
// labels, interval), learning curve with intervals and the random control, lift
// verdict, the gains `longtail transfer` recorded, labels per annotator and per class,
// rounds (every 5 seconds); a search box and the failure slices (on demand: they read
// the whole pool).
"use strict";
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function rows(tableId, data, cells, key) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...data.map((d) => {
    const tr = LT.el("tr", key ? { "data-key": key(d) } : {});
    cells(d).forEach(([v, num]) => tr.append(LT.el("td", num ? { class: "num", text: v } : { text: v })));
    return tr;
  }));
}

function fmt(x, digits = 3) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function curve(c) {
  const box = document.getElementById("curve");
  const pts = c.current.length ? c.current : c.as_of;
  const eq = c.lift && c.lift.equal_count;
  if (!pts.length) { box.textContent = "No model evaluated yet: train once labels are in."; return; }
  const W = 640, H = 260, L = 48, B = 30, T = 10, R = 10;
  const xs = pts.map((p) => p.n_labels).concat(eq ? [eq.n_labels] : []);
  const ys = pts.flatMap((p) => [p.lo ?? p.value, p.hi ?? p.value]).concat(eq ? [eq.acc_control, eq.acc_selected] : []);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const y0 = Math.max(0, Math.min(...ys) - 0.05), y1 = Math.min(1, Math.max(...ys) + 0.05);
  const X = (v) => L + (W - L - R) * (v - x0) / (x1 - x0);
  const Y = (v) => T + (H - T - B) * (1 - (v - y0) / Math.max(y1 - y0, 1e-9));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "learning curve" });
  s.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#d0d5dd" }));
  s.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#d0d5dd" }));
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    const t = svg("text", { x: 4, y: Y(v) + 4 }); t.textContent = v.toFixed(2); s.append(t);
  }
  for (const [v, anchor] of [[x0, "start"], [x1, "end"]]) {
    const t = svg("text", { x: X(v), y: H - 10, "text-anchor": anchor });
    t.textContent = String(Math.round(v)) + (anchor === "end" ? " labels" : ""); s.append(t);
  }
  const line = svg("polyline", { fill: "none", stroke: "#2459d6", "stroke-width": 2,
    points: pts.map((p) => `${X(p.n_labels)},${Y(p.value)}`).join(" ") });
  s.append(line);
  for (const p of pts) {
    if (p.lo !== null && p.hi !== null) {
      s.append(svg("line", { x1: X(p.n_labels), x2: X(p.n_labels), y1: Y(p.lo), y2: Y(p.hi), stroke: "#2459d6", opacity: 0.5 }));
    }
    s.append(svg("circle", { cx: X(p.n_labels), cy: Y(p.value), r: 3.5, fill: "#2459d6", class: "point" }));
  }
  if (eq && eq.acc_control !== undefined) {
    s.append(svg("rect", { x: X(eq.n_labels) - 4, y: Y(eq.acc_control) - 4, width: 8, height: 8, fill: "#b54708", class: "random" }));
    const t = svg("text", { x: X(eq.n_labels) + 6, y: Y(eq.acc_control) + 4 }); t.textContent = "random control"; s.append(t);
  }
  box.replaceChildren(s);
}

// The accuracy by the project's estimator: which one, on how many eval labels, its
// interval, and the budget's target (issue 28).
function estimateLine(est, need) {
  if (!est || est.value === null || est.value === undefined) return "Accuracy: no estimate yet (train once eval rows are labeled).";
  const pts = (x) => (100 * x).toFixed(1);
  const how = est.small_n_fallback ? " (too few errors for its large-sample interval: the exact one)" : "";
  const target = need && need.target ? `; target ±${pts(need.target)} points` : "";
  return `Accuracy ${pts(est.value)}% (95% CI ${pts(est.lo)}–${pts(est.hi)}, ±${pts(est.halfwidth)} points) ` +
    `by ${est.estimator} on ${est.n_labels} eval labels over ${est.population} eval-split rows${how}${target}.`;
}

async function refresh() {
  try {
    const [st, ann, rnds, cur] = await Promise.all([LT.api("/admin/status"),
      LT.api("/admin/annotators"), LT.api("/admin/rounds"), LT.api("/admin/curves")]);
    const k = document.getElementById("kpis");
    k.replaceChildren(...[["samples", st.samples], ["labeled", st.labeled_pool + st.labeled_eval],
      ["answers", st.annotations], ["rounds", st.rounds], ["open rounds", st.open_rounds],
      ["accuracy", st.eval_estimate ? fmt(st.eval_estimate.value) :
        st.metrics.accuracy ? fmt(st.metrics.accuracy.value) : "–"],
      ["eval labels", st.labeled_eval],
      ["labels $", st.spend ? st.spend.label_money.toFixed(2) : "–"],
      ["compute $", st.spend ? st.spend.compute_money.toPrecision(2) : "–"],
      ["queued", st.queued || 0]]
      .map(([n, v]) => { const d = LT.el("div", { "data-kpi": n }); d.append(LT.el("b", { text: String(v) }), n); return d; }));
    document.getElementById("estimate").textContent = estimateLine(st.eval_estimate, st.eval_need);
    document.getElementById("verdict").textContent = "Lift: " + cur.verdict +
      (st.money_verdict ? " · Money: " + st.money_verdict : "");
    document.getElementById("warnings").textContent = st.warnings.join(" · ");
    curve(cur);
    rows("annotators", ann, (a) => [[a.annotator], [String(a.label), 1], [String(a.skip), 1],
      [String(a.unsure), 1], [fmt(a.seconds_per_answer, 1), 1]], (a) => a.annotator);
    const tr = st.transfer || [];
    document.getElementById("transfer-card").classList.toggle("hidden", !tr.length);
    const pts = (x) => (100 * x >= 0 ? "+" : "") + (100 * x).toFixed(1);
    rows("transfer", tr, (t) => [[t.learner], [t.selected_with], [pts(t.gain) + " points", 1],
      [`[${pts(t.lo)}, ${pts(t.hi)}] (${Math.round(100 * t.level)}%)`], [String(t.n_labels), 1]],
      (t) => t.learner);
    rows("classes", Object.entries(st.classes), ([c, n]) => [[c], [String(n), 1]], ([c]) => c);
    rows("rounds", rnds.slice().reverse(), (r) => [[String(r.id)], [r.created_at.slice(0, 16).replace("T", " ")],
      [r.arm && r.arm !== r.strategy ? `${r.strategy} → ${r.arm}` : r.strategy], [r.status],
      [String(r.size), 1], [String(r.labeled), 1]], (r) => String(r.id));
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = e.status === 403 ? "This token is not an admin's." : e.message;
  }
}

function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }

async function slices() {
  try {
    const r = await LT.api("/admin/slices?limit=10&examples=0");
    rows("slices", r.slices, (s) => [[s.name], [s.flag ? "under-represented, struggling" :
      s.under_represented ? "under-represented" : s.struggling ? "struggling" : ""],
      [String(s.pool_rows), 1], [String(s.labeled), 1],
      [`${pct(s.error)} [${pct(s.error_lo)}, ${pct(s.error_hi)}]`], [""]], (s) => s.name);
    document.querySelectorAll("#slices tbody tr").forEach((tr, i) => {
      const b = LT.el("button", { type: "button", text: "queue 50" });
      b.addEventListener("click", async () => {
        const q = await LT.api("/admin/slices/enqueue", { method: "POST",
          body: { slice: r.slices[i].name, n: 50 } });
        b.textContent = `queued ${q.queued}`;
      });
      tr.lastChild.append(b);
    });
  } catch (e) {
    document.getElementById("error").textContent = e.message;
  }
}

async function search(ev) {
  ev.preventDefault();
  const q = document.getElementById("search-q").value.trim();
  if (!q) return;
  const by = document.getElementById("search-by").value;
  const body = { k: 20, state: document.getElementById("search-state").value,
    enqueue: document.getElementById("search-enqueue").checked };
  if (by === "id") body.ids = q.split(",").map((x) => x.trim()).filter(Boolean); else body.text = q;
  const note = document.getElementById("search-note");
  try {
    const r = await LT.api("/admin/search", { method: "POST", body });
    rows("search", r.hits, (h) => [[h.id], [fmt(h.similarity), 1], [h.label || ""],
      [h.text.slice(0, 120)]], (h) => h.id);
    // An image's hit: its thumbnail (a signed link: an <img> sends no bearer token).
    document.querySelectorAll("#search tbody tr").forEach((tr, i) => {
      const url = r.hits[i].media_url;
      if (url) tr.lastChild.prepend(LT.el("img", { src: url, alt: r.hits[i].id, class: "thumb", loading: "lazy" }));
    });
    note.textContent = `${r.hits.length} hits (${r.index.kind}, ${r.seconds} s)` +
      (r.enqueued ? ` · queued ${r.enqueued.queued} for the next round` : "");
  } catch (e) {
    note.textContent = e.message;
  }
}

LT.login(() => {
  document.getElementById("board").classList.remove("hidden");
  document.getElementById("search-form").addEventListener("submit", search);
  document.getElementById("slices-refresh").addEventListener("click", slices);
  slices();
  refresh();
  setInterval(refresh, 5000);
});
