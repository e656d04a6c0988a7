// The bmsgw web page: plain JavaScript against the gateway's HTTP API on
// the same origin. State lives in the URL's hash (view, site, week), the
// token in sessionStorage (this tab only), the language in localStorage.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    token: sessionStorage.getItem("bmsgw.token") || "",
    lang: localStorage.getItem("bmsgw.lang") || ((navigator.language || "en").toLowerCase().startsWith("da") ? "da" : "en"),
    whoami: null, sites: [], points: {}, live: null, last: {},
  };

  // ---- strings ----
  function t(key, vars) {
    const d = window.I18N[state.lang] || {};
    let s = key in d ? d[key] : (key in window.I18N.en ? window.I18N.en[key] : key);
    if (vars && typeof s === "string") {
      for (const [k, v] of Object.entries(vars)) s = s.replace("{" + k + "}", v);
    }
    return s;
  }
  function applyLang() {
    document.documentElement.lang = state.lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const b of document.querySelectorAll("#lang button")) b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang));
  }
  const numFmt = {};
  function num(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "";
    const k = state.lang + digits;
    if (!numFmt[k]) numFmt[k] = new Intl.NumberFormat(state.lang === "da" ? "da-DK" : "en-GB", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    return numFmt[k].format(x);
  }

  // ---- the API ----
  class APIError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }
  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Authorization: "Bearer " + state.token }, opts.headers || {});
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method: opts.method || "GET", headers, signal: opts.signal,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    if (opts.raw && r.ok) return r;
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!r.ok) {
      if (r.status === 401) signOut(t("login.bad"));
      throw new APIError(r.status, (body && body.error) || (r.status + " " + r.statusText));
    }
    return body;
  }
  const enc = encodeURIComponent;
  function showError(e) {
    const el = $("error");
    if (!e) { el.hidden = true; el.textContent = ""; return; }
    el.textContent = e.message || String(e);
    el.hidden = false;
  }

  // ---- dates: the site's wall clock, ISO weeks ----
  const fmtCache = {};
  function zoneFmt(tz) {
    if (!fmtCache[tz]) {
      fmtCache[tz] = new Intl.DateTimeFormat("en-GB", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    }
    return fmtCache[tz];
  }
  // parts returns the wall-clock fields of an instant in zone tz.
  function parts(instant, tz) {
    const p = {};
    for (const x of zoneFmt(tz).formatToParts(new Date(instant))) p[x.type] = x.value;
    return { y: +p.year, m: +p.month, d: +p.day, h: (+p.hour) % 24, min: +p.minute, s: +p.second };
  }
  const pad = (n) => String(n).padStart(2, "0");
  const dayNum = (y, m, d) => Date.UTC(y, m - 1, d) / 86400000; // days since 1970 of a calendar date
  function dateOf(n) { const x = new Date(n * 86400000); return { y: x.getUTCFullYear(), m: x.getUTCMonth() + 1, d: x.getUTCDate() }; }
  const dateStr = (c) => c.y + "-" + pad(c.m) + "-" + pad(c.d);
  const hhmm = (p) => pad(p.h) + ":" + pad(p.min);
  function isoWeekOf(y, m, d) {
    const n = dayNum(y, m, d);
    const wd = (new Date(n * 86400000).getUTCDay() + 6) % 7; // Monday 0
    const thu = dateOf(n - wd + 3);
    const jan1 = dayNum(thu.y, 1, 1);
    return { year: thu.y, week: Math.floor((n - wd + 3 - jan1) / 7) + 1 };
  }
  const weekStr = (w) => w.year + "-W" + pad(w.week);
  function parseWeek(s) {
    const m = /^(\d{4})-?[Ww](\d{1,2})$/.exec((s || "").trim());
    if (!m) return null;
    const w = { year: +m[1], week: +m[2] };
    if (w.week < 1 || w.week > 53) return null;
    const mon = mondayOf(w);
    const back = isoWeekOf(mon.y, mon.m, mon.d);
    return back.year === w.year && back.week === w.week ? w : null;
  }
  // mondayOf returns the calendar date of the week's Monday.
  function mondayOf(w) {
    const jan4 = dayNum(w.year, 1, 4);
    const wd = (new Date(jan4 * 86400000).getUTCDay() + 6) % 7;
    return dateOf(jan4 - wd + 7 * (w.week - 1));
  }
  function shiftWeek(w, by) {
    const mon = mondayOf(w);
    const n = dayNum(mon.y, mon.m, mon.d) + 7 * by;
    const c = dateOf(n);
    return isoWeekOf(c.y, c.m, c.d);
  }
  function site() { return state.sites.find((s) => s.id === route().site) || state.sites[0]; }
  function thisWeek() {
    const p = parts(Date.now(), site() ? site().time_zone : "UTC");
    return isoWeekOf(p.y, p.m, p.d);
  }
  function fmtTime(instant) {
    const s = site();
    const p = parts(instant, s ? s.time_zone : "UTC");
    return dateStr(p) + " " + hhmm(p) + ":" + pad(p.s);
  }

  // ---- routing: #view=week&site=valby-skole&week=2026-W48 ----
  function route() {
    const q = new URLSearchParams(location.hash.replace(/^#/, ""));
    return { view: q.get("view") || "week", site: q.get("site") || "", week: q.get("week") || "" };
  }
  function go(changes) {
    const r = Object.assign(route(), changes);
    const q = new URLSearchParams();
    q.set("view", r.view);
    if (r.site) q.set("site", r.site);
    if (r.week) q.set("week", r.week);
    const h = "#" + q.toString();
    if (location.hash !== h) location.hash = h; else render();
  }

  // ---- elements ----
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      // The CSP forbids style attributes; the CSSOM is allowed.
      else if (k === "style") e.style.cssText = v;
      else if (k.startsWith("data-") || k === "title" || k === "role" || k.startsWith("aria-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of kids.flat()) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  // table fills a table from columns {key, label, num (digits), cls} and
  // rows; numeric cells carry their exact value in data-value, so the
  // CSV export and tests see the API's numbers, not the rounded text.
  function table(tbl, cols, rows, foot) {
    tbl.replaceChildren();
    tbl.append(el("thead", {}, el("tr", {}, cols.map((c) => el("th", { text: c.label, class: c.num !== undefined ? "num" : "", "data-key": c.key })))));
    const body = el("tbody");
    const line = (r, isFoot) => el("tr", r.$attrs || {}, cols.map((c) => {
      const v = c.get ? c.get(r) : r[c.key];
      const attrs = { "data-key": c.key, class: c.num !== undefined ? "num" : "" };
      if (c.num !== undefined && typeof v === "number") { attrs["data-value"] = String(v); attrs.text = num(v, c.num); } else if (v instanceof Node) return el(isFoot ? "th" : "td", attrs, v);
      else { attrs.text = v === undefined || v === null ? "" : String(v); if (c.csv) attrs["data-value"] = c.csv(r); }
      return el(isFoot ? "th" : "td", attrs);
    }));
    for (const r of rows) body.append(line(r, false));
    tbl.append(body);
    if (foot) tbl.append(el("tfoot", {}, line(foot, true)));
    if (!rows.length) body.append(el("tr", {}, el("td", { colSpan: cols.length, class: "empty", text: t("empty") })));
  }
  // csv exports a table as shown, with numbers as the API gave them.
  function csv(tbl) {
    const q = (s) => /[",\n\r;]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    // A cell that starts like a formula is quoted with a ' so a
    // spreadsheet does not run it (CSV injection).
    const safe = (s) => /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? "'" + s : s;
    const lines = [];
    for (const tr of tbl.querySelectorAll("tr")) {
      const cells = [...tr.children].filter((c) => !c.classList.contains("noexport"));
      if (cells.length === 1 && cells[0].classList.contains("empty")) continue;
      lines.push(cells.map((c) => q(safe(c.dataset.value !== undefined ? c.dataset.value : c.textContent.trim()))).join(","));
    }
    return lines.join("\r\n") + "\r\n";
  }
  function download(name, blob) {
    const a = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  async function downloadAPI(path, name) {
    try {
      const r = await api(path, { raw: true });
      download(name, await r.blob());
    } catch (e) { showError(e); }
  }

  // ---- sign in ----
  function signOut(msg) {
    state.token = "";
    state.whoami = null;
    sessionStorage.removeItem("bmsgw.token");
    stopLive();
    render();
    if (msg) $("login-error").textContent = msg;
  }
  async function signIn(token) {
    state.token = token;
    try {
      state.whoami = await api("/api/whoami");
      state.sites = await api("/api/sites");
    } catch (e) {
      state.token = "";
      $("login-error").textContent = t("login.bad") + ": " + e.message;
      return false;
    }
    sessionStorage.setItem("bmsgw.token", token);
    $("login-error").textContent = "";
    const sel = $("site");
    sel.replaceChildren(...state.sites.map((s) => el("option", { value: s.id, text: s.name || s.id })));
    render();
    return true;
  }
  const isOperator = () => state.whoami && (state.whoami.role === "operator" || state.whoami.role === "admin");

  // ---- render ----
  let renderSeq = 0;
  async function render() {
    applyLang();
    const signedIn = !!state.whoami;
    $("login").hidden = signedIn;
    for (const id of ["nav", "site-label", "who", "logout"]) $(id).hidden = !signedIn;
    if (!signedIn) {
      for (const v of document.querySelectorAll(".view")) v.hidden = true;
      return;
    }
    document.body.dataset.role = state.whoami.role;
    $("who").textContent = state.whoami.name + " (" + t("role." + state.whoami.role) + ")";
    const r = route();
    const s = site();
    if (!s) { showError(new Error("the gateway has no sites")); return; }
    $("site").value = s.id;
    for (const a of document.querySelectorAll("#nav a")) {
      a.href = "#view=" + a.dataset.view + "&site=" + enc(s.id) + (r.week ? "&week=" + enc(r.week) : "");
      a.setAttribute("aria-current", a.dataset.view === r.view ? "page" : "false");
    }
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + r.view;
    if (r.view !== "events") stopLive();
    showError(null);
    const seq = ++renderSeq;
    document.body.dataset.ready = "false";
    try {
      const views = { week: renderWeek, energy: renderEnergy, noshows: renderNoShows, events: renderEvents, status: renderStatus };
      await (views[r.view] || renderWeek)(s, r, seq);
    } catch (e) {
      if (e.name !== "AbortError") showError(e);
    }
    if (seq === renderSeq) document.body.dataset.ready = "true";
  }
  function routeWeek(r) { return parseWeek(r.week) || thisWeek(); }

  // ---- week view ----
  async function renderWeek(s, r, seq) {
    const w = routeWeek(r);
    $("week").value = weekStr(w);
    const mon = mondayOf(w);
    const monN = dayNum(mon.y, mon.m, mon.d);
    const from = dateStr(mon), to = dateStr(dateOf(monN + 7));
    const period = "from=" + from + "&to=" + to;
    const base = "/api/sites/" + enc(s.id);
    const [spaces, windows, plan, points, bookings, feeds] = await Promise.all([
      api(base + "/spaces"), api(base + "/windows?" + period), api(base + "/plan?" + period), pointsOf(s),
      api(base + "/bookings?" + period).catch((e) => { if (e.status === 404 || e.status === 503) return null; throw e; }),
      api("/api/feeds").catch(() => null),
    ]);
    if (seq !== renderSeq) return;
    $("week-note").hidden = bookings !== null;
    $("week-note").textContent = t("week.nobookings");
    // A failing booking feed: the plan shown is from its last good copy.
    const failing = (feeds || []).filter((f) => !f.ok && f.consecutive_failures > 0);
    $("feeds-note").hidden = failing.length === 0;
    $("feeds-note").textContent = failing.map((f) => f.source + ": " + feedState(f)).join(" · ");
    if (failing.length) $("feeds-note").prepend(el("strong", { text: t("week.feedsfailing") + " " }));
    const tz = s.time_zone;
    // pos is the fraction of the week at an instant, by the site's
    // wall clock (a DST day is drawn as 24 hours like the others).
    const pos = (instant) => {
      const p = parts(instant, tz);
      const f = (dayNum(p.y, p.m, p.d) - monN) * 1440 + p.h * 60 + p.min + p.s / 60;
      return Math.min(1, Math.max(0, f / (7 * 1440)));
    };
    const span = (a, b) => { const p = parts(a, tz), q = parts(b, tz); return t("days")[(dayNum(p.y, p.m, p.d) - monN + 7) % 7] + " " + hhmm(p) + "–" + hhmm(q); };
    const bar = (cls, a, b, label, attrs) => {
      const x = pos(a), y = pos(b);
      if (y <= x) return null;
      const p = parts(a, tz);
      return el("div", Object.assign({ class: "bar " + cls, style: "left:" + (x * 100).toFixed(4) + "%;width:" + ((y - x) * 100).toFixed(4) + "%",
        title: label + " · " + span(a, b), "data-day": String(dayNum(p.y, p.m, p.d) - monN), "data-start": hhmm(p), "data-end": hhmm(parts(b, tz)) }, attrs),
        el("span", { text: label }));
    };
    const grid = $("week-grid");
    grid.replaceChildren();
    // Header: the days.
    const head = el("div", { class: "row head" }, el("div", { class: "label" }), el("div", { class: "track days" },
      t("days").map((d, i) => { const c = dateOf(monN + i); return el("div", { class: "day" + (i >= 5 ? " weekend" : ""), text: d + " " + c.d + "/" + c.m }); })));
    grid.append(head);
    const byRes = {};
    for (const sp of spaces) for (const res of sp.resources) (byRes[res] = byRes[res] || []).push(sp.id);
    const changesByPoint = {};
    for (const c of plan) (changesByPoint[c.point] = changesByPoint[c.point] || []).push(c);
    const weekEnd = to;
    for (const sp of spaces) {
      const lanes = [];
      // Bookings of the space's resources.
      if (bookings) {
        const own = bookings.filter((b) => (byRes[b.resource] || []).includes(sp.id));
        lanes.push(lane("bookings", t("lane.bookings"), own.map((b) => bar("booking" + (b.status === "cancelled" ? " cancelled" : ""), b.start, b.end, b.organiser || b.resource,
          { "data-space": sp.id, "data-kind": "booking", "data-organiser": b.organiser || "", "data-ref": b.source + ":" + b.id })), sp.id));
      }
      // Occupancy windows.
      const ws = windows.filter((x) => x.space === sp.id);
      lanes.push(lane("windows", t("lane.windows"), ws.map((x) => {
        const orgs = [...new Set(x.reasons.filter((r) => r.organiser).map((r) => r.organiser))];
        const why = x.reasons.map((r) => r.kind + " " + (r.organiser || r.day || r.ref)).join(", ");
        return bar("window", x.start, x.end, orgs.join(", ") || x.reasons.map((r) => r.ref).join(", "), { "data-space": sp.id, "data-kind": "window", "data-why": why });
      }), sp.id));
      // The points' comfort periods: from each occupied change to the next change.
      for (const pid of sp.points) {
        const cs = changesByPoint[pid] || [];
        const bars = [];
        for (let i = 0; i < cs.length; i++) {
          if (!cs[i].occupied) continue;
          const stop = i + 1 < cs.length ? cs[i + 1].time : weekEnd + "T00:00:00" + offsetOf(weekEnd, tz);
          bars.push(bar("comfort", cs[i].time, stop, cs[i].display, { "data-space": sp.id, "data-kind": "comfort", "data-point": pid }));
        }
        lanes.push(lane("comfort", pid, bars, sp.id, pid));
      }
      grid.append(el("div", { class: "row space", "data-space": sp.id },
        el("div", { class: "label" }, el("strong", { text: sp.name || sp.id }), el("small", { text: sp.id })),
        el("div", { class: "lanes" }, lanes)));
    }
    // Today's line.
    const now = Date.now();
    const nowParts = parts(now, tz);
    const nowDay = dayNum(nowParts.y, nowParts.m, nowParts.d) - monN;
    if (nowDay >= 0 && nowDay < 7) {
      const x = (pos(now) * 100).toFixed(4) + "%";
      for (const tr of grid.querySelectorAll(".track")) tr.append(el("div", { class: "now", style: "left:" + x, title: hhmm(nowParts) }));
    }
  }
  function lane(kind, label, bars, space, point) {
    return el("div", { class: "lane " + kind, "data-lane": kind, "data-space": space, "data-point": point },
      el("div", { class: "lane-label", text: label }), el("div", { class: "track" }, bars));
  }
  // offsetOf returns the zone's UTC offset ("+01:00") at midnight of a
  // date, found by comparing wall clocks.
  function offsetOf(date, tz) {
    const [y, m, d] = date.split("-").map(Number);
    const guess = Date.UTC(y, m - 1, d);
    const p = parts(guess, tz);
    let off = Math.round((Date.UTC(p.y, p.m - 1, p.d, p.h, p.min) - guess) / 60000);
    const p2 = parts(guess - off * 60000, tz);
    off = Math.round((Date.UTC(p2.y, p2.m - 1, p2.d, p2.h, p2.min) - (guess - off * 60000)) / 60000);
    const sign = off < 0 ? "-" : "+";
    off = Math.abs(off);
    return sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }
  async function pointsOf(s) {
    if (!state.points[s.id]) {
      const ps = await api("/api/sites/" + enc(s.id) + "/points");
      state.points[s.id] = Object.fromEntries(ps.map((p) => [p.id, p]));
    }
    return state.points[s.id];
  }

  // ---- energy report ----
  const energyCols = () => [
    { key: "space", label: t("energy.space") },
    { key: "name", label: t("energy.name") },
    { key: "comfort_hours", label: t("energy.comfort"), num: 2 },
    { key: "baseline_hours", label: t("energy.baseline"), num: 2 },
    { key: "saved_hours", label: t("energy.saved"), num: 2 },
    { key: "heating_kw", label: t("energy.heating_kw"), num: 1 },
    { key: "lighting_kw", label: t("energy.lighting_kw"), num: 1 },
    { key: "saved_heating_kwh", label: t("energy.saved_heating"), num: 1 },
    { key: "saved_lighting_kwh", label: t("energy.saved_lighting"), num: 1 },
  ];
  async function renderEnergy(s, r, seq) {
    const w = routeWeek(r);
    $("energy-week").value = weekStr(w);
    const rep = await api("/api/reports/energy?site=" + enc(s.id) + "&week=" + enc(weekStr(w)));
    if (seq !== renderSeq) return;
    state.last.energy = rep;
    const rows = rep.spaces.map((x) => Object.assign({ $attrs: { "data-space": x.space } }, x));
    const total = Object.assign({ space: t("energy.total"), name: "", heating_kw: undefined, lighting_kw: undefined, $attrs: { class: "total" } }, rep.total);
    table($("energy-table"), energyCols(), rows, rows.length ? total : null);
    chart($("energy-chart"), rep.spaces);
    if (!rows.length) $("energy-chart").replaceChildren(el("p", { class: "note", text: t("energy.none") }));
  }
  // chart draws comfort against baseline hours per space as SVG bars.
  function chart(box, spaces) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = (tag, attrs, ...kids) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); e.append(...kids); return e; };
    const max = Math.max(1, ...spaces.map((x) => Math.max(x.baseline_hours, x.comfort_hours)));
    const rowH = 34, left = 160, width = 660, barW = width - left - 60;
    const g = svg("svg", { viewBox: "0 0 " + width + " " + (spaces.length * rowH + 30), role: "img", "aria-label": t("energy.title"), class: "energy-chart" });
    spaces.forEach((x, i) => {
      const y = i * rowH + 4;
      const name = x.name || x.space;
      g.append(svg("text", { x: left - 8, y: y + 18, "text-anchor": "end", class: "axis" }, name.length > 22 ? name.slice(0, 21) + "…" : name,
        svg("title", {}, name)));
      g.append(svg("rect", { x: left, y, width: (x.baseline_hours / max) * barW, height: 12, class: "baseline", "data-space": x.space },
        svg("title", {}, t("chart.baseline") + ": " + num(x.baseline_hours, 2) + " h")));
      g.append(svg("rect", { x: left, y: y + 14, width: (x.comfort_hours / max) * barW, height: 12, class: "comfort", "data-space": x.space },
        svg("title", {}, t("chart.comfort") + ": " + num(x.comfort_hours, 2) + " h")));
      g.append(svg("text", { x: left + (x.baseline_hours / max) * barW + 4, y: y + 11, class: "value" }, num(x.baseline_hours, 1)));
      g.append(svg("text", { x: left + (x.comfort_hours / max) * barW + 4, y: y + 25, class: "value" }, num(x.comfort_hours, 1)));
    });
    const ly = spaces.length * rowH + 20;
    g.append(svg("rect", { x: left, y: ly - 9, width: 10, height: 10, class: "baseline" }), svg("text", { x: left + 14, y: ly, class: "axis" }, t("chart.baseline")));
    g.append(svg("rect", { x: left + 250, y: ly - 9, width: 10, height: 10, class: "comfort" }), svg("text", { x: left + 264, y: ly, class: "axis" }, t("chart.comfort")));
    box.replaceChildren(g);
  }

  // ---- no-show report ----
  async function renderNoShows(s, r, seq) {
    const since = $("noshows-since").value, until = $("noshows-until").value;
    const q = "site=" + enc(s.id) + (since ? "&since=" + enc(since) : "") + (until ? "&until=" + enc(until) : "");
    const rep = await api("/api/reports/noshows?" + q);
    if (seq !== renderSeq) return;
    state.last.noshowsQuery = q;
    const sp = parts(rep.since, s.time_zone), up = parts(rep.until, s.time_zone);
    if (!since) $("noshows-since").value = dateStr(sp);
    if (!until) $("noshows-until").value = dateStr(up);
    $("noshows-note").textContent = t("noshows.period", { since: dateStr(sp) + " " + hhmm(sp), until: dateStr(up) + " " + hhmm(up) }) +
      (rep.complete ? "" : " " + t("noshows.incomplete")) + (rep.notes && rep.notes.length ? " " + rep.notes.join(" ") : "");
    table($("noshows-table"), [
      { key: "organiser", label: t("noshows.organiser") },
      { key: "bookings", label: t("noshows.bookings"), num: 0 },
      { key: "no_shows", label: t("noshows.noshows"), num: 0 },
      { key: "late", label: t("noshows.late"), num: 0 },
      { key: "rate", label: t("noshows.rate"), get: (x) => num(x.rate * 100, 1) + " %", csv: (x) => String(x.rate) },
    ], rep.organisers.map((x) => Object.assign({ $attrs: { "data-organiser": x.organiser } }, x)));
  }

  // ---- events: stored, then live over a streamed fetch ----
  const eventCols = () => [
    { key: "time", label: t("events.time"), get: (e) => fmtTime(e.time), csv: (e) => e.time },
    { key: "severity", label: t("events.severity"), get: (e) => t("sev." + e.severity), csv: (e) => e.severity },
    { key: "kind", label: t("events.kind") },
    { key: "space", label: t("events.space") },
    { key: "subject", label: t("events.subject") },
    { key: "message", label: t("events.message") },
  ];
  function eventRow(e) { return Object.assign({ $attrs: { class: "sev-" + e.severity, "data-id": String(e.id), "data-kind": e.kind } }, e); }
  async function renderEvents(s, r, seq) {
    if (state.live && state.live.site === s.id) { drawEvents(); return; }
    stopLive();
    setLive("connecting");
    const evs = await api("/api/events?site=" + enc(s.id) + "&limit=200");
    if (seq !== renderSeq) return;
    const live = { site: s.id, events: evs.slice().reverse(), ctl: new AbortController() };
    state.live = live;
    drawEvents();
    streamEvents(live, evs.length ? evs[evs.length - 1].id : 0);
  }
  function drawEvents() {
    if (!state.live) return;
    table($("events-table"), eventCols(), state.live.events.map(eventRow));
  }
  function setLive(st) {
    const b = $("events-live");
    b.dataset.state = st;
    b.textContent = t("live." + st);
  }
  function stopLive() {
    if (state.live) { state.live.ctl.abort(); state.live = null; }
    setLive("off");
  }
  // streamEvents reads the server-sent events of /api/events/stream
  // with fetch (EventSource cannot send the Authorization header),
  // resuming after the last id it saw when the stream ends.
  async function streamEvents(live, afterID) {
    while (state.live === live) {
      try {
        const q = "site=" + enc(live.site) + (afterID > 0 ? "&since_id=" + afterID : "");
        const resp = await api("/api/events/stream?" + q, { raw: true, signal: live.ctl.signal, headers: { Accept: "text/event-stream" } });
        setLive("on");
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, "\n");
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const msg = { event: "message", data: [] };
            for (const line of block.split("\n")) {
              if (!line || line.startsWith(":")) continue;
              const c = line.indexOf(":");
              const field = c < 0 ? line : line.slice(0, c);
              const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
              if (field === "data") msg.data.push(val); else msg[field] = val;
            }
            if (!msg.data.length) continue;
            const data = JSON.parse(msg.data.join("\n"));
            if (msg.event === "error") { showError(new Error(data.error)); continue; }
            if (msg.id) afterID = Number(msg.id);
            live.events.unshift(data);
            if (live.events.length > 500) live.events.length = 500;
            if (state.live === live && route().view === "events") drawEvents();
          }
        }
      } catch (e) {
        if (e.name === "AbortError" || state.live !== live) return;
        showError(e);
      }
      if (state.live !== live) return;
      setLive("connecting");
      await new Promise((res) => setTimeout(res, 2000));
    }
  }

  // ---- status window: doors, areas, points with overrides ----
  async function renderStatus(s, r, seq) {
    const [status, points, sec] = await Promise.all([
      api("/api/status?site=" + enc(s.id)), pointsOf(s),
      api("/api/sites/" + enc(s.id) + "/security").catch((e) => { if (e.status === 404 || e.status === 503) return null; throw e; }),
    ]);
    if (seq !== renderSeq) return;
    state.serverNow = Date.parse(status.time) || Date.now();
    $("security-note").hidden = sec !== null;
    $("security-note").textContent = t("status.nosecurity");
    $("doors").replaceChildren(...((sec && sec.doors) || []).map((d) => {
      const cls = d.state === "unknown" ? "unknown" : d.forced || d.fault ? "bad" : d.held_open || d.left_unlocked ? "warn" : d.secured ? "ok" : "open";
      const flags = [d.held_open && t("door.held"), d.forced && t("door.forced"), d.left_unlocked && t("door.left"), d.fault && t("door.fault")].filter(Boolean);
      return el("div", { class: "tile " + cls, "data-door": d.id, title: d.problem || d.description },
        el("strong", { text: d.name || d.id }),
        el("span", { text: d.state === "unknown" ? t("door.unknown") : d.secured ? t("door.secured") : d.description || t("door.unsecured") }),
        flags.length ? el("span", { class: "flags", text: flags.join(", ") }) : null,
        el("small", { text: [d.space, d.area].filter(Boolean).join(" · ") }));
    }));
    $("areas").replaceChildren(...((sec && sec.areas) || []).map((a) => {
      const cls = !a.armed_known ? "unknown" : a.arm_failed || a.mismatch ? "bad" : a.armed ? "ok" : "open";
      const words = [!a.armed_known ? t("area.unknown") : a.armed ? t("area.armed") : t("area.disarmed"),
        a.mismatch && t("area.mismatch"), a.arm_failed && t("area.failed"), a.in_window && t("area.inwindow")].filter(Boolean);
      const auth = a.authorisation ? points[a.authorisation] : null;
      return el("div", { class: "tile " + cls, "data-area": a.id, title: a.problem || "" },
        el("strong", { text: a.name || a.id }), el("span", { text: words.join(", ") }),
        a.arm_at ? el("small", { text: t("area.armat") + " " + fmtTime(a.arm_at) }) : null,
        auth && auth.writable && isOperator() ? el("button", { type: "button", class: "override", "data-point": auth.id, text: t("override.button"), onclick: () => openOverride(s, auth) }) : null);
    }));
    table($("feeds-table"), [
      { key: "source", label: t("feed.source") },
      { key: "state", label: t("feed.state"), get: feedState },
      { key: "last_success", label: t("feed.lastgood"), get: (f) => f.last_success && !f.last_success.startsWith("0001") ? fmtTime(f.last_success) : t("feed.never") },
      { key: "bookings", label: t("feed.bookings"), num: 0 },
      { key: "last_error", label: "", get: (f) => f.ok ? "" : f.last_error || "" },
    ], (status.feeds || []).map((f) => Object.assign({ $attrs: { "data-feed": f.source, class: f.ok ? "ok" : "bad" } }, f)));
    const cols = [
      { key: "point", label: t("status.point") },
      { key: "desired", label: t("status.desired"), get: (p) => p.desired_text },
      { key: "actual", label: t("status.actual"), get: (p) => (p.actual_text || (p.actual_error ? "⚠ " + p.actual_error : "")) + (p.device_down ? " ⚠ " + t("status.devicedown") : "") },
      { key: "source", label: t("status.source") },
      { key: "reason", label: t("status.reason") },
      { key: "override", label: t("status.override"), get: (p) => p.override ? p.override.who + ": " + p.override.why + " → " + fmtTime(p.override.until) : "" },
    ];
    if (isOperator()) {
      cols.push({ key: "actions", label: "", get: (p) => {
        const info = points[p.point];
        if (!info || !info.writable) return "";
        return el("span", { class: "actions" },
          el("button", { type: "button", class: "override", "data-point": p.point, text: t("override.button"), onclick: () => openOverride(s, info) }),
          p.override ? el("button", { type: "button", class: "clear", "data-point": p.point, text: t("override.clear"), onclick: () => clearOverride(s, p.point) }) : null);
      } });
    }
    table($("points-table"), cols, status.points.map((p) => Object.assign({ $attrs: { "data-point": p.point, class: p.override ? "overridden" : "" } }, p)));
    for (const th of $("points-table").querySelectorAll("[data-key=actions]")) th.classList.add("noexport");
  }
  // feedState says how a booking source is doing, as bmsgw status does.
  function feedState(f) {
    const never = !f.fetched_at || f.fetched_at.startsWith("0001");
    if (f.ok) return t("feed.ok");
    if (!f.consecutive_failures) return never ? t("feed.waiting") : t("feed.waiting") + ", " + t("feed.cached") + " " + fmtTime(f.fetched_at);
    const failing = t("feed.failing").replace("{n}", String(f.consecutive_failures));
    if (never) return failing + ", " + t("feed.none");
    return f.from_cache ? failing + ", " + t("feed.cached") + " " + fmtTime(f.fetched_at) : failing;
  }
  function openOverride(s, p) {
    const f = $("override-form");
    f.hidden = false;
    f.dataset.site = s.id;
    f.dataset.point = p.id;
    $("override-point").textContent = p.id;
    $("override-error").textContent = "";
    let input;
    if (p.labels && Object.keys(p.labels).length) {
      input = el("select", { id: "override-value" }, Object.entries(p.labels).sort((a, b) => a[1] - b[1]).map(([name, v]) => el("option", { value: "label:" + name, text: name + " (" + v + ")" })));
    } else if (p.type === "bool") {
      input = el("select", { id: "override-value" }, el("option", { value: "1", text: t("on") }), el("option", { value: "0", text: t("off") }));
    } else {
      input = el("input", { id: "override-value", type: "number", step: "any", required: true });
      if (p.min !== undefined) input.min = p.min;
      if (p.max !== undefined) input.max = p.max;
    }
    $("override-value-slot").replaceChildren(input);
    // Two hours from the gateway's clock (the status's time), shown in
    // the browser's zone as datetime-local inputs are.
    const until = new Date((state.serverNow || Date.now()) + 2 * 3600 * 1000);
    until.setSeconds(0, 0);
    $("override-until").value = until.getFullYear() + "-" + pad(until.getMonth() + 1) + "-" + pad(until.getDate()) + "T" + pad(until.getHours()) + ":" + pad(until.getMinutes());
    $("override-why").value = "";
    $("override-why").focus();
  }
  async function submitOverride(ev) {
    ev.preventDefault();
    const f = $("override-form");
    const v = $("override-value").value;
    const body = { why: $("override-why").value.trim(), until: new Date($("override-until").value).toISOString() };
    if (v.startsWith("label:")) body.label = v.slice(6); else body.value = Number(v);
    try {
      await api("/api/sites/" + enc(f.dataset.site) + "/points/" + enc(f.dataset.point) + "/override", { method: "PUT", body });
      f.hidden = true;
      document.body.dataset.lastAction = "override:" + f.dataset.point;
      render();
    } catch (e) { $("override-error").textContent = e.message; }
  }
  async function clearOverride(s, point) {
    try {
      await api("/api/sites/" + enc(s.id) + "/points/" + enc(point) + "/override", { method: "DELETE" });
      document.body.dataset.lastAction = "clear:" + point;
      render();
    } catch (e) { showError(e); }
  }

  // ---- wiring ----
  function init() {
    $("login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
    $("logout").addEventListener("click", () => signOut(""));
    for (const b of document.querySelectorAll("#lang button")) {
      b.addEventListener("click", () => { state.lang = b.dataset.lang; localStorage.setItem("bmsgw.lang", state.lang); render(); });
    }
    $("site").addEventListener("change", () => go({ site: $("site").value }));
    const weekInput = (id) => $(id).addEventListener("change", () => { const w = parseWeek($(id).value); if (w) go({ week: weekStr(w) }); else showError(new Error($(id).value + ": use an ISO week such as 2026-W48")); });
    weekInput("week"); weekInput("energy-week");
    for (const [id, by] of [["week-prev", -1], ["week-next", 1], ["energy-prev", -1], ["energy-next", 1]]) {
      $(id).addEventListener("click", () => go({ week: weekStr(shiftWeek(routeWeek(route()), by)) }));
    }
    $("week-today").addEventListener("click", () => go({ week: weekStr(thisWeek()) }));
    $("noshows-go").addEventListener("click", () => render());
    $("status-refresh").addEventListener("click", () => render());
    for (const b of document.querySelectorAll("button.csv")) {
      b.addEventListener("click", () => {
        const s = site();
        const name = [s ? s.id : "bmsgw", b.dataset.table.replace("-table", ""), route().week].filter(Boolean).join("-") + ".csv";
        download(name, new Blob(["\ufeff" + csv($(b.dataset.table))], { type: "text/csv;charset=utf-8" }));
      });
    }
    $("energy-xlsx").addEventListener("click", () => {
      const s = site(), w = weekStr(routeWeek(route()));
      downloadAPI("/api/reports/energy.xlsx?site=" + enc(s.id) + "&week=" + enc(w), s.id + "-energy-" + w + ".xlsx");
    });
    $("noshows-xlsx").addEventListener("click", () => {
      const s = site();
      downloadAPI("/api/reports/noshows.xlsx?" + (state.last.noshowsQuery || "site=" + enc(s.id)), s.id + "-noshows.xlsx");
    });
    $("override-form").addEventListener("submit", submitOverride);
    $("override-cancel").addEventListener("click", () => { $("override-form").hidden = true; });
    window.addEventListener("hashchange", render);
    // Exposed for tests and the curious: the CSV of a table as exported.
    window.bmsgw = { csv: (id) => csv($(id)) };
    if (state.token) signIn(state.token); else render();
  }
  init();
})();
