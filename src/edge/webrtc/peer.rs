//! One browser call: the peer connection (webrtc-rs), its media driver, and the signaling leg
//! that relays between the connection's state, the HTTP session (DELETE) and the call task.

use super::desk::Desks;
use super::driver::{self, InboundTypes, Inbound, Outbound};
use super::offer::{self, OfferError};
use super::WebrtcConfig;
use crate::call::{CallServices, LegCommand, NewCall, SignalEvent};
use crate::edge::RtpConfig;
use crate::media::session::MediaHandle;
use crate::proto::dialog::Channel;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_TELEPHONE_EVENT};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription, Registry,
};

/// Non-trickle ICE: the answer carries every candidate, so gathering must finish first. Host
/// candidates are immediate; this bounds the wait for STUN/TURN ones.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an offer got no call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Admission control said no (503 + Retry-After).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// webrtc-rs could not apply the offer (missing ICE credentials or DTLS fingerprint...).
    #[error("the offer cannot be negotiated: {0}")]
    Negotiation(String),
    #[error("internal error setting up the call: {0}")]
    Internal(String),
}

/// What the HTTP layer returns for an accepted offer.
pub struct Answer {
    /// Secret, unguessable id of the HTTP session: knowing it is what allows DELETE.
    pub session: String,
    pub call_id: String,
    pub sdp: String,
}

/// One HTTP session: a caller's call or an agent's leg.
struct Session {
    hang_up: mpsc::Sender<()>,
    call_id: String,
}

/// The WebRTC edge: every browser session in progress.
pub struct WebrtcEdge {
    config: WebrtcConfig,
    rtp: RtpConfig,
    services: Arc<CallServices>,
    /// Session id → its leg's hang-up trigger and call. A registry, not call state; like the
    /// SIP edge's routes, used as it is when a panic elsewhere poisoned the lock.
    sessions: Mutex<HashMap<String, Session>>,
    next_call: AtomicU64,
    /// Agents signed in on the console page, to ring for handoffs.
    desks: Desks,
}

impl WebrtcEdge {
    pub fn new(config: WebrtcConfig, rtp: RtpConfig, services: Arc<CallServices>) -> Arc<WebrtcEdge> {
        Arc::new(WebrtcEdge { config, rtp, services, sessions: Mutex::new(HashMap::new()), next_call: AtomicU64::new(1), desks: Desks::default() })
    }

    pub fn desks(&self) -> &Desks {
        &self.desks
    }

    /// The `[webrtc]` section this edge runs on.
    pub fn config(&self) -> &WebrtcConfig {
        &self.config
    }

    pub fn services(&self) -> &Arc<CallServices> {
        &self.services
    }

    /// Ends the session (the caller pressed hang-up). False when there is no such session.
    pub fn hang_up(&self, session: &str) -> bool {
        let trigger = self.sessions.lock().unwrap_or_else(PoisonError::into_inner).get(session).map(|s| s.hang_up.clone());
        match trigger {
            Some(t) => t.try_send(()).is_ok() || t.is_closed(),
            None => false,
        }
    }

    /// Answers a caller's offer and starts the call.
    pub async fn answer(self: &Arc<Self>, offer_sdp: &str) -> Result<Answer, CallError> {
        let services = self.services.clone();
        if let Some(why) = services.admission_refusal() {
            tracing::warn!(reason = %why, channel = "webrtc", "refusing call");
            return Err(CallError::Refused(why));
        }
        let peer = self.connect(offer_sdp).await?;
        let seq = self.next_call.fetch_add(1, Ordering::Relaxed);
        let call_id = format!("fl-{}-w{seq}", std::process::id());
        let (session, close_rx) = self.open_session(&call_id);
        tracing::info!(%call_id, channel = "webrtc", codec = "opus", "incoming call");
        let call = NewCall {
            info: crate::call::core::CallInfo {
                call_id: call_id.clone(),
                sip_call_id: session.clone(),
                caller: "browser".into(),
                callee: String::new(),
                channel: Channel::Webrtc,
                codec: "opus".into(),
                language: services.languages.for_number(""),
                recording: None,
                // A browser has no number: no history.
                history: Vec::new(),
                customer_id: None,
            },
            media: peer.media,
            media_events: peer.media_events,
        };
        let edge = self.clone();
        let watch = PeerWatch::new(peer.news, call_id.clone(), Duration::from_millis(self.config.disconnect_grace_ms));
        let leg = Leg { pc: peer.pc, call_id: call_id.clone() };
        let session_key = session.clone();
        tokio::spawn(async move {
            leg.run(edge.services.clone(), call, watch, close_rx).await;
            edge.close_session(&session_key);
        });
        Ok(Answer { session, call_id, sdp: peer.sdp })
    }

