//! The gateway side of the `Dialog` gRPC contract: a client stream per call.
//!
//! [`DialogClient`] holds one HTTP/2 connection (a tonic `Channel`) shared by every call;
//! [`DialogClient::open`] starts a `Converse` stream for one call. Events go out through a
//! bounded channel, so a brain that stops reading pushes back on the call instead of letting a
//! queue grow without limit.
//!
//! Errors come in two kinds the call handles differently (see [`DialogError::is_brain_down`]):
//! the brain is unreachable or the stream broke (apologize and hand over or hang up), or the brain
//! broke the contract (a bug to log; the call ends the same way but the cause is not the network).

use crate::proto::dialog::{
    caller_event, dialog_client::DialogClient as GrpcClient, BotAction, CallStart, CallerEvent, SuggestRequest,
};
/// One suggested answer for the human agent: `text`, the `intent` it answers, and a 0..1 `score`.
pub use crate::proto::dialog::Suggestion;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

/// Caller events buffered per call before `send` waits for the brain to read.
const EVENTS_BUFFER: usize = 32;

/// How long the agent console waits for suggestions: a panel that lags the conversation by
/// more than a couple of seconds is noise, so a slow brain is reported rather than waited on.
pub const SUGGEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DialogError {
    /// The configured URL is not usable at all (a configuration mistake, not an outage).
    #[error("invalid brain URL {url}: {reason} (set --brain to e.g. http://127.0.0.1:50051)")]
    InvalidUrl { url: String, reason: String },
    /// Nothing answered at the URL, or it answered too slowly.
    #[error("cannot reach the brain at {url}: {detail} (is it running? set --brain)")]
    Unreachable { url: String, detail: String },
    /// The stream was open and is now gone: network failure, brain restart, deadline.
    #[error("the brain stream broke: {0}")]
    StreamBroken(String),
    /// The brain answered, but not as the contract says (rejected the call, sent an empty action,
    /// does not implement the service).
    #[error("the brain broke the dialog contract: {0}")]
    Protocol(String),
    /// The brain does not implement an optional rpc (an external brain written before
    /// `Suggest` existed): the feature is off for this brain, the calls are unaffected.
    #[error("the brain at {url} does not support {rpc}")]
    Unsupported { url: String, rpc: &'static str },
    /// The brain refused the request as malformed (e.g. too long a transcript).
    #[error("the brain rejected the request: {0}")]
    Rejected(String),
}

impl DialogError {
    /// True when the brain is unreachable or the stream broke: the call should apologize and
    /// hang up (or hand over). False for configuration and contract errors.
    pub fn is_brain_down(&self) -> bool {
        matches!(self, DialogError::Unreachable { .. } | DialogError::StreamBroken(_))
    }

    /// Classifies a gRPC status: transport-level codes mean the brain is down or gone, the rest
    /// mean it answered something the gateway cannot use.
    fn from_status(status: Status) -> Self {
        match status.code() {
            Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Aborted | Code::Unknown => {
                DialogError::StreamBroken(format!("{:?}: {}", status.code(), status.message()))
            }
            code => DialogError::Protocol(format!("{code:?}: {}", status.message())),
        }
    }
}

/// A connection to a brain. Cheap to clone: clones share the connection.
#[derive(Debug, Clone)]
pub struct DialogClient {
    inner: GrpcClient<Channel>,
    url: String,
    timeout: Duration,
}

impl DialogClient {
    /// Connects to the brain at `url` (e.g. `http://127.0.0.1:50051`), waiting at most `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, DialogError> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| DialogError::InvalidUrl { url: url.to_string(), reason: e.to_string() })?
            .connect_timeout(timeout)
            // Replies are small frames on the caller's critical path: no Nagle delay.
            .tcp_nodelay(true)
            // Notice a dead brain between turns, not only when the next utterance is sent.
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
            Ok(Ok(ch)) => ch,
            Ok(Err(e)) => {
                return Err(DialogError::Unreachable { url: url.to_string(), detail: error_chain(&e) })
            }
            Err(_) => {
                return Err(DialogError::Unreachable {
                    url: url.to_string(),
                    detail: format!("no answer within {} ms", timeout.as_millis()),
                })
            }
        };
        Ok(Self { inner: GrpcClient::new(channel), url: url.to_string(), timeout })
    }

    /// The URL this client connects to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens the dialog stream of one call; `start` is sent first, as the contract requires.
    pub async fn open(&self, start: CallStart) -> Result<DialogStream, DialogError> {
        let (tx, rx) = mpsc::channel(EVENTS_BUFFER);
        // The channel is new and empty, so this cannot wait or fail.
        tx.try_send(CallerEvent { event: Some(caller_event::Event::Start(start)) })
            .map_err(|_| DialogError::StreamBroken("the event channel closed before the call started".into()))?;
        let mut grpc = self.inner.clone();
        let response = tokio::time::timeout(self.timeout, grpc.converse(ReceiverStream::new(rx)))
            .await
            .map_err(|_| DialogError::Unreachable {
                url: self.url.clone(),
                detail: format!("Converse did not answer within {} ms", self.timeout.as_millis()),
            })?
            .map_err(|status| match DialogError::from_status(status) {
                DialogError::StreamBroken(detail) => DialogError::Unreachable { url: self.url.clone(), detail },
                other => other,
            })?;
        Ok(DialogStream { sender: DialogSender { tx }, inbound: response.into_inner() })
    }
}

