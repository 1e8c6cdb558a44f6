//! The per-call WebRTC media driver: the thin tokio shell around [`super::codec`] and
//! [`super::playout`]. It gives the call task exactly what the SIP RTP driver gives it (a
//! [`MediaHandle`] and [`MediaEvent`]s with 16 kHz 20 ms frames), so everything from the
//! call task inward is shared between the edges.
//!
//! Inbound packets arrive from the peer connection's remote track on a channel and are decoded
//! as they come (a browser paces its packets itself; FEC/PLC fill gaps). Outbound, a 20 ms
//! clock sends one Opus frame per tick: the bot's queued audio, or silence, so the browser's
//! jitter buffer stays fed and its playout clock steady.

use super::codec::{OpusReceiver, OpusSender};
use crate::media::playout::{Mark, Playout};
use crate::media::dtmf::{DtmfAssembler, DEFAULT_TIMEOUT_MS};
use crate::media::session::{media_events, MediaCommand, MediaEvent, MediaEventTx, MediaEvents, MediaHandle, MediaStats, FRAME_16K};
use bytes::Bytes;
use rtc::media::Sample;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

const TICK: Duration = Duration::from_millis(20);

/// Where the driver sends the bot's audio.
pub struct Outbound {
    pub track: Arc<TrackLocalStaticSample>,
    pub ssrc: u32,
    pub payload_type: u8,
}

