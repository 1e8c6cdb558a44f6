#!/usr/bin/env python3
"""Turn latency of real SIP calls, measured per stage, printed as a table.

Starts the release gateway, places N sipp calls that stream a fixture as G.711 and wait for
the reply, and reads each turn's stage timings from the gateway's JSON events: end of the
caller's speech -> transcript -> first brain reply -> first synthesized audio -> first RTP
packet of the reply on the wire. Also reports start-up time and the gateway's peak RSS.

Usage (after scripts/build.sh; root, since sipp's rtp_stream needs raw sockets):
  bench/turn_latency.py [--calls 5] [--fixture audio-fixtures/en_balance.wav] [--codec PCMU|PCMA]
                        [-- extra frontline serve arguments]
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/frontline")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--fixture", default=os.path.join(ROOT, "audio-fixtures/en_balance.wav"))
    ap.add_argument("--codec", choices=["PCMU", "PCMA"], default="PCMU")
    ap.add_argument("--sip-port", type=int, default=5097)
    ap.add_argument("serve_args", nargs="*")
    args = ap.parse_args()
    pt, enc = {"PCMU": ("0", "ul"), "PCMA": ("8", "al")}[args.codec]
    work = tempfile.mkdtemp(prefix="bench-turns-")
    audio = os.path.join(work, "speech.g711")
    subprocess.run(["sox", args.fixture, "-r", "8000", "-c", "1", "-t", enc, audio], check=True)
    scen = open(os.path.join(ROOT, "tests/peers/sipp/uac_stream.xml")).read()
    for k, v in {"AUDIO": audio, "PT": pt, "CODEC": args.codec,
                 "AUDIO_MS": str(os.path.getsize(audio) // 8), "REPLY_MS": "9000"}.items():
        scen = scen.replace("@%s@" % k, v)
    scen_path = os.path.join(work, "scenario.xml")
    open(scen_path, "w").write(scen)

    t0 = time.time()
    gw = subprocess.Popen([BIN, "serve", "--sip-port", str(args.sip_port), "--rtp-ports", "40000-40100",
                           "--brain-port", "0", "--http-port", "0", "--models", os.path.join(ROOT, "models"),
                           "--log-format", "json"] + args.serve_args, stdout=subprocess.PIPE, text=True)
    events = []

    def pump(until):
        for line in gw.stdout:
            ev = json.loads(line)
            events.append(ev)
            if until(ev):
                return ev
        sys.exit("gateway exited")

    ready = pump(lambda e: e["fields"]["message"] == "ready")
    wall_ready = (time.time() - t0) * 1000
    rows = []
    for _ in range(args.calls):
        subprocess.run(["sipp", "127.0.0.1:%d" % args.sip_port, "-sf", scen_path, "-s", "ivr", "-i", "127.0.0.1",
                        "-p", str(args.sip_port + 1), "-mi", "127.0.0.1", "-mp", "6100", "-m", "1", "-l", "1",
                        "-nostdin"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pump(lambda e: e["fields"]["message"] == "call ended")
        turns = [e["fields"] for e in events if e["fields"]["message"] == "turn" and e["fields"]["turn"] >= 1]
        rows.append(turns[-1])
    hwm = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/%d/status" % gw.pid).read()).group(1))
    gw.terminate()
    gw.wait()

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

    print("frontline turn latency: %d %s calls, fixture %s" % (len(rows), args.codec, os.path.basename(args.fixture)))
    print("start-up: %.0f ms to ready (process says %s ms; model load %s ms)"
          % (wall_ready, ready["fields"]["startup_ms"], ready["fields"]["model_load_ms"]))
    print("recognized: %s" % sorted({r["heard"] for r in rows}))
    print()
    print("%-32s %8s %8s %8s %8s" % ("stage (ms after end of speech)", "p50", "p90", "min", "max"))
    for key, label in [("transcript_ms", "transcript ready"), ("brain_ms", "first brain reply"),
                       ("tts_ms", "first synthesized audio"), ("first_rtp_ms", "first RTP packet out")]:
        v = [r[key] for r in rows]
        print("%-32s %8d %8d %8d %8d" % (label, statistics.median(v), pct(v, 0.9), min(v), max(v)))
    print()
    print("peak RSS: %d MiB" % (hwm // 1024))


if __name__ == "__main__":
    main()
