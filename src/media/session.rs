//! The per-call RTP driver: the thin tokio shell around the sans-IO media cores.
//!
//! One task owns the call's UDP socket and a 20 ms clock. On every tick it sends exactly one
//! packet (the bot's queued audio, or encoded silence so NATs and peer jitter buffers stay
//! fed) and pulls one frame out of the jitter buffer, decodes it and hands 16 kHz audio to the
//! call. Packets that arrive in between go into the jitter buffer or the DTMF assembler. The
//! task talks to the call only through channels: no locks, no shared state.

use crate::media::dtmf::DtmfAssembler;
use crate::media::g711::G711;
use crate::media::jitter::{JitterBuffer, JitterFrame, JitterStats};
use crate::media::playout::{Mark, Playout};
use crate::media::resample::{resample_all, Resampler};
use crate::media::rtp::{RtpPacket, RtpSender};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Samples in one internal frame: 20 ms at 16 kHz.
pub const FRAME_16K: usize = 320;
/// Samples in one wire frame: 20 ms at 8 kHz.
const FRAME_8K: usize = 160;
const TICK: Duration = Duration::from_millis(20);

/// What the negotiated SDP says about the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaParams {
    pub codec: G711,
    pub pt: u8,
    pub dtmf_pt: Option<u8>,
    pub remote: SocketAddr,
    /// False while the caller has us on hold (their offer was sendonly or inactive).
    pub send: bool,
    /// False while the caller sends nothing (inactive / recvonly): the RTP timeout is paused.
    pub receive: bool,
}

/// Orders from the call task.
#[derive(Debug)]
pub enum MediaCommand {
    /// Queue 16 kHz audio for playout; `tag` identifies it in the playout events.
    Play { pcm_16k: Vec<i16>, tag: u64 },
    /// Drop everything queued (barge-in, handoff). Also ends a `Pause`.
    Flush,
    /// Hold the queued `Play` audio where it is, from the next 20 ms tick on: ticks send
    /// silence instead (the stream, its timestamps and the peer's jitter buffer keep running),
    /// nothing queued is consumed, and no playout event fires until `Resume`. The call sends it
    /// on the caller's first speech frame during a reply, before it knows whether that is speech
    /// or a cough, so the bot stops talking within a tick of the caller's onset. Idempotent.
    /// Every media driver (RTP here, WebRTC) must implement it with these semantics.
    Pause,
    /// Play on from exactly where `Pause` held the audio (the caller only coughed). The first
    /// packet after it carries the RTP marker bit, as after any silence. Idempotent; a no-op
    /// when not paused.
    Resume,
    /// A re-INVITE changed the stream (hold, resume, new address or codec).
    Update(MediaParams),
    /// 20 ms of live audio from the other leg of a bridge. Unlike `Play` it streams through
    /// one resampler, so consecutive frames join without a seam.
    Live(Box<[i16; FRAME_16K]>),
    /// End of call: the driver sends `Stopped` with its counters and exits.
    Stop,
}

/// What the driver reports to the call task.
#[derive(Debug)]
pub enum MediaEvent {
    /// 20 ms of caller audio at 16 kHz (concealed audio when a packet was lost).
    Frame(Box<[i16; FRAME_16K]>),
    Dtmf { digit: char, duration_ms: u32 },
    /// The first packet carrying audio `tag` left the socket.
    PlayoutStarted { tag: u64, at: Instant },
    /// The last sample of audio `tag` left the socket.
    PlayoutFinished { tag: u64, at: Instant },
    /// No RTP for the configured time: the caller is gone.
    Timeout,
    /// The driver stopped; final counters for the call record.
    Stopped(MediaStats),
}

#[derive(Debug, Default, Clone)]
pub struct MediaStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Packets from an address other than the caller's, or unparsable: ignored.
    pub packets_ignored: u64,
    pub jitter: JitterStats,
}

