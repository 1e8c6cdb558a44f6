//! Media-only capacity: bridged calls through the gateway's real per-call RTP driver
//! (`media::session`), each leg on its own loopback UDP socket, fed by a peer that sends 20 ms
//! PCMU packets on its own clock. The bridge forwards each leg's decoded audio to the other
//! leg (`MediaCommand::Live`, as a warm handoff does) and records both legs to WAV files.
//!
//! The gateway side runs on its own runtime whose threads are named `media-rt`; their CPU
//! time (from /proc/self/task) over a steady window, divided by call-seconds, gives the cost of
//! one call, and its inverse the calls one core holds. Peers run on separate threads so their
//! cost is not counted.

use crate::bench::report::{Section, Table};
use crate::bench::BenchEnv;
use crate::media::g711::G711;
use crate::media::jitter::{JitterBuffer, JitterStats};
use crate::media::rtp::{RtpPacket, RtpSender};
use crate::media::session::{self, MediaCommand, MediaEvent, MediaParams, MediaStats};
use anyhow::{Context, Result};
use std::io::BufWriter;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const TARGET_CALLS_PER_CORE: f64 = 500.0;
const GATEWAY_THREAD: &str = "media-rt";

/// CPU seconds used so far by this process's threads whose name starts with `prefix`.
fn threads_cpu_seconds(prefix: &str) -> f64 {
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |r| r.1);
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks as f64 / ticks_per_s
}

/// A phone at the far end of one leg: sends the caller audio every 20 ms, and plays what
/// comes back through a jitter buffer of its own (whose counters are the loss and jitter the
/// far end experiences).
async fn peer(socket: UdpSocket, gateway: SocketAddr, audio: Arc<Vec<u8>>, running: Arc<AtomicBool>) -> JitterStats {
    let mut sender = RtpSender::random();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut jitter = JitterBuffer::new();
    let (mut pos, mut packet, mut buf) = (0usize, Vec::with_capacity(172), vec![0u8; 2048]);
    let start = Instant::now();
    while running.load(Ordering::Relaxed) {
        tokio::select! {
            _ = tick.tick() => {
                if pos + 160 > audio.len() { pos = 0; }
                sender.audio(0, &audio[pos..pos + 160], 160, pos == 0, &mut packet);
                pos += 160;
                let _ = socket.send_to(&packet, gateway).await;
                let _ = jitter.pop(start.elapsed().as_millis() as u64);
            }
            r = socket.recv_from(&mut buf) => if let Ok((n, _)) = r {
                if let Ok(pkt) = RtpPacket::parse(&buf[..n]) {
                    jitter.push_packet(&pkt, start.elapsed().as_millis() as u64);
                }
            }
        }
    }
    jitter.stats()
}

/// One bridged call on the gateway side: forwards each leg's audio to the other and records
/// it; returns both legs' driver counters when they stop.
async fn bridge(
    legs: [(session::MediaHandle, session::MediaEvents); 2],
    mut recorders: [hound::WavWriter<BufWriter<std::fs::File>>; 2],
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<MediaStats> {
    let [(ha, mut ea), (hb, mut eb)] = legs;
    let mut stats = Vec::new();
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = stop.changed(), if !stopping => {
                stopping = true;
                let _ = ha.commands.send(MediaCommand::Stop).await;
                let _ = hb.commands.send(MediaCommand::Stop).await;
            }
            ev = ea.recv() => if !on_leg_event(ev, &mut recorders[0], &hb, &mut stats) { break },
            ev = eb.recv() => if !on_leg_event(ev, &mut recorders[1], &ha, &mut stats) { break },
        }
        if stats.len() == 2 {
            break;
        }
    }
    for r in recorders {
        let _ = r.finalize();
    }
    stats
}

