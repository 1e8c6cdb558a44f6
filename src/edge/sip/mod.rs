//! The SIP user agent (rsipstack): answers INVITEs and drives each call's dialog.
//!
//! rsipstack owns the transport and transaction layers (retransmissions, timers, ACK and
//! CANCEL matching). This module is the thin policy on top: admission control, SDP
//! offer/answer through [`crate::edge::sdp`], one signaling task per call that bridges the
//! SIP dialog and the call task, and plain answers to requests outside any dialog.

mod agent;
pub mod config;
pub mod digest;
pub mod registrar;
mod guard;
pub mod info;
pub mod limits;
mod ports;
pub mod screen;

pub use config::SipConfig;
pub use ports::RtpPortPool;

use crate::call::core::CallInfo;
use crate::call::{CallServices, LegCommand, NewCall, SignalEvent};
use crate::edge::sdp::{self, Direction, Negotiated, SdpError};
use crate::edge::RtpConfig;
use crate::media::g711::G711;
use crate::media::session::{self, MediaParams};
use crate::proto::dialog::Channel;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, DialogStateSender, TerminatedReason, TransactionHandle};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, Method, StatusCode};
use rsipstack::transaction::{Transaction, TransactionReceiver};
use rsipstack::transport::{udp::UdpConnection, TcpListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("cannot listen for SIP on {addr} ({transport}): {message} (is another process using the port? pick another with --sip-port)")]
    Bind { addr: SocketAddr, transport: &'static str, message: String },
    #[error("SIP stack: {0}")]
    Stack(String),
}

/// Every method the gateway acts on, for Allow: calls (INVITE, ACK, CANCEL, BYE), probes
/// (OPTIONS), keypad INFO, session refresh by UPDATE, and the NOTIFY and REFER of transfers.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, REFER";
/// What the gateway can take; the screen answers requests for anything else.
static CAPABILITIES: screen::Capabilities = screen::Capabilities { allow: ALLOW, supported: &[], accept: "application/sdp" };
/// What a SIP message from the network meets on arrival, before any dialog exists: the screen
/// with the gateway's capabilities and rsipstack's parser, Via handling and transaction key
/// behind it, as a datagram (UDP) or as a framed stream message (TCP). It must never panic:
/// the fuzz targets in `fuzz/` call it with arbitrary bytes.
pub fn screen_incoming(bytes: &[u8], tcp: bool) -> screen::Verdict {
    let from = SocketAddr::from(([192, 0, 2, 1], 5060));
    let (framing, transport) = if tcp {
        (screen::Framing::Stream, rsipstack::sip::Transport::Tcp)
    } else {
        (screen::Framing::Datagram, rsipstack::sip::Transport::Udp)
    };
    screen::screen(bytes, framing, &CAPABILITIES, |b| guard::stack_takes(b, from, transport))
}

/// Codecs the gateway answers with, in its own order of preference (the offerer's order wins
/// among these).
const CODECS: [G711; 2] = [G711::Ulaw, G711::Alaw];

/// Binds the UDP socket and makes sure TCP can listen on the same port.
///
/// rsipstack binds its TCP listener later, inside the endpoint's task, and only logs a failure
/// there: a gateway would then say "ready" while TCP peers get "connection refused". So the
/// port is tried here first (with SO_REUSEADDR, as rsipstack binds it) and a busy port is a
/// start-up error. When port 0 was asked for, a kernel-chosen UDP port whose TCP twin is taken
/// (an outgoing connection's ephemeral port, say) is given back and another one tried.
async fn bind_udp_and_tcp_port(listen: SocketAddr) -> Result<(tokio::net::UdpSocket, SocketAddr), SipError> {
    const TRIES_FOR_ANY_PORT: usize = 16;
    let mut last_error = String::new();
    for _ in 0..TRIES_FOR_ANY_PORT {
        let socket = tokio::net::UdpSocket::bind(listen)
            .await
            .map_err(|e| SipError::Bind { addr: listen, transport: "udp", message: e.to_string() })?;
        let port = socket.local_addr().map_err(|e| SipError::Stack(e.to_string()))?.port();
        let tcp_addr = SocketAddr::new(listen.ip(), port);
        match tcp_port_free(tcp_addr) {
            Ok(()) => return Ok((socket, tcp_addr)),
            Err(e) if listen.port() == 0 => last_error = e.to_string(),
            Err(e) => return Err(SipError::Bind { addr: tcp_addr, transport: "tcp", message: e.to_string() }),
        }
    }
    Err(SipError::Bind { addr: listen, transport: "tcp", message: last_error })
}

/// Waits, at most 2 s, until `addr` accepts TCP connections (one probe connection, closed at once).
async fn wait_until_listening(addr: SocketAddr) -> Result<(), SipError> {
    let probe = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), addr.port()),
        _ => addr,
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(probe).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(SipError::Bind { addr, transport: "tcp", message: "the SIP stack did not start listening within 2 s".into() })
}

fn tcp_port_free(addr: SocketAddr) -> std::io::Result<()> {
    let probe = if addr.is_ipv6() { tokio::net::TcpSocket::new_v6()? } else { tokio::net::TcpSocket::new_v4()? };
    probe.set_reuseaddr(true)?;
    probe.bind(addr)?;
    // A bound socket that never listened leaves nothing behind when dropped.
    Ok(())
}

