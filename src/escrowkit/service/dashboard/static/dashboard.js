// escrowkit dashboard: draws /dashboard/state, follows /v1/events, acts through /v1/*.
// The page's own code: no libraries. Every amount's text comes from the server
// (TokenUnits.format); values in base units only size bars.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const ROLE = document.querySelector('meta[name="session-role"]').content;
const SVG = "http://www.w3.org/2000/svg";
let current = null;
let range = "24h";
let refreshTimer = null;
let seenDecisions = new Set();

// ---- small DOM helpers ---------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "style") Object.assign(node.style, value); // CSSOM: allowed by the CSP
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}

function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.flat());
  return node;
}

function empty(strong, rest) {
  return h("p", { class: "empty" }, h("strong", {}, strong), " ", rest);
}

function state(word, key) {
  const cls = "s-" + String(key || word).toLowerCase().split(" ")[0];
  return h("span", { class: "state " + cls }, String(word).toLowerCase().replace("_", " "));
}

function ratio(part, whole) {
  const w = Number(whole);
  return w > 0 ? Math.max(0, Math.min(1, Number(part) / w)) : 0;
}

function short(address) {
  return address && address.length > 14 ? address.slice(0, 8) + "…" + address.slice(-4) : address;
}

// ---- messages ------------------------------------------------------------------------

function toast(text, kind, code) {
  const node = h("div", { class: "toast toast-" + (kind || "info"), role: "status", "data-code": code || "" },
    text, code ? h("span", { class: "code" }, code) : null);
  document.getElementById("toasts").append(node);
  setTimeout(() => node.remove(), kind === "bad" ? 9000 : 5000);
}

// ---- the budget ----------------------------------------------------------------------

function drawGauge(budget) {
  const used = Math.max(0, Math.min(1, budget.used_ratio));
  const spent = ratio(budget.spent.value, budget.total.value);
  const arc = (from, to, cls, color) => {
    const a0 = Math.PI * (1 - from), a1 = Math.PI * (1 - to);
    const x0 = 60 + 50 * Math.cos(a0), y0 = 62 - 50 * Math.sin(a0);
    const x1 = 60 + 50 * Math.cos(a1), y1 = 62 - 50 * Math.sin(a1);
    return s("path", { d: `M${x0} ${y0} A50 50 0 0 1 ${x1} ${y1}`, fill: "none", stroke: color,
      "stroke-width": 12, class: cls });
  };
  const color = used >= 1 ? "#b42318" : used >= 0.8 ? "#a45d00" : "#2f5bd3";
  const parts = [arc(0, 1, "track", "#eef0f3")];
  if (spent > 0) parts.push(arc(0, spent, "spent", color));
  if (used > spent) parts.push(arc(spent, used, "reserved", "#9db4f0"));
  parts.push(s("text", { x: 60, y: 60, "text-anchor": "middle" }, `${Math.round(used * 100)}% used`));
  fill("gauge", parts);
}

function drawBudget(data) {
  const b = data.budget;
  document.getElementById("fig-total").textContent = b.total.text;
  document.getElementById("fig-spent").textContent = b.spent.text;
  document.getElementById("fig-reserved").textContent = b.reserved.text;
  document.getElementById("fig-remaining").textContent = b.remaining.text;
  drawGauge(b);
  document.getElementById("budget-note").textContent =
    `Spent is net of refunds; reserved is spends being funded now. ${data.mode} mode.`;
  const frozen = document.getElementById("frozen");
  frozen.hidden = !data.frozen;
  frozen.textContent = data.frozen ? `Frozen: every spend and approval is denied (${data.frozen}).` : "";
}

