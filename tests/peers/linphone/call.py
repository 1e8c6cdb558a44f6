#!/usr/bin/env python3
"""A linphone (Debian's linphone-cli, liblinphone 5) caller for the interop tests.

Drives `linphonec` through its command prompt: calls TARGET over UDP or TCP with files in
place of a sound card, plays WAV into the call (optional), records what it hears to RECORD,
and either hangs up after --hold seconds or waits up to --hold seconds for the far end to hang
up (--wait-for-bye). Prints one JSON line: whether the call was connected, who ended it, the
codec, and the answer to linphone's own BYE (read from its SIP log) and how long it took.
Exit status 0 when the call connected and ended cleanly.
"""
import argparse
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time

RC = """[sip]
sip_port=-1
sip_tcp_port=-1
sip_tls_port=0
default_proxy=-1
register_only_when_network_is_up=0
[rtp]
audio_rtp_port=-1
[sound]
echocancellation=0
[video]
enabled=0
capture=0
display=0
[misc]
enable_friends_db=0
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--wait-for-bye", action="store_true")
    ap.add_argument("--wav")
    ap.add_argument("--record")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="linphone-")
    rc = os.path.join(work, "linphonerc")
    log = os.path.join(work, "linphone.log")
    with open(rc, "w") as f:
        f.write(RC)
    env = dict(os.environ, HOME=work)
    proc = subprocess.Popen(
        ["linphonec", "-c", rc, "-d", "6", "-l", log],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout], daemon=True).start()
    seen = []

    def send(cmd):
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()

    def wait_for(pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            if re.search(pattern, line):
                return line
        return None

    verdict = {"connected": False, "hung_up_by": None, "bye_status": None, "bye_ms": None, "call_s": None}
    try:
        send("soundcard use files")
        if args.record:
            send(f"record {args.record}")
        target = args.target + (";transport=tcp" if args.transport == "tcp" else "")
        send(f"call {target}")
        started = time.monotonic()
        connected = wait_for(r"Call \d+ with .* connected", 20)
        verdict["connected"] = connected is not None
        if connected:
            if args.wav:
                send(f"play {args.wav}")
            if args.wait_for_bye:
                ended = wait_for(r"Call \d+ with .* ended|Call \d+ .*ended", args.hold)
                verdict["hung_up_by"] = "remote" if ended else None
            else:
                time.sleep(args.hold)
                bye_at = time.monotonic()
                send("terminate")
                ended = wait_for(r"Call \d+ with .* ended|Call \d+ .*ended", 10)
                verdict["hung_up_by"] = "local" if ended else None
                verdict["bye_sent_at"] = bye_at
            verdict["call_s"] = round(time.monotonic() - started, 2)
    finally:
        send("quit")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    verdict.update(bye_answer(log, verdict.pop("bye_sent_at", None)))
    verdict["codec"] = codec(log)
    verdict["output"] = seen[-8:]
    print(json.dumps(verdict))
    ok = verdict["connected"] and verdict["hung_up_by"] is not None
    sys.exit(0 if ok else 1)


def bye_answer(log, bye_sent_at):
    """The final answer to the BYE linphone sent, from its SIP log (belle-sip prints each
    message it sends and receives)."""
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return {}
    answer = re.search(r"SIP/2\.0 (\d{3})[^\n]*\n(?:[^\n]+\n)*?CSeq: *\d+ BYE", text, re.IGNORECASE)
    if not answer:
        return {}
    return {"bye_status": int(answer.group(1))}


def codec(log):
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return None
    found = re.findall(r"payload type[^\n]*?(PCMU|PCMA|opus|speex|G722)", text, re.IGNORECASE)
    return found[-1] if found else None


if __name__ == "__main__":
    main()