/// The running SIP side of the gateway.
pub struct SipServer {
    pub local_addr: SocketAddr,
    cancel: CancellationToken,
    edge: Arc<Edge>,
}

impl SipServer {
    /// Binds UDP and TCP on `sip.listen` and starts answering calls, opening their media
    /// sockets as `rtp` says.
    pub async fn start(sip: SipConfig, rtp: RtpConfig, services: Arc<CallServices>) -> Result<SipServer, SipError> {
        let listen = sip.listen;
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.clone());
        // rsipstack reads UDP through our screen (see guard.rs), which answers what its
        // parser would drop.
        let (socket, tcp_addr) = bind_udp_and_tcp_port(listen).await?;
        let screened = Arc::new(guard::ScreenedUdp::new(socket, &CAPABILITIES));
        let udp = UdpConnection::from_socket(screened, None, Some(cancel.child_token()))
            .await
            .map_err(|e| SipError::Bind { addr: listen, transport: "udp", message: e.to_string() })?;
        let local_addr = udp
            .get_addr()
            .get_socketaddr()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let tcp = TcpListenerConnection::new(tcp_addr.into(), None)
            .await
            .map_err(|e| SipError::Bind { addr: tcp_addr, transport: "tcp", message: e.to_string() })?;
        transport.add_transport(udp.into());
        transport.add_transport(tcp.into());