function drawAgents(data) {
  document.getElementById("today").textContent = data.day;
  if (!data.agents.length) {
    fill("agent-bars", empty("No agents yet.", "Register one: escrowkit agents add, or POST /v1/agents."));
    return;
  }
  fill("agent-bars", data.agents.map((a) => {
    const spent = ratio(a.spent_today.value, a.daily_limit.value);
    const held = ratio(a.held_today.value, a.daily_limit.value);
    const cls = spent + held >= 1 ? "bar full" : spent + held >= 0.8 ? "bar near" : "bar";
    return h("div", { class: "bar-row", "data-agent": a.agent_id },
      h("div", { class: "bar-label" }, h("span", {}, a.name === a.agent_id ? a.agent_id : `${a.name} (${a.agent_id})`),
        h("span", { class: "num" }, h("span", { class: "agent-spent" }, a.spent_today.text), " of ",
          h("span", { class: "agent-limit" }, a.daily_limit.text))),
      h("div", { class: cls, role: "img", "aria-label": `${a.spent_today.text} of ${a.daily_limit.text}` },
        h("span", { class: "spent", style: { width: `${(spent * 100).toFixed(2)}%` } }),
        h("span", { class: "held", style: { width: `${(held * 100).toFixed(2)}%` } })),
      h("div", { class: "bar-label small muted" }, h("span", {}, `${a.remaining_today.text} left today`),
        h("span", { class: "num" }, `lifetime ${a.spent.text}`)));
  }));
}

// ---- spend over time -----------------------------------------------------------------

function drawChart(data) {
  const buckets = data.chart[range];
  const svg = document.getElementById("chart");
  // Drawn at the chart's own pixel width, so that its text is never stretched.
  const W = Math.max(Math.round(svg.clientWidth || 720), 280), H = Math.round(svg.clientHeight || 220);
  const left = 8, bottom = 26, top = 18;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const max = Math.max(...buckets.map((b) => Number(b.value)), 0);
  const step = (W - left * 2) / buckets.length;
  const parts = [s("line", { x1: left, x2: W - left, y1: H - bottom, y2: H - bottom, class: "axis" })];
  buckets.forEach((b, n) => {
    const height = max > 0 ? (Number(b.value) / max) * (H - bottom - top) : 0;
    const x = left + n * step + step * 0.15;
    const rect = s("rect", { x, y: H - bottom - height, width: step * 0.7, height: Math.max(height, 0),
      class: "col", "data-label": b.label, "data-text": b.text });
    rect.append(s("title", {}, `${b.label}: ${b.text}`));
    parts.push(rect);
    const every = range === "24h" ? (W < 500 ? 6 : 3) : 1;
    if (n % every === 0) parts.push(s("text", { x: x + step * 0.35, y: H - 8, "text-anchor": "middle" }, b.label));
  });
  if (max > 0) {
    const peak = buckets.find((b) => Number(b.value) === max);
    parts.push(s("text", { x: left, y: 12 }, `peak ${peak.text}`));
  }
  fill("chart", parts);
  const note = max > 0 ? `Committed spend per ${range === "24h" ? "hour" : "day"} (net of refunds).`
    : "No committed spend in this period yet: spends appear here once they are funded.";
  document.getElementById("chart-note").textContent =
    note + (data.chart.truncated ? " Only the latest 2,000 spends are drawn." : "");
}

// ---- approvals -----------------------------------------------------------------------

function drawApprovals(data) {
  document.getElementById("approvals-count").textContent = data.approvals.length || "";
  if (!data.approvals.length) {
    fill("approvals", empty("Nothing waits for approval.",
      "A spend above its agent's approval threshold appears here, with Approve and Reject."));
    return;
  }
  const rows = data.approvals.map((a) => h("tr", { "data-approval": a.approval_id },
    h("td", {}, h("strong", {}, a.agent_id), h("div", { class: "small muted" }, a.purpose)),
    h("td", { class: "num" }, a.amount.text),
    h("td", { class: "hide-narrow mono", title: a.provider }, short(a.provider)),
    h("td", { class: "hide-narrow small muted" }, `asked ${a.requested_at}`, h("br"), `expires ${a.expires_at}`),
    h("td", {}, h("div", { class: "actions" },
      h("button", { class: "primary", "data-action": "approve", onclick: () => approve(a) }, "Approve"),
      h("button", { class: "danger", "data-action": "reject", onclick: () => reject(a) }, "Reject")))));
  fill("approvals", h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Agent"), h("th", { class: "num" }, "Amount"),
      h("th", { class: "hide-narrow" }, "Provider"), h("th", { class: "hide-narrow" }, "When"), h("th", {}, ""))),
    h("tbody", {}, rows))));
}

// ---- decisions and alerts ------------------------------------------------------------