/// The call's end of the driver. Dropping it stops the driver at once (a call task that
/// ends by any path cannot leak a socket); [`MediaCommand::Stop`] stops it with a report.
pub struct MediaHandle {
    pub commands: mpsc::Sender<MediaCommand>,
    pub local_port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl MediaHandle {
    /// For a driver other than this one (the WebRTC edge): its command channel, the local
    /// port it reports (0 when it has no single one), and its task, aborted on drop.
    pub fn from_parts(commands: mpsc::Sender<MediaCommand>, local_port: u16, task: tokio::task::JoinHandle<()>) -> MediaHandle {
        MediaHandle { commands, local_port, task }
    }
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Frames are 20 ms apart; this many is 5 s of slack before a stalled call task starts
/// losing caller audio, which is logged rather than blocking the socket.
pub const EVENT_QUEUE: usize = 250;

/// Starts the driver on an already-bound socket; events arrive on the returned receiver.
pub fn start(socket: UdpSocket, params: MediaParams, rtp_timeout: Duration) -> std::io::Result<(MediaHandle, mpsc::Receiver<MediaEvent>)> {
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    Ok((start_with_events(socket, params, rtp_timeout, ev_tx)?, ev_rx))
}

/// [`start`] reporting into a channel the caller made, so that the signaling side can put
/// its own events into the same stream (keypad digits that came by SIP INFO, not RTP).
pub fn start_with_events(socket: UdpSocket, params: MediaParams, rtp_timeout: Duration, events: mpsc::Sender<MediaEvent>) -> std::io::Result<MediaHandle> {
    let local_port = socket.local_addr()?.port();
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let driver = Driver::new(Arc::new(socket), params, rtp_timeout);
    let task = tokio::spawn(driver.run(cmd_rx, events));
    Ok(MediaHandle { commands: cmd_tx, local_port, task })
}

struct Driver {
    socket: Arc<UdpSocket>,
    params: MediaParams,
    /// Where packets go: the SDP address until the caller's real source is learned.
    send_to: SocketAddr,
    latched: bool,
    rtp_timeout: Duration,
    sender: RtpSender,
    jitter: JitterBuffer,
    dtmf: DtmfAssembler,
    up: Resampler,
    /// Streams live bridged audio down to the wire rate.
    live_down: Resampler,
    playout: Playout,
    stats: MediaStats,
    // Scratch buffers reused on every packet so the hot path does not allocate.
    pcm_8k: Vec<i16>,
    pcm_16k: Vec<i16>,
    wire: Vec<u8>,
    packet: Vec<u8>,
    last_concealed: [i16; FRAME_8K],
    concealed_run: u32,
    talkspurt_start: bool,
}

impl Driver {
    fn new(socket: Arc<UdpSocket>, params: MediaParams, rtp_timeout: Duration) -> Self {
        Driver {
            socket,
            send_to: params.remote,
            latched: false,
            rtp_timeout,
            sender: RtpSender::random(),
            jitter: JitterBuffer::new(),
            dtmf: DtmfAssembler::new(),
            up: Resampler::new(8000, 16000).expect("fixed 8k→16k ratio is supported"),
            live_down: Resampler::new(16000, 8000).expect("fixed 16k→8k ratio is supported"),
            playout: Playout::new(FRAME_8K),
            stats: MediaStats::default(),
            pcm_8k: Vec::with_capacity(FRAME_8K * 2),
            pcm_16k: Vec::with_capacity(FRAME_16K * 2),
            wire: Vec::with_capacity(FRAME_8K),
            packet: Vec::with_capacity(12 + FRAME_8K),
            last_concealed: [0; FRAME_8K],
            concealed_run: 0,
            talkspurt_start: true,
            params,
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<MediaCommand>, events: mpsc::Sender<MediaEvent>) {
        let start = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        // Burst keeps the packet count right after a scheduling hiccup: the peer's clock
        // expects 50 packets a second, and its jitter buffer absorbs a short burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut last_rx = Instant::now();
        let mut buf = vec![0u8; 2048];
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = Instant::now();
                    let now_ms = now.duration_since(start).as_millis() as u64;
                    self.send_one(now, &events).await;
                    self.receive_one(now_ms, &events);
                    if let Some(d) = self.dtmf.poll(now_ms) {
                        let _ = events.try_send(MediaEvent::Dtmf { digit: d.digit, duration_ms: d.duration_ms });
                    }
                    if self.params.receive && now.duration_since(last_rx) > self.rtp_timeout {
                        let _ = events.send(MediaEvent::Timeout).await;
                        break;
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(MediaCommand::Play { pcm_16k, tag }) => self.queue(&pcm_16k, tag),
                    Some(MediaCommand::Flush) => {
                        self.playout.flush();
                        self.talkspurt_start = true;
                    }
                    Some(MediaCommand::Pause) => self.playout.pause(),
                    Some(MediaCommand::Resume) => self.playout.resume(),
                    Some(MediaCommand::Live(frame)) => {
                        self.pcm_8k.clear();
                        self.live_down.process(&frame[..], &mut self.pcm_8k);
                        self.playout.live(&self.pcm_8k);
                    }
                    Some(MediaCommand::Update(p)) => {
                        if p.remote != self.params.remote {
                            self.send_to = p.remote;
                            self.latched = false;
                        }
                        if p.codec != self.params.codec {
                            self.jitter = JitterBuffer::new();
                        }
                        self.params = p;
                        last_rx = Instant::now();
                    }
                    Some(MediaCommand::Stop) | None => break,
                },
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let now_ms = Instant::now().duration_since(start).as_millis() as u64;
                        if self.on_packet(&buf[..n], from, now_ms, &events) {
                            last_rx = Instant::now();
                        }
                    }
                    // ICMP port unreachable surfaces as an error on some systems; the caller
                    // may just not be listening yet, so keep going.
                    Err(e) => tracing::debug!(error = %e, "rtp recv error"),
                },
            }
        }
        self.stats.jitter = self.jitter.stats();
        let _ = events.send(MediaEvent::Stopped(self.stats.clone())).await;
    }

    fn queue(&mut self, pcm_16k: &[i16], tag: u64) {
        // Each chunk is a whole sentence that starts and ends in silence, so it is
        // resampled on its own; no filter state needs to carry across chunks.
        self.playout.queue(&resample_all(pcm_16k, 16000, 8000), tag);
    }

    /// Sends the next 20 ms: queued speech, or silence.
    async fn send_one(&mut self, now: Instant, events: &mpsc::Sender<MediaEvent>) {
        let mut frame = [0i16; FRAME_8K];
        // Finished marks wait until the frame has left: the call measures a reply's end by it.
        let mut finished = Vec::new();
        let have_speech = self.playout.next_frame(&mut frame, |mark| match mark {
            Mark::Started(tag) => {
                let _ = events.try_send(MediaEvent::PlayoutStarted { tag, at: now });
            }
            Mark::Finished(tag) => finished.push(tag),
        });
        if !self.params.send {
            // On hold: the caller asked us not to send. The frame is consumed so that a
            // held call does not resume in the middle of a stale sentence.
            self.talkspurt_start = true;
        } else {
            self.wire.clear();
            self.params.codec.encode(&frame, &mut self.wire);
            let marker = have_speech && self.talkspurt_start;
            if have_speech {
                self.talkspurt_start = false;
            } else {
                self.talkspurt_start = true;
            }
            self.packet.clear();
            self.sender.audio(self.params.pt, &self.wire, FRAME_8K as u32, marker, &mut self.packet);
            match self.socket.send_to(&self.packet, self.send_to).await {
                Ok(_) => self.stats.packets_sent += 1,
                Err(e) => tracing::debug!(error = %e, to = %self.send_to, "rtp send failed"),
            }
        }
        for tag in finished {
            let _ = events.try_send(MediaEvent::PlayoutFinished { tag, at: now });
        }
    }

    /// Takes the next frame out of the jitter buffer and hands it to the call at 16 kHz.
    fn receive_one(&mut self, now_ms: u64, events: &mpsc::Sender<MediaEvent>) {
        if !self.latched && self.stats.packets_received == 0 {
            return; // nothing has arrived yet: don't feed the call made-up silence
        }
        let mut frame8 = [0i16; FRAME_8K];
        match self.jitter.pop(now_ms) {
            Some(JitterFrame::Audio(payload)) => {
                self.pcm_8k.clear();
                self.params.codec.decode(payload, &mut self.pcm_8k);
                let n = self.pcm_8k.len().min(FRAME_8K);
                frame8[..n].copy_from_slice(&self.pcm_8k[..n]);
                self.last_concealed = frame8;
                self.concealed_run = 0;
            }
            Some(JitterFrame::Concealed) => {
                // Repeat the last good frame, fading out over 3 frames, then silence: a
                // short loss sounds like a smear instead of a click, and a long one like
                // silence instead of a buzz.
                self.concealed_run += 1;
                let gain = match self.concealed_run {
                    1 => 0.7,
                    2 => 0.4,
                    3 => 0.15,
                    _ => 0.0,
                };
                for (o, s) in frame8.iter_mut().zip(self.last_concealed.iter()) {
                    *o = (*s as f32 * gain) as i16;
                }
            }
            None => return,
        }
        self.pcm_16k.clear();
        self.up.process(&frame8, &mut self.pcm_16k);
        let mut out = Box::new([0i16; FRAME_16K]);
        let n = self.pcm_16k.len().min(FRAME_16K);
        out[..n].copy_from_slice(&self.pcm_16k[..n]);
        if events.try_send(MediaEvent::Frame(out)).is_err() {
            tracing::warn!("call task is not keeping up; a 20 ms caller frame was dropped");
        }
    }

    /// Handles one datagram. Returns true when it was RTP from the caller.
    fn on_packet(&mut self, data: &[u8], from: SocketAddr, now_ms: u64, events: &mpsc::Sender<MediaEvent>) -> bool {
        let Ok(pkt) = RtpPacket::parse(data) else {
            self.stats.packets_ignored += 1;
            return false;
        };
        // Symmetric RTP (RFC 4961): answer to where the caller's packets come from, which
        // behind a NAT is not the address in its SDP. Latch once, on the first valid packet
        // from the SDP address or of the negotiated payload types; afterwards other sources
        // are ignored so a stray or hostile sender cannot hijack the stream.
        if from != self.send_to {
            let plausible = pkt.pt == self.params.pt || Some(pkt.pt) == self.params.dtmf_pt;
            if self.latched || !plausible {
                self.stats.packets_ignored += 1;
                return false;
            }
            self.send_to = from;
        }
        self.latched = true;
        self.stats.packets_received += 1;
        if pkt.pt == self.params.pt {
            self.jitter.push_packet(&pkt, now_ms);
        } else if Some(pkt.pt) == self.params.dtmf_pt || is_dynamic_event(&pkt) {
            // RFC 4733 events may come on their own SSRC and even on a payload type other
            // than the negotiated one (sipp uses 96): accept any dynamic type that carries
            // a well-formed event.
            if let Some(d) = self.dtmf.push(pkt.ssrc, pkt.ts, pkt.payload, now_ms) {
                let _ = events.try_send(MediaEvent::Dtmf { digit: d.digit, duration_ms: d.duration_ms });
            }
        } else {
            self.stats.packets_ignored += 1;
        }
        true
    }
}

/// A dynamic payload type whose payload has the shape of a DTMF telephone-event: 4 bytes,
/// event 0-15, and a duration (sipp sends all-zero filler packets on another dynamic type
/// before its events; those have none).
fn is_dynamic_event(pkt: &RtpPacket<'_>) -> bool {
    let p = pkt.payload;
    (96..=127).contains(&pkt.pt) && p.len() == 4 && p[0] <= 15 && u16::from_be_bytes([p[2], p[3]]) > 0
}