    /// A new HTTP session on `call_id`: its secret id (the DELETE URL) and the trigger DELETE
    /// pulls.
    pub(super) fn open_session(&self, call_id: &str) -> (String, mpsc::Receiver<()>) {
        let session = format!("{:032x}", rand::random::<u128>());
        let (hang_up, close_rx) = mpsc::channel(1);
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).insert(session.clone(), Session { hang_up, call_id: call_id.to_string() });
        (session, close_rx)
    }

    /// The call a session is on; none once it ended (or for a made-up id).
    pub fn session_call(&self, session: &str) -> Option<String> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).get(session).map(|s| s.call_id.clone())
    }

    pub(super) fn close_session(&self, session: &str) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(session);
    }

    /// Negotiates a browser's offer: a peer connection with our Opus track, and the media
    /// driver running on it. What a caller's call and an agent's leg both start from.
    pub(super) async fn connect(&self, offer_sdp: &str) -> Result<Connected, CallError> {
        let summary = offer::check(offer_sdp)?;
        let (news_tx, news_rx) = mpsc::unbounded_channel();
        let (rtp_tx, rtp_rx) = mpsc::channel(256);
        let gathered = Arc::new(Notify::new());
        let handler = Arc::new(PeerEvents { news: news_tx, rtp: rtp_tx, gathered: gathered.clone() });

        let opus = RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: summary.opus_pt,
        };
        let internal = |e: webrtc::error::Error| CallError::Internal(e.to_string());
        let mut media = MediaEngine::default();
        media.register_codec(opus.clone(), RtpCodecKind::Audio).map_err(internal)?;
        if let Some((pt, rate)) = summary.dtmf {
            let events = RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_TELEPHONE_EVENT.to_owned(),
                    clock_rate: rate,
                    channels: 1,
                    sdp_fmtp_line: "0-16".to_owned(),
                    rtcp_feedback: vec![],
                },
                payload_type: pt,
            };
            media.register_codec(events, RtpCodecKind::Audio).map_err(internal)?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media).map_err(internal)?;
        let cfg = &self.config;
        let ice_servers = if cfg.ice_servers.is_empty() {
            vec![]
        } else {
            vec![RTCIceServer { urls: cfg.ice_servers.clone(), username: cfg.turn_username.clone(), credential: cfg.turn_credential.clone() }]
        };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(cfg.udp_bind.clone())
            .build()
            .await
            .map_err(internal)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let negotiated = self.negotiate(&pc, offer_sdp, &opus, &gathered).await.and_then(|(sdp, out)| {
            let types = InboundTypes { opus: summary.opus_pt, dtmf: summary.dtmf };
            let rtp_timeout = self.rtp.timeout();
            let (media, media_events) = driver::start(out, rtp_rx, types, rtp_timeout).map_err(|e| CallError::Internal(e.to_string()))?;
            Ok((sdp, media, media_events))
        });
        match negotiated {
            Ok((sdp, media, media_events)) => Ok(Connected { pc, sdp, media, media_events, news: news_rx }),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    /// Applies the offer, adds the bot's track and returns the complete answer.
    async fn negotiate(&self, pc: &Arc<dyn PeerConnection>, offer_sdp: &str, opus: &RTCRtpCodecParameters, gathered: &Notify) -> Result<(String, Outbound), CallError> {
        let internal = |e: webrtc::error::Error| CallError::Internal(e.to_string());
        let ssrc = rand::random::<u32>();
        let track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    "frontline".to_owned(),
                    "frontline-bot".to_owned(),
                    "frontline bot".to_owned(),
                    RtpCodecKind::Audio,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                        codec: opus.rtp_codec.clone(),
                        ..Default::default()
                    }],
                ),
            )
            .map_err(internal)?,
        );
        let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.map_err(internal)?;
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).map_err(|e| CallError::Negotiation(e.to_string()))?;
        pc.set_remote_description(offer).await.map_err(|e| CallError::Negotiation(e.to_string()))?;
        let answer = pc.create_answer(None).await.map_err(|e| CallError::Negotiation(e.to_string()))?;
        let waiting = gathered.notified();
        pc.set_local_description(answer).await.map_err(internal)?;
        if tokio::time::timeout(GATHER_TIMEOUT, waiting).await.is_err() {
            tracing::warn!("ICE gathering did not finish in time; answering with the candidates so far");
        }
        let sdp = pc.local_description().await.ok_or_else(|| CallError::Internal("no local description after answering".into()))?.sdp;
        let payload_type = sender
            .get_parameters()
            .await
            .map_err(internal)?
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS))
            .map(|c| c.payload_type)
            .unwrap_or(opus.payload_type);
        Ok((sdp, Outbound { track, ssrc, payload_type }))
    }
}

/// A negotiated browser peer with its media driver running.
pub(super) struct Connected {
    pub pc: Arc<dyn PeerConnection>,
    /// The complete answer, every candidate included.
    pub sdp: String,
    pub media: MediaHandle,
    pub media_events: crate::media::session::MediaEvents,
    pub news: mpsc::UnboundedReceiver<PeerNews>,
}

/// What the peer connection tells the leg.
pub(super) enum PeerNews {
    State(RTCPeerConnectionState),
}