/// One RTP packet from the caller's track, reduced to what the driver needs.
pub struct Inbound {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

/// Payload types negotiated for the caller's stream.
#[derive(Debug, Clone, Copy)]
pub struct InboundTypes {
    pub opus: u8,
    /// telephone-event payload type and its clock rate.
    pub dtmf: Option<(u8, u32)>,
}

pub fn start(
    out: Outbound,
    inbound: mpsc::Receiver<Inbound>,
    types: InboundTypes,
    rtp_timeout: Duration,
) -> Result<(MediaHandle, MediaEvents), super::codec::CodecError> {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    // Same queues as the SIP driver: 5 s of frames, control events never dropped.
    let (ev_tx, ev_rx) = media_events();
    let driver = Driver {
        out,
        types,
        rtp_timeout,
        receiver: OpusReceiver::new()?,
        sender: OpusSender::new()?,
        dtmf: DtmfAssembler::with_params(types.dtmf.map(|d| d.1).unwrap_or(48000), DEFAULT_TIMEOUT_MS),
        playout: Playout::new(FRAME_16K),
        stats: MediaStats::default(),
        pcm: Vec::with_capacity(FRAME_16K * 8),
    };
    let task = tokio::spawn(driver.run(cmd_rx, inbound, ev_tx));
    Ok((MediaHandle::from_parts(cmd_tx, 0, task), ev_rx))
}

struct Driver {
    out: Outbound,
    types: InboundTypes,
    rtp_timeout: Duration,
    receiver: OpusReceiver,
    sender: OpusSender,
    dtmf: DtmfAssembler,
    playout: Playout,
    stats: MediaStats,
    /// Decoded caller audio not yet handed over as whole frames.
    pcm: Vec<i16>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<MediaCommand>, mut inbound: mpsc::Receiver<Inbound>, events: MediaEventTx) {
        let start = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut last_rx = Instant::now();
        let mut inbound_open = true;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.send_one(now, &events).await;
                    if let Some(d) = self.dtmf.poll(now.duration_since(start).as_millis() as u64) {
                        events.control(MediaEvent::Dtmf { digit: d.digit, duration_ms: d.duration_ms });
                    }
                    if now.duration_since(last_rx) > self.rtp_timeout {
                        events.control(MediaEvent::Timeout);
                        break;
                    }
                }
                pkt = inbound.recv(), if inbound_open => match pkt {
                    Some(p) => {
                        last_rx = Instant::now();
                        self.on_packet(p, last_rx.duration_since(start).as_millis() as u64, &events);
                    }
                    // The track ended; the peer connection's state tells the call why.
                    None => inbound_open = false,
                },
                cmd = commands.recv() => match cmd {
                    Some(MediaCommand::Play { pcm_16k, tag }) => self.playout.queue(&pcm_16k, tag),
                    Some(MediaCommand::Flush) => self.playout.flush(),
                    Some(MediaCommand::Pause) => self.playout.pause(),
                    Some(MediaCommand::Resume) => self.playout.resume(),
                    Some(MediaCommand::Live(frame)) => self.playout.live(&frame[..]),
                    // SIP re-INVITE news; a WebRTC session renegotiates inside the peer connection.
                    Some(MediaCommand::Update(_)) => {}
                    Some(MediaCommand::Stop) | None => break,
                },
            }
        }
        // The call record's loss counters, in the SIP driver's terms.
        let rx = self.receiver.stats;
        self.stats.jitter.received = rx.packets;
        self.stats.jitter.lost = rx.fec_frames + rx.plc_frames;
        self.stats.jitter.concealed = rx.fec_frames + rx.plc_frames;
        self.stats.jitter.late = rx.late;
        tracing::info!(fec_frames = rx.fec_frames, plc_frames = rx.plc_frames, late = rx.late, undecodable = rx.undecodable, "webrtc media stopped");
        events.control(MediaEvent::Stopped(self.stats.clone()));
    }

    async fn send_one(&mut self, now: Instant, events: &MediaEventTx) {
        let mut frame = [0i16; FRAME_16K];
        let mut finished = [None; 4];
        let mut n_finished = 0;
        self.playout.next_frame(&mut frame, |m| match m {
            Mark::Started(tag) => {
                events.control(MediaEvent::PlayoutStarted { tag, at: now });
            }
            Mark::Finished(tag) if n_finished < finished.len() => {
                finished[n_finished] = Some(tag);
                n_finished += 1;
            }
            Mark::Finished(tag) => {
                events.control(MediaEvent::PlayoutFinished { tag, at: now });
            }
        });
        let packet = match self.sender.encode(&frame) {
            Ok(p) => Bytes::copy_from_slice(p),
            Err(e) => {
                tracing::warn!(error = %e, "opus encode failed; frame skipped");
                return;
            }
        };
        let sample = Sample { data: packet, duration: TICK, ..Sample::new(now) };
        // Before ICE and DTLS complete the track is not bound yet and the write fails: those
        // frames are silence or the greeting's first words, which the caller could not hear
        // anyway.
        match self.out.track.sample_writer(self.out.ssrc, self.out.payload_type).write_sample(&sample).await {
            Ok(()) => self.stats.packets_sent += 1,
            Err(e) => tracing::trace!(error = %e, "opus frame not sent"),
        }
        // Finished only after the frame left: the call measures the reply's end by it.
        for tag in finished.into_iter().flatten() {
            events.control(MediaEvent::PlayoutFinished { tag, at: now });
        }
    }

    fn on_packet(&mut self, p: Inbound, now_ms: u64, events: &MediaEventTx) {
        self.stats.packets_received += 1;
        if p.pt == self.types.opus {
            self.receiver.push(p.seq, &p.payload, &mut self.pcm);
            let whole = self.pcm.len() / FRAME_16K * FRAME_16K;
            for chunk in self.pcm[..whole].chunks_exact(FRAME_16K) {
                let mut frame = Box::new([0i16; FRAME_16K]);
                frame.copy_from_slice(chunk);
                if !events.frame(frame) {
                    tracing::warn!("call task is not keeping up; a 20 ms caller frame was dropped");
                }
            }
            self.pcm.drain(..whole);
        } else if self.types.dtmf.is_some_and(|(pt, _)| pt == p.pt) {
            self.receiver.skip(p.seq);
            if let Some(d) = self.dtmf.push(p.ssrc, p.ts, &p.payload, now_ms) {
                events.control(MediaEvent::Dtmf { digit: d.digit, duration_ms: d.duration_ms });
            }
        } else {
            self.stats.packets_ignored += 1;
        }
    }
}
