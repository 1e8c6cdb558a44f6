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
  $("call-title").textContent = `${v.caller || "unknown caller"} → ${v.callee || v.channel || "?"}`;
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
  const history = p.history || [];
  $("packet-history").tBodies[0].replaceChildren(...history.map((c) => el("tr", {},
    el("td", {}, new Date(c.started_at_ms).toLocaleString()),
    el("td", {}, (c.intents || []).join(", ") || "—"),
    el("td", {}, c.escalation ? `${c.outcome} (${c.escalation})` : c.outcome),
    el("td", {}, c.summary || ""))));
  $("packet-history").hidden = history.length === 0;
  $("packet-no-history").hidden = history.length > 0;

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
  render();
}

function setConnection(state, text) {
  const c = $("connection");
  c.dataset.state = state;
  c.textContent = text;
}

// With console tokens configured, the console needs a sign-in: the token is exchanged for an
// HttpOnly cookie, which the API and the event streams then carry.
async function start() {
  let session = { open: true, signed_in: true };
  try {
    session = await (await fetch("/console/session")).json();
  } catch (e) {
    setConnection("down", `cannot reach the gateway: ${e}`);
  }
  const needSignIn = !session.open && !session.signed_in;
  $("signin").hidden = !needSignIn;
  $("console").hidden = needSignIn;
  $("console-sign-out").hidden = session.open || needSignIn;
  if (needSignIn) {
    setConnection("down", "signed out");
    $("signin-token").focus();
    return;
  }
  connect();
}

