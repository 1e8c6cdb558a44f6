"""A supervisor's client of the Ops gRPC service, built the way any team would build one: Python
grpcio with stubs generated from proto/ (by tests/ops.rs, into a temporary directory).

    python3 ops_client.py STUBS_DIR HOST:PORT TOKEN COMMAND

COMMAND:
  control   waits for a live call, checks that calls without (or with a wrong) token are
            refused, speaks a supervisor line, forces a handoff, waits for the bridge, hangs up
            and reads the ended call back; bad input gets NOT_FOUND / INVALID_ARGUMENT.
  watch N SECONDS
            opens N WatchEvents streams for SECONDS and prints how many events each received.

Prints one JSON object on stdout; any failed expectation exits non-zero with the reason.
"""
import json
import sys
import threading
import time

stubs, target, token, command = sys.argv[1:5]
sys.path.insert(0, stubs)

import grpc  # noqa: E402
from frontline.ops.v1 import ops_pb2, ops_pb2_grpc  # noqa: E402

AUTH = [("authorization", f"Bearer {token}")]


def fail(why):
    print(json.dumps({"error": why}))
    sys.exit(1)


def expect_code(code, fn, *args):
    try:
        fn(*args)
    except grpc.RpcError as e:
        if e.code() != code:
            fail(f"expected {code}, got {e.code()}: {e.details()}")
        return e.details()
    fail(f"expected {code}, the call succeeded")


def state_name(value):
    return ops_pb2.CallState.Name(value)


def wait_for(what, fn, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    fail(f"timed out waiting for {what}")


def control(stub):
    live = wait_for(
        "a live call",
        lambda: stub.ListCalls(ops_pb2.ListCallsRequest(state="live"), metadata=AUTH).calls,
    )
    call_id = live[0].call_id
    out = {"call_id": call_id, "state_before": state_name(live[0].state)}

    # Access: no token, a wrong token.
    out["no_token"] = expect_code(grpc.StatusCode.UNAUTHENTICATED, stub.GetStats, ops_pb2.GetStatsRequest())
    out["wrong_token"] = expect_code(
        grpc.StatusCode.UNAUTHENTICATED,
        lambda: stub.Hangup(ops_pb2.HangupRequest(call_id=call_id), metadata=[("authorization", "Bearer nope")]),
    )

    # Bad input gets the protocol's own errors, naming what was wrong.
    out["unknown_call"] = expect_code(
        grpc.StatusCode.NOT_FOUND, lambda: stub.GetCall(ops_pb2.GetCallRequest(call_id="no-such-call"), metadata=AUTH)
    )
    out["unknown_hangup"] = expect_code(
        grpc.StatusCode.NOT_FOUND, lambda: stub.Hangup(ops_pb2.HangupRequest(call_id="no-such-call"), metadata=AUTH)
    )
    out["bad_state"] = expect_code(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: stub.ListCalls(ops_pb2.ListCallsRequest(state="flying"), metadata=AUTH)
    )
    out["bad_channel"] = expect_code(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: stub.ListCalls(ops_pb2.ListCallsRequest(channel="fax"), metadata=AUTH)
    )
    out["bad_event_type"] = expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: next(iter(stub.WatchEvents(ops_pb2.WatchEventsRequest(types=["exploded"]), metadata=AUTH))),
    )

    out["say"] = stub.Say(
        ops_pb2.SayRequest(call_id=call_id, text="A supervisor is listening to this call."), metadata=AUTH
    ).result
    out["escalate"] = stub.Escalate(
        ops_pb2.EscalateRequest(call_id=call_id, reason="caller sounds confused"), metadata=AUTH
    ).result
    out["escalate_again"] = expect_code(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: stub.Escalate(ops_pb2.EscalateRequest(call_id=call_id), metadata=AUTH),
    )

    def bridged():
        call = stub.GetCall(ops_pb2.GetCallRequest(call_id=call_id), metadata=AUTH).call
        return call if call.summary.state == ops_pb2.CALL_STATE_BRIDGED else None

    wait_for("the agent bridge", bridged)
    out["hangup"] = stub.Hangup(ops_pb2.HangupRequest(call_id=call_id, reason="supervisor-ended"), metadata=AUTH).result

    def ended():
        call = stub.GetCall(ops_pb2.GetCallRequest(call_id=call_id), metadata=AUTH).call
        return call if call.summary.state == ops_pb2.CALL_STATE_ENDED else None

    call = wait_for("the end of the call", ended)
    out["timeline"] = [state_name(s.state) for s in call.timeline]
    out["outcome"] = call.summary.outcome
    out["end_reason"] = call.end_reason
    out["decisions"] = [
        {"code": d.code, "category": d.category, "evidence": [e.text for e in d.evidence]} for d in call.decisions
    ]
    out["transcript_speakers"] = sorted({line.speaker for line in call.transcript})
    out["packet"] = json.loads(call.handoff_packet_json) if call.handoff_packet_json else None
    out["after_end"] = expect_code(
        grpc.StatusCode.NOT_FOUND, lambda: stub.Hangup(ops_pb2.HangupRequest(call_id=call_id), metadata=AUTH)
    )
    stats = stub.GetStats(ops_pb2.GetStatsRequest(), metadata=AUTH)
    out["stats"] = {
        "calls_finished": stats.calls_finished,
        "escalation_rate_by_reason": dict(stats.escalation_rate_by_reason),
        "outcomes": dict(stats.outcomes),
    }
    return out


def watch(stub, count, seconds):
    """N watchers read everything for SECONDS; each counts what it received."""
    counts = [0] * count
    errors = []
    streams = [stub.WatchEvents(ops_pb2.WatchEventsRequest(), metadata=AUTH) for _ in range(count)]

    def read(i):
        try:
            for _ in streams[i]:
                counts[i] += 1
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                errors.append(f"{e.code()}: {e.details()}")

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    for s in streams:
        s.cancel()
    for t in threads:
        t.join(5)
    return {"watchers": count, "events": counts, "errors": errors}


with grpc.insecure_channel(target) as channel:
    stub = ops_pb2_grpc.OpsStub(channel)
    if command == "control":
        result = control(stub)
    elif command == "watch":
        result = watch(stub, int(sys.argv[5]), float(sys.argv[6]))
    else:
        fail(f"unknown command {command}")
    print(json.dumps(result))
