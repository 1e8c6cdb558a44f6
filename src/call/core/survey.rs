//! The core's side of the satisfaction survey (`call::survey` says what is asked and how an
//! answer reads): asked after the AI ends a call it contained, or after the agent hangs up
//! first; answered on the keypad or in words; stored with the call. A caller who hangs up is
//! not asked, and a caller who does not answer hears a goodbye.

use super::{BotVoice, CallCore, Effect, Handoff, Timer, GOODBYE_GRACE};
use crate::call::registry::CallState;
use crate::call::survey::{line, rating_from_key, rating_from_words, AnsweredBy, Rating, SurveyLine};
use std::time::Instant;

/// Where the call is with its survey.
#[derive(Debug, Default)]
pub(super) enum Survey {
    #[default]
    NotAsked,
    /// The question is playing or waits for an answer; the call then ends with `reason`.
    Asking { reason: String, asked_again: bool },
    Done,
}

impl CallCore {
    /// Whether the call ending now with the AI (the brain said goodbye) asks first.
    pub(super) fn survey_after_ai(&self) -> bool {
        let s = &self.settings.survey;
        s.enabled && s.after_ai && matches!(self.survey, Survey::NotAsked) && self.escalated.is_none() && self.failure.is_none() && self.turns_completed > 0
    }

    /// Whether the caller, left alone by the agent who hung up, is asked.
    pub(super) fn survey_after_agent(&self) -> bool {
        let s = &self.settings.survey;
        s.enabled && s.after_agent && matches!(self.survey, Survey::NotAsked) && self.is_bridged()
    }

    /// The agent hung up while the caller stays on: the agent's leg is let go, the caller is
    /// with the AI again, and is asked; the call then ends with the agent's `reason`.
    pub(super) fn agent_hung_up_first(&mut self, reason: String, now: Instant) {
        if let Handoff::Bridged { agent } = std::mem::replace(&mut self.handoff, Handoff::Over) {
            self.agents.lock().unwrap_or_else(|e| e.into_inner()).free(&agent);
        }
        self.out.push_back(Effect::ReleaseAgent);
        self.agent_listener = None;
        self.set_state(CallState::Ai);
        self.ask_survey(reason, now);
    }

    /// Asks the question; the call ends with `reason` once it is answered or not.
    pub(super) fn ask_survey(&mut self, reason: String, now: Instant) {
        tracing::info!(call_id = %self.info.call_id, %reason, "asking the caller to rate the call");
        self.survey = Survey::Asking { reason, asked_again: false };
        self.hangup_reason = None;
        self.timers.stop(Timer::Hangup);
        self.timers.stop(Timer::NoInput);
        self.floor_since = None;
        let question = line(SurveyLine::Question, &self.language);
        self.say_local(question, true, now);
    }

    pub(super) fn is_surveying(&self) -> bool {
        matches!(self.survey, Survey::Asking { .. })
    }

    /// The question (or its repeat) has played: the caller has `answer_ms` to answer.
    pub(super) fn survey_question_played(&mut self, now: Instant) {
        self.timers.set(Timer::SurveyAnswer, now + self.settings.survey.answer_duration());
    }

    /// A key pressed while the survey is asked.
    pub(super) fn survey_key(&mut self, digit: char, now: Instant) {
        match rating_from_key(digit) {
            Some(score) => self.survey_answered(Rating { score, by: AnsweredBy::Keypad }, now),
            None => self.survey_unclear(now),
        }
    }

    /// Words said while the survey is asked.
    pub(super) fn survey_words(&mut self, text: &str, now: Instant) {
        match rating_from_words(text) {
            Some(score) => self.survey_answered(Rating { score, by: AnsweredBy::Voice }, now),
            None => self.survey_unclear(now),
        }
    }

    /// No answer in time: a goodbye, and the call ends as it was going to.
    pub(super) fn survey_unanswered(&mut self, now: Instant) {
        tracing::info!(call_id = %self.info.call_id, "no rating given");
        self.close_survey(SurveyLine::Goodbye, now);
    }

    fn survey_answered(&mut self, rating: Rating, now: Instant) {
        tracing::info!(call_id = %self.info.call_id, score = rating.score, by = rating.by.as_str(), "caller rated the call");
        self.rating = Some(rating);
        self.close_survey(SurveyLine::Thanks, now);
    }

    /// Not a rating: asked once more, then left.
    fn survey_unclear(&mut self, now: Instant) {
        let Survey::Asking { asked_again, .. } = &mut self.survey else { return };
        if *asked_again {
            self.survey_unanswered(now);
            return;
        }
        *asked_again = true;
        self.timers.stop(Timer::SurveyAnswer);
        let again = line(SurveyLine::Again, &self.language);
        self.say_local(again, true, now);
    }

    fn close_survey(&mut self, last_line: SurveyLine, now: Instant) {
        let Survey::Asking { reason, .. } = std::mem::replace(&mut self.survey, Survey::Done) else { return };
        self.timers.stop(Timer::SurveyAnswer);
        self.out.push_back(Effect::Hush);
        self.voice = BotVoice::default();
        let text = line(last_line, &self.language);
        self.say_local(text, true, now);
        self.hang_up_after(reason, GOODBYE_GRACE, now);
    }
}