impl DialogClient {
    /// Asks the brain what a human agent could say next on `call_id` (see the `Suggest` rpc):
    /// `transcript` holds recent caller lines, latest last. Best suggestion first; an empty list
    /// means the brain has nothing to offer. Gives up after [`SUGGEST_TIMEOUT`].
    pub async fn suggest(
        &self,
        call_id: &str,
        language: &str,
        intent: &str,
        transcript: &[String],
    ) -> Result<Vec<Suggestion>, DialogError> {
        let mut request = tonic::Request::new(SuggestRequest {
            call_id: call_id.to_string(),
            language: language.to_string(),
            intent: intent.to_string(),
            transcript: transcript.to_vec(),
        });
        // Sent as grpc-timeout too, so the brain can stop working on an answer nobody awaits.
        request.set_timeout(SUGGEST_TIMEOUT);
        let mut grpc = self.inner.clone();
        let reply = tokio::time::timeout(SUGGEST_TIMEOUT, grpc.suggest(request))
            .await
            .map_err(|_| DialogError::Unreachable {
                url: self.url.clone(),
                detail: format!("Suggest did not answer within {} ms", SUGGEST_TIMEOUT.as_millis()),
            })?
            .map_err(|status| match status.code() {
                Code::Unimplemented => DialogError::Unsupported { url: self.url.clone(), rpc: "Suggest" },
                Code::InvalidArgument => DialogError::Rejected(status.message().to_string()),
                Code::DeadlineExceeded => DialogError::Unreachable {
                    url: self.url.clone(),
                    detail: format!("Suggest did not answer within {} ms", SUGGEST_TIMEOUT.as_millis()),
                },
                // A unary call has no stream to break: a transport failure means unreachable.
                _ => match DialogError::from_status(status) {
                    DialogError::StreamBroken(detail) => DialogError::Unreachable { url: self.url.clone(), detail },
                    other => other,
                },
            })?;
        Ok(reply.into_inner().suggestions)
    }
}

/// Renders an error with its causes: tonic's top-level "transport error" alone says nothing.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// A clonable handle that sends caller events on one call's stream, e.g. from the audio task
/// while the call task reads actions.
#[derive(Debug, Clone)]
pub struct DialogSender {
    tx: mpsc::Sender<CallerEvent>,
}

