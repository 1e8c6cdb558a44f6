//! Prometheus metrics, served as `/metrics` on the HTTP port.
//!
//! The `metrics` facade records from wherever the event happens (call task, records writer,
//! recorder); the exporter only keeps the numbers and renders them on a scrape, so recording a
//! value costs an atomic add and never an allocation on the media path. Gauges that describe
//! the present (calls by state, records write errors) are set from their owners at scrape time.
//!
//! Names (all prefixed `frontline_`), for dashboards and alerts:
//! - `calls_active{state}` gauge: calls in progress by state (ai, handing_over, bridged, ...)
//! - `calls_total{outcome}` counter: finished calls by outcome (containment: contained / all
//!   but abandoned, as `frontline report` counts it)
//! - `survey_answers_total{outcome}`, `survey_score_total{outcome}` counters: survey answers and
//!   the sum of their scores (average satisfaction = score / answers)
//! - `recognition_confidence` histogram: whisper's mean token probability per spoken caller turn
//! - `escalations_total{reason}` counter: handoffs by triage reason code
//! - `agent_dials_total{kind, result}` counter: calls to agents by kind (sip, console) and how
//!   they went (answered, or the SIP status: 480 not signed in, 486 busy, 603 declined; none)
//! - `turn_stage_seconds{stage}` histogram: end of caller speech → transcript / brain / tts / first_rtp
//! - `recognition_rtf` histogram: decode time / audio length per utterance
//! - `rtp_packets_lost_total`, `rtp_packets_received_total` counters; `rtp_loss_ratio` and
//!   `rtp_jitter_ms` histograms per call
//! - `brain_errors_total{kind}` counter
//! - `records_write_errors_total` counter (alert on any increase: disk full or unwritable),
//!   `records_write_seconds{kind}` histogram, `recording_errors_total` counter
//! - `records_database_up` gauge (0 while a shared PostgreSQL is unreachable and writes queue),
//!   `records_dropped_total` counter (writes lost to a full queue: alert on any increase)

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use std::sync::OnceLock;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` (Prometheus text format) on the HTTP port.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle). Before it is
/// installed, every `metrics::` call is a no-op: commands that serve no metrics pay nothing.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let seconds = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("frontline_recognition_rtf".into()), &[0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0]))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("frontline_recognition_confidence".into()), &[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("frontline_rtp_jitter_ms".into()), &[1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0]))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("frontline_rtp_loss_ratio".into()), &[0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]))
                .expect("bucket lists are non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (a test harness): then this
            // handle renders what it was given, which is nothing, and nothing breaks.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!("frontline_calls_active", "Calls in progress, by state");
    describe_counter!("frontline_calls_total", "Finished calls, by outcome");
    describe_counter!("frontline_escalations_total", "Calls handed to a person, by triage reason");
    describe_counter!("frontline_agent_dials_total", "Calls to agents, by kind (sip, console) and result (answered or the SIP status)");
    describe_histogram!("frontline_turn_stage_seconds", Unit::Seconds, "From the end of the caller's speech to each stage of the reply");
    describe_histogram!("frontline_recognition_rtf", "Recognition real-time factor: decode time / audio length");
    describe_histogram!("frontline_recognition_confidence", "Whisper's mean token probability of each spoken caller turn");
    describe_counter!("frontline_survey_answers_total", "Survey answers, by the call's outcome");
    describe_counter!("frontline_survey_score_total", "Sum of survey scores (1-5), by the call's outcome");
    describe_counter!("frontline_rtp_packets_lost_total", "RTP packets from callers that never arrived");
    describe_counter!("frontline_rtp_packets_received_total", "RTP packets received from callers");
    describe_histogram!("frontline_rtp_loss_ratio", "Per call: lost / expected RTP packets");
    describe_histogram!("frontline_rtp_jitter_ms", "Per call: RTP interarrival jitter (RFC 3550), ms");
    describe_counter!("frontline_brain_errors_total", "Brain failures: unreachable, stream failed, too slow");
    describe_gauge!("frontline_records_write_errors", "Call-record writes that failed since start-up (disk full or unwritable)");
    describe_counter!("frontline_records_write_errors_total", "Call-record writes that failed (disk full or unwritable)");
    describe_gauge!("frontline_records_database_up", "1 while the records database takes writes; 0 while it is unreachable and writes queue");
    describe_counter!("frontline_records_dropped_total", "Call-record writes dropped because the queue was full (database away too long)");
    describe_histogram!("frontline_records_write_seconds", Unit::Seconds, "Call-record write latency: queue wait + commit");
    describe_counter!("frontline_recording_errors_total", "Call recordings stopped by a write error");
}

/// The `/metrics` body: present-state gauges refreshed from the live calls, then everything.
pub fn render(handle: &PrometheusHandle, services: &crate::call::CallServices) -> String {
    let totals = services.live.totals();
    for state in crate::call::registry::CallState::ALL {
        let n = totals.active_by_state.get(&state).copied().unwrap_or(0);
        metrics::gauge!("frontline_calls_active", "state" => state.as_str()).set(f64::from(n));
    }
    metrics::gauge!("frontline_records_write_errors").set(services.records.write_errors() as f64);
    metrics::gauge!("frontline_records_database_up").set(if services.records.database_down() { 0.0 } else { 1.0 });
    handle.render()
}
