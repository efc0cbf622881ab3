"""Drives the installed FastNotebooks kernel with jupyter_client, a client this project did not write.

Usage: protocol_check.py KERNEL_NAME   (JUPYTER_DATA_DIR must name the folder the kernelspec is installed in)
Prints one line per check ("ok <name> <seconds>s" or "FAIL <name>: <why>") and exits 1 if any check failed.
No check races a clock: each waits for an event (a message, a file); SAFETY only turns a hang into a failure.
"""
import os
import queue
import signal
import sys
import tempfile
import time
import uuid

import jupyter_client
import zmq
from jupyter_client.session import Session

# A process started as a background job of a non-interactive shell (`cmd &`, as CI scripts often do) inherits SIGINT ignored,
# and so would the kernel started below: an ignored signal stays ignored across exec, and the .NET runtime keeps an inherited
# ignore. The SIGINT check is about the kernel's own handler, so the kernel is given the default disposition whatever this
# script was started with. (Frontends interrupt by message: the kernelspec's interrupt_mode is "message".)
signal.signal(signal.SIGINT, signal.SIG_DFL)

KERNEL = sys.argv[1]
SAFETY = 300  # seconds; generous, so that a slow, loaded machine never reaches it in a passing run
SIGINT_SAFETY = 120  # seconds a kernel may take to answer SIGINT before it counts as ignoring it
failures = []


def check(name):
    def wrap(fn):
        start = time.monotonic()
        try:
            fn()
            print(f"ok {name} {time.monotonic() - start:.1f}s", flush=True)
        except Exception as e:  # report every check, not only the first failure
            failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        return fn
    return wrap


def shell_reply(kc, msg_id):
    """The shell reply to msg_id. wait_for_ready asks kernel_info until one answer comes; on a loaded machine the
    answers to its earlier asks arrive after it returned, so stale kernel_info replies are skipped (nothing else is)."""
    while True:
        reply = kc.get_shell_msg(timeout=SAFETY)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
        assert reply["msg_type"] == "kernel_info_reply", f"reply to another request: {reply['msg_type']}"