        let endpoint = EndpointBuilder::new()
            .with_transport_inspector(Box::new(guard::StreamScreen { caps: &CAPABILITIES }))
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport)
            .with_user_agent(&sip.user_agent)
            .build();
        let incoming = endpoint.incoming_transactions().map_err(|e| SipError::Stack(e.to_string()))?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let (state_tx, state_rx) = dialogs.new_dialog_state_channel();
        let policy = sip
            .source_policy(services.calls.max_concurrent)
            .map_err(|(key, message)| SipError::Stack(format!("{key}: {message}")))?;
        let digest = digest::Challenger::new(&sip.auth).map_err(|(key, message)| SipError::Stack(format!("{key}: {message}")))?;
        let edge = Arc::new(Edge {
            limits: limits::Limiter::new(policy),
            digest,
            registrar: registrar::Registrar::default(),
            sip,
            rtp,
            services,
            dialogs,
            state_tx,
            routes: Mutex::new(HashMap::new()),
            ports: RtpPortPool::new(),
            sip_port: local_addr.port(),
            next_call: AtomicU64::new(1),
        });
        tokio::spawn(async move { endpoint.serve().await });
        // rsipstack binds the TCP listener inside serve(), after this returns: wait until it
        // accepts, so that once the gateway says it is ready a TCP caller is not refused.
        wait_until_listening(tcp_addr).await?;
        let dialer: Arc<dyn crate::call::AgentDialer> = Arc::new(agent::SipDialer { edge: edge.clone() });
        if edge.services.dialers.sip.set(dialer).is_err() {
            tracing::warn!("a second SIP edge started; agent calls go through the first");
        }
        tokio::spawn(edge.clone().route_dialog_states(state_rx));
        tokio::spawn(edge.clone().accept_transactions(incoming));
        Ok(SipServer { local_addr, cancel, edge })
    }

    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Dialogs still being signaled (a BYE in flight counts): the server stops only when none is.
    pub fn dialogs_in_progress(&self) -> usize {
        self.edge.routes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A registrar change as the records keep it (milliseconds).
fn recorded(agent: &str, change: registrar::Change) -> crate::records::RegistrationChange {
    let agent = agent.to_string();
    match change {
        registrar::Change::Bound { contact, at, expires_at } => {
            crate::records::RegistrationChange::Bound { agent, contact, at_ms: at * 1000, expires_ms: expires_at * 1000 }
        }
        registrar::Change::Removed { contact, at } => crate::records::RegistrationChange::Ended { agent, contact, at_ms: at * 1000 },
    }
}

/// What the per-call signaling task hears about its dialog.
enum DialogNews {
    State(DialogState),
}

struct Edge {
    sip: SipConfig,
    rtp: RtpConfig,
    services: Arc<CallServices>,
    dialogs: Arc<DialogLayer>,
    state_tx: DialogStateSender,
    /// Dialog id → the signaling task of that call. A registry, not call state: entries are
    /// added when a call is answered and removed when its task ends. Each use is one map
    /// operation, so a panic elsewhere cannot leave it half-changed: a poisoned lock is used as
    /// it is, rather than failing every later call.
    routes: Mutex<HashMap<String, mpsc::Sender<DialogNews>>>,
    ports: RtpPortPool,
    sip_port: u16,
    next_call: AtomicU64,
    /// Per-source call admission and the trusted-source list.
    limits: limits::Limiter,
    /// Digest authentication of new calls (`[sip.auth] users`) and of agents' phones
    /// registering (`[sip.auth] agents`).
    digest: Option<digest::Challenger>,
    /// Where the registered agents' phones are.
    registrar: registrar::Registrar,
}

impl Edge {
    async fn accept_transactions(self: Arc<Self>, mut incoming: TransactionReceiver) {
        while let Some(tx) = incoming.recv().await {
            let edge = self.clone();
            tokio::spawn(async move { edge.on_transaction(tx).await });
        }
    }

    async fn on_transaction(self: Arc<Self>, mut tx: Transaction) {
        let in_dialog = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        if in_dialog {
            match self.dialogs.match_dialog(&tx) {
                Some(rsipstack::dialog::dialog::Dialog::Invite(mut dialog)) => {
                    if let Err(e) = dialog.handle(&mut tx).await {
                        tracing::debug!(error = %e, method = %tx.original.method, "in-dialog request failed");
                    }
                }
                _ if tx.original.method == Method::Ack => {} // ACK for a dialog already gone
                _ => reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await,
            }
            return;
        }
        // Only requests outside a dialog are judged by source: inside one, the peer is the
        // caller we answered or the agent phone we called, wherever it is.
        let source = source_ip(&tx);
        if let Some(ip) = source.filter(|ip| !self.limits.trusted(*ip)) {
            if tx.original.method != Method::Ack {
                tracing::info!(%ip, method = %tx.original.method, "refused a request from an untrusted source");
                reply(&mut tx, StatusCode::Forbidden, vec![warning(limits::Refusal::Untrusted)]).await;
            }
            return;
        }
        match tx.original.method {
            Method::Invite => {
                // One address may not take every call slot, nor flood the gateway with attempts.
                let slot = match source.map(|ip| (ip, self.limits.admit(ip, std::time::Instant::now()))) {
                    Some((_, Ok(slot))) => Some(slot),
                    Some((ip, Err(why))) => {
                        tracing::warn!(%ip, reason = %why, "refusing call");
                        let retry = self.services.calls.retry_after_secs.to_string();
                        let headers = vec![Header::Other("Retry-After".into(), retry), warning(why)];
                        reply(&mut tx, StatusCode::ServiceUnavailable, headers).await;
                        return;
                    }
                    None => None, // no source address (not a network transport)
                };
                // Credentials after the limits: an unauthenticated flood is still rate-limited,
                // and costs no hashing past its share.
                match self.digest.as_ref().filter(|d| d.challenges_calls()).map(|d| d.check_request(&tx.original)) {
                    None => {}
                    Some(digest::Verdict::Accepted(user)) => tracing::debug!(%user, "caller authenticated"),
                    Some(digest::Verdict::Challenge(challenge)) => {
                        reply(&mut tx, StatusCode::Unauthorized, vec![Header::Other("WWW-Authenticate".into(), challenge)]).await;
                        return;
                    }
                    Some(digest::Verdict::Refused(why)) => {
                        tracing::warn!(ip = ?source, reason = why, "refusing call: authentication failed");
                        // The same words whether the user or the password was wrong: the
                        // answer must not tell a guesser which user names exist.
                        reply(&mut tx, StatusCode::Forbidden, vec![warning("authentication failed")]).await;
                        return;
                    }
                }
                self.on_invite(tx, slot).await
            }
            Method::Options if self.services.is_draining() => {
                // A proxy that probes with OPTIONS (Kamailio's dispatcher) takes a draining
                // node out of its set, so new calls go to the other gateways.
                let retry = self.services.calls.retry_after_secs.to_string();
                let headers = vec![
                    Header::Other("Retry-After".into(), retry),
                    Header::Other("Warning".into(), "399 frontline \"draining: not taking new calls\"".into()),
                ];
                reply(&mut tx, StatusCode::ServiceUnavailable, headers).await;
            }
            Method::Options => {
                // Keepalive and capability probe from trunks and proxies (RFC 3261 §11).
                let headers = vec![
                    Header::Other("Allow".into(), ALLOW.into()),
                    Header::Other("Accept".into(), format!("application/sdp, {}", info::ACCEPT)),
                ];
                reply(&mut tx, StatusCode::OK, headers).await;
            }
            Method::Register => match self.digest.as_ref().filter(|d| d.registers_agents()) {
                Some(digest) => self.on_register(tx, digest, source).await,
                None => reply_not_allowed(&mut tx).await,
            },
            Method::Ack => {}
            Method::Bye | Method::Cancel => reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await,
            // Methods we know but take only inside a call, or not at all. Unknown methods got
            // 501 from the screen already.
            _ => reply_not_allowed(&mut tx).await,
        }
    }

    /// An agent's phone registering (or refreshing, moving, leaving): rate-limited per source
    /// like call attempts, then authenticated, then bound.
    async fn on_register(&self, mut tx: Transaction, digest: &digest::Challenger, source: Option<IpAddr>) {
        if let Some(Err(why)) = source.map(|ip| self.limits.attempt(ip, std::time::Instant::now())) {
            let headers = vec![Header::Other("Retry-After".into(), self.services.calls.retry_after_secs.to_string()), warning(why)];
            reply(&mut tx, StatusCode::ServiceUnavailable, headers).await;
            return;
        }
        let user = match digest.check_request(&tx.original) {
            digest::Verdict::Accepted(user) => user,
            digest::Verdict::Challenge(challenge) => {
                reply(&mut tx, StatusCode::Unauthorized, vec![Header::Other("WWW-Authenticate".into(), challenge)]).await;
                return;
            }
            digest::Verdict::Refused(why) => {
                tracing::warn!(ip = ?source, reason = why, "refused a registration: authentication failed");
                reply(&mut tx, StatusCode::Forbidden, vec![warning("authentication failed")]).await;
                return;
            }
        };
        let request = &tx.original;
        let to_user = request.to_header().ok().and_then(|t| t.uri().ok()).and_then(|u| u.user().map(str::to_owned));
        let contacts: Vec<String> = request.headers.iter().filter(|h| matches!(h, Header::Contact(_))).map(|h| h.value().to_string()).collect();
        let expires = request.headers.iter().find(|h| matches!(h, Header::Expires(_))).and_then(|h| h.value().trim().parse().ok());
        let asked = registrar::Register { to_user: to_user.as_deref(), contacts: contacts.iter().map(String::as_str).collect(), expires };
        match self.registrar.register(&user, &asked, crate::auth::unix_now()) {
            registrar::Answer::Ok { bound, change } => {
                if let Some(change) = change {
                    match &change {
                        registrar::Change::Bound { contact, expires_at, at } => {
                            tracing::info!(agent = %user, %contact, expires_secs = expires_at - at, ip = ?source, "agent registered")
                        }
                        registrar::Change::Removed { contact, .. } => tracing::info!(agent = %user, ?contact, ip = ?source, "agent unregistered"),
                    }
                    self.services.records.registration(recorded(&user, change));
                }
                let headers = bound.map(|(contact, secs)| Header::Other("Contact".into(), format!("<{contact}>;expires={secs}")));
                reply(&mut tx, StatusCode::OK, headers.into_iter().collect()).await;
            }
            registrar::Answer::IntervalTooBrief(min) => {
                reply(&mut tx, StatusCode::IntervalTooBrief, vec![Header::Other("Min-Expires".into(), min.to_string())]).await;
            }
            registrar::Answer::BadRequest(why) => reply(&mut tx, StatusCode::BadRequest, vec![warning(why)]).await,
            registrar::Answer::Forbidden(why) => reply(&mut tx, StatusCode::Forbidden, vec![warning(why)]).await,
        }
    }

    /// Where `agent`'s phone is to be rung now: where it registered last, through this gateway
    /// or another one sharing the records (`registrar::ring_at`). Unreadable records leave this
    /// gateway's own binding.
    async fn registered_contact(&self, agent: &str) -> Option<String> {
        let now = crate::auth::unix_now();
        let records = self.services.records.clone();
        let name = agent.to_string();
        let read = tokio::task::spawn_blocking(move || records.registration_of(&name)).await;
        let recorded = match read.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
            Ok(r) => r.map(|r| registrar::Binding { contact: r.contact, at: r.at_ms / 1000, expires_at: r.expires_ms / 1000 }),
            Err(error) => {
                tracing::warn!(agent, %error, "cannot read where the agent registered; using this gateway's own binding");
                None
            }
        };
        registrar::ring_at(self.registrar.binding_of(agent, now), recorded, now)
    }

    /// A new call; `slot` is its source's share of the call slots, held until the call ends.
    async fn on_invite(self: Arc<Self>, mut tx: Transaction, slot: Option<limits::Slot>) {
        let services = self.services.clone();
        // Admission control first: refusing early is cheaper for everyone than a call that
        // cannot be served well.
        if let Some(why) = services.admission_refusal() {
            tracing::warn!(reason = %why, "refusing call");
            let retry = services.calls.retry_after_secs.to_string();
            let headers = vec![
                Header::Other("Retry-After".into(), retry),
                Header::Other("Warning".into(), format!("399 frontline \"{why}\"")),
            ];
            reply(&mut tx, StatusCode::ServiceUnavailable, headers).await;
            return;
        }
        let body = String::from_utf8_lossy(&tx.original.body).to_string();
        if body.trim().is_empty() {
            // A late offer would need us to offer in the 200 and take the answer from the
            // ACK; carriers and PBXs send early offers, so refuse clearly instead.
            let w = "305 frontline \"INVITE without an SDP offer is not supported\"";
            reply(&mut tx, StatusCode::NotAcceptableHere, vec![Header::Other("Warning".into(), w.into())]).await;
            return;
        }
        let negotiated = match sdp::parse(&body).and_then(|offer| sdp::negotiate(&offer, &CODECS)) {
            Ok(n) => n,
            Err(e @ (SdpError::NoCommonCodec { .. } | SdpError::NoConnection { .. })) => {
                tracing::info!(error = %e, "no usable codec offered");
                let w = format!("304 frontline \"{}\"", e.to_string().replace('"', "'"));
                reply(&mut tx, StatusCode::NotAcceptableHere, vec![Header::Other("Warning".into(), w)]).await;
                return;
            }
            Err(e) => {
                tracing::info!(error = %e, "malformed SDP");
                let w = format!("399 frontline \"malformed SDP: {}\"", e.to_string().replace('"', "'"));
                reply(&mut tx, StatusCode::BadRequest, vec![Header::Other("Warning".into(), w)]).await;
                return;
            }
        };
        let Some(media_ip) = media_bind_ip(self.sip.listen.ip(), negotiated.remote.ip()) else {
            // Our RTP sockets are on one IPv4 address: answering would give a call with no
            // audio either way. RFC 3261 §20.43 has a warning code for exactly this.
            tracing::info!(remote = %negotiated.remote, listen = %self.sip.listen, "IPv6 media offered to a gateway bound to one IPv4 address");
            let w = "301 frontline \"Incompatible network address formats: IPv6 media offered, this gateway listens on one IPv4 address\"";
            reply(&mut tx, StatusCode::NotAcceptableHere, vec![Header::Other("Warning".into(), w.into())]).await;
            return;
        };
        // A public address of the other family than the caller's media cannot be theirs to reach.
        let public_ip = self.sip.public_ip.filter(|ip| ip.is_ipv4() == negotiated.remote.is_ipv4());
        let local_ip = public_ip.unwrap_or_else(|| local_ip_toward(negotiated.remote.ip()));
        let socket = match self.ports.bind(media_ip, self.rtp.port_min, self.rtp.port_max).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port available");
                let headers = vec![Header::Other("Retry-After".into(), "5".into())];
                reply(&mut tx, StatusCode::ServiceUnavailable, headers).await;
                return;
            }
        };
        // The Contact names the transport the INVITE came on: a caller that reached us over
        // TCP sends its ACK, re-INVITEs and BYE to this URI, and without `transport=tcp`
        // (RFC 3261 §19.1.1: UDP is the default) they would go out over UDP.
        let transport = match &tx.connection {
            Some(c) if c.is_reliable() => ";transport=tcp",
            _ => "",
        };
        // Signaling and media may differ in family (IPv6 media offered over IPv4 SIP): the
        // Contact is where the caller's SIP reached us.
        let signaling_ip = self.sip.public_ip.or_else(|| source_ip(&tx).map(local_ip_toward)).unwrap_or(local_ip);
        let contact = format!("sip:frontline@{}:{}{transport}", uri_host(signaling_ip), self.sip_port);
        let contact_uri = match rsipstack::sip::Uri::try_from(contact.as_str()) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "cannot build Contact");
                reply(&mut tx, StatusCode::ServerInternalError, vec![]).await;
                return;
            }
        };
        let dialog = match self.dialogs.get_or_create_server_invite(&tx, self.state_tx.clone(), None, Some(contact_uri)) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create dialog");
                reply(&mut tx, StatusCode::BadRequest, vec![]).await;
                return;
            }
        };
        let dialog_id = dialog.id();
        let (news_tx, news_rx) = mpsc::channel(16);
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).insert(dialog_id.to_string(), news_tx);

        // The INVITE server transaction runs on its own task: it sends 100 Trying, retransmits
        // our final answer and delivers the ACK or a CANCEL into the dialog state machine.
        let mut invite_dialog = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = invite_dialog.handle(&mut tx).await {
                tracing::debug!(error = %e, "INVITE transaction ended with an error");
            }
        });

        let request = dialog.initial_request();
        let caller = request.from_header().ok().and_then(|f| f.uri().ok()).and_then(|u| u.user().map(str::to_owned)).unwrap_or_default();
        let callee = request.uri.user().map(str::to_owned).unwrap_or_default();
        let sip_call_id = request.call_id_header().map(|c| c.value().to_string()).unwrap_or_default();
        let customer_id = customer_id(&request, &self.sip.customer_id_header);
        let seq = self.next_call.fetch_add(1, Ordering::Relaxed);
        let call_id = format!("fl-{}-{seq}", std::process::id());
        tracing::info!(%call_id, %sip_call_id, %caller, %callee, codec = negotiated.codec.name(), remote = %negotiated.remote, "incoming call");

        let edge = self.clone();
        tokio::spawn(async move {
            let leg = SignalingLeg { edge: edge.clone(), dialog, local_ip, call_id: call_id.clone() };
            leg.run(news_rx, socket, negotiated, NewCallInfo { call_id, sip_call_id, caller, callee, customer_id }).await;
            edge.routes.lock().unwrap_or_else(PoisonError::into_inner).remove(&dialog_id.to_string());
            edge.dialogs.remove_dialog(&dialog_id);
            drop(slot);
        });
    }

    /// Delivers rsipstack's dialog state changes to the call they belong to.
    async fn route_dialog_states(self: Arc<Self>, mut states: DialogStateReceiver) {
        while let Some(state) = states.recv().await {
            let id = match &state {
                DialogState::Calling(id)
                | DialogState::Trying(id)
                | DialogState::Early(id, _)
                | DialogState::WaitAck(id, _)
                | DialogState::Confirmed(id, _)
                | DialogState::Updated(id, _, _)
                | DialogState::Publish(id, _, _)
                | DialogState::Notify(id, _, _)
                | DialogState::Refer(id, _, _)
                | DialogState::Message(id, _, _)
                | DialogState::Info(id, _, _)
                | DialogState::Options(id, _, _)
                | DialogState::Terminated(id, _) => id.to_string(),
            };
            let route = self.routes.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
            match route {
                Some(r) => {
                    let _ = r.send(DialogNews::State(state)).await;
                }
                None => answer_orphan_state(state).await,
            }
        }
    }
}

