//! Where [`screen`](super::screen) plugs into rsipstack's transports.
//!
//! UDP: rsipstack reads datagrams through a socket trait, so the gateway hands it a socket
//! that screens each datagram first and answers the refused ones itself — the only place a
//! message rsipstack's parser would drop can still be answered. TCP: rsipstack frames and
//! parses the stream itself, so the screen runs on the parsed message (written back out) in
//! the endpoint's transport-event hook, and answers on the same connection.

use super::screen::{self, Capabilities, Framing, Verdict};
use rsipstack::sip::SipMessage;
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::{SipConnection, TransportEvent};
use std::net::SocketAddr;

/// Whether rsipstack will take a message: its parser, its Via handling and its transaction
/// key (which needs a From tag) must all accept it, or the message vanishes.
pub(super) fn stack_takes(bytes: &[u8], from: SocketAddr, transport: rsipstack::sip::Transport) -> Result<(), String> {
    let msg = SipMessage::try_from(bytes).map_err(|e| e.to_string())?;
    let msg = SipConnection::update_msg_received(msg, from, transport).map_err(|e| e.to_string())?;
    if let SipMessage::Request(req) = &msg {
        TransactionKey::from_request(req, TransactionRole::Server).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The UDP socket rsipstack reads from: screened datagrams in, everything else passes.
pub struct ScreenedUdp {
    socket: tokio::net::UdpSocket,
    caps: &'static Capabilities,
}

impl ScreenedUdp {
    pub fn new(socket: tokio::net::UdpSocket, caps: &'static Capabilities) -> Self {
        ScreenedUdp { socket, caps }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for ScreenedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            let verdict = screen::screen(&buf[..len], Framing::Datagram, self.caps, |b| {
                stack_takes(b, from, rsipstack::sip::Transport::Udp)
            });
            match verdict {
                Verdict::Pass => return Ok((len, from)),
                Verdict::Rewrite(bytes) if bytes.len() <= buf.len() => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    return Ok((bytes.len(), from));
                }
                Verdict::Rewrite(_) => tracing::debug!(%from, "normalized request too large for the buffer; dropped"),
                Verdict::Answer(answer) => {
                    tracing::info!(%from, answer = %screen::describe_answer(&answer), "refused a malformed or unsupported request");
                    if let Err(e) = self.socket.send_to(&answer, from).await {
                        tracing::debug!(%from, error = %e, "could not send the refusal");
                    }
                }
                Verdict::Drop => tracing::debug!(%from, len, "dropped a datagram that is not a SIP request we can answer"),
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

/// The same screen for requests that came over TCP.
pub struct StreamScreen {
    pub caps: &'static Capabilities,
}

#[async_trait::async_trait]
impl TransportEventInspector for StreamScreen {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        let TransportEvent::Incoming(msg, connection, from) = event else {
            return Some(event);
        };
        let transport = match &connection {
            SipConnection::Udp(_) => return Some(TransportEvent::Incoming(msg, connection, from)), // screened already
            SipConnection::Tcp(_) => rsipstack::sip::Transport::Tcp,
            _ => rsipstack::sip::Transport::Tls,
        };
        let Ok(addr) = from.get_socketaddr() else {
            return Some(TransportEvent::Incoming(msg, connection, from));
        };
        let bytes = msg.to_bytes();
        match screen::screen(&bytes, Framing::Stream, self.caps, |b| stack_takes(b, addr, transport)) {
            Verdict::Pass => Some(TransportEvent::Incoming(msg, connection, from)),
            Verdict::Rewrite(bytes) => match SipMessage::try_from(bytes.as_slice()) {
                Ok(m) => Some(TransportEvent::Incoming(m, connection, from)),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "normalized request does not parse; dropped");
                    None
                }
            },
            Verdict::Answer(answer) => {
                tracing::info!(%addr, answer = %screen::describe_answer(&answer), "refused a malformed or unsupported request");
                match SipMessage::try_from(answer.as_slice()) {
                    Ok(resp) => {
                        if let Err(e) = connection.send(resp, None).await {
                            tracing::debug!(%addr, error = %e, "could not send the refusal");
                        }
                    }
                    Err(e) => tracing::debug!(%addr, error = %e, "refusal does not parse"),
                }
                None
            }
            Verdict::Drop => None,
        }
    }
}