async function signInToConsole(token) {
  const r = await fetch("/console/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
  if (!r.ok) {
    let why = `HTTP ${r.status}`;
    try { why = (await r.json()).error || why; } catch (_) { /* not JSON */ }
    $("signin-error").textContent = why;
    return false;
  }
  $("signin-error").textContent = "";
  $("signin-token").value = "";
  await start();
  return true;
}

let source = null;

function connect() {
  if (source) source.close();
  source = new EventSource("/api/events");
  source.onopen = () => {
    setConnection("live", "live");
    loadSnapshot().catch((e) => setConnection("down", `cannot load calls: ${e.message}`));
  };
  // EventSource reconnects by itself (onopen then reloads the snapshot), except when the
  // gateway refused it: then the sign-in has expired or was revoked.
  source.onerror = () => {
    setConnection("down", "connection lost, reconnecting…");
    if (source.readyState === EventSource.CLOSED) start();
  };
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

// The agent's desk: signed in, the agent's handed-over calls ring here and are answered with
// the microphone over WebRTC (the gateway bridges the caller's audio, from a phone or a
// browser). The desk's own event stream is the sign-in: closing the page signs out.
// window.frontlineDesk exposes it to automation, with a recorder of what the agent heard.
const params = new URLSearchParams(location.search);
const desk = {
  agent: null, events: null, state: "off", ringing: null, callId: null, line: null, error: null,
  audio: null, heard: [], heardAudible: [], sampleRate: 48000, ringTone: null,
  raw: params.get("raw") === "1",
};
window.frontlineDesk = {
  get state() { return desk.state; },
  get callId() { return desk.callId; },
  get ringing() { return desk.ringing; },
  get error() { return desk.error; },
  get heardAudible() { return desk.heardAudible; },
  signIn: (agent) => signIn(agent),
  answer: () => answer(),
  decline: () => decline(),
  hangUp: () => deskHangUp(),
  recordingWavBase64: () => FrontlinePhone.wavBase64(desk.heard, desk.sampleRate),
};

const END_TEXT = { "caller-side-ended": "the caller's side ended", "agent-hangup": "you hung up" };
const MISSED_TEXT = { answered: "answered on another page", declined: "declined on another page", "no-answer": "not answered in time", "caller-left": "the caller hung up" };

const DESK_TEXT = {
  off: () => "Sign in to answer handed-over calls here, with your microphone.",
  connecting: () => `Signing in as ${desk.agent}…`,
  waiting: () => `Signed in as ${desk.agent}: waiting for a handed-over call.`,
  ringing: () => `Incoming call ${desk.ringing}: ${callSummary(desk.ringing)}`,
  answering: () => "Connecting the call…",
  on_call: () => `On a call with ${calls.get(desk.callId)?.caller || "the caller"}.`,
};

function callSummary(id) {
  const v = calls.get(id);
  if (!v) return "a caller";
  const p = v.handoff || {};
  return [v.caller || "unknown caller", p.code || p.reason].filter(Boolean).join(" · ");
}

function setDesk(state, note) {
  desk.state = state;
  const status = $("desk-status");
  status.dataset.state = state;
  status.textContent = note || DESK_TEXT[state]();
  $("desk-name").disabled = state !== "off";
  $("desk-sign-in").hidden = state !== "off";
  $("desk-sign-out").hidden = state === "off";
  $("desk-ring").hidden = state !== "ringing";
  $("desk-hangup").hidden = state !== "on_call" && state !== "answering";
  $("desk-mute").hidden = state !== "on_call";
  if (state !== "on_call") setMuted(false);
  ringTone(state === "ringing");
}

function signIn(agent) {
  agent = (agent || "").trim();
  if (!agent || desk.events) return;
  desk.agent = agent;
  desk.error = null;
  $("desk-name").value = agent;
  try { localStorage.setItem("frontline-agent", agent); } catch (_) { /* private mode */ }
  setDesk("connecting");
  const url = `/webrtc/agents/${encodeURIComponent(agent)}/events`;
  const events = new EventSource(url);
  desk.events = events;
  events.addEventListener("ready", (msg) => {
    const ready = JSON.parse(msg.data);
    if (desk.line) return; // reconnected during a call: the call goes on
    desk.ringing = ready.ringing;
    setDesk(ready.ringing ? "ringing" : "waiting");
  });
  events.addEventListener("ring", (msg) => {
    desk.ringing = JSON.parse(msg.data).call_id;
    selectCall(desk.ringing, true);
    setDesk("ringing");
  });
  events.addEventListener("ring_stopped", (msg) => {
    const stopped = JSON.parse(msg.data);
    if (stopped.call_id !== desk.ringing) return;
    desk.ringing = null;
    if (desk.state === "ringing") setDesk("waiting", `Missed call ${stopped.call_id}: ${MISSED_TEXT[stopped.reason] || stopped.reason}. Waiting for the next one.`);
  });
  events.addEventListener("ended", (msg) => {
    const ended = JSON.parse(msg.data);
    if (ended.call_id !== desk.callId) return;
    endDeskCall(`Call ended: ${END_TEXT[ended.reason] || ended.reason}. Waiting for the next one.`);
  });
  events.onerror = async () => {
    if (events.readyState !== EventSource.CLOSED) {
      if (!desk.line) setDesk("connecting", "Connection to the gateway lost, signing in again…");
      return;
    }
    // Refused (not a console agent here, WebRTC off): say why and sign out.
    let why = "the gateway refused the sign-in";
    try {
      const r = await fetch(url);
      why = (await r.json()).error || `HTTP ${r.status}`;
    } catch (_) { /* keep the generic reason */ }
    signOut(why);
  };
}

function signOut(why) {
  if (desk.events) desk.events.close();
  desk.events = null;
  if (desk.line) deskHangUp();
  desk.ringing = null;
  desk.error = why || null;
  setDesk("off", why ? `Not signed in: ${why}` : undefined);
}

function callUrl(id) {
  return `/webrtc/agents/${encodeURIComponent(desk.agent)}/calls/${encodeURIComponent(id)}`;
}

async function answer() {
  const id = desk.ringing;
  if (!id || desk.state !== "ringing") return;
  desk.ringing = null;
  desk.callId = id;
  desk.heard = [];
  desk.heardAudible = [];
  setDesk("answering");
  try {
    desk.line = await FrontlinePhone.open(callUrl(id), {
      raw: desk.raw,
      onRemoteStream: onCallerAudio,
      onConnectionState: (state) => {
        if (state === "connected" && desk.state === "answering") setDesk("on_call");
        if (state === "failed") endDeskCall("The connection to the caller failed.");
      },
    });
  } catch (e) {
    desk.error = String(e.message || e);
    desk.callId = null;
    setDesk("waiting", `Could not answer: ${desk.error}`);
  }
}

async function decline() {
  const id = desk.ringing;
  if (!id) return;
  desk.ringing = null;
  setDesk("waiting");
  try { await fetch(`${callUrl(id)}/decline`, { method: "POST" }); } catch (_) { /* the ring times out */ }
}

async function deskHangUp() {
  const line = desk.line;
  desk.line = null;
  await FrontlinePhone.hangUp(line);
  endDeskCall("Call ended. Waiting for the next one.");
}

function endDeskCall(note) {
  if (desk.line) FrontlinePhone.close(desk.line);
  desk.line = null;
  desk.callId = null;
  setDesk(desk.events ? "waiting" : "off", note);
}

function setMuted(muted) {
  FrontlinePhone.mute(desk.line, muted);
  $("desk-mute").setAttribute("aria-pressed", String(muted));
  $("desk-mute").textContent = muted ? "Unmute" : "Mute";
}

// The caller's voice: played by the <audio> element, and kept for automation.
function onCallerAudio(stream) {
  $("desk-audio").srcObject = stream;
  if (!desk.audio) desk.audio = new AudioContext();
  desk.sampleRate = desk.audio.sampleRate;
  FrontlinePhone.tap(desk.audio, stream, (data, audible) => {
    if (audible) desk.heardAudible.push(performance.now());
    if (desk.line) desk.heard.push(new Float32Array(data));
  });
}

// A phone's ring (two tones, 2 s on, 4 s off) while a call rings here.
function ringTone(on) {
  if (!on) {
    if (desk.ringTone) desk.ringTone.stop();
    desk.ringTone = null;
    return;
  }
  if (desk.ringTone) return;
  if (!desk.audio) desk.audio = new AudioContext();
  const ctx = desk.audio;
  const gain = ctx.createGain();
  gain.gain.value = 0;
  for (let t = 0; t < 60; t += 6) {
    gain.gain.setValueAtTime(0.08, ctx.currentTime + t);
    gain.gain.setValueAtTime(0, ctx.currentTime + t + 2);
  }
  const tones = [440, 480].map((f) => {
    const o = ctx.createOscillator();
    o.frequency.value = f;
    o.connect(gain);
    o.start();
    return o;
  });
  gain.connect(ctx.destination);
  desk.ringTone = { stop: () => { for (const o of tones) o.stop(); gain.disconnect(); } };
}

$("desk-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  signIn($("desk-name").value);
});
$("desk-sign-out").addEventListener("click", () => signOut());
$("desk-answer").addEventListener("click", answer);
$("desk-decline").addEventListener("click", decline);
$("desk-hangup").addEventListener("click", deskHangUp);
$("desk-mute").addEventListener("click", () => setMuted($("desk-mute").getAttribute("aria-pressed") !== "true"));
if (!window.FrontlinePhone) {
  $("desk").hidden = true; // WebRTC is off on this gateway: agents answer on their phones
} else {
  let saved = null;
  try { saved = localStorage.getItem("frontline-agent"); } catch (_) { /* private mode */ }
  $("desk-name").value = params.get("agent") || saved || "";
  setDesk("off");
}

$("suggest-refresh").addEventListener("click", loadSuggestions);
$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  signInToConsole($("signin-token").value);
});
$("console-sign-out").addEventListener("click", async () => {
  signOut();
  if (source) source.close();
  await fetch("/console/session", { method: "DELETE" });
  start();
});
window.frontlineConsole = { signIn: (token) => signInToConsole(token) };
start();
