//! Calls out to human agents: the second leg of a warm handoff, with the gateway as a B2BUA.
//!
//! The call task asks for an agent through [`AgentDialer`]; this places the INVITE with the
//! handoff context in its headers, waits for the answer within the ring timeout (dropping the
//! INVITE future CANCELs it), and hands back a running media driver for the agent's RTP.

use super::{media_params, uri_host, DialogNews, Edge, CODECS};
use crate::call::events::call_ended;
use crate::call::{AgentDial, AgentDialer, AgentLeg, DialOutcome};
use crate::edge::sdp;
use crate::handoff::AgentTarget;
use crate::media::session;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{Header, StatusCodeKind, Uri};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// RFC 4733 payload type we offer to agents.
const DTMF_PT: u8 = 101;

pub(super) struct SipDialer {
    pub(super) edge: Arc<Edge>,
}

impl AgentDialer for SipDialer {
    fn dial(&self, request: AgentDial) -> Pin<Box<dyn Future<Output = DialOutcome> + Send + '_>> {
        Box::pin(self.place(request))
    }
}

fn failed(status: Option<u16>, reason: impl Into<String>) -> DialOutcome {
    DialOutcome::Failed { status, reason: reason.into() }
}

impl SipDialer {
    async fn place(&self, request: AgentDial) -> DialOutcome {
        let edge = &self.edge;
        let target = match AgentTarget::of(&request.target) {
            AgentTarget::Registered(name) => match edge.registered_contact(name).await {
                Some(contact) => contact,
                None => return failed(None, format!("agent {name} has no phone registered")),
            },
            _ => request.target.clone(),
        };
        let target = match Uri::try_from(target.as_str()) {
            Ok(u) => u,
            Err(e) => return failed(None, format!("agent URI {target:?}: {e}")),
        };
        let agent_ip: Option<IpAddr> = target.host_with_port.host.to_string().parse().ok();
        let local_ip = edge
            .sip
            .public_ip
            .or_else(|| agent_ip.map(super::local_ip_toward))
            .unwrap_or_else(|| super::local_ip_toward("127.0.0.1".parse().expect("literal")));
        let socket = match edge.ports.bind(edge.sip.listen.ip(), edge.rtp.port_min, edge.rtp.port_max).await {
            Ok(s) => s,
            Err(e) => return failed(None, format!("no RTP port for the agent leg: {e}")),
        };
        let local_port = match socket.local_addr() {
            Ok(a) => a.port(),
            Err(e) => return failed(None, e.to_string()),
        };
        let offer = sdp::offer(local_ip, local_port, rand::random::<u32>() as u64, &CODECS, DTMF_PT);
        let me = format!("sip:frontline@{}:{}", uri_host(local_ip), edge.sip_port);
        let Ok(contact) = Uri::try_from(me.as_str()) else { return failed(None, format!("cannot build {me}")) };
        let option = InviteOption {
            caller: contact.clone(),
            callee: target,
            contact,
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            headers: Some(request.headers.iter().map(|(k, v)| Header::Other(k.clone(), v.clone())).collect()),
            ..Default::default()
        };
        tracing::info!(call_id = %request.call_id, agent = %request.target, "ringing agent");
        let caller_left = call_ended(edge.services.events.subscribe(), request.call_id.clone());
        let invite = edge.dialogs.do_invite(option, edge.state_tx.clone());
        let rung = tokio::select! {
            r = tokio::time::timeout(request.ring_timeout, invite) => r,
            // Dropping the INVITE CANCELs it: the agent's phone stops ringing for a caller who
            // is gone.
            () = caller_left => {
                tracing::info!(call_id = %request.call_id, agent = %request.target, "the caller left while the agent rang: cancelled");
                return failed(None, "the caller left while the agent's phone rang");
            }
        };
        let (dialog, response) = match rung {
            Err(_) => return failed(None, format!("no answer within {} s", request.ring_timeout.as_secs())),
            Ok(Err(e)) => return failed(None, format!("agent unreachable: {e}")),
            Ok(Ok(r)) => r,
        };
        let Some(response) = response else { return failed(None, "no final response from the agent") };
        let status = response.status_code.code();
        if response.status_code.kind() != StatusCodeKind::Successful {
            return failed(Some(status), format!("agent answered {status}"));
        }
        let body = String::from_utf8_lossy(&response.body).to_string();
        let negotiated = match sdp::parse(&body).and_then(|a| sdp::negotiate(&a, &CODECS)) {
            Ok(n) => n,
            Err(e) => {
                let _ = dialog.bye().await;
                return failed(Some(status), format!("agent's SDP answer unusable: {e}"));
            }
        };
        let codec = negotiated.codec.name().to_string();
        let rtp_timeout = edge.rtp.timeout();
        let (media, media_events) = match session::start(socket, media_params(&negotiated), rtp_timeout) {
            Ok(m) => m,
            Err(e) => {
                let _ = dialog.bye().await;
                return failed(Some(status), format!("cannot start the agent's media: {e}"));
            }
        };

        // The agent leg's own signaling task: BYE on request, or report the agent's BYE.
        let dialog_id = dialog.id();
        let (news_tx, mut news) = mpsc::channel(8);
        edge.routes.lock().unwrap_or_else(PoisonError::into_inner).insert(dialog_id.to_string(), news_tx);
        let (hangup_tx, mut hangup_rx) = mpsc::channel::<()>(1);
        let (ended_tx, ended_rx) = oneshot::channel();
        let edge_for_leg = edge.clone();
        let call_id = request.call_id.clone();
        tokio::spawn(async move {
            let reason = loop {
                tokio::select! {
                    cmd = hangup_rx.recv() => {
                        let _ = cmd;
                        if let Err(e) = dialog.bye().await {
                            tracing::debug!(%call_id, error = %e, "BYE to the agent failed");
                        }
                        break "gateway-hangup".to_string();
                    }
                    n = news.recv() => match n {
                        Some(DialogNews::State(DialogState::Terminated(_, reason))) => {
                            break match reason {
                                TerminatedReason::UasBye | TerminatedReason::UacBye => "agent-hangup".to_string(),
                                other => format!("agent-{other:?}").to_lowercase(),
                            };
                        }
                        Some(DialogNews::State(DialogState::Options(_, _, h))) => {
                            let _ = h.reply(rsipstack::sip::StatusCode::OK).await;
                        }
                        Some(DialogNews::State(DialogState::Updated(_, _, h))) => {
                            // Media changes from the agent side are not renegotiated yet:
                            // keep the session as it is (RFC 3261 §14.2).
                            let _ = h.reply(rsipstack::sip::StatusCode::NotAcceptableHere).await;
                        }
                        Some(_) => {}
                        None => break "signaling-gone".to_string(),
                    },
                }
            };
            edge_for_leg.routes.lock().unwrap_or_else(PoisonError::into_inner).remove(&dialog_id.to_string());
            edge_for_leg.dialogs.remove_dialog(&dialog_id);
            let _ = ended_tx.send(reason);
        });
        DialOutcome::Answered(AgentLeg { media, media_events, hangup: hangup_tx, ended: ended_rx, codec })
    }
}