impl DialogSender {
    /// Sends one event, waiting while the bounded buffer is full. Fails once the brain's side of
    /// the stream is gone.
    pub async fn send(&self, ev: caller_event::Event) -> Result<(), DialogError> {
        self.tx
            .send(CallerEvent { event: Some(ev) })
            .await
            .map_err(|_| DialogError::StreamBroken("the brain closed the stream".into()))
    }

    /// Sends without waiting; fails when the buffer is full (the brain is not keeping up) or the
    /// stream is gone. For callers that must not block, e.g. per-frame code.
    pub fn try_send(&self, ev: caller_event::Event) -> Result<(), DialogError> {
        self.tx.try_send(CallerEvent { event: Some(ev) }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                DialogError::StreamBroken("the brain is not reading caller events (buffer full)".into())
            }
            mpsc::error::TrySendError::Closed(_) => DialogError::StreamBroken("the brain closed the stream".into()),
        })
    }

    /// True once the stream can no longer carry events.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// One call's dialog: send caller events, read bot actions.
#[derive(Debug)]
pub struct DialogStream {
    sender: DialogSender,
    inbound: Streaming<BotAction>,
}

impl DialogStream {
    /// Sends one caller event (see [`DialogSender::send`]).
    pub async fn send(&self, ev: caller_event::Event) -> Result<(), DialogError> {
        self.sender.send(ev).await
    }

    /// The next bot action; `None` when the brain closed the stream normally.
    pub async fn next_action(&mut self) -> Option<Result<BotAction, DialogError>> {
        match self.inbound.message().await {
            Ok(Some(BotAction { action: None })) => {
                Some(Err(DialogError::Protocol("the brain sent a BotAction with no action set".into())))
            }
            Ok(Some(a)) => Some(Ok(a)),
            Ok(None) => None,
            Err(status) => Some(Err(DialogError::from_status(status))),
        }
    }

