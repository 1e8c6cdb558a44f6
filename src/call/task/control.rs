//! The call task's side of the Ops API's control commands: a supervisor hangs the call up,
//! hands the caller to a person, or speaks a line into the call. Each is answered (the reply
//! travels back to the gRPC caller) before the task takes its next input.

use super::CallTask;
use crate::call::registry::{Control, ControlRefused, ControlRequest};
use crate::speech::tts::Lang;
use crate::triage::Decision;

impl CallTask {
    /// Returns the end reason when the command ends the call.
    pub(super) async fn on_control(&mut self, req: ControlRequest) -> Option<String> {
        let ControlRequest { command, reply } = req;
        tracing::info!(call_id = %self.call_id, command = ?command, "ops control");
        let (answer, end) = match command {
            Control::Hangup { reason } => {
                let reason = if reason.trim().is_empty() { "ops-hangup".to_string() } else { reason };
                (Ok("hanging up".to_string()), Some(reason))
            }
            Control::Escalate { reason } => (self.escalate_by_operator(&reason).await, None),
            Control::Say { text, language } => (self.say_by_operator(&text, language.as_deref()).await, None),
        };
        // The gRPC caller may have given up waiting: the command stands anyway.
        let _ = reply.send(answer);
        end
    }

    async fn escalate_by_operator(&mut self, reason: &str) -> Result<String, ControlRefused> {
        if self.escalated.is_some() || !self.handoff.is_idle() {
            return Err(ControlRefused::NotNow("the call was already handed over".into()));
        }
        match self.triage.on_operator_escalate(self.turns_started, reason) {
            Decision::Escalate(e) => {
                self.on_triage(Decision::Escalate(e), false).await;
                Ok("handing the caller over to an agent".into())
            }
            _ => Err(ControlRefused::NotNow("the call was already handed over".into())),
        }
    }

    async fn say_by_operator(&mut self, text: &str, language: Option<&str>) -> Result<String, ControlRefused> {
        let text = text.trim();
        if !self.handoff.is_idle() {
            return Err(ControlRefused::NotNow("the caller is with a person: the gateway does not speak now".into()));
        }
        let lang: Lang = match language.filter(|l| !l.is_empty()) {
            Some(l) => l.parse().map_err(|_| ControlRefused::NotNow(format!("language {l:?}: use \"en\" or \"zh\"")))?,
            None => self.language.parse().unwrap_or(Lang::En),
        };
        self.said("supervisor", self.turns_started, text);
        // A line on its own ends a reply (so a pending hang-up or transfer can follow it); in
        // the middle of the bot's reply it is queued after it without ending it.
        let ends_reply = !self.voice.speaking;
        if !self.voice.speaking {
            self.voice = super::BotVoice { speaking: true, interruptible: false, ..super::BotVoice::default() };
        }
        self.voice.fully_queued = false;
        self.speaker.say(crate::call::speaker::SayJob::speak(text, lang, ends_reply)).await;
        Ok("speaking".into())
    }
}
