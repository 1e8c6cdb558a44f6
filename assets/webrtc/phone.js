// A WebRTC audio line to the gateway, shared by the caller page and the agent console.
//
// Signaling is WHIP-style: POST the complete offer (every ICE candidate gathered, no trickle)
// and get the answer back, with a Location to DELETE to hang up. `raw` turns off the browser's
// echo cancellation, noise suppression and gain control (for tests that feed a recorded file as
// the microphone). Also here: a loudness tap (for captions, meters and latency figures) and a
// WAV encoder, so automation can fetch what a page heard.
"use strict";

window.FrontlinePhone = (() => {
  // Opens a line: microphone, peer connection, offer POSTed to `url`. `onAnswer(response)`
  // runs before the answer is applied (to start following the call's events first).
  async function open(url, { raw, onRemoteStream, onConnectionState, onAnswer }) {
    const config = await (await fetch("/webrtc/config")).json();
    const audio = raw ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : true;
    const mic = await navigator.mediaDevices.getUserMedia({ audio });
    const pc = new RTCPeerConnection({ iceServers: config.iceServers || [] });
    const line = { pc, mic, location: null };
    try {
      for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
      pc.ontrack = (ev) => onRemoteStream && onRemoteStream(ev.streams[0] || new MediaStream([ev.track]));
      pc.onconnectionstatechange = () => onConnectionState && onConnectionState(pc.connectionState);
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringDone(pc, 2000);
      const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
      if (res.status !== 201) throw new Error(await refusal(res));
      line.location = res.headers.get("Location");
      if (onAnswer) onAnswer(res);
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      return line;
    } catch (e) {
      close(line);
      throw e;
    }
  }

  // The gateway's reason for refusing an offer, with when to try again.
  async function refusal(res) {
    let why = `${res.status}`;
    try { why = (await res.json()).error || why; } catch (_) { /* not JSON */ }
    const retry = res.headers.get("Retry-After");
    return retry ? `${why} (try again in ${retry} s)` : why;
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

  // Hangs up: DELETE first, so the gateway records a hang-up rather than a lost connection.
  async function hangUp(line) {
    const where = line && line.location;
    if (!line) return;
    line.location = null;
    if (where) {
      try { await fetch(where, { method: "DELETE" }); } catch (_) { /* the gateway notices ICE going away */ }
    }
    close(line);
  }

  // Mutes or unmutes the microphone: the track keeps sending (silence), so the other side's
  // jitter buffer and the gateway's timeout see a live line.
  function mute(line, muted) {
    if (!line || !line.mic) return false;
    for (const t of line.mic.getAudioTracks()) t.enabled = !muted;
    return true;
  }

  function close(line) {
    if (line.pc) line.pc.close();
    line.pc = null;
    if (line.mic) for (const t of line.mic.getTracks()) t.stop();
    line.mic = null;
  }

  // Calls `onBlock(samples, audible)` for every block of `stream` (about 21 ms at 48 kHz)
  // without playing it: the page's <audio> element does the playing.
  function tap(ctx, stream, onBlock) {
    const source = ctx.createMediaStreamSource(stream);
    const node = ctx.createScriptProcessor(1024, 1, 1);
    node.onaudioprocess = (ev) => {
      const data = ev.inputBuffer.getChannelData(0);
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
      onBlock(data, Math.sqrt(sum / data.length) > 0.01);
    };
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(node);
    node.connect(mute);
    mute.connect(ctx.destination);
  }

  // 16-bit mono WAV of Float32Array blocks, base64 (for automation to fetch in one string).
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

  return { open, hangUp, mute, close, tap, wavBase64 };
})();