def run(kc, code, timeout=SAFETY):
    """Executes code; returns (reply content, iopub messages of this request until idle)."""
    msg_id = kc.execute(code)
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        m = kc.get_iopub_msg(timeout=max(1, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
        messages.append(m)
    return shell_reply(kc, msg_id)["content"], messages


def start_cell(kc, code):
    """Sends code prefixed by a line it prints, and returns its msg_id when that line arrives: the cell is running."""
    msg_id = kc.execute('Console.WriteLine("running");\n' + code)
    while True:
        m = kc.get_iopub_msg(timeout=SAFETY)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream" and "running" in m["content"]["text"]:
            return msg_id


def interrupt_running(kc, code, interrupt):
    """Starts code, interrupts it once it runs, and returns the reply's content (however long it takes to come)."""
    msg_id = start_cell(kc, code)
    start = time.monotonic()
    interrupt()
    reply = shell_reply(kc, msg_id)
    print(f"  interrupt to reply: {time.monotonic() - start:.2f}s", flush=True)
    return reply["content"]


km = jupyter_client.KernelManager(kernel_name=KERNEL)
km.start_kernel()
kc = km.client()
kc.start_channels()
kc.wait_for_ready(timeout=SAFETY)


@check("execute: stream, execute_result, execution_count")
def _():
    reply, messages = run(kc, 'var answer = 41 + 1;\nConsole.WriteLine("hello from C#");\nanswer')
    assert reply["status"] == "ok", reply
    types = [m["msg_type"] for m in messages]
    assert types[:2] == ["status", "execute_input"], types
    streams = [m["content"]["text"] for m in messages if m["msg_type"] == "stream"]
    assert streams == ["hello from C#\n"], streams
    result = [m["content"] for m in messages if m["msg_type"] == "execute_result"][0]
    assert "42" in result["data"]["text/plain"], result
    assert result["execution_count"] == reply["execution_count"], (result, reply)


@check("error: compile error and exception give error outputs and status error")
def _():
    reply, messages = run(kc, "int y = \"text\";")
    assert reply["status"] == "error" and reply["ename"] == "CompilationError", reply
    reply, messages = run(kc, 'throw new InvalidOperationException("boom");')
    assert reply["status"] == "error" and reply["ename"] == "InvalidOperationException" and reply["evalue"] == "boom", reply
    assert any(m["msg_type"] == "error" for m in messages)


@check("display: display_data (html), a Plotly chart, stderr")
def _():
    reply, messages = run(kc, 'display(new { Name = "fastmax", Order = 2 });\n'
                              'Console.Error.WriteLine("to stderr");\n'
                              'Chart.Line<int, int, string>(x: new[] { 1, 2 }, y: new[] { 3, 4 })')
    assert reply["status"] == "ok", reply
    displays = [m["content"] for m in messages if m["msg_type"] == "display_data"]
    assert len(displays) == 1 and "fastmax" in displays[0]["data"]["text/html"], displays
    assert [m["content"]["name"] for m in messages if m["msg_type"] == "stream"] == ["stderr"]
    chart = [m["content"] for m in messages if m["msg_type"] == "execute_result"][0]["data"]["text/html"]
    assert "plotly.js" in chart and "Plotly.newPlot" in chart, chart[:300]


@check("stream: output of a running cell arrives while it runs")
def _():
    # The cell prints, then waits for a file that this client creates only once it has received the printed line:
    # the cell can only finish if its output arrived while it ran.
    gate = os.path.join(tempfile.mkdtemp(), "gate")
    code = ('Console.WriteLine("first");\n'
            f'while (!System.IO.File.Exists(@"{gate}")) System.Threading.Thread.Sleep(10);\n'
            'Console.WriteLine("second");')
    msg_id = kc.execute(code)
    texts = []
    while True:
        m = kc.get_iopub_msg(timeout=SAFETY)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "stream":
            texts.append(m["content"]["text"])
            if texts == ["first\n"]:
                open(gate, "w").close()
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "".join(texts) == "first\nsecond\n", texts


@check("stop on error: cells queued behind a failing cell are aborted")
def _():
    ids = [kc.execute(code) for code in ('throw new Exception("first fails");', "var skipped = 1;", "var alsoSkipped = 2;")]
    replies = {}
    while len(replies) < 3:
        m = kc.get_shell_msg(timeout=SAFETY)
        if m["msg_type"] == "kernel_info_reply":
            continue  # a stale answer to wait_for_ready (see shell_reply)
        replies[m["parent_header"]["msg_id"]] = m["content"]["status"]
    assert [replies[i] for i in ids] == ["error", "aborted", "aborted"], [replies[i] for i in ids]
    reply, _ = run(kc, "skipped")
    assert reply["status"] == "error" and "CS0103" in reply["evalue"], reply


@check("complete: members of a variable in scope")
def _():
    reply = shell_reply(kc, kc.complete("answer.Comp", 11))["content"]
    assert reply["status"] == "ok" and "CompareTo" in reply["matches"], reply
    assert (reply["cursor_start"], reply["cursor_end"]) == (7, 11), reply
    types = {t["text"]: t["type"] for t in reply["metadata"]["_jupyter_types_experimental"]}
    assert types["CompareTo"] == "function", types
    reply = shell_reply(kc, kc.complete("ans", 3))["content"]
    assert "answer" in reply["matches"], reply


@check("is_complete and inspect")
def _():
    assert shell_reply(kc, kc.is_complete("for (var i = 0; i < 3; i++) {"))["content"]["status"] == "incomplete"
    assert shell_reply(kc, kc.is_complete("var z = 1;"))["content"]["status"] == "complete"
    reply = shell_reply(kc, kc.inspect("answer", 6))["content"]
    assert reply["found"] and "int" in reply["data"]["text/plain"], reply


@check("heartbeat: echoes each ping unchanged")
def _():
    info = km.get_connection_info()
    hb = zmq.Context.instance().socket(zmq.REQ)
    hb.setsockopt(zmq.LINGER, 0)
    hb.connect(f"tcp://{info['ip']}:{info['hb_port']}")
    for ping in (b"ping-1", b"second ping"):
        hb.send(ping)
        assert hb.poll(SAFETY * 1000) != 0, "no heartbeat echo"
        assert hb.recv_multipart() == [ping]
    hb.close()


@check("bad signature: message dropped, kernel still answers")
def _():
    info = km.get_connection_info()
    context = zmq.Context.instance()
    shell = context.socket(zmq.DEALER)
    shell.setsockopt(zmq.LINGER, 0)
    shell.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    session = Session(key=info["key"], signature_scheme=info["signature_scheme"])
    msg = session.msg("kernel_info_request", {})
    parts = [session.pack(msg["header"]), session.pack(msg["parent_header"]), session.pack(msg["metadata"]), session.pack(msg["content"])]
    # Same message, a signature made with another key: the kernel must not answer it. Then a second, correctly
    # signed message with its own id on the same socket. The kernel handles shell messages in order, so the first
    # reply that comes answers the forged one if the kernel answered it at all: no waiting for a silence.
    forged = Session(key=uuid.uuid4().hex.encode(), signature_scheme=info["signature_scheme"]).sign(parts)
    shell.send_multipart([b"<IDS|MSG>", forged] + parts)
    honest = session.msg("kernel_info_request", {})
    honest_parts = [session.pack(honest["header"]), session.pack(honest["parent_header"]), session.pack(honest["metadata"]), session.pack(honest["content"])]
    shell.send_multipart([b"<IDS|MSG>", session.sign(honest_parts)] + honest_parts)
    assert shell.poll(SAFETY * 1000) != 0, "no reply to a correctly signed message"
    frames = shell.recv_multipart()
    reply = session.deserialize(session.feed_identities(frames)[1])
    assert reply["parent_header"]["msg_id"] == honest["header"]["msg_id"], "the kernel answered the message with a bad signature"
    assert reply["msg_type"] == "kernel_info_reply" and reply["content"]["protocol_version"] == "5.3", reply["content"]
    shell.close()


@check("interrupt (interrupt_request): while (true) { } stops")
def _():
    reply = interrupt_running(kc, "long spins = 0;\nwhile (true) { spins++; }", km.interrupt_kernel)
    assert reply["status"] == "error" and reply["ename"] == "OperationCanceledException", reply


@check("interrupt (SIGINT): Thread.Sleep(600000) stops")
def _():
    # The cell would sleep ten minutes. A kernel that ignores SIGINT never answers: after SIGINT_SAFETY (only there to
    # turn that hang into a failure) the check fails, and stops the cell by message so the later checks still run.
    msg_id = start_cell(kc, "System.Threading.Thread.Sleep(600000);")
    start = time.monotonic()
    km.signal_kernel(signal.SIGINT)
    try:
        reply = kc.get_shell_msg(timeout=SIGINT_SAFETY)
        while reply["msg_type"] == "kernel_info_reply":  # stale (see shell_reply)
            reply = kc.get_shell_msg(timeout=SIGINT_SAFETY)
        assert reply["parent_header"].get("msg_id") == msg_id, f"reply to another request: {reply['msg_type']}"
        reply = reply["content"]
    except queue.Empty:
        km.interrupt_kernel()
        shell_reply(kc, msg_id)
        raise AssertionError(f"no reply to SIGINT within {SIGINT_SAFETY} s: the kernel ignored it (the cell was then stopped by interrupt_request)")
    print(f"  interrupt to reply: {time.monotonic() - start:.2f}s", flush=True)
    assert reply["status"] == "error" and reply["ename"] == "OperationCanceledException", reply


@check("after interrupts: state kept, next cell runs")
def _():
    reply, messages = run(kc, "answer * 2")
    assert reply["status"] == "ok", reply
    assert "84" in [m for m in messages if m["msg_type"] == "execute_result"][0]["content"]["data"]["text/plain"]


@check("restart: variables are gone")
def _():
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=SAFETY)
    reply, messages = run(kc, "answer")
    assert reply["status"] == "error" and "CS0103" in reply["evalue"], reply
    reply, messages = run(kc, "1 + 1")
    assert reply["status"] == "ok", reply


kc.stop_channels()
km.shutdown_kernel(now=False)
assert not km.is_alive(), "kernel still alive after shutdown"
print("failed: " + ", ".join(failures) if failures else "all checks passed", flush=True)
sys.exit(1 if failures else 0)