    /// A clonable handle for sending from another task.
    pub fn sender(&self) -> DialogSender {
        self.sender.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brain::{serve_embedded, Playbook};
    use crate::proto::dialog::{bot_action::Action, CallEnd, Utterance};

    fn start(lang: &str) -> CallStart {
        CallStart { call_id: "c-1".into(), caller: "13800138000".into(), language: lang.into(), ..Default::default() }
    }

    async fn say_until_last(s: &mut DialogStream) -> String {
        let mut text = String::new();
        while let Some(a) = s.next_action().await {
            if let Some(Action::Say(say)) = a.unwrap().action {
                text.push_str(&say.text);
                text.push(' ');
                if say.last {
                    return text;
                }
            }
        }
        panic!("stream closed before the reply ended: {text}");
    }

    #[tokio::test]
    async fn unreachable_brain_gives_a_clear_error() {
        // Bind then drop a listener: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let e = DialogClient::connect(&url, Duration::from_millis(500)).await.unwrap_err();
        assert!(e.is_brain_down());
        let msg = e.to_string();
        assert!(msg.contains(&url) && msg.contains("is it running? set --brain"), "{msg}");
    }

    #[tokio::test]
    async fn bad_url_is_not_an_outage() {
        let e = DialogClient::connect("not a url", Duration::from_millis(200)).await.unwrap_err();
        assert!(!e.is_brain_down(), "{e}");
        assert!(matches!(e, DialogError::InvalidUrl { .. }));
    }

    #[tokio::test]
    async fn sender_from_another_task_and_clean_close() {
        let (addr, server) = serve_embedded(Playbook::embedded().unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = DialogClient::connect(&format!("http://{addr}"), Duration::from_secs(2)).await.unwrap();
        let mut s = client.clone().open(start("zh")).await.unwrap();
        assert!(say_until_last(&mut s).await.contains("您好"));
        let tx = s.sender();
        tokio::spawn(async move {
            tx.send(caller_event::Event::Utterance(Utterance {
                text: "我想查一下流量".into(),
                is_final: true,
                language: "zh".into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        });
        assert!(say_until_last(&mut s).await.contains("三点二个G"));
        s.send(caller_event::Event::End(CallEnd { reason: "caller-hangup".into() })).await.unwrap();
        // After `end` the brain closes its side: the stream ends cleanly, not with an error.
        assert!(s.next_action().await.is_none());
        server.abort();
    }

    #[tokio::test]
    async fn suggest_round_trip_in_both_languages() {
        let (addr, server) = serve_embedded(Playbook::embedded().unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = DialogClient::connect(&format!("http://{addr}"), Duration::from_secs(2)).await.unwrap();
        let lines = vec!["I was charged twenty yuan I never agreed to".to_string(), "and how much data is left?".to_string()];
        let s = client.suggest("c-1", "en", "dispute", &lines).await.unwrap();
        let names: Vec<&str> = s.iter().map(|x| x.intent.as_str()).collect();
        assert_eq!(names, ["data_left", "bill"]);
        assert!(s[0].text.contains("three point two gigabytes"), "{}", s[0].text);
        assert!(s[0].score > s[1].score);
        let s = client.suggest("c-2", "zh-CN", "bill", &["我的账单为什么扣这么多".to_string()]).await.unwrap();
        assert_eq!(s[0].intent, "bill");
        assert!(s[0].text.contains("一百五十六元"), "{}", s[0].text);
        // Nothing known yet: greeting-level help, still over the real gRPC hop.
        let s = client.suggest("c-3", "", "", &[]).await.unwrap();
        assert!(s[0].text.contains("How can I help"), "{}", s[0].text);
        // A malformed request is refused with the reason, and is not an outage.
        let too_many: Vec<String> = (0..51).map(|i| format!("line {i}")).collect();
        let e = client.suggest("c-4", "en", "", &too_many).await.unwrap_err();
        assert!(matches!(e, DialogError::Rejected(ref m) if m.contains("51 lines")), "{e}");
        assert!(!e.is_brain_down());
        server.abort();
    }

    #[tokio::test]
    async fn suggest_on_a_brain_without_it_is_unsupported() {
        // A gRPC server that implements nothing: what an external brain predating Suggest answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::default())
                .serve_with_incoming(incoming),
        );
        let url = format!("http://{addr}");
        let client = DialogClient::connect(&url, Duration::from_secs(2)).await.unwrap();
        let e = client.suggest("c-1", "en", "bill", &[]).await.unwrap_err();
        assert!(matches!(e, DialogError::Unsupported { rpc: "Suggest", .. }), "{e:?}");
        assert!(!e.is_brain_down());
        assert!(e.to_string().contains("does not support Suggest"), "{e}");
        server.abort();
    }

    #[tokio::test]
    async fn stream_breaks_when_the_connection_drops() {
        let (addr, server) = serve_embedded(Playbook::embedded().unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        // A TCP relay between gateway and brain that we can cut, as a network failure would.
        let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_addr = relay.local_addr().unwrap();
        let pipe = tokio::spawn(async move {
            let (mut down, _) = relay.accept().await.unwrap();
            let mut up = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
        });
        let client = DialogClient::connect(&format!("http://{relay_addr}"), Duration::from_secs(2)).await.unwrap();
        let mut s = client.open(start("en")).await.unwrap();
        assert!(say_until_last(&mut s).await.contains("Hello"));
        pipe.abort();
        let _ = pipe.await;
        let next = tokio::time::timeout(Duration::from_secs(5), s.next_action()).await.expect("the call must not hang");
        match next {
            Some(Err(e)) => assert!(e.is_brain_down(), "{e}"),
            other => panic!("expected a broken stream, got {other:?}"),
        }
        // Sending on the dead stream fails too (possibly after the transport notices).
        let mut failed = false;
        for _ in 0..50 {
            if s.send(caller_event::Event::Silence(Default::default())).await.is_err() {
                failed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(failed, "send must fail once the brain is gone");
        server.abort();
    }
}