function drawDecisions(data) {
  if (!data.decisions.length) {
    fill("decisions", h("li", {}, empty("No decisions yet.",
      "An agent's POST /v1/spends shows here the moment it is decided.")));
    return;
  }
  const first = seenDecisions.size === 0;
  fill("decisions", data.decisions.map((d) => {
    const fresh = !first && !seenDecisions.has(d.id);
    seenDecisions.add(d.id);
    return h("li", { class: fresh ? "fresh" : "", "data-event": d.id, "data-status": d.status, "data-code": d.code || "" },
      state(d.status), h("span", { title: d.text }, d.summary), h("span", { class: "num" }, d.amount.text),
      h("span", { class: "when" }, d.at, d.code ? ` · ${d.code}` : ""));
  }));
}

function drawAlerts(data) {
  if (!data.alerts.length) {
    fill("alerts", h("li", {}, empty("No alerts.",
      "One fires when spend reaches 80, 90 and 100% of the total budget or an agent's daily limit.")));
    return;
  }
  fill("alerts", data.alerts.map((a) => h("li", { "data-kind": a.kind },
    h("span", { class: "state " + (a.threshold >= 100 ? "s-denied" : "s-pending_approval") }, `${a.threshold}%`),
    h("span", {}, a.text), h("span", { class: "num" }, `${a.spent.text} of ${a.limit.text}`),
    h("span", { class: "when" }, a.at))));
}

// ---- escrows, scopes, categories -----------------------------------------------------

function escrowButton(e, action, label) {
  const rule = e[action];
  return h("span", {}, h("button", { "data-action": action, disabled: !rule.allowed,
      title: rule.reason || "", onclick: () => escrowAction(e, action) }, label),
    rule.reason ? h("span", { class: "why" }, rule.reason) : null);
}

function drawEscrows(data) {
  if (!data.escrows.length) {
    fill("escrows", empty("No escrows yet.", "Each approved spend funds one on-chain; it is listed here until settled or refunded."));
    return;
  }
  const rows = data.escrows.map((e) => {
    const open = e.status === "funded";
    return h("tr", { "data-escrow": e.escrow_id },
      h("td", {}, h("strong", {}, e.agent_id), h("div", { class: "small muted" }, e.purpose)),
      h("td", { class: "num" }, e.amount.text),
      h("td", {}, state(e.chain_state), h("div", { class: "small muted ledger-word" }, `ledger: ${e.status}`)),
      h("td", { class: "hide-narrow mono", title: e.escrow_id }, short(e.escrow_id),
        e.deadline ? h("div", { class: "small muted" }, `deadline ${e.deadline}`) : null),
      h("td", {}, open ? h("div", { class: "actions" }, escrowButton(e, "settle", "Settle"),
        escrowButton(e, "cancel", "Cancel")) : h("span", { class: "small muted" }, "closed")));
  });
  fill("escrows", h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Agent"), h("th", { class: "num" }, "Amount"), h("th", {}, "On-chain"),
      h("th", { class: "hide-narrow" }, "Escrow"), h("th", {}, ""))), h("tbody", {}, rows))));
}

function figureTable(head, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "tree" },
    h("thead", {}, h("tr", {}, head.map((t, n) => h("th", { class: n ? "num" : "" }, t)))),
    h("tbody", {}, rows)));
}

function drawScopes(data) {
  if (!data.scopes.length) {
    fill("scopes", empty("No scope budgets.", "Give one with PUT /v1/budgets/<scope>."));
    return;
  }
  fill("scopes", figureTable(["Scope", "Allocated", "Spent", "Reserved", "Remaining"],
    data.scopes.map((sc) => h("tr", { "data-scope": sc.scope },
      h("td", { style: { paddingLeft: `${0.4 + sc.depth * 1.1}rem` }, title: sc.scope || "root" },
        sc.depth ? "└ " : "", sc.label),
      h("td", { class: "num" }, sc.allocated.text), h("td", { class: "num" }, sc.spent.text),
      h("td", { class: "num" }, sc.reserved.text), h("td", { class: "num" }, sc.remaining.text)))));
}

function drawCategories(data) {
  if (!data.categories.length) {
    fill("categories", empty("No categories.", "Spends without a category count only against the agents' and total budgets."));
    return;
  }
  fill("categories", figureTable(["Category", "Spent", "Reserved", "Budget"],
    data.categories.map((c) => h("tr", { "data-category": c.category }, h("td", {}, c.category),
      h("td", { class: "num" }, c.spent.text), h("td", { class: "num" }, c.reserved.text),
      h("td", { class: "num" }, c.budget ? c.budget.text : "uncapped")))));
}

