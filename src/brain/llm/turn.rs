//! One call on the LLM brain: reads caller events, answers each turn (see the module docs of
//! [`super`] for the steps), and writes bot actions. The I/O here is the LLM HTTP stream and
//! the action channel; the decisions are made by the sans-IO parts.

use super::chunker::SpeechChunker;
use super::client::LlmError;
use super::guard::{ungrounded_figure, LeakGuard};
use super::memory::Memory;
use super::prompt;
use super::service::Shared;
use super::stream::{CompletionAccumulator, SseData};
use super::tools::{self, ToolCall};
use crate::brain::conversation::{Conversation, FALLBACK_INTENT, REASON_NO_UNDERSTANDING};
use crate::brain::playbook::Text;
use crate::proto::dialog::{
    bot_action::Action, caller_event::Event, Annotate, BotAction, CallerEvent, CollectDigits, Escalate, Hangup, Priority,
    Say, Utterance,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Duration};
use tonic::Status;

/// Reason code of the handoff after an LLM failure.
pub const REASON_BRAIN_ERROR: &str = "brain-error";
/// Reason code of a handoff the model asked for with the escalate tool.
pub const REASON_LLM: &str = "brain-llm";
/// Intent reported for a turn the playbook did not recognize and the LLM answered.
pub const OPEN_INTENT: &str = "open-question";

type Tx = mpsc::Sender<Result<BotAction, Status>>;

/// The channel to the gateway is gone: stop working on this call.
pub(super) struct Closed;

/// What one LLM round produced.
#[derive(Default)]
struct Round {
    spoken: Vec<String>,
    tool_calls: Vec<(String, String)>,
    /// The deadline passed before the stream ended.
    timed_out: bool,
}

pub(super) struct Call<'p> {
    shared: Arc<Shared>,
    conv: Conversation<'p>,
    call_id: String,
    memory: Memory,
    tx: Tx,
}

/// The playbook gave up on the turn ("not understood" too often): its words are replaced.
fn pb_text_fixed(actions: &[BotAction]) -> bool {
    actions.iter().any(|a| matches!(&a.action, Some(Action::Escalate(e)) if e.reason == REASON_NO_UNDERSTANDING))
}

/// Appends a Say's text to what the bot says this turn (no space between Chinese sentences).
fn append_spoken(out: &mut String, text: &str) {
    if !out.is_empty() && !crate::brain::text::has_cjk(text) {
        out.push(' ');
    }
    out.push_str(text);
}

/// The text of the Says among `actions`, as one reply.
fn spoken_text(actions: &[BotAction]) -> String {
    let mut out = String::new();
    for a in actions {
        if let Some(Action::Say(s)) = &a.action {
            append_spoken(&mut out, &s.text);
        }
    }
    out
}

fn act(a: Action) -> BotAction {
    BotAction { action: Some(a) }
}

impl<'p> Call<'p> {
    pub(super) fn new(shared: Arc<Shared>, conv: Conversation<'p>, call_id: String, tx: Tx) -> Self {
        let memory = Memory::new(shared.cfg.memory_turns);
        Call { shared, conv, call_id, memory, tx }
    }

    /// What the caller typed or said, as the LLM may see it: masked when `redact` is on.
    fn for_llm(&self, text: &str) -> String {
        if self.shared.cfg.redact {
            crate::redact::redact(text.trim(), &self.shared.redaction).into_owned()
        } else {
            text.trim().to_string()
        }
    }

    async fn send(&self, a: BotAction) -> Result<(), Closed> {
        self.tx.send(Ok(a)).await.map_err(|_| Closed)
    }

    async fn say(&self, text: &str, last: bool) -> Result<(), Closed> {
        let language = self.conv.language().to_string();
        self.send(act(Action::Say(Say { text: text.to_string(), language, interruptible: true, last, preview: false }))).await
    }

    pub(super) async fn greet(&mut self) -> Result<(), Closed> {
        for a in self.conv.greeting() {
            self.send(a).await?;
        }
        Ok(())
    }

