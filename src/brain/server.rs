//! The gRPC side of the playbook brain: one [`Conversation`] per `Converse` stream.
//!
//! Each stream gets its own task that owns its conversation (no shared mutable state), reads
//! caller events, and writes bot actions into a bounded channel: a gateway that stops reading
//! slows its own stream down instead of growing memory here.

use super::conversation::Conversation;
use super::playbook::Playbook;
use crate::proto::dialog::{
    caller_event::Event,
    dialog_server::{Dialog, DialogServer},
    BotAction, CallStart, CallerEvent, SuggestReply, SuggestRequest,
};
use super::suggest::suggest;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// Actions buffered per stream before the brain waits for the gateway to read.
const ACTIONS_BUFFER: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("the embedded brain cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the embedded brain's gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// The loopback address the embedded brain binds by default: any free port, never reachable from
/// another machine (the gateway in the same process is its only client).
pub fn default_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// The `Dialog` service answering from a playbook.
#[derive(Debug, Clone)]
pub struct PlaybookBrain {
    playbook: Arc<Playbook>,
}

impl PlaybookBrain {
    pub fn new(playbook: Playbook) -> Self {
        Self { playbook: Arc::new(playbook) }
    }

    pub fn from_arc(playbook: Arc<Playbook>) -> Self {
        Self { playbook }
    }

    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }

    /// The tonic service, ready for `Server::builder().add_service(..)`.
    pub fn into_service(self) -> DialogServer<Self> {
        DialogServer::new(self)
    }
}

/// The stream's opening event, which must be `start` (anything else is refused with
/// INVALID_ARGUMENT); `None` when the gateway gave up before saying anything. Shared by every
/// brain serving the contract.
pub(crate) async fn read_start(inbound: &mut Streaming<CallerEvent>, tx: &mpsc::Sender<Result<BotAction, Status>>) -> Option<CallStart> {
    match inbound.message().await {
        Ok(Some(CallerEvent { event: Some(Event::Start(s)) })) => Some(s),
        Ok(Some(_)) => {
            let _ = tx.send(Err(Status::invalid_argument("the first CallerEvent of a Converse stream must be `start`"))).await;
            None
        }
        Ok(None) | Err(_) => None,
    }
}

/// The next caller event; `None` once the gateway closed the stream or it broke.
pub(crate) async fn next_event(inbound: &mut Streaming<CallerEvent>, call_id: &str) -> Option<CallerEvent> {
    match inbound.message().await {
        Ok(ev) => ev,
        Err(status) => {
            tracing::debug!(call_id, %status, "brain: caller stream broke");
            None
        }
    }
}

/// Drives one stream: the first event must be `start`; then every event is handed to the
/// conversation until the gateway closes the stream or ends the call.
async fn drive(
    playbook: Arc<Playbook>,
    mut inbound: Streaming<CallerEvent>,
    tx: mpsc::Sender<Result<BotAction, Status>>,
) {
    let Some(start) = read_start(&mut inbound, &tx).await else { return };
    tracing::debug!(call_id = %start.call_id, language = %start.language, "brain: call started");
    let mut conv = Conversation::new(&playbook, &start);
    for a in conv.greeting() {
        if tx.send(Ok(a)).await.is_err() {
            return;
        }
    }
    while let Some(ev) = next_event(&mut inbound, &start.call_id).await {
        let ended = matches!(ev.event, Some(Event::End(_)));
        for a in conv.on_event(&ev) {
            if tx.send(Ok(a)).await.is_err() {
                return;
            }
        }
        // After a hang-up the stream stays open so the gateway can still send `end`; after
        // `end` there is nothing left to say, so close our side.
        if ended {
            break;
        }
    }
    tracing::debug!(call_id = %start.call_id, "brain: stream closed");
}

#[tonic::async_trait]
impl Dialog for PlaybookBrain {
    type ConverseStream = ReceiverStream<Result<BotAction, Status>>;

    async fn converse(
        &self,
        request: Request<Streaming<CallerEvent>>,
    ) -> Result<Response<Self::ConverseStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(ACTIONS_BUFFER);
        tokio::spawn(drive(self.playbook.clone(), inbound, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn suggest(&self, request: Request<SuggestRequest>) -> Result<Response<SuggestReply>, Status> {
        let req = request.into_inner();
        let lang = super::playbook::primary_language(&req.language);
        if !req.language.trim().is_empty() && !self.playbook.supports(&lang) {
            tracing::info!(
                call_id = %req.call_id, language = %req.language, default = %self.playbook.default_language(),
                "brain: suggestions asked in an unsupported language; answering in the default"
            );
        }
        // Pure CPU over a few dozen short lines: cheap enough to run on the runtime thread.
        match suggest(&self.playbook, &req) {
            Ok(suggestions) => {
                tracing::debug!(call_id = %req.call_id, count = suggestions.len(), "brain: suggestions");
                Ok(Response::new(SuggestReply { suggestions }))
            }
            Err(e) => Err(Status::invalid_argument(e.to_string())),
        }
    }
}

/// Starts the playbook brain on `addr` (port 0 picks a free one) and returns the address it
/// actually bound together with the server task. The listener is bound before this returns, so
/// a client may connect immediately.
pub async fn serve_embedded(
    playbook: Playbook,
    addr: SocketAddr,
) -> Result<(SocketAddr, JoinHandle<Result<(), BrainError>>), BrainError> {
    serve_embedded_with_shutdown(playbook, addr, std::future::pending()).await
}

/// Like [`serve_embedded`], stopping gracefully (open streams finish) when `shutdown` resolves.
pub async fn serve_embedded_with_shutdown(
    playbook: Playbook,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<Result<(), BrainError>>), BrainError> {
    serve_dialog(PlaybookBrain::new(playbook).into_service(), addr, shutdown, "embedded playbook brain").await
}

/// Serves any `Dialog` implementation (the playbook brain, the LLM brain) on `addr`, stopping
/// gracefully when `shutdown` resolves. The listener is bound before this returns, so a client
/// may connect immediately; `what` names the brain in the log line.
pub async fn serve_dialog<S: Dialog>(
    service: DialogServer<S>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
    what: &'static str,
) -> Result<(SocketAddr, JoinHandle<Result<(), BrainError>>), BrainError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| BrainError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| BrainError::Bind { addr, source })?;
    // Bot replies are small frames the caller is waiting for: Nagle would hold them back.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tracing::info!(%bound, "{what} listening");
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(BrainError::Serve)
    });
    Ok((bound, handle))
}
