// The browser caller: one WebRTC call to the gateway's AI front line.
//
// The line itself is /webrtc/phone.js: the offer goes to /webrtc/calls, the answer comes back
// with the session's Location, whose captions then arrive on its own event stream
// (Location + /events: this call's "said" events, and no other caller's).
// The keypad sends RFC 4733 telephone-events through RTCDTMFSender.
//
// `?raw=1` turns off the browser's echo cancellation, noise suppression and gain control (for
// tests that feed a recorded file as the microphone). window.frontlineCaller exposes the call
// to automation: state, call id, captions, and a recorder of what the page heard.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const raw = params.get("raw") === "1";

const call = {
  state: "idle",
  callId: null,
  line: null,
  events: null,
  captions: [],
  error: null,
  // Loudness timelines (performance.now() ms of audible 20 ms-ish blocks), for latency figures.
  micAudible: [],
  botAudible: [],
  recorded: [],
  sampleRate: 48000,
  audio: null,
};
window.frontlineCaller = {
  get state() { return call.state; },
  get callId() { return call.callId; },
  get captions() { return call.captions; },
  get error() { return call.error; },
  get micAudible() { return call.micAudible; },
  get botAudible() { return call.botAudible; },
  start: () => startCall(),
  hangUp: () => hangUp(),
  sendDigits: (digits) => sendDigits(digits),
  recordingWavBase64: () => FrontlinePhone.wavBase64(call.recorded, call.sampleRate),
};

function setState(state, text) {
  call.state = state;
  const el = $("status");
  el.dataset.state = state === "live" ? "live" : state === "error" ? "error" : "idle";
  el.textContent = text;
  const inCall = state === "connecting" || state === "live";
  $("call").disabled = inCall;
  $("hangup").disabled = !inCall;
  $("mute").disabled = state !== "live";
  if (state !== "live") setMuted(false);
  for (const b of $("keypad").querySelectorAll("button")) b.disabled = state !== "live";
}

async function startCall() {
  if (call.state === "connecting" || call.state === "live") return;
  call.captions = [];
  $("captions").replaceChildren();
  $("no-captions").hidden = false;
  call.error = null;
  setState("connecting", "Calling…");
  try {
    call.line = await FrontlinePhone.open("/webrtc/calls", {
      raw,
      onRemoteStream: onRemoteAudio,
      onConnectionState: (state) => {
        if (state === "connected") setState("live", "Connected: speak now.");
        if (state === "failed") endLocally("The connection failed.", "error");
      },
      onAnswer: (res) => {
        call.callId = res.headers.get("X-Frontline-Call-Id");
        followCaptions(res.headers.get("Location"));
      },
    });
    listenToLevels(call.line.mic, call.micAudible, false);
  } catch (e) {
    endLocally(`Could not call: ${e.message || e}`, "error");
  }
}

function onRemoteAudio(stream) {
  $("remote").srcObject = stream;
  listenToLevels(stream, call.botAudible, true);
}

// Loudness timelines; the bot's side is also kept as PCM so tests can hear it.
function listenToLevels(stream, timeline, keep) {
  if (!call.audio) call.audio = new AudioContext();
  call.sampleRate = call.audio.sampleRate;
  FrontlinePhone.tap(call.audio, stream, (data, audible) => {
    if (audible) timeline.push(performance.now());
    if (keep && call.state !== "idle") call.recorded.push(new Float32Array(data));
  });
}

function followCaptions(where) {
  if (call.events) call.events.close();
  const events = new EventSource(`${where}/events`);
  call.events = events;
  events.addEventListener("said", (ev) => {
    const said = JSON.parse(ev.data);
    call.captions.push({ speaker: said.speaker, text: said.text, at: performance.now() });
    const li = document.createElement("li");
    li.dataset.speaker = said.speaker;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = said.speaker === "caller" ? "You" : said.speaker === "agent" ? "Agent" : "Assistant";
    li.append(who, document.createTextNode(said.text));
    $("captions").append(li);
    $("no-captions").hidden = true;
  });
  events.addEventListener("bridged", () => setState("live", "An agent has joined the call."));
  events.addEventListener("ended", (ev) => {
    const ended = JSON.parse(ev.data);
    endLocally(`Call ended (${ended.reason}).`, "ended");
  });
}

function sendDigits(digits) {
  const pc = call.line && call.line.pc;
  const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  if (!sender || !sender.dtmf) return false;
  sender.dtmf.insertDTMF(digits, 120, 80);
  return true;
}

function setMuted(muted) {
  FrontlinePhone.mute(call.line, muted);
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute" : "Mute";
}

async function hangUp() {
  await FrontlinePhone.hangUp(call.line);
  endLocally("Call ended.", "ended");
}

function endLocally(text, state) {
  if (call.events) call.events.close();
  call.events = null;
  if (call.line) FrontlinePhone.close(call.line);
  call.line = null;
  if (state === "error") call.error = text;
  setState(state, text);
}

$("call").addEventListener("click", startCall);
$("hangup").addEventListener("click", hangUp);
$("mute").addEventListener("click", () => setMuted($("mute").getAttribute("aria-pressed") !== "true"));
for (const b of $("keypad").querySelectorAll("button")) b.addEventListener("click", () => sendDigits(b.textContent));
setState("idle", "Ready to call.");