/// A mid-dialog request for a dialog that has no call any more still gets an answer.
async fn answer_orphan_state(state: DialogState) {
    match state {
        DialogState::Updated(_, _, h)
        | DialogState::Info(_, _, h)
        | DialogState::Message(_, _, h)
        | DialogState::Notify(_, _, h)
        | DialogState::Refer(_, _, h)
        | DialogState::Publish(_, _, h) => {
            let _ = h.reply(StatusCode::CallTransactionDoesNotExist).await;
        }
        DialogState::Options(_, _, h) => {
            let _ = h.reply(StatusCode::OK).await;
        }
        _ => {}
    }
}

struct NewCallInfo {
    call_id: String,
    sip_call_id: String,
    caller: String,
    callee: String,
    customer_id: Option<String>,
}

/// The caller's CRM id from the INVITE's header `name` (any case, value trimmed): `None` when
/// no header is configured (`name` empty), the INVITE has none, or its value is no id.
fn customer_id(request: &rsipstack::sip::Request, name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    request.header_value(name).filter(|id| is_customer_id(id))
}

/// A CRM id worth keeping: 1 to 64 visible ASCII characters (an id, not free text or a
/// header stuffed with something else).
fn is_customer_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic())
}

/// One call's signaling: answers the INVITE, starts the call task, and relays between the
/// dialog (BYE, CANCEL, re-INVITE) and the call (hang up).
struct SignalingLeg {
    edge: Arc<Edge>,
    dialog: InviteDialog,
    local_ip: IpAddr,
    call_id: String,
}

