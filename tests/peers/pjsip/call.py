#!/usr/bin/env python3
"""A PJSIP (pjsua2, PyPI pjsua2-python) caller for the interop tests.

Calls TARGET over UDP or TCP with a null sound device, plays WAV into the call (optional),
records what it hears to RECORD, and either hangs up after --hold seconds or waits up to --hold
seconds for the far end to hang up (--wait-for-bye). Prints one JSON line: whether the call was
confirmed, who ended it, the final SIP status PJSIP saw, and the answer to its own BYE and how
long that took.
Exit status 0 when the call was confirmed and ended cleanly (a BYE answered, either way).
"""
import argparse
import json
import re
import sys
import time

import pjsua2 as pj


class Call(pj.Call):
    def __init__(self, account, args, events):
        pj.Call.__init__(self, account)
        self.args = args
        self.events = events
        self.player = None
        self.recorder = None

    def onCallState(self, prm):
        info = self.getInfo()
        self.events.append((time.monotonic(), info.stateText, info.lastStatusCode, info.lastReason))

    def onCallMediaState(self, prm):
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(i)
            if self.args.record and self.recorder is None:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(self.args.record)
                audio.startTransmit(self.recorder)
            if self.args.wav and self.player is None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(self.args.wav, pj.PJMEDIA_FILE_NO_LOOP)
                self.player.startTransmit(audio)


class ByeAnswers(pj.LogWriter):
    """PJSIP's message log: the final answer to a BYE this side sent, and when it came.
    (The call object is gone once PJSIP has sent its BYE, so the log is where the answer shows.)"""

    def __init__(self):
        pj.LogWriter.__init__(self)
        self.answer = None

    def write(self, entry):
        found = re.search(r"RX \d+ bytes Response msg (\d{3})/BYE/", entry.msg)
        if found and int(found.group(1)) >= 200 and self.answer is None:
            self.answer = (time.monotonic(), int(found.group(1)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("target", help="sip:ivr@127.0.0.1:5060")
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    p.add_argument("--hold", type=float, default=4.0)
    p.add_argument("--wait-for-bye", action="store_true")
    p.add_argument("--wav")
    p.add_argument("--record")
    args = p.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    # Python drives PJSIP from this thread only.
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    # Level 4 logs every SIP message, to the writer only.
    byes = ByeAnswers()
    cfg.logConfig.writer = byes
    cfg.logConfig.level = 4
    cfg.logConfig.consoleLevel = 4
    cfg.logConfig.msgLogging = True
    ep.libInit(cfg)
    kind = pj.PJSIP_TRANSPORT_TCP if args.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(kind, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    # G.711 only, as a phone on a trunk would offer.
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 255 if codec.codecId.startswith(("PCMU", "PCMA")) else 0)

    acfg = pj.AccountConfig()
    acfg.idUri = "sip:pjsua@127.0.0.1"
    account = pj.Account()
    account.create(acfg)

    events = []
    call = Call(account, args, events)
    target = args.target + (";transport=tcp" if args.transport == "tcp" else "")
    prm = pj.CallOpParam(True)
    call.makeCall(target, prm)

    def pump(until, stop):
        while time.monotonic() < until and not stop():
            ep.libHandleEvents(20)

    def state():
        return events[-1][1] if events else ""

    started = time.monotonic()
    pump(started + 10, lambda: state() in ("CONFIRMED", "DISCONNECTED"))
    confirmed_at = next((t for t, s, _, _ in events if s == "CONFIRMED"), None)
    hung_up_by = None
    bye_ms = None
    if confirmed_at is not None:
        if args.wait_for_bye:
            pump(confirmed_at + args.hold, lambda: state() == "DISCONNECTED")
            if state() == "DISCONNECTED":
                hung_up_by = "remote"
        else:
            pump(confirmed_at + args.hold, lambda: state() == "DISCONNECTED")
            if state() != "DISCONNECTED":
                hung_up_by = "local"
                asked = time.monotonic()
                call.hangup(pj.CallOpParam(True))
                # PJSIP ends the call as it sends the BYE; the BYE's own answer comes after.
                pump(asked + 10, lambda: byes.answer is not None)
                if byes.answer is not None:
                    bye_ms = round((byes.answer[0] - asked) * 1000)
            else:
                hung_up_by = "remote"
    final = events[-1] if events else (0, "", 0, "")
    result = {
        "transport": args.transport,
        "confirmed": confirmed_at is not None,
        "hung_up_by": hung_up_by,
        "final_state": final[1],
        "final_status": final[2],
        "final_reason": final[3],
        "bye_status": byes.answer[1] if byes.answer else None,
        "bye_ms": bye_ms,
        "call_s": round(final[0] - confirmed_at, 2) if confirmed_at is not None else None,
        "states": [s for _, s, _, _ in events],
    }
    # Release the media ports and files before the library goes.
    call.recorder = None
    call.player = None
    del call
    print(json.dumps(result), flush=True)
    ep.libDestroy()
    clean = result["confirmed"] and final[1] == "DISCONNECTED" and hung_up_by is not None
    # A BYE we sent must have been answered 200; one we got is answered by PJSIP itself.
    if hung_up_by == "local" and result["bye_status"] != 200:
        clean = False
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
