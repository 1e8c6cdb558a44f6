// The browser caller: one WebRTC call to the gateway's AI front line.
//
// Signaling is WHIP-style: POST the complete offer (ICE candidates included, no trickle) to
// /webrtc/calls, get the answer back with a Location to DELETE for hang-up and the call id,
// whose captions then arrive on the gateway's event stream (/api/events, "said" events).
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
  location: null,
  pc: null,
  mic: null,
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
  recordingWavBase64: () => wavBase64(call.recorded, call.sampleRate),
};

function setState(state, text) {
  call.state = state;
  const el = $("status");
  el.dataset.state = state === "live" ? "live" : state === "error" ? "error" : "idle";
  el.textContent = text;
  const inCall = state === "connecting" || state === "live";
  $("call").disabled = inCall;
  $("hangup").disabled = !inCall;
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
    const config = await (await fetch("/webrtc/config")).json();
    const audioConstraints = raw ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : true;
    call.mic = await navigator.mediaDevices.getUserMedia({ audio: audioConstraints });
    const pc = new RTCPeerConnection({ iceServers: config.iceServers || [] });
    call.pc = pc;
    for (const track of call.mic.getAudioTracks()) pc.addTrack(track, call.mic);
    pc.ontrack = (ev) => onRemoteAudio(ev.streams[0] || new MediaStream([ev.track]));
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") setState("live", "Connected: speak now.");
      if (pc.connectionState === "failed") endLocally("The connection failed.", "error");
    };
    listenToLevels(call.mic, call.micAudible, false);
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(pc, 2000);
    const res = await fetch("/webrtc/calls", {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp,
    });
    if (res.status !== 201) {
      let why = `${res.status}`;
      try { why = (await res.json()).error || why; } catch (_) { /* not JSON */ }
      const retry = res.headers.get("Retry-After");
      throw new Error(retry ? `${why} (try again in ${retry} s)` : why);
    }
    call.location = res.headers.get("Location");
    call.callId = res.headers.get("X-Frontline-Call-Id");
    followCaptions(call.callId);
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  } catch (e) {
    endLocally(`Could not call: ${e.message || e}`, "error");
  }
}

function gatheringDone(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

function onRemoteAudio(stream) {
  $("remote").srcObject = stream;
  listenToLevels(stream, call.botAudible, true);
}

// Watches a stream's loudness; the bot's side is also kept as PCM so tests can hear it.
function listenToLevels(stream, timeline, keep) {
  if (!call.audio) call.audio = new AudioContext();
  const ctx = call.audio;
  call.sampleRate = ctx.sampleRate;
  const source = ctx.createMediaStreamSource(stream);
  const tap = ctx.createScriptProcessor(1024, 1, 1);
  tap.onaudioprocess = (ev) => {
    const data = ev.inputBuffer.getChannelData(0);
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
    if (Math.sqrt(sum / data.length) > 0.01) timeline.push(performance.now());
    if (keep && call.state !== "idle") call.recorded.push(new Float32Array(data));
  };
  const mute = ctx.createGain();
  mute.gain.value = 0;
  source.connect(tap);
  tap.connect(mute);
  mute.connect(ctx.destination);
}

function followCaptions(callId) {
  if (call.events) call.events.close();
  const events = new EventSource("/api/events");
  call.events = events;
  events.addEventListener("said", (ev) => {
    const said = JSON.parse(ev.data);
    if (said.call_id !== callId) return;
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
  events.addEventListener("ended", (ev) => {
    const ended = JSON.parse(ev.data);
    if (ended.call_id === callId) endLocally(`Call ended (${ended.reason}).`, "ended");
  });
}

function sendDigits(digits) {
  const sender = call.pc && call.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  if (!sender || !sender.dtmf) return false;
  sender.dtmf.insertDTMF(digits, 120, 80);
  return true;
}

async function hangUp() {
  const where = call.location;
  call.location = null;
  // DELETE before closing: the gateway then records a hang-up rather than a lost connection.
  if (where) {
    try { await fetch(where, { method: "DELETE" }); } catch (_) { /* the gateway notices ICE going away */ }
  }
  endLocally("Call ended.", "ended");
}

function endLocally(text, state) {
  if (call.pc) call.pc.close();
  call.pc = null;
  if (call.mic) for (const t of call.mic.getTracks()) t.stop();
  call.mic = null;
  call.location = null;
  if (state === "error") call.error = text;
  setState(state, text);
}

// 16-bit mono WAV of the recorded blocks, base64 (for automation to fetch in one string).
function wavBase64(blocks, rate) {
  const n = blocks.reduce((a, b) => a + b.length, 0);
  const buf = new DataView(new ArrayBuffer(44 + n * 2));
  const text = (o, s) => { for (let i = 0; i < s.length; i++) buf.setUint8(o + i, s.charCodeAt(i)); };
  text(0, "RIFF"); buf.setUint32(4, 36 + n * 2, true); text(8, "WAVE"); text(12, "fmt ");
  buf.setUint32(16, 16, true); buf.setUint16(20, 1, true); buf.setUint16(22, 1, true);
  buf.setUint32(24, rate, true); buf.setUint32(28, rate * 2, true); buf.setUint16(32, 2, true);
  buf.setUint16(34, 16, true); text(36, "data"); buf.setUint32(40, n * 2, true);
  let o = 44;
  for (const b of blocks) for (let i = 0; i < b.length; i++, o += 2) buf.setInt16(o, Math.max(-1, Math.min(1, b[i])) * 32767, true);
  const bytes = new Uint8Array(buf.buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

$("call").addEventListener("click", startCall);
$("hangup").addEventListener("click", hangUp);
for (const b of $("keypad").querySelectorAll("button")) b.addEventListener("click", () => sendDigits(b.textContent));
setState("idle", "Ready to call.");