    /// Handles one caller event; `Err` when the gateway is gone.
    pub(super) async fn on_event(&mut self, ev: &CallerEvent) -> Result<(), Closed> {
        match &ev.event {
            Some(Event::Utterance(u)) if u.is_final && !u.text.trim().is_empty() && !self.conv.is_finished() => {
                self.on_utterance(ev, u).await
            }
            // Keypad, silence, barge-in and the end: the playbook's rules are exactly right
            // (menus, reprompts, the silence goodbye) and need no model; but the model must
            // know what happened, so memory records each as the caller experienced it.
            Some(event) => {
                let finished = self.conv.is_finished();
                let actions = self.conv.on_event(ev);
                let said = spoken_text(&actions);
                match event {
                    Event::Dtmf(d) if !finished && !d.digits.trim().is_empty() => {
                        // Keys can be an account or card number: the same masking as words.
                        let digits = self.for_llm(&d.digits);
                        self.memory.push_keypad(&digits, &said);
                    }
                    Event::Silence(s) if !finished && !actions.is_empty() => self.memory.push_silence(s.duration_ms, &said),
                    Event::BargeIn(b) => self.memory.cut_off(&b.heard_text),
                    _ => {}
                }
                for a in actions {
                    self.send(a).await?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn on_utterance(&mut self, ev: &CallerEvent, u: &Utterance) -> Result<(), Closed> {
        let started = Instant::now();
        let cfg = &self.shared.cfg;
        // 1. The playbook reads the turn first.
        let pb_actions = self.conv.on_event(ev);
        let lang = self.conv.language().to_string();
        let mut annotate: Option<Annotate> = None;
        let mut pb_text = String::new();
        let mut pb_escalate: Option<Escalate> = None;
        let mut pb_hangup: Option<Hangup> = None;
        for a in &pb_actions {
            match &a.action {
                Some(Action::Say(_)) if pb_text_fixed(&pb_actions) => {}
                Some(Action::Annotate(x)) if annotate.is_none() => annotate = Some(x.clone()),
                Some(Action::Say(s)) => append_spoken(&mut pb_text, &s.text),
                // "Not understood three times" is the playbook's own limit: here the LLM answers
                // what the keywords missed, so that is no reason to hand over.
                Some(Action::Escalate(e)) if e.reason == REASON_NO_UNDERSTANDING => {
                    pb_text = self.shared.playbook.prompts().fallback.get(&lang).to_string();
                }
                Some(Action::Escalate(e)) => pb_escalate = Some(e.clone()),
                Some(Action::Hangup(h)) => pb_hangup = Some(h.clone()),
                _ => {}
            }
        }
        let intent = annotate.as_ref().map(|a| a.intent.clone()).unwrap_or_default();
        if let Some(mut a) = annotate {
            // The LLM answers what the keywords did not recognize: not a misunderstanding.
            if a.intent == FALLBACK_INTENT {
                a.intent = OPEN_INTENT.to_string();
            }
            self.send(act(Action::Annotate(a))).await?;
        }
        let caller = self.for_llm(&u.text);
        if u.continues {
            self.memory.continued(&caller);
        }

        // 2a. Routed goodbye: the playbook's goodbye and the hang_up tool.
        if let Some(h) = pb_hangup {
            tracing::info!(call_id = %self.call_id, tool = %tools::HANG_UP, source = "router", "llm brain: tool call executed");
            self.say(&pb_text, true).await?;
            self.send(act(Action::Hangup(h))).await?;
            self.memory.push(&caller, &pb_text);
            return Ok(());
        }
        // 2b. Routed escalation: the LLM writes the agent's summary.
        if let Some(e) = pb_escalate {
            self.say(&pb_text, true).await?;
            self.memory.push(&caller, &pb_text);
            let summary = self.llm_summary(&e.reason).await;
            tracing::info!(call_id = %self.call_id, tool = %tools::ESCALATE, source = "router", reason = %e.reason, "llm brain: tool call executed");
            self.send(act(Action::Escalate(Escalate { summary, ..e }))).await?;
            return Ok(());
        }

        // 2c. Facts: routed lookups and retrieved FAQ entries.
        let mut facts = Vec::new();
        for (name, l) in &cfg.lookups {
            if !intent.is_empty() && l.intents.contains(&intent) {
                match self.shared.crm.lookup(name, &lang) {
                    Ok(f) => {
                        tracing::info!(call_id = %self.call_id, tool = %name, source = "router", result = %f, "llm brain: tool call executed");
                        facts.push(f);
                    }
                    Err(e) => tracing::warn!(call_id = %self.call_id, tool = %name, error = %e, "llm brain: lookup failed"),
                }
            }
        }
        for e in self.shared.faq.retrieve(&caller, cfg.faq_entries) {
            facts.push(e.text(&lang).to_string());
        }

        // 3-5. The LLM rounds, under one deadline for the whole turn.
        let deadline = started + Duration::from_millis(cfg.reply_deadline_ms);
        let filler_at = started + Duration::from_millis(cfg.filler_after_ms);
        let instructions = prompt::instructions(&lang);
        let mut guard = LeakGuard::new(&instructions);
        let mut spoken: Vec<String> = Vec::new();
        let mut filler_said = false;
        let mut offer_tools = cfg.model_tools;
        let mut outcome: Result<(), LlmError> = Ok(());
        let mut after: Option<BotAction> = None;
        for _round in 0..2 {
            let system = prompt::system_message(&instructions, &facts, self.conv.past_calls(), &self.memory);
            let mut body = json!({
                "model": cfg.model,
                "messages": prompt::messages(&system, &self.memory, &caller),
                "temperature": cfg.temperature,
                "seed": cfg.seed,
                "max_tokens": cfg.max_tokens,
            });
            if offer_tools {
                body["tools"] = tools::tool_specs(&cfg.lookups);
                body["tool_choice"] = Value::String("auto".into());
            }
            let facts_text = facts.join("\n");
            let round = self.round(body, &facts_text, &mut guard, &mut filler_said, filler_at, deadline, started).await?;
            let round = match round {
                Ok(r) => r,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            spoken.extend(round.spoken);
            if round.timed_out {
                tracing::warn!(call_id = %self.call_id, deadline_ms = cfg.reply_deadline_ms, "llm brain: reply deadline passed");
                break;
            }
            // Tool calls: at most one round more, for a lookup's answer.
            let mut again = false;
            for (name, args) in round.tool_calls {
                match tools::parse_tool_call(&name, &args, &cfg.lookups) {
                    Err(e) => tracing::warn!(call_id = %self.call_id, error = %e, "llm brain: malformed tool call ignored"),
                    Ok(ToolCall::Lookup { name }) => match self.shared.crm.lookup(&name, &lang) {
                        Ok(f) => {
                            tracing::info!(call_id = %self.call_id, tool = %name, source = "model", result = %f, "llm brain: tool call executed");
                            if !facts.contains(&f) {
                                facts.push(f);
                            }
                            again = spoken.is_empty();
                        }
                        Err(e) => tracing::warn!(call_id = %self.call_id, tool = %name, error = %e, "llm brain: lookup failed"),
                    },
                    Ok(ToolCall::Escalate { reason, summary }) if after.is_none() => {
                        tracing::info!(call_id = %self.call_id, tool = %tools::ESCALATE, source = "model", %reason, "llm brain: tool call executed");
                        let mut s = self.extractive_summary(REASON_LLM);
                        if !summary.is_empty() {
                            s = format!("{} {s}", crate::redact::redact(&summary, &self.shared.redaction));
                        }
                        if !reason.is_empty() {
                            s = format!("Model's reason: {reason}. {s}");
                        }
                        after = Some(act(Action::Escalate(Escalate { reason: REASON_LLM.into(), summary: s, priority: Priority::Normal as i32 })));
                        if spoken.is_empty() {
                            spoken.push(self.intent_answer("agent", &self.shared.playbook.prompts().after_handoff));
                            self.say(spoken.last().unwrap(), false).await?;
                        }
                    }
                    Ok(ToolCall::HangUp { reason }) if after.is_none() => {
                        tracing::info!(call_id = %self.call_id, tool = %tools::HANG_UP, source = "model", "llm brain: tool call executed");
                        after = Some(act(Action::Hangup(Hangup { reason: if reason.is_empty() { "bot-hangup".into() } else { reason } })));
                        if spoken.is_empty() {
                            spoken.push(self.intent_answer("goodbye", &self.shared.playbook.prompts().silence_goodbye));
                            self.say(spoken.last().unwrap(), false).await?;
                        }
                    }
                    Ok(ToolCall::CollectDigits { max_digits }) if after.is_none() => {
                        tracing::info!(call_id = %self.call_id, tool = %tools::COLLECT_DIGITS, source = "model", max_digits, "llm brain: tool call executed");
                        after = Some(act(Action::CollectDigits(CollectDigits { max_digits, terminator: "#".into(), timeout_ms: 10_000 })));
                    }
                    Ok(other) => tracing::debug!(call_id = %self.call_id, ?other, "llm brain: one action per turn; extra tool call ignored"),
                }
            }
            if !again {
                break;
            }
            // The lookup's answer is in FACTS now; the model only has to say it.
            offer_tools = false;
        }

        if let Err(e) = outcome {
            // Never dead air: apologize and hand the caller to a person.
            tracing::error!(call_id = %self.call_id, error = %e, "llm brain: the LLM failed; apologizing and handing over");
            let apology = self.apology(&lang);
            self.say(&apology, true).await?;
            let summary = format!("The AI assistant failed ({e}). {}", self.extractive_summary(REASON_BRAIN_ERROR));
            self.send(act(Action::Escalate(Escalate { reason: REASON_BRAIN_ERROR.into(), summary, priority: Priority::High as i32 }))).await?;
            self.memory.push(&caller, &apology);
            return Ok(());
        }
        if spoken.is_empty() {
            // Too slow, or nothing speakable survived the guards: the playbook's answer.
            tracing::info!(call_id = %self.call_id, "llm brain: no usable LLM reply; saying the playbook's answer");
            self.say(&pb_text, true).await?;
            spoken.push(pb_text);
        } else {
            self.say("", true).await?;
        }
        if let Some(a) = after {
            self.send(a).await?;
        }
        let reply = spoken.join(" ");
        tracing::info!(call_id = %self.call_id, turn_ms = started.elapsed().as_millis() as u64, chunks = spoken.len(), "llm brain: turn answered");
        self.memory.push(&caller, &reply);
        Ok(())
    }

    /// One streaming completion: speaks its sentences as they complete, collects tool calls.
    /// The outer `Err` is the gateway gone; the inner one the LLM failing.
    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        body: Value,
        facts: &str,
        guard: &mut LeakGuard,
        filler_said: &mut bool,
        filler_at: Instant,
        deadline: Instant,
        started: Instant,
    ) -> Result<Result<Round, LlmError>, Closed> {
        let mut round = Round::default();
        let mut chunker = SpeechChunker::new(self.shared.cfg.max_reply_chars);
        let mut acc = CompletionAccumulator::default();
        let mut first_token: Option<u64> = None;
        let open = self.shared.client.stream(body);
        tokio::pin!(open);
        // Opening the stream and reading it both race the filler and the deadline.
        let mut stream = loop {
            tokio::select! {
                s = &mut open => match s {
                    Ok(s) => break s,
                    Err(e) => return Ok(Err(e)),
                },
                _ = sleep_until(filler_at.into()), if !*filler_said => {
                    *filler_said = true;
                    self.filler().await?;
                }
                _ = sleep_until(deadline.into()) => {
                    round.timed_out = true;
                    return Ok(Ok(round));
                }
            }
        };
        let mut released: Vec<String> = Vec::new();
        loop {
            let ev = tokio::select! {
                ev = stream.next() => ev,
                _ = sleep_until(filler_at.into()), if !*filler_said && round.spoken.is_empty() => {
                    *filler_said = true;
                    self.filler().await?;
                    continue;
                }
                _ = sleep_until(deadline.into()) => {
                    round.timed_out = true;
                    break;
                }
            };
            let data = match ev {
                None | Some(Ok(SseData::Done)) => {
                    released.extend(chunker.finish());
                    break;
                }
                Some(Err(e)) => return Ok(Err(e)),
                Some(Ok(SseData::Json(j))) => j,
            };
            let delta = match acc.apply(&data) {
                Ok(d) => d,
                Err(e) => return Ok(Err(LlmError::Protocol(e.to_string()))),
            };
            if !delta.is_empty() && first_token.is_none() {
                let ms = started.elapsed().as_millis() as u64;
                first_token = Some(ms);
                tracing::info!(call_id = %self.call_id, first_token_ms = ms, "llm brain: first token");
            }
            // A reply that is a tool call written as text is not for the caller's ears.
            if acc.tool_calls.is_empty() && !acc.content.trim_start().starts_with(['{', '<', '`']) {
                released.extend(chunker.push(&delta));
            }
            for c in released.drain(..) {
                self.speak_checked(c, facts, guard, &mut round, started).await?;
            }
            if chunker.is_full() {
                tracing::info!(call_id = %self.call_id, max_chars = self.shared.cfg.max_reply_chars, "llm brain: reply cut at the length bound");
                break;
            }
        }
        for c in released.drain(..) {
            self.speak_checked(c, facts, guard, &mut round, started).await?;
        }
        round.tool_calls = acc.tool_calls.into_iter().filter(|c| !c.name.is_empty()).map(|c| (c.name, c.arguments)).collect();
        if round.tool_calls.is_empty() {
            if let Some(call) = tools::call_in_text(&acc.content) {
                round.tool_calls.push(call);
            } else if round.spoken.is_empty() && acc.content.trim_start().starts_with(['{', '<', '`']) {
                tracing::warn!(call_id = %self.call_id, content = %acc.content.chars().take(200).collect::<String>(), "llm brain: malformed tool call ignored");
            }
        }
        Ok(Ok(round))
    }

    async fn speak_checked(&self, chunk: String, facts: &str, guard: &mut LeakGuard, round: &mut Round, started: Instant) -> Result<(), Closed> {
        if guard.leaks(&chunk) {
            tracing::warn!(call_id = %self.call_id, "llm brain: a chunk repeating the system prompt was dropped");
            return Ok(());
        }
        if let Some(fig) = ungrounded_figure(&chunk, facts) {
            tracing::warn!(call_id = %self.call_id, figure = %fig, "llm brain: a chunk with a figure not in the facts was dropped");
            return Ok(());
        }
        if round.spoken.is_empty() {
            tracing::info!(call_id = %self.call_id, first_chunk_ms = started.elapsed().as_millis() as u64, "llm brain: first spoken chunk");
        }
        guard.spoken(&chunk);
        self.say(&chunk, false).await?;
        tracing::debug!(call_id = %self.call_id, chunk = %chunk, "llm brain: chunk");
        round.spoken.push(chunk);
        Ok(())
    }

    async fn filler(&self) -> Result<(), Closed> {
        tracing::warn!(call_id = %self.call_id, "llm brain: the LLM is slow; saying a filler");
        let text = if self.conv.language() == "zh" { "请稍等，我查一下。" } else { "One moment, let me check." };
        self.say(text, false).await
    }

    fn apology(&self, lang: &str) -> String {
        if lang == "zh" {
            "抱歉，系统出了点问题。我为您转接人工客服。".to_string()
        } else {
            "Sorry, something went wrong on my side. Let me connect you with a colleague.".to_string()
        }
    }

    /// The playbook answer of intent `name` in the call's language, else `fallback`.
    fn intent_answer(&self, name: &str, fallback: &Text) -> String {
        let lang = self.conv.language();
        self.shared.playbook.intent(name).map_or_else(|| fallback.get(lang), |i| i.answer.get(lang)).to_string()
    }

    /// A summary built from the caller's own words: used when the LLM cannot write one.
    fn extractive_summary(&self, reason: &str) -> String {
        let lines = self.memory.caller_lines();
        let said = if lines.is_empty() { "nothing yet".to_string() } else { lines.iter().map(|l| format!("\"{l}\"")).collect::<Vec<_>>().join(", then ") };
        format!("Handoff ({reason}) on call {}, speaking {}. Caller said: {said}.", self.call_id, self.conv.language())
    }

    /// The handoff summary, written by the LLM as the arguments of a forced `escalate` tool call
    /// (the tools API constrains them to valid JSON, which a small model cannot be trusted to
    /// write freely), within the filler budget; the caller's own words are always appended, and
    /// are all there is when the LLM fails or is too slow.
    async fn llm_summary(&self, reason: &str) -> String {
        let fallback = self.extractive_summary(reason);
        let cfg = &self.shared.cfg;
        let mut tool = tools::tool_specs(&Default::default());
        if let Some(a) = tool.as_array_mut() {
            a.truncate(1);
        }
        let body = json!({
            "model": cfg.model,
            "messages": prompt::summary_request(&self.memory.caller_lines(), reason),
            "temperature": cfg.temperature,
            "seed": cfg.seed,
            "max_tokens": 80,
            "tools": tool,
            "tool_choice": {"type": "function", "function": {"name": tools::ESCALATE}},
        });
        let budget = Duration::from_millis(cfg.filler_after_ms);
        let acc = match tokio::time::timeout(budget, self.shared.complete(body)).await {
            Ok(Ok(acc)) => acc,
            Ok(Err(e)) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "llm brain: summary failed; using the caller's words");
                return fallback;
            }
            Err(_) => {
                tracing::warn!(call_id = %self.call_id, budget_ms = budget.as_millis() as u64, "llm brain: summary too slow; using the caller's words");
                return fallback;
            }
        };
        let written = match acc.tool_calls.first() {
            Some(c) => match tools::parse_tool_call(&c.name, &c.arguments, &cfg.lookups) {
                Ok(ToolCall::Escalate { summary, .. }) => summary,
                other => {
                    tracing::warn!(call_id = %self.call_id, ?other, "llm brain: malformed summary tool call ignored");
                    String::new()
                }
            },
            None => acc.content,
        };
        let written = super::chunker::strip_markdown(&crate::redact::redact(&written, &self.shared.redaction));
        if written.is_empty() {
            fallback
        } else {
            format!("AI note: {written} {fallback}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{client::LlmClient, config::LlmConfig, memory::Input, retrieval::Faq, tls, tools::PlaybookCrm};
    use super::*;
    use crate::brain::playbook::Playbook;
    use crate::proto::dialog::{BargeIn, CallStart, Dtmf, Silence};

    fn ev(e: Event) -> CallerEvent {
        CallerEvent { event: Some(e) }
    }

    /// Keypad, silence and barge-in are answered by the playbook without the LLM, so no server
    /// is needed: the client points at a closed port and is never used.
    #[tokio::test]
    async fn keypad_silence_and_barge_in_reach_the_llm_memory() {
        let playbook = Arc::new(Playbook::embedded().unwrap());
        let cfg = LlmConfig { url: "http://127.0.0.1:9/v1".into(), model: "m".into(), ..LlmConfig::default() };
        let shared = Arc::new(Shared {
            client: LlmClient::new(&cfg.url, None, Duration::from_millis(100), tls::client_config(None).unwrap()),
            crm: Arc::new(PlaybookCrm::new(playbook.clone(), cfg.lookups.clone())),
            faq: Faq::from_playbook(&playbook),
            redaction: Default::default(),
            playbook: playbook.clone(),
            cfg,
        });
        let start = CallStart { call_id: "call-mem".into(), language: "en".into(), ..Default::default() };
        let (tx, mut rx) = mpsc::channel(64);
        let mut call = Call::new(shared, Conversation::new(&playbook, &start), "call-mem".into(), tx);
        call.greet().await.ok().unwrap();

        // Key 1 is the balance: the playbook answers, and memory has the keys and the answer.
        call.on_event(&ev(Event::Dtmf(Dtmf { digits: "1".into(), duration_ms: 120 }))).await.ok().unwrap();
        let t = call.memory.turns().last().unwrap().clone();
        assert_eq!((t.input, t.caller.as_str()), (Input::Keypad, "[pressed on the keypad: 1]"));
        assert!(t.bot.contains("forty-two yuan fifty"), "{t:?}");

        // The caller spoke over it after hearing the first sentence only.
        let heard = t.bot.split_inclusive('.').next().unwrap().to_string();
        let unheard = t.bot[heard.len()..].to_string();
        assert!(!unheard.trim().is_empty());
        call.on_event(&ev(Event::BargeIn(BargeIn { heard_text: heard.clone(), unheard_text: unheard.clone() }))).await.ok().unwrap();
        let t = call.memory.turns().last().unwrap();
        assert!(t.cut_off && t.bot == heard.trim() && !t.bot.contains(unheard.trim()), "{t:?}");

        // A silence: the playbook reprompts, and memory has the silence and the reprompt.
        call.on_event(&ev(Event::Silence(Silence { duration_ms: 6000 }))).await.ok().unwrap();
        let t = call.memory.turns().last().unwrap();
        assert_eq!((t.input, t.caller.as_str()), (Input::Silence, "[the caller said nothing for 6 seconds]"));
        assert_eq!(t.bot, playbook.prompts().reprompt.get("en"));
        assert_eq!(call.memory.turns().count(), 2);

        // The gateway got the playbook's answers as before.
        let mut says = Vec::new();
        while let Ok(Ok(a)) = rx.try_recv() {
            if let Some(Action::Say(s)) = a.action {
                says.push(s.text);
            }
        }
        let says = says.join(" ");
        assert!(says.contains("forty-two yuan fifty") && says.ends_with(playbook.prompts().reprompt.get("en")), "{says}");
    }
}