impl SignalingLeg {
    async fn run(self, mut news: mpsc::Receiver<DialogNews>, socket: tokio::net::UdpSocket, negotiated: Negotiated, info: NewCallInfo) {
        let services = self.edge.services.clone();
        let local_port = match socket.local_addr() {
            Ok(a) => a.port(),
            Err(e) => {
                tracing::error!(error = %e, "RTP socket has no address");
                let _ = self.dialog.reject(Some(StatusCode::ServerInternalError), None);
                return;
            }
        };
        // Optional ring time before answering (some trunks expect to hear ringback); a CANCEL
        // that arrives meanwhile ends the attempt here, and rsipstack answers it with 487.
        // Without one the 200 follows at once and no 180 is sent: through a proxy with several
        // workers (Kamailio) a 180 sent just before the 200 can arrive after it, which a
        // strict caller (sipp) treats as an error.
        let ring = Duration::from_millis(self.edge.sip.answer_delay_ms);
        if !ring.is_zero() {
            let _ = self.dialog.ringing(None, None);
            let deadline = tokio::time::sleep(ring);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    n = news.recv() => match n {
                        Some(DialogNews::State(DialogState::Terminated(_, reason))) => {
                            tracing::info!(call_id = %self.call_id, ?reason, "caller gave up before the answer");
                            services.log_unanswered(&info.call_id, &format!("{reason:?}"));
                            return;
                        }
                        Some(DialogNews::State(other)) => self.answer_mid_dialog(other).await,
                        None => return,
                    },
                }
            }
        }
        let session_id = rand::random::<u32>() as u64;
        let mut sdp_version = 1u64;
        let answer = sdp::answer(&negotiated, self.local_ip, local_port, session_id, sdp_version);
        let headers = vec![
            Header::ContentType("application/sdp".into()),
            Header::Other("Allow".into(), ALLOW.into()),
        ];
        if let Err(e) = self.dialog.accept(Some(headers), Some(answer.into_bytes())) {
            tracing::warn!(call_id = %self.call_id, error = %e, "could not answer");
            return;
        }
        let params = media_params(&negotiated);
        let (media, media_events) = match session::start(socket, params.clone(), self.edge.rtp.timeout()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(call_id = %self.call_id, error = %e, "cannot start media");
                let _ = self.dialog.bye().await;
                return;
            }
        };
        let (signal_tx, signal_rx) = mpsc::channel(8);
        let (leg_tx, mut leg_rx) = mpsc::channel(4);
        let language = services.languages.for_number(&info.callee);
        let call = NewCall {
            info: CallInfo {
                call_id: info.call_id,
                sip_call_id: info.sip_call_id,
                caller: info.caller,
                callee: info.callee,
                channel: Channel::Sip,
                codec: negotiated.codec.name().to_string(),
                language,
                recording: None,
                history: Vec::new(),
                customer_id: info.customer_id,
            },
            media,
            media_events,
        };
        let call_task = crate::call::spawn(services.clone(), call, signal_rx, leg_tx);
        let mut current = negotiated;
        let mut call_task_gone = false;
        loop {
            tokio::select! {
                cmd = leg_rx.recv(), if !call_task_gone => match cmd {
                    Some(LegCommand::Refer { target }) => {
                        let status = self.refer(&target).await;
                        let _ = signal_tx.send(SignalEvent::Transfer { status, done: status >= 300 }).await;
                    }
                    Some(LegCommand::Hangup { reason }) => {
                        tracing::info!(call_id = %self.call_id, %reason, "sending BYE");
                        if let Err(e) = self.dialog.bye_with_reason(reason).await {
                            tracing::debug!(call_id = %self.call_id, error = %e, "BYE failed");
                        }
                        break;
                    }
                    // The call task ended without asking for a BYE (the caller hung up first):
                    // keep answering the dialog until rsipstack reports it terminated.
                    None => call_task_gone = true,
                },
                n = news.recv() => match n {
                    Some(DialogNews::State(DialogState::Terminated(_, reason))) => {
                        let reason = match reason {
                            TerminatedReason::UacBye => "caller-hangup".to_string(),
                            TerminatedReason::UacCancel => "caller-cancel".to_string(),
                            TerminatedReason::Timeout => "sip-timeout".to_string(),
                            other => format!("sip-{other:?}").to_lowercase(),
                        };
                        let _ = signal_tx.send(SignalEvent::Hangup { reason }).await;
                        break;
                    }
                    Some(DialogNews::State(DialogState::Updated(_, req, handle))) if req.method == Method::Invite => {
                        // re-INVITE: hold, resume, or a new address or codec.
                        let body = String::from_utf8_lossy(&req.body).to_string();
                        let result = if body.trim().is_empty() {
                            Ok(current.clone()) // refresh without an offer: keep the session
                        } else {
                            sdp::parse(&body).and_then(|o| sdp::negotiate(&o, &CODECS))
                        };
                        match result {
                            Ok(n) => {
                                sdp_version += 1;
                                let answer = sdp::answer(&n, self.local_ip, local_port, session_id, sdp_version);
                                let headers = vec![Header::ContentType("application/sdp".into())];
                                let _ = handle.respond(StatusCode::OK, Some(headers), Some(answer.into_bytes())).await;
                                tracing::info!(call_id = %self.call_id, direction = ?n.direction, remote = %n.remote, "re-INVITE");
                                let _ = signal_tx.send(SignalEvent::Media(media_params(&n))).await;
                                current = n;
                            }
                            Err(e) => {
                                // RFC 3261 §14.2: a failed re-INVITE leaves the session as it was.
                                let w = format!("304 frontline \"{}\"", e.to_string().replace('"', "'"));
                                let _ = handle.respond(StatusCode::NotAcceptableHere, Some(vec![Header::Other("Warning".into(), w)]), None).await;
                            }
                        }
                    }
                    Some(DialogNews::State(DialogState::Notify(_, req, handle))) => {
                        // Progress of a transfer we asked for: the body is a sipfrag whose
                        // status line is the transferee's call to the target.
                        let _ = handle.reply(StatusCode::OK).await;
                        let body = String::from_utf8_lossy(&req.body).to_string();
                        if let Some(status) = sipfrag_status(&body) {
                            tracing::info!(call_id = %self.call_id, status, "transfer progress");
                            let _ = signal_tx.send(SignalEvent::Transfer { status, done: status >= 200 }).await;
                        }
                    }
                    Some(DialogNews::State(DialogState::Info(_, req, handle))) => self.on_info(&req, handle, &signal_tx).await,
                    Some(DialogNews::State(other)) => self.answer_mid_dialog(other).await,
                    None => break,
                },
            }
        }
        let _ = call_task.await;
    }

    /// Sends REFER; returns its final status (202 when the caller's side accepted it).
    async fn refer(&self, target: &str) -> u16 {
        let uri = match rsipstack::sip::Uri::try_from(target) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, %target, error = %e, "cannot REFER to a malformed URI");
                return 400;
            }
        };
        tracing::info!(call_id = %self.call_id, %target, "REFER");
        match self.dialog.refer(uri, None, None).await {
            Ok(Some(resp)) => resp.status_code.code(),
            Ok(None) => 408,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "REFER failed");
                500
            }
        }
    }

    /// INFO during the call: a keypad digit (RFC 6086 with Cisco's dtmf-relay or the bare
    /// dtmf body) goes to the call as the same event an RFC 4733 packet makes.
    async fn on_info(&self, req: &rsipstack::sip::Request, handle: TransactionHandle, call: &mpsc::Sender<SignalEvent>) {
        match info::parse(req.header_value("Content-Type").as_deref(), &req.body) {
            info::Info::Digit(d) => {
                tracing::debug!(call_id = %self.call_id, digit = %d.digit, "DTMF by SIP INFO");
                let _ = handle.reply(StatusCode::OK).await;
                let event = SignalEvent::Dtmf { digit: d.digit, duration_ms: d.duration_ms };
                if call.send(event).await.is_err() {
                    tracing::warn!(call_id = %self.call_id, "INFO digit dropped: the call has ended");
                }
            }
            info::Info::Nothing => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            info::Info::Unsupported => {
                let accept = vec![Header::Other("Accept".into(), info::ACCEPT.into())];
                let _ = handle.respond(StatusCode::UnsupportedMediaType, Some(accept), None).await;
            }
        }
    }

    /// Answers in-dialog requests the call does not need to know about.
    async fn answer_mid_dialog(&self, state: DialogState) {
        match state {
            DialogState::Options(_, _, h) => {
                let _ = h.respond(StatusCode::OK, Some(vec![Header::Other("Allow".into(), ALLOW.into())]), None).await;
            }
            DialogState::Updated(_, _, h) | DialogState::Info(_, _, h) | DialogState::Message(_, _, h) | DialogState::Notify(_, _, h) | DialogState::Publish(_, _, h) => {
                // UPDATE without SDP support, INFO before the call is up (nothing to press
                // keys at yet), MESSAGE, NOTIFY.
                let _ = h.reply(StatusCode::OK).await;
            }
            DialogState::Refer(_, _, h) => {
                let _ = h.reply(StatusCode::Forbidden).await;
            }
            _ => {}
        }
    }
}