function draw(data) {
  current = data;
  drawBudget(data);
  drawAgents(data);
  drawChart(data);
  drawApprovals(data);
  drawDecisions(data);
  drawAlerts(data);
  drawEscrows(data);
  drawScopes(data);
  drawCategories(data);
  document.getElementById("updated").textContent = `updated ${data.now}.`;
  document.body.dataset.loaded = "1";
}

// ---- talking to the service ----------------------------------------------------------

async function refresh() {
  const response = await fetch("/dashboard/state", { headers: { Accept: "application/json" } });
  if (response.status === 401) { window.location.assign("/"); return; }
  if (!response.ok) { toast("Could not read the dashboard's figures; retrying.", "bad", `http_${response.status}`); return; }
  draw(await response.json());
}

// One refresh at a time: events that arrive meanwhile cost one more refresh, not one each.
let refreshing = false;
let dirty = false;

function soon() {
  if (refreshing) { dirty = true; return; }
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(run, 60);
}

async function run() {
  refreshing = true;
  try { await refresh(); } catch (_) { /* the next event or reconnect tries again */ }
  refreshing = false;
  if (dirty) { dirty = false; refreshTimer = setTimeout(run, 200); }
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF, Accept: "application/json" },
    body: JSON.stringify(body || {}),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

function refused(outcome) {
  const error = (outcome.data && outcome.data.error) || { code: `http_${outcome.status}`, message: "refused" };
  toast(error.message, "bad", error.code);
  if (outcome.status === 401) window.location.assign("/");
}

function busy(selector, on) {
  document.querySelectorAll(selector).forEach((b) => { b.disabled = on; });
}

async function approve(a) {
  busy(`tr[data-approval="${a.approval_id}"] button`, true);
  const outcome = await post(`/v1/approvals/${encodeURIComponent(a.approval_id)}/approve`, { note: "approved in the dashboard" });
  if (!outcome.ok) refused(outcome);
  else if (outcome.data.status === "APPROVED") toast(`Approved: ${a.agent_id}'s ${a.amount.text} is funded on-chain.`, "ok", "approved");
  else toast(outcome.data.reason, "bad", outcome.data.code || outcome.data.status.toLowerCase());
  await refresh();
}

async function reject(a) {
  busy(`tr[data-approval="${a.approval_id}"] button`, true);
  const outcome = await post(`/v1/approvals/${encodeURIComponent(a.approval_id)}/reject`, { reason: "rejected in the dashboard" });
  if (!outcome.ok) refused(outcome);
  else toast(`Rejected: ${a.agent_id}'s ${a.amount.text}.`, "warn", "rejected");
  await refresh();
}

async function escrowAction(e, action) {
  busy(`tr[data-escrow="${e.escrow_id}"] button`, true);
  const outcome = await post(`/v1/escrows/${e.escrow_id}/${action}`);
  if (!outcome.ok) refused(outcome);
  else toast(`${action === "settle" ? "Settled" : "Cancelled"}: ${e.amount.text} of ${e.agent_id}.`, "ok",
    action === "settle" ? "settled" : "refunded");
  await refresh();
}

function follow() {
  const live = document.getElementById("live");
  const source = new EventSource("/v1/events");
  source.onopen = () => { live.dataset.state = "open"; live.textContent = "live"; soon(); };
  source.onerror = () => {
    live.dataset.state = source.readyState === EventSource.CLOSED ? "closed" : "connecting";
    live.textContent = source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…";
    if (source.readyState === EventSource.CLOSED) setTimeout(() => { refresh(); follow(); }, 5000);
  };
  for (const type of ["decision", "approval", "escrow"]) source.addEventListener(type, soon);
  source.addEventListener("alert", (message) => {
    try { toast(JSON.parse(message.data).text, "warn", "alert"); } catch (_) { /* the list shows it */ }
    soon();
  });
}

function tabs() {
  document.querySelectorAll(".tabs button").forEach((button) => button.addEventListener("click", () => {
    range = button.dataset.range;
    document.querySelectorAll(".tabs button").forEach((b) => b.setAttribute("aria-selected", String(b === button)));
    if (current) drawChart(current);
  }));
}

window.addEventListener("resize", () => { if (current) drawChart(current); });

document.addEventListener("DOMContentLoaded", () => {
  document.body.dataset.role = ROLE;
  tabs();
  refresh();
  follow();
});
