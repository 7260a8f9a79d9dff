/* rollout-watchdog web view: polls the API's JSON routes every second and renders them.
 * No library, no build step. Text from the server is only ever set as textContent.
 * The token is kept in sessionStorage (this tab only) and sent as "Authorization: Bearer".
 */
"use strict";

(function () {
  const POLL_MS = 1000;
  const TOKEN_KEY = "rollout-watchdog.token";
  const ACTIONS = ["start", "approve", "pause", "resume", "promote", "rollback", "abort"];
  const ALLOWED = {
    not_started: ["start"],
    progressing: ["pause", "promote", "rollback", "abort"],
    paused: ["resume", "promote", "rollback", "abort"],
    awaiting_approval: ["approve", "pause", "promote", "rollback", "abort"],
    rolled_back: ["resume", "abort"],
    promoted: [],
    aborted: [],
  };
  const APPROVE_AHEAD = ["progressing", "paused"];
  const CONFIRM = { promote: "Promote V2 to 100 % now?", abort: "Abort the rollout (terminal)?" };
  const SVG_NS = "http://www.w3.org/2000/svg";
  const cards = new Map();
  let timer = null;
  let polling = false;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function fmtTime(t) {
    if (t === null || t === undefined) return "–";
    if (t < 1e9) return "t=" + Math.round(t) + " s";  // a replay clock
    return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function fmtDur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
  }

  function fmtNum(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 1e7)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  // -- module cards -------------------------------------------------------------------

  function card(name) {
    let c = cards.get(name);
    if (c) return c;
    const section = el("section", { class: "module", id: "module-" + name, "data-module": name });
    c = {
      section,
      title: el("header", {}),
      facts: el("p", { class: "facts" }),
      last: el("p", { class: "last" }),
      rules: el("table", { class: "rules" }),
      charts: el("div", { class: "charts" }),
      reason: el("input", { class: "reason", type: "text", maxlength: "500",
                            placeholder: "reason (journaled with the action)",
                            "aria-label": "reason for " + name }),
      buttons: {},
      result: el("p", { class: "result", role: "status" }),
    };
    const controls = el("div", { class: "controls" }, c.reason);
    for (const action of ACTIONS) {
      const b = el("button", { type: "button", "data-action": action, "data-control": "",
                               class: action === "rollback" || action === "abort" ? "danger" : "" },
                   action.replace("rollback", "roll back"));
      b.addEventListener("click", () => act(name, action, c));
      c.buttons[action] = b;
      controls.append(b);
    }
    section.append(c.title, c.facts, c.last, c.rules, c.charts, controls, c.result);
    cards.set(name, c);
    return c;
  }

  function renderModule(m, live, decided) {
    const c = card(m.module);
    c.phase = m.phase;
    c.approvalNeeded = m.approval_needed === true;
    const verdict = m.last_verdict;
    const d = m.last_decision;
    c.title.replaceChildren(
      el("h2", {}, m.module),
      el("span", { class: "badge " + m.phase, "data-field": "phase" }, m.phase.replace("_", " ")),
      verdict ? el("span", { class: "badge " + verdict.kind, "data-field": "verdict" },
                   verdict.kind) : el("span", { class: "badge" }, "no verdict yet"));
    const inStage = m.stage_started_at === null ? null
      : (m.last_tick_at ?? m.stage_started_at) - m.stage_started_at;
    const live_ = m.phase === "progressing" || m.phase === "paused" ||
      m.phase === "awaiting_approval";
    const when = live_ ? " · in stage " + fmtDur(inStage)
      : d ? " · " + m.phase.replace("_", " ") + " at " + fmtTime(d.time) : "";
    c.facts.replaceChildren(
      m.stage === null ? "not started" :
        "stage " + m.stage + " · " + fmtNum(m.traffic_percent) + " % on V2" + when +
        " · last tick " + fmtTime(m.last_tick_at) +
        (m.consecutive_failures ? " · failures in a row: " + m.consecutive_failures : "") +
        (verdict && verdict.firing.length ? " · firing: " + verdict.firing.join(", ") : ""));
    c.last.replaceChildren(d ? el("span", {}, el("strong", {}, "Last decision: "),
      d.action + " by " + d.actor + " at " + fmtTime(d.time) + ": " + d.reasons.join("; "))
      : el("span", { class: "empty" }, "no decision yet"));
    renderRules(c, live);
    renderCharts(c, live, decided);
    updateButtons(c);
  }

  function renderRules(c, live) {
    const head = el("thead", {}, el("tr", {}, ...["rule", "metric", "state", "observed",
      "limit", "evidence"].map((h) => el("th", {}, h))));
    const body = el("tbody", {});
    const rules = live ? live.rules : [];
    for (const r of rules) {
      body.append(el("tr", { "data-rule": r.rule },
        el("td", {}, r.rule), el("td", {}, r.metric),
        el("td", { class: "state" }, el("span", { class: "state-" + r.state }, r.state)),
        el("td", { class: "num" }, fmtNum(r.observed)),
        el("td", { class: "num" }, fmtNum(r.limit)),
        el("td", { class: "summary" }, r.summary)));
    }
    if (!rules.length) {
      body.append(el("tr", {}, el("td", { colspan: "6", class: "empty" },
                                  "no evaluation in this stage yet")));
    }
    const caption = live && live.evaluated_at !== null
      ? el("caption", { class: "muted" }, "rules at the evaluation of " +
           fmtTime(live.evaluated_at) + (live.origin === "journal"
             ? " (from the journal: the last tick that decided something)" : ""))
      : null;
    c.rules.replaceChildren(...(caption ? [caption] : []), head, body);
  }

  function renderCharts(c, live, decided) {
    const metrics = live ? live.metrics : [];
    if (!metrics.length) {
      c.charts.replaceChildren(el("p", { class: "empty" }, "no V1/V2 comparison in this stage yet"));
      return;
    }
    c.charts.replaceChildren(...metrics.map((s) => chart(s, live.stage_started_at, decided)));
  }

  function chart(series, start, decided) {
    const W = 320, H = 130, L = 58, R = 6, T = 6, B = 18;
    const pts = series.points;
    const ts = pts.map((p) => p.t);
    const values = [];
    for (const p of pts) { values.push(p.v1, p.v2); if (p.limit !== null) values.push(p.limit); }
    const x0 = Math.min(start ?? ts[0], ts[0]), x1 = Math.max(ts[ts.length - 1], x0 + 1);
    let y0 = Math.min(...values), y1 = Math.max(...values);
    if (y1 - y0 < 1e-12) { const pad = Math.abs(y0) * 0.05 || 1; y0 -= pad; y1 += pad; }
    const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
    const x = (t) => L + (t - x0) / (x1 - x0) * (W - L - R);
    const y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
                              "aria-label": series.metric + ": V1 against V2" });
    root.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
                svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
                svg("text", { x: L - 3, y: T + 8, "text-anchor": "end" }, fmtNum(y1)),
                svg("text", { x: L - 3, y: H - B, "text-anchor": "end" }, fmtNum(y0)),
                svg("text", { x: L, y: H - 4 }, fmtTime(x0)),
                svg("text", { x: W - R, y: H - 4, "text-anchor": "end" }, fmtTime(x1)));
    const line = (cls, get) => {
      const drawn = pts.filter((p) => get(p) !== null);
      if (!drawn.length) return;
      root.append(svg("polyline", { class: cls, "data-series": cls,
        points: drawn.map((p) => x(p.t).toFixed(1) + "," + y(get(p)).toFixed(1)).join(" ") }));
      if (drawn.length <= 40 && cls !== "limit") {
        for (const p of drawn) root.append(svg("circle", { class: cls, cx: x(p.t).toFixed(1),
                                                           cy: y(get(p)).toFixed(1), r: 2 }));
      }
    };
    for (const d of decided) {  // the stage's decisions, as vertical markers
      if (d.time <= x0 || d.time > x1) continue;
      const at = x(d.time).toFixed(1);
      root.append(svg("line", { class: "marker " + d.action, x1: at, y1: T, x2: at, y2: H - B }),
                  svg("text", { class: "marker", x: at, y: T + 8, "text-anchor": "end" },
                      d.action + " "));
    }
    line("limit", (p) => p.limit);
    line("v1", (p) => p.v1);
    line("v2", (p) => p.v2);
    const last = pts[pts.length - 1];
    return el("figure", { class: "chart", "data-metric": series.metric }, root,
      el("figcaption", {}, el("strong", {}, series.metric + " "),
         el("span", { class: "key-v1" }, "— " + series.reference + " " + fmtNum(last.v1) + " "),
         el("span", { class: "key-v2" }, "— V2 " + fmtNum(last.v2) + " "),
         last.limit !== null ? el("span", { class: "key-limit" }, "-- limit " + fmtNum(last.limit)) : null,
         el("span", { class: "muted" }, " (" + series.rule + ", " + pts.length + " evaluations)")));
  }

  // -- decisions ----------------------------------------------------------------------

  function renderDecisions(rows) {
    const body = $("decisions").tBodies[0];
    const newest = rows.slice().reverse();
    body.replaceChildren(...newest.map((d) => el("tr",
      { class: "action-" + d.action, "data-id": String(d.id) },
      el("td", { class: "num" }, String(d.id)), el("td", {}, fmtTime(d.time)),
      el("td", {}, d.module), el("td", {}, d.action), el("td", {}, d.actor),
      el("td", { class: "num" }, fmtNum(d.traffic_percent) + " %"),
      el("td", { class: "reasons" }, d.reasons.join("; ")))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "7", class: "empty" },
                                                  "no decisions journaled yet")));
  }

  // -- control ------------------------------------------------------------------------

  function updateButtons(c) {
    const has = token() !== "";
    for (const [action, b] of Object.entries(c.buttons)) {
      // approving ahead of the wait (progressing, or paused while waiting) where the next
      // stage needs it; the wait itself (awaiting_approval) always offers it
      const allowed = (ALLOWED[c.phase] || []).includes(action) ||
        (action === "approve" && c.approvalNeeded && APPROVE_AHEAD.includes(c.phase));
      b.disabled = !has || !allowed;
      b.title = !has ? "paste the API token above to enable control"
        : allowed ? "" : "not possible while " + c.phase;
    }
  }

  function updateControls() {
    const has = token() !== "";
    $("token-state").textContent = has ? "control enabled (token in this tab only)"
      : "read-only: paste the API token to enable control";
    for (const c of cards.values()) updateButtons(c);
    $("kill-on").disabled = !has;
    $("kill-off").disabled = !has;
  }

  async function post(path, body, out) {
    const t = token();
    if (!t) { show(out, "error", "paste the API token first"); return null; }
    let r;
    try {
      r = await fetch(path, { method: "POST", cache: "no-store", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", Accept: "application/json",
                   Authorization: "Bearer " + t } });
    } catch (e) {
      show(out, "error", "the API cannot be reached: " + e.message);
      return null;
    }
    const answer = await r.json().catch(() => null);
    if (!r.ok) {
      const why = answer && answer.message ? answer.message : "HTTP " + r.status;
      show(out, "error", "refused (" + r.status + "): " + why);
      return null;
    }
    return answer;
  }

  function show(out, kind, text) { out.className = "result " + kind; out.textContent = text; }

  async function act(module, action, c) {
    const reason = c.reason.value.trim();
    if (!reason) { show(c.result, "error", "write a reason first (it is journaled)"); return; }
    if (CONFIRM[action] && !window.confirm(module + ": " + CONFIRM[action])) return;
    const done = await post("../api/modules/" + encodeURIComponent(module) + "/" + action,
                            { reason, actor: "web" }, c.result);
    if (done) {
      c.reason.value = "";
      show(c.result, "done", action + ": journaled as decision #" + done.decision.id +
           "; now " + done.phase + " at " + fmtNum(done.traffic_percent) + " % on V2");
      pollNow();
    }
  }

  async function killSwitch(state) {
    const input = $("kill-reason"), out = $("kill-result");
    const reason = input.value.trim();
    if (!reason) { show(out, "error", "write a reason first (it is journaled)"); return; }
    const done = await post("../api/kill-switch", { state, reason, actor: "web" }, out);
    if (done) {
      input.value = "";
      show(out, "done", "kill switch " + state + ": " + done.decisions.length + " decision(s)");
      pollNow();
    }
  }

  // -- polling ------------------------------------------------------------------------

  async function poll() {
    if (polling) return;
    polling = true;
    const conn = $("conn");
    try {
      const [status, decisions] = await Promise.all([
        getJSON("../status"), getJSON("../api/decisions?limit=100")]);
      const lives = await Promise.all(status.modules.map((m) =>
        getJSON("../api/modules/" + encodeURIComponent(m.module) + "/live").catch(() => null)));
      const container = $("modules");
      const seen = new Set();
      status.modules.forEach((m, i) => {
        renderModule(m, lives[i], decisions.filter((d) => d.module === m.module));
        seen.add(m.module);
      });
      for (const [name, c] of cards) if (!seen.has(name)) { c.section.remove(); cards.delete(name); }
      container.replaceChildren(...status.modules.map((m) => cards.get(m.module).section));
      if (!status.modules.length) {
        container.replaceChildren(el("p", { class: "empty" }, "no module configured or journaled"));
      }
      $("kill").hidden = !status.kill_switch;
      renderDecisions(decisions);
      updateControls();
      reveal();
      conn.className = "conn ok";
      conn.textContent = "live · " + fmtTime(status.time);
    } catch (e) {
      conn.className = "conn down";
      conn.textContent = "API unreachable (retrying): " + e.message;
    } finally {
      polling = false;
      timer = setTimeout(poll, POLL_MS);
    }
  }

  function pollNow() { clearTimeout(timer); poll(); }

  // A Slack approve link opens the page at #approve=<module>: that module's card is
  // scrolled to, its Approve button marked and its reason field focused (once per link;
  // approving still takes the token, a reason and the click).
  let revealed = "";
  function reveal() {
    const m = /^#approve=(.+)$/.exec(location.hash);
    if (!m || location.hash === revealed) return;
    let name;
    try { name = decodeURIComponent(m[1]); } catch (e) { return; }
    const c = cards.get(name);
    if (!c) return;
    revealed = location.hash;
    for (const other of cards.values()) other.section.classList.remove("approve-target");
    c.section.classList.add("approve-target");
    c.buttons.approve.classList.add("wanted");
    c.section.scrollIntoView({ block: "center" });
    c.reason.focus();
  }

  function init() {
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = $("token");
      const value = input.value.trim();
      input.value = "";
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      updateControls();
    });
    $("token-clear").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      updateControls();
    });
    $("kill-on").addEventListener("click", () => killSwitch("on"));
    $("kill-off").addEventListener("click", () => killSwitch("off"));
    window.addEventListener("hashchange", reveal);
    updateControls();
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