/// The status code of a `message/sipfrag` body's status line ("SIP/2.0 200 OK").
fn sipfrag_status(body: &str) -> Option<u16> {
    let line = body.lines().next()?.trim();
    let mut parts = line.split_whitespace();
    if parts.next()? != "SIP/2.0" {
        return None;
    }
    parts.next()?.parse().ok()
}

fn media_params(n: &Negotiated) -> MediaParams {
    MediaParams {
        codec: n.codec,
        pt: n.pt,
        dtmf_pt: n.dtmf_pt,
        remote: n.remote,
        send: matches!(n.direction, Direction::SendRecv | Direction::SendOnly),
        receive: matches!(n.direction, Direction::SendRecv | Direction::RecvOnly),
    }
}

/// The address a request came from, as the transport saw it (not what its Via claims).
fn source_ip(tx: &Transaction) -> Option<IpAddr> {
    let addr = tx.connection.as_ref()?.get_remote_addr()?;
    addr.get_socketaddr().ok().map(|a| a.ip())
}

/// A Warning header (RFC 3261 §20.43) saying why a request was refused.
fn warning(why: impl std::fmt::Display) -> Header {
    Header::Other("Warning".into(), format!("399 frontline \"{why}\""))
}

/// 405 with what we take: a method outside a call we do not serve (REGISTER when no agents
/// may register).
async fn reply_not_allowed(tx: &mut Transaction) {
    reply(tx, StatusCode::MethodNotAllowed, vec![Header::Other("Allow".into(), ALLOW.into())]).await;
}

