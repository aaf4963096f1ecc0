// Shared by the pages: the token (kept in this tab's sessionStorage, sent only as an
// Authorization header, never in a URL) and a JSON fetch helper.
"use strict";
const LT = {
  token() { return sessionStorage.getItem("longtail.token") || ""; },
  setToken(t) { sessionStorage.setItem("longtail.token", t); },
  clear() { sessionStorage.removeItem("longtail.token"); },
  async api(path, opts = {}) {
    const headers = { "Authorization": "Bearer " + LT.token() };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method: opts.method || "GET", headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) {
      const d = data && data.detail;
      const msg = typeof d === "string" ? d : JSON.stringify(d);
      const err = new Error(msg || ("HTTP " + r.status));
      err.status = r.status; err.data = data; throw err;
    }
    return data;
  },
  // Sign in with the form #login-form; calls onReady(me) once a token works.
  login(onReady) {
    const form = document.getElementById("login-form");
    const tryToken = async () => {
      try {
        const me = await LT.api("/api/me");
        document.getElementById("login").classList.add("hidden");
        document.getElementById("who").textContent = me.name + " (" + me.role + ")";
        onReady(me);
      } catch (e) {
        LT.clear();
        document.getElementById("login").classList.remove("hidden");
        document.getElementById("login-error").textContent = e.status === 401 ? "That token is not valid." : e.message;
      }
    };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      LT.setToken(document.getElementById("token").value.trim());
      document.getElementById("token").value = "";
      tryToken();
    });
    if (LT.token()) tryToken();
  },
  el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  },
};