/// One leg's event: its audio is recorded and sent on to the other leg. False once the leg's
/// driver is gone.
fn on_leg_event(
    ev: Option<MediaEvent>,
    recorder: &mut hound::WavWriter<BufWriter<std::fs::File>>,
    other: &session::MediaHandle,
    stats: &mut Vec<MediaStats>,
) -> bool {
    match ev {
        Some(MediaEvent::Frame(f)) => {
            for s in f.iter() {
                let _ = recorder.write_sample(*s);
            }
            let _ = other.commands.try_send(MediaCommand::Live(f));
        }
        Some(MediaEvent::Stopped(s)) => stats.push(s),
        Some(_) => {}
        None => return false,
    }
    true
}

/// `frontline bench media`.
pub fn media(env: &BenchEnv) -> Result<Section> {
    let (calls, seconds) = if env.quick { (100usize, 5u64) } else { (250, 10) };
    let work = env.work_dir("media")?;
    let pcm16 = crate::media::wav::read_16k_mono(&env.repo.join("audio-fixtures/en_data.wav"))?;
    let audio = Arc::new(crate::bench::ulaw_8k(&pcm16).1);

    let gateway_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(GATEWAY_THREAD).enable_all().build()?;
    let peer_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("media-peer").enable_all().build()?;
    let running = Arc::new(AtomicBool::new(true));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let spec = hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };

    let mut bridges = Vec::new();
    let mut peers = Vec::new();
    for c in 0..calls {
        let mut legs = Vec::new();
        let mut recorders = Vec::new();
        for leg in 0..2 {
            let peer_std = std::net::UdpSocket::bind("127.0.0.1:0").context("binding a peer socket")?;
            peer_std.set_nonblocking(true)?;
            let peer_addr = peer_std.local_addr()?;
            let params = MediaParams { codec: G711::Ulaw, pt: 0, dtmf_pt: None, remote: peer_addr, send: true, receive: true };
            let (handle, events) = gateway_rt.block_on(async {
                let socket = UdpSocket::bind("127.0.0.1:0").await?;
                session::start(socket, params, Duration::from_secs(30))
            })?;
            let gw_addr: SocketAddr = ([127, 0, 0, 1], handle.local_port).into();
            let (audio, running) = (audio.clone(), running.clone());
            peers.push(peer_rt.spawn(async move {
                let socket = UdpSocket::from_std(peer_std).expect("registering a bound socket with the peer runtime");
                peer(socket, gw_addr, audio, running).await
            }));
            legs.push((handle, events));
            let path = work.join(format!("call{c}-leg{leg}.wav"));
            recorders.push(hound::WavWriter::new(BufWriter::new(std::fs::File::create(&path)?), spec)?);
        }
        let legs: [_; 2] = legs.try_into().map_err(|_| anyhow::anyhow!("two legs"))?;
        let recorders: [_; 2] = recorders.try_into().map_err(|_| anyhow::anyhow!("two recorders"))?;
        bridges.push(gateway_rt.spawn(bridge(legs, recorders, stop_rx.clone())));
    }
    // Warm-up: sockets latch, jitter buffers fill; then the measured window.
    std::thread::sleep(Duration::from_secs(1));
    let (cpu0, t0) = (threads_cpu_seconds(GATEWAY_THREAD), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, wall) = (threads_cpu_seconds(GATEWAY_THREAD), t0.elapsed().as_secs_f64());
    let _ = stop_tx.send(true);
    let gateway_stats: Vec<MediaStats> = gateway_rt.block_on(async {
        let mut all = Vec::new();
        for b in bridges {
            all.extend(b.await.unwrap_or_default());
        }
        all
    });
    running.store(false, Ordering::Relaxed);
    let peer_stats: Vec<JitterStats> = peer_rt.block_on(async {
        let mut all = Vec::new();
        for p in peers {
            if let Ok(s) = p.await {
                all.push(s);
            }
        }
        all
    });
    gateway_rt.shutdown_background();
    peer_rt.shutdown_background();
    let _ = std::fs::remove_dir_all(&work);

    let cpu = cpu1 - cpu0;
    let per_call_second = cpu / (calls as f64 * wall);
    let calls_per_core = if per_call_second > 0.0 { 1.0 / per_call_second } else { f64::INFINITY };
    let loss = |s: &[JitterStats]| {
        let (lost, recv) = s.iter().fold((0u64, 0u64), |a, j| (a.0 + j.lost, a.1 + j.received));
        100.0 * lost as f64 / (lost + recv).max(1) as f64
    };
    let jitter_max = |s: &[JitterStats]| s.iter().map(|j| j.jitter_ms).fold(0.0f32, f32::max);
    let jitter_mean = |s: &[JitterStats]| s.iter().map(|j| j.jitter_ms).sum::<f32>() / s.len().max(1) as f32;
    let gw_jitter: Vec<JitterStats> = gateway_stats.iter().map(|m| m.jitter).collect();
    let concealed: u64 = gw_jitter.iter().map(|j| j.concealed).sum();
    let late: u64 = gw_jitter.iter().map(|j| j.late).sum();

    let mut table = Table::new(&["figure", "value", "target"]);
    table.row(vec!["bridged calls (2 RTP legs each, recorded)".into(), calls.to_string(), "".into()]);
    table.row(vec!["measured window".into(), format!("{wall:.1} s"), "".into()]);
    table.row(vec!["gateway media CPU".into(), format!("{cpu:.2} s ({:.0}% of one core)", 100.0 * cpu / wall), "".into()]);
    table.row(vec!["CPU per call-second".into(), format!("{:.1} µs", per_call_second * 1e6), "".into()]);
    table.row(vec!["**calls per core**".into(), format!("**{calls_per_core:.0}**"), format!("≥ {TARGET_CALLS_PER_CORE:.0}")]);
    table.row(vec!["loss seen by the gateway (peers → gateway)".into(), format!("{:.3} %", loss(&gw_jitter)), "".into()]);
    table.row(vec!["loss seen by the peers (gateway → peers)".into(), format!("{:.3} %", loss(&peer_stats)), "".into()]);
    table.row(vec!["interarrival jitter at the gateway, mean / max".into(), format!("{:.1} / {:.1} ms", jitter_mean(&gw_jitter), jitter_max(&gw_jitter)), "".into()]);
    table.row(vec!["interarrival jitter at the peers, mean / max".into(), format!("{:.1} / {:.1} ms", jitter_mean(&peer_stats), jitter_max(&peer_stats)), "".into()]);
    table.row(vec!["gateway frames concealed / late packets".into(), format!("{concealed} / {late}"), "".into()]);
    let mut section = Section::new("Media-only capacity (bridged calls)", table);
    section.note(format!(
        "{calls} bridged calls = {} `media::session` drivers on loopback UDP sockets, each leg's decoded audio forwarded \
         to the other leg as `MediaCommand::Live` and written to a 16 kHz WAV (the recording), peers sending 20 ms PCMU \
         packets. CPU is the gateway runtime's threads only (utime+stime from /proc/self/task, 10 ms resolution); peers \
         run on other threads. Calls per core = 1 / CPU per call-second: {}.",
        calls * 2,
        if calls_per_core >= TARGET_CALLS_PER_CORE { "meets the target" } else { "misses the target" }
    ));
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_is_read_for_named_threads_only() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let worker = std::thread::Builder::new()
            .name("cpu-probe".into())
            .spawn(move || {
                let mut x = 0u64;
                while !flag.load(Ordering::Relaxed) {
                    x = x.wrapping_mul(31).wrapping_add(7);
                }
                x
            })
            .unwrap();
        // Ticks are 10 ms and the host may be busy: wait until the spinning thread shows up.
        let t = Instant::now();
        let mut busy = 0.0;
        while busy == 0.0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            busy = threads_cpu_seconds("cpu-probe");
        }
        assert_eq!(threads_cpu_seconds("no-such-thread"), 0.0);
        done.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        assert!(busy > 0.0 && busy < 10.0, "{busy}");
    }
}