async fn reply(tx: &mut Transaction, status: StatusCode, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(status, headers, None).await {
        tracing::debug!(error = %e, "could not send reply");
    }
}

/// Where a call's RTP socket binds for media at `remote`: the SIP listen address, except that a
/// gateway listening on every IPv4 address (0.0.0.0) takes IPv6 media on every address ([::]),
/// as a dual-stack SBC or PBX may offer it over IPv4 signaling. None when the two cannot meet:
/// IPv6 media for a gateway bound to one IPv4 address.
fn media_bind_ip(listen: IpAddr, remote: IpAddr) -> Option<IpAddr> {
    match (listen, remote) {
        (IpAddr::V4(_), IpAddr::V6(r)) if r.is_unspecified() => Some(listen),
        (IpAddr::V4(l), IpAddr::V6(_)) if l.is_unspecified() => Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        (IpAddr::V4(_), IpAddr::V6(_)) => None,
        _ => Some(listen),
    }
}

/// The local address the kernel would use to reach `remote`: what goes into SDP and Contact
/// when no public address is configured. No packet is sent.
pub fn local_ip_toward(remote: IpAddr) -> IpAddr {
    let bind: SocketAddr = if remote.is_ipv4() { "0.0.0.0:0".parse().expect("literal") } else { "[::]:0".parse().expect("literal") };
    std::net::UdpSocket::bind(bind)
        .and_then(|s| {
            s.connect(SocketAddr::new(remote, 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(remote)
}

fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::{customer_id, is_customer_id, media_bind_ip, sipfrag_status};

    #[test]
    fn ipv6_media_binds_on_every_address_unless_the_gateway_is_bound_to_one_ipv4_address() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(media_bind_ip(ip("0.0.0.0"), ip("2001:db8::7")), Some(ip("::")));
        assert_eq!(media_bind_ip(ip("0.0.0.0"), ip("192.0.2.7")), Some(ip("0.0.0.0")));
        assert_eq!(media_bind_ip(ip("192.0.2.1"), ip("2001:db8::7")), None);
        assert_eq!(media_bind_ip(ip("192.0.2.1"), ip("::")), Some(ip("192.0.2.1")), "on hold: no address to reach");
        assert_eq!(media_bind_ip(ip("::"), ip("2001:db8::7")), Some(ip("::")));
    }

    #[test]
    fn the_crm_id_is_read_from_the_configured_header_in_any_case() {
        let invite = "INVITE sip:ivr@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1\r\nFrom: <sip:1000@10.0.0.2>;tag=a\r\n\
                      To: <sip:ivr@10.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nx-customer-id:  CRM-4711 \r\nContent-Length: 0\r\n\r\n";
        let request = rsipstack::sip::Request::try_from(invite).expect("a valid INVITE");
        assert_eq!(customer_id(&request, "X-Customer-Id").as_deref(), Some("CRM-4711"));
        assert_eq!(customer_id(&request, ""), None, "off unless configured");
        assert_eq!(customer_id(&request, "X-Account"), None);
        assert!(is_customer_id("CRM-4711"));
        for bad in ["", "two words", &"x".repeat(65), "客户"] {
            assert!(!is_customer_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn transfer_progress_is_read_from_the_sipfrag() {
        assert_eq!(sipfrag_status("SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status("SIP/2.0 180 Ringing"), Some(180));
        assert_eq!(sipfrag_status("SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"), Some(486));
        assert_eq!(sipfrag_status("garbage"), None);
        assert_eq!(sipfrag_status(""), None);
    }
}