/// webrtc-rs calls this with every event of one connection.
struct PeerEvents {
    news: mpsc::UnboundedSender<PeerNews>,
    rtp: mpsc::Sender<Inbound>,
    gathered: Arc<Notify>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerEvents {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.news.send(PeerNews::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if track.kind().await != RtpCodecKind::Audio {
            return;
        }
        let rtp = self.rtp.clone();
        // Forward the caller's packets to the media driver until the track or the driver ends.
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event {
                    let h = &p.header;
                    let inbound = Inbound { pt: h.payload_type, seq: h.sequence_number, ts: h.timestamp, ssrc: h.ssrc, payload: p.payload.clone() };
                    if rtp.send(inbound).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
}

/// Follows a peer connection's state until the browser is gone: closed, failed, or silent
/// past the grace. Both the caller's leg and an agent's leg end on it.
pub(super) struct PeerWatch {
    news: mpsc::UnboundedReceiver<PeerNews>,
    label: String,
    grace: Duration,
    /// Armed while ICE is disconnected: a browser that went away (tab closed, network gone)
    /// stops answering consent checks, and this ends the leg.
    vanished: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl PeerWatch {
    pub(super) fn new(news: mpsc::UnboundedReceiver<PeerNews>, label: String, grace: Duration) -> Self {
        PeerWatch { news, label, grace, vanished: None }
    }

    /// Resolves once the browser is connected, or with why it never will be.
    pub(super) async fn connected(&mut self) -> Result<(), &'static str> {
        loop {
            match self.news.recv().await {
                Some(PeerNews::State(RTCPeerConnectionState::Connected)) => {
                    tracing::info!(leg = %self.label, "webrtc connected");
                    return Ok(());
                }
                Some(PeerNews::State(RTCPeerConnectionState::Failed)) => return Err("webrtc-failed"),
                Some(PeerNews::State(RTCPeerConnectionState::Closed)) | None => return Err("webrtc-closed"),
                Some(PeerNews::State(_)) => {}
            }
        }
    }

    /// Resolves with why the browser is gone ("webrtc-failed", "webrtc-closed",
    /// "webrtc-vanished"). Cancel-safe: a `select!` may drop it and call it again.
    pub(super) async fn gone(&mut self) -> &'static str {
        loop {
            tokio::select! {
                n = self.news.recv() => match n {
                    Some(PeerNews::State(RTCPeerConnectionState::Connected)) => {
                        tracing::info!(leg = %self.label, "webrtc connected");
                        self.vanished = None;
                    }
                    Some(PeerNews::State(RTCPeerConnectionState::Disconnected)) => {
                        tracing::info!(leg = %self.label, "webrtc disconnected");
                        self.vanished = Some(Box::pin(tokio::time::sleep(self.grace)));
                    }
                    Some(PeerNews::State(RTCPeerConnectionState::Failed)) => return "webrtc-failed",
                    Some(PeerNews::State(RTCPeerConnectionState::Closed)) | None => return "webrtc-closed",
                    Some(PeerNews::State(_)) => {}
                },
                _ = async { self.vanished.as_mut().expect("guarded").await }, if self.vanished.is_some() => {
                    tracing::warn!(leg = %self.label, "the browser stopped answering ICE");
                    return "webrtc-vanished";
                }
            }
        }
    }
}

/// Relays between the peer connection, the HTTP session and the call task.
struct Leg {
    pc: Arc<dyn PeerConnection>,
    call_id: String,
}

impl Leg {
    async fn run(self, services: Arc<CallServices>, call: NewCall, mut watch: PeerWatch, mut close: mpsc::Receiver<()>) {
        let (signal_tx, signal_rx) = mpsc::channel(8);
        let (leg_tx, mut leg_rx) = mpsc::channel(4);
        let call_task = crate::call::spawn(services, call, signal_rx, leg_tx);
        let end = |reason: &str| SignalEvent::Hangup { reason: reason.to_string() };
        loop {
            tokio::select! {
                cmd = leg_rx.recv() => match cmd {
                    Some(LegCommand::Hangup { reason }) => {
                        tracing::info!(call_id = %self.call_id, %reason, "closing the peer connection");
                        break;
                    }
                    Some(LegCommand::Refer { target }) => {
                        // A browser cannot be redirected to a SIP URI; the call task falls back
                        // as it does for any refused transfer.
                        tracing::warn!(call_id = %self.call_id, %target, "cold transfer (REFER) is SIP-only; refusing it for a WebRTC caller");
                        let _ = signal_tx.send(SignalEvent::Transfer { status: 501, done: true }).await;
                    }
                    None => break,
                },
                _ = close.recv() => {
                    let _ = signal_tx.send(end("caller-hangup")).await;
                    break;
                }
                reason = watch.gone() => {
                    let _ = signal_tx.send(end(reason)).await;
                    break;
                }
            }
        }
        // The call task finishes (its records, its "call ended" line) before the connection
        // goes, so its goodbye still reaches a caller whose hang-up was not the reason.
        drop(signal_tx);
        let _ = call_task.await;
        if let Err(e) = self.pc.close().await {
            tracing::debug!(call_id = %self.call_id, error = %e, "closing the peer connection failed");
        }
    }
}
