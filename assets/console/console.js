// The agent console: a list of handed-over calls and, for the selected one, its handoff
// packet, both sides' live transcript and the brain's suggested answers.
//
// The page keeps its own copy of the calls: a snapshot from /api/calls, then every call event
// from /api/events (SSE) folded in the same way the gateway's ConsoleState does. The snapshot
// is (re)loaded once the event stream is open, so nothing said in between is lost; lines seen
// twice (in the snapshot and on the stream) are merged by time, speaker and text.
// Everything from the network goes into the page as text, never as HTML.
"use strict";

const calls = new Map();
let selected = null;
let aiCount = 0;
let suggestTimer = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function lineKey(l) {
  return `${l.at_ms}|${l.speaker}|${l.text}`;
}

function addLines(view, lines) {
  const seen = new Set(view.transcript.map(lineKey));
  for (const l of lines) {
    if (!seen.has(lineKey(l))) {
      view.transcript.push(l);
      seen.add(lineKey(l));
    }
  }
  view.transcript.sort((a, b) => a.at_ms - b.at_ms);
}

function blankView(id, at) {
  return { call_id: id, caller: "", callee: "", channel: "", stage: "ai", language: "", started_at_ms: at,
    updated_at_ms: at, agent: null, handoff: null, transcript: [], end_reason: null, outcome: null };
}

function mergeSnapshot(list) {
  for (const v of list) {
    const mine = calls.get(v.call_id);
    if (mine) {
      const lines = mine.transcript;
      Object.assign(mine, v, { transcript: lines });
      addLines(mine, v.transcript);
    } else {
      calls.set(v.call_id, v);
    }
  }
}

// Mirrors ConsoleState::apply on the gateway.
function applyEvent(ev) {
  let v = calls.get(ev.call_id);
  if (!v) {
    v = blankView(ev.call_id, ev.at_ms);
    calls.set(ev.call_id, v);
  }
  v.updated_at_ms = Math.max(v.updated_at_ms, ev.at_ms);
  switch (ev.type) {
    case "started":
      Object.assign(v, { caller: ev.caller, callee: ev.callee, channel: ev.channel, started_at_ms: ev.at_ms });
      break;
    case "said":
      if (ev.language) v.language = ev.language;
      addLines(v, [{ speaker: ev.speaker, text: ev.text, at_ms: ev.at_ms }]);
      if (ev.call_id === selected && ev.speaker === "caller") scheduleSuggestions();
      break;
    case "escalated":
      if (!v.caller) Object.assign(v, { caller: ev.packet.caller, callee: ev.packet.callee, channel: ev.packet.channel });
      if (!v.language) v.language = ev.packet.language;
      if (v.stage === "ai") v.stage = "handing_over";
      v.handoff = ev.packet;
      break;
    case "bridged":
      if (v.stage !== "ended") v.stage = "bridged";
      v.agent = ev.agent;
      break;
    case "ended":
      Object.assign(v, { stage: "ended", end_reason: ev.reason, outcome: ev.outcome });
      break;
  }
}

const STAGE_TEXT = { ai: "with the AI", handing_over: "ringing an agent", bridged: "with an agent", ended: "ended" };

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

function renderList() {
  const handed = [...calls.values()].filter((v) => v.handoff).sort((a, b) => b.started_at_ms - a.started_at_ms);
  aiCount = [...calls.values()].filter((v) => !v.handoff && v.stage !== "ended").length;
  if (!selected || !calls.get(selected)?.handoff) {
    // Follow the newest live handoff: that is the caller the agent is about to talk to.
    const live = handed.find((v) => v.stage !== "ended") || handed[0];
    if (live && live.call_id !== selected) selectCall(live.call_id, false);
  }
  const ul = $("calls");
  ul.replaceChildren(...handed.map((v) => {
    const li = el("li", { "data-call-id": v.call_id, "aria-selected": String(v.call_id === selected), "data-stage": v.stage },
      el("div", { class: "who" }, v.caller || "unknown caller"),
      el("div", { class: "why" }, `${v.handoff.code || v.handoff.reason} · ${STAGE_TEXT[v.stage] || v.stage} · ${time(v.started_at_ms)}`));
    li.addEventListener("click", () => selectCall(v.call_id, true));
    return li;
  }));
  $("no-calls").hidden = handed.length > 0;
  $("ai-count").textContent = String(aiCount);
}

function renderDetail() {
  const v = selected && calls.get(selected);
  $("detail").hidden = !v;
  if (!v) return;
  const p = v.handoff || {};
  $("call-title").textContent = `${v.caller || "unknown caller"} → ${v.callee || "?"}`;
  $("call-stage").textContent = STAGE_TEXT[v.stage] || v.stage;
  $("call-stage").dataset.stage = v.stage;
  const meta = [`call ${v.call_id}`, v.channel, v.language && `language ${v.language}`, `started ${time(v.started_at_ms)}`];
  if (v.agent) meta.push(`agent ${v.agent}`);
  if (v.stage === "ended") meta.push(`ended: ${v.end_reason} (${v.outcome})`);
  $("call-meta").textContent = meta.filter(Boolean).join(" · ");

  $("packet-code").textContent = p.code || p.reason || "";
  $("packet-reason").textContent = p.reason ? `(${p.reason})` : "";
  $("packet-priority").textContent = p.priority || "—";
  $("packet-intent").textContent = p.intent || "—";
  $("packet-sentiment").textContent = (p.sentiment_trend || []).filter(Boolean).join(" → ") || "—";
  $("packet-summary").textContent = p.summary || "—";
  $("packet-evidence").replaceChildren(...(p.evidence || []).map((e) =>
    el("li", {}, el("strong", {}, `turn ${e.turn}`), ` ${e.trigger}: “${e.text}”`)));
  const slots = Object.entries(p.slots || {});
  $("packet-slots").tBodies[0].replaceChildren(...slots.map(([k, val]) => el("tr", {}, el("td", {}, k), el("td", {}, val))));
  $("packet-slots").hidden = slots.length === 0;
  $("packet-no-slots").hidden = slots.length > 0;

  const list = $("transcript");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.replaceChildren(...v.transcript.map((l) =>
    el("li", { "data-speaker": l.speaker, title: time(l.at_ms) }, el("span", { class: "speaker" }, l.speaker), " ", l.text)));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function render() {
  renderList();
  renderDetail();
}

function selectCall(id, byUser) {
  if (selected === id) return;
  selected = id;
  $("suggestions").replaceChildren();
  $("suggest-status").textContent = "";
  loadSuggestions();
  if (byUser) render();
}

function scheduleSuggestions() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(loadSuggestions, 600);
}

async function loadSuggestions() {
  const id = selected;
  if (!id) return;
  $("suggest-status").textContent = "asking the brain…";
  try {
    const r = await fetch(`/api/calls/${encodeURIComponent(id)}/suggestions`);
    const body = await r.json();
    if (id !== selected) return;
    if (!r.ok) {
      $("suggestions").replaceChildren();
      $("suggest-status").textContent = body.error || `HTTP ${r.status}`;
      return;
    }
    const list = body.suggestions || [];
    $("suggestions").replaceChildren(...list.map((s) => el("li", { title: s.intent || "" }, s.text)));
    $("suggest-status").textContent = list.length ? "" : "The brain has nothing to suggest yet.";
  } catch (e) {
    if (id === selected) $("suggest-status").textContent = `cannot reach the gateway: ${e}`;
  }
}

async function loadSnapshot() {
  const r = await fetch("/api/calls");
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  const body = await r.json();
  mergeSnapshot(body.calls || []);
  const missed = $("missed");
  missed.hidden = !body.missed_events;
  missed.textContent = body.missed_events ? `The console missed ${body.missed_events} call events: some transcripts may have gaps.` : "";
  render();
}

function setConnection(state, text) {
  const c = $("connection");
  c.dataset.state = state;
  c.textContent = text;
}

function connect() {
  const source = new EventSource("/api/events");
  source.onopen = () => {
    setConnection("live", "live");
    loadSnapshot().catch((e) => setConnection("down", `cannot load calls: ${e.message}`));
  };
  // EventSource reconnects by itself; onopen then reloads the snapshot.
  source.onerror = () => setConnection("down", "connection lost, reconnecting…");
  for (const type of ["started", "said", "escalated", "bridged", "ended"]) {
    source.addEventListener(type, (msg) => {
      applyEvent(JSON.parse(msg.data));
      render();
    });
  }
  source.addEventListener("lagged", () => {
    loadSnapshot().catch(() => {});
  });
}

$("suggest-refresh").addEventListener("click", loadSuggestions);
connect();
