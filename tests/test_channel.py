"""The channel between the trusted side and the kernel's functions (gradekit.channel, autograder.channel).

A student's functions served from a plain subprocess and from a real sandboxed kernel: typed values both ways, the
state of arguments changed in place, the student's error with its line, gradients as vector-Jacobian products (a
trusted loop trains to the same bits as in-process, and a gradient that flows into the baseline is seen). Then a
hostile kernel (a fake server on a socketpair) that answers oversized, malformed, with forbidden dtypes, late, or
hangs up: each is that call's typed error, the trusted side never crashes, and nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import channel as client
from autograder.channel import CallError, Channel, remote_grad
from gradekit import channel as wire

ROOT = Path(__file__).resolve().parent.parent

STUDENT = '''
import os, time
import numpy as np
import torch


def echo(*args):
    return args


def update_in_place(logits, action, reward, lr):
    logits[action] += lr * reward


def update_table(states, returns, table, step):
    for s, g in zip(states, returns.tolist()):
        table[s] = table.get(s, 0.0) + step * (g - table.get(s, 0.0))
    return torch.tensor([table[s] for s in states])


def loss_detached(log_probs, returns, baseline):
    return -(log_probs * (returns - baseline.detach())).mean()


def loss_leaky(log_probs, returns, baseline):
    return -(log_probs * (returns - baseline)).mean()


def loss_constant(log_probs, returns, baseline):
    return torch.tensor(float((log_probs * returns).sum()))


def broken(x):
    y = x * 2
    return y[10]


class Trap(dict):
    def items(self):
        raise RuntimeError("caught you reading me")


def unsendable(kind):
    if kind == "trap":
        return Trap(a=1)
    if kind == "meta":
        return torch.empty(3, device="meta")
    return object() if kind == "object" else np.ones(3, dtype=np.float16)


class Unreadable(Exception):
    def __str__(self):
        raise RuntimeError("no")


def interrupt(kind):
    raise KeyboardInterrupt if kind == "interrupt" else Unreadable()


def hang(seconds):
    time.sleep(seconds)
    return seconds


def leave():
    os._exit(3)


calls = 0


def count():
    global calls
    calls += 1
    return calls, os.getpid()
'''


def serve_code(path: str, source: Path, fork: bool = False) -> str:
    source.write_text(STUDENT)  # a file, so that a traceback shows the student's line
    return (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            f"namespace = {{}}\nexec(compile(open({str(source)!r}).read(), {str(source)!r}, 'exec'), namespace)\n"
            f"import gradekit.channel\ngradekit.channel.serve(namespace, {path!r}, background=False, fork={fork})\n")


def start_server(folder: Path, fork: bool = False) -> tuple[subprocess.Popen, str]:
    path = str(folder / "channel.sock")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", serve_code(path, folder / "student.py", fork)], env=env), path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The student's functions served by a plain subprocess (one connection at a time): its socket's path."""
    proc, path = start_server(tmp_path_factory.mktemp("served"))
    yield path
    proc.kill()
    proc.wait()


@pytest.fixture
def served(server):
    """A channel of its own to the served functions."""
    with Channel(server, timeout=20, connect_timeout=30) as chan:
        yield chan


@pytest.fixture(scope="module")
def here():
    """The same functions in this process: what the channel must reproduce."""
    namespace: dict = {}
    exec(compile(STUDENT, "student.py", "exec"), namespace)  # noqa: S102 - the test's own code
    return namespace


ALLOWED = (type(None), bool, int, float, str, list, tuple, dict, np.ndarray, torch.Tensor)


def only_data(value) -> bool:
    """Everything a decoded answer holds is plain data (nothing of a type the channel does not carry)."""
    if isinstance(value, (list, tuple)):
        return all(only_data(v) for v in value)
    if isinstance(value, dict):
        return all(only_data(k) and only_data(v) for k, v in value.items())
    return type(value) in ALLOWED


# ------------------------------------------------------------------------------------------------ the contract
def test_values_cross_both_ways_typed(served):
    """Numbers (NaN and infinities as data), strings, lists, tuples, dicts with int keys, arrays of every allowed
    dtype (0-d and empty too) and tensors (requires_grad kept) come back as they went."""
    values = [None, True, 3, -2**62, 0.1, float("nan"), float("inf"), -float("inf"), "é\u2603", [1, [2.5]], (1, "a"),
              {-1: 0.5, 0: 1.0, "k": [None]}, np.float64(2.5), np.int64(7),
              np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.0, np.nan, np.inf]), np.array(4, np.int32),
              np.arange(3, dtype=np.int64), np.array([True, False]), np.zeros((0, 3)),
              torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor(3.0, dtype=torch.float64),
              torch.tensor([1, 2], dtype=torch.int64)]
    (got,) = [served.call("echo", *values)]
    assert isinstance(got, tuple) and len(got) == len(values) and only_data(got)
    for sent, back in zip(values, got):
        if isinstance(sent, torch.Tensor):
            assert isinstance(back, torch.Tensor) and back.dtype == sent.dtype and back.shape == sent.shape
            assert torch.equal(back.detach(), sent.detach()) and back.requires_grad == sent.requires_grad
        elif isinstance(sent, np.ndarray):
            assert isinstance(back, np.ndarray) and back.dtype == sent.dtype and back.shape == sent.shape
            np.testing.assert_array_equal(back, sent)
        elif isinstance(sent, float) and sent != sent:
            assert back != back
        else:
            assert back == sent and type(back) is type(sent.item() if isinstance(sent, np.generic) else sent)


def test_changes_in_place_come_back_as_the_arguments_state(served, here):
    """An array updated in place (None returned) and a dict table updated in place come back as their state after
    the call, as the same calls leave them in-process; what the trusted side sent is untouched."""
    logits = np.array([[0.1], [0.2], [0.3]])
    reply = served.call_back("update_in_place", logits, 1, 2.0, 0.5, back=[0])
    expected = logits.copy()
    here["update_in_place"](expected, 1, 2.0, 0.5)
    assert reply.value is None and reply.after[0].shape == (3, 1)
    np.testing.assert_array_equal(reply.after[0], expected)
    assert logits[1, 0] == 0.2  # a copy crossed: the trusted side's array is its own

    table = {-1: 0.5, 0: 0.25}
    returns = torch.tensor([1.0, 0.5, 0.25])
    reply = served.call_back("update_table", [-1, 0, 1], returns, table, 0.1, back=[2])
    mine = dict(table)
    baseline = here["update_table"]([-1, 0, 1], returns, mine, 0.1)
    assert reply.after[0] == mine and set(reply.after[0]) == {-1, 0, 1}
    assert torch.equal(reply.value, baseline)


def test_a_stand_in_leaves_the_callers_objects_as_an_in_process_call_would(served, here):
    """``remote_function``: a trusted loop calls the stand-in as the function itself; the array and the dict it
    passed where its contract lets it update them in place hold afterwards what the kernel's call left in them, and
    the result is the same."""
    update = client.remote_function(served, "update_in_place", in_place=(0,))
    table_update = client.remote_function(served, "update_table", in_place=(2,))
    mine, theirs = np.array([[0.1], [0.2], [0.3]]), np.array([[0.1], [0.2], [0.3]])
    assert update(mine, 2, 1.0, 0.5) is None
    here["update_in_place"](theirs, 2, 1.0, 0.5)
    np.testing.assert_array_equal(mine, theirs)
    mine, theirs = {0: 0.5}, {0: 0.5}
    returns = torch.tensor([1.0, 2.0])
    got = table_update([0, 1], returns, mine, 0.5)
    assert torch.equal(got, here["update_table"]([0, 1], returns, theirs, 0.5)) and mine == theirs


def test_a_stand_in_never_writes_an_argument_its_contract_does_not_let_change(served, here):
    """Only the positions ``in_place`` names come back: a function that changes another argument (the rewards the
    loop records, say) changes its own copy, never the loop's; in process, the same call would have."""
    mine, theirs = np.array([[0.1], [0.2], [0.3]]), np.array([[0.1], [0.2], [0.3]])
    assert client.remote_function(served, "update_in_place")(mine, 2, 1.0, 0.5) is None
    here["update_in_place"](theirs, 2, 1.0, 0.5)
    assert not np.array_equal(mine, theirs) and mine.tolist() == [[0.1], [0.2], [0.3]]
    table = {0: 0.5}
    client.remote_function(served, "update_table", in_place=(0,))([0, 1], torch.tensor([1.0, 2.0]), table, 0.5)
    assert table == {0: 0.5}


def test_the_students_error_is_typed_with_its_line(served):
    with pytest.raises(CallError) as info:
        served.call("broken", np.ones(3))
    error = info.value
    assert (error.kind, error.type, error.function) == ("Raised", "IndexError", "broken")
    line = STUDENT.splitlines().index("    return y[10]") + 1
    assert error.where == f"line {line}: return y[10]", error.where
    with pytest.raises(CallError, match="`missing` is not defined"):
        served.call("missing")
    assert served.call("echo", 1) == (1,)  # the channel goes on


@pytest.mark.parametrize("kind", ["interrupt", "unreadable"])
def test_any_exception_is_that_calls_error(served, kind):
    """A KeyboardInterrupt, or an exception whose message raises as it is read, is an error for that call; the server
    goes on."""
    with pytest.raises(CallError) as info:
        served.call("interrupt", kind)
    assert info.value.type == ("KeyboardInterrupt" if kind == "interrupt" else "Unreadable")
    assert served.call("echo", 4) == (4,)


@pytest.mark.parametrize("kind", ["object", "float16", "trap", "meta"])
def test_a_result_that_cannot_cross_is_that_calls_error(served, kind):
    """An object of any other type, an array of a dtype off the allow-list, a dict whose own code raises as it is read,
    a tensor with no data: never sent, a ContractError for that call, and the next call is answered."""
    with pytest.raises(CallError, match="cannot be sent to the grader") as info:
        served.call("unsendable", kind)
    assert info.value.type == "ContractError"
    assert served.call("echo", 2) == (2,)


def test_with_fork_each_connection_has_a_copy_of_its_own(tmp_path):
    """Seeds in parallel: two connections open at once are both answered, each by a forked copy of the kernel whose
    state (a global counter) is its own and starts from the kernel's; a copy that exits leaves the others serving."""
    proc, path = start_server(tmp_path, fork=True)
    try:
        with Channel(path, timeout=20, connect_timeout=30) as first, Channel(path, timeout=20) as second:
            a1, a2 = first.call("count"), first.call("count")
            b1 = second.call("count")
            assert (a1[0], a2[0], b1[0]) == (1, 2, 1)
            assert a1[1] == a2[1] != b1[1] != proc.pid
            with pytest.raises(CallError) as info:
                first.call("leave")
            assert info.value.kind == "Closed"
            assert second.call("count")[0] == 2
            with Channel(path, timeout=20) as third:
                assert third.call("count")[0] == 1
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------------------ gradients
def trusted_training(loss, steps: int = 40, seed: int = 0, scale: float = 1.0):
    """A trusted loop: a policy network and a value network (the baseline), Adam, sampling from a torch Generator,
    one update a step through ``scale * loss(log_probs, returns, baseline)``. Returns both networks' parameters."""
    torch.manual_seed(seed)
    policy = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    value = torch.nn.Linear(4, 1)
    optimiser = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=0.01)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        states = torch.randn(8, 4, generator=generator)
        logits = torch.log_softmax(policy(states), dim=-1)
        actions = torch.multinomial(logits.exp().detach(), 1, generator=generator).squeeze(-1)
        log_probs = logits[torch.arange(8), actions]
        returns = torch.randn(8, generator=generator)
        baseline = value(states).squeeze(-1)
        optimiser.zero_grad()
        total = loss(log_probs, returns, baseline)
        (total if scale == 1.0 else scale * total).backward()
        optimiser.step()
    return [p.detach().clone() for p in [*policy.parameters(), *value.parameters()]]


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("name", ["loss_detached", "loss_leaky"])
def test_a_trusted_loop_trains_to_the_same_bits_through_the_channel(served, here, name, scale):
    """The same loop, its loss computed in the kernel (forward: the value; backward: the kernel's vector-Jacobian
    product, computed with the value for an upstream 1, asked for in a second round trip for 0.5), ends with
    parameters equal to the bit to the loop calling the function in-process: for the policy, and for the value
    network, which only the leaky loss trains (no gradient through the advantages is observable from the trusted
    side)."""
    calls = served.next_id
    remote = trusted_training(lambda *a: remote_grad(served, name, *a), scale=scale)
    assert served.next_id - calls == 40 * (1 if scale == 1.0 else 2)
    local = trusted_training(here[name], scale=scale)
    assert all(torch.equal(r, m) for r, m in zip(remote, local))
    untrained = trusted_training(lambda lp, g, b: here["loss_detached"](lp, g, b.detach()), steps=0)
    value_moved = not all(torch.equal(r, u) for r, u in zip(remote[-2:], untrained[-2:]))
    assert value_moved == (name == "loss_leaky")


def test_a_gradient_into_the_baseline_is_seen_on_the_trusted_side(served, here):
    log_probs = torch.tensor([-0.5, -1.2, -0.1], requires_grad=True)
    returns = torch.tensor([1.0, 0.5, 0.25])
    grads = {}
    for name in ("loss_detached", "loss_leaky"):
        baseline = torch.tensor([0.2, 0.1, 0.0], requires_grad=True)
        remote_grad(served, name, log_probs, returns, baseline).backward()
        grads[name] = baseline.grad
    assert grads["loss_detached"] is None
    baseline = torch.tensor([0.2, 0.1, 0.0], requires_grad=True)
    here["loss_leaky"](log_probs.detach(), returns, baseline).backward()
    assert torch.equal(grads["loss_leaky"], baseline.grad) and baseline.grad.abs().min() > 0


def test_a_result_cut_from_its_inputs_has_no_gradient_here_either(served):
    """A loss rebuilt with torch.tensor carries no gradient in the kernel: nor does it on the trusted side, so the
    drivers' "not connected" check still fires."""
    log_probs = torch.tensor([-0.5, -1.2], requires_grad=True)
    loss = remote_grad(served, "loss_constant", log_probs, torch.ones(2), torch.zeros(2, requires_grad=True))
    assert not loss.requires_grad
    torch.testing.assert_close(loss, torch.tensor(-1.7))


def test_a_late_answer_is_a_timeout_and_is_dropped(served):
    with pytest.raises(CallError) as info:
        served.call("hang", 0.5, timeout=0.1)
    assert info.value.kind == "Timeout"
    assert served.call("echo", "next", timeout=10) == ("next",)
    assert served.stale == 1


def test_a_channel_closed_while_the_kernel_works_leaves_the_server_serving(server):
    """The trusted side gives up on a slow call and hangs up; the kernel's late answer finds nobody: the next
    connection is served all the same."""
    chan = Channel(server, timeout=20)
    with pytest.raises(CallError):
        chan.call("hang", 0.3, timeout=0.05)
    chan.close()
    time.sleep(0.5)
    with Channel(server, timeout=20) as again:
        assert again.call("echo", 3) == (3,)


def test_a_tensor_with_grad_inside_a_list_is_refused_not_cut(served):
    """Its gradient could not flow back through a list: the trusted side's own mistake, said at once."""
    log_probs = [torch.tensor(-0.5, requires_grad=True)]
    with pytest.raises(TypeError, match="argument of its own"):
        client.remote_function(served, "echo")(log_probs)


def test_a_kernel_that_exits_is_closed(tmp_path):
    proc, path = start_server(tmp_path)
    try:
        with Channel(path, timeout=20, connect_timeout=30) as served:
            with pytest.raises(CallError) as info:
                served.call("leave")
            assert info.value.kind == "Closed"
            with pytest.raises(CallError) as info:
                served.call("echo", 1)
            assert info.value.kind == "Closed"
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------------------ a hostile kernel
def frame(header, body: bytes = b"", raw: bool = False) -> bytes:
    text = header if raw else json.dumps(header).encode()
    return struct.pack("<II", len(text), len(body)) + text + body


def answer_array(spec: list, body: bytes) -> bytes:
    return frame({"id": 1, "ok": {"$a": spec}, "after": []}, body)


HOSTILE = {
    # name: (bytes the kernel answers with, the kind of error, whether the channel stays usable)
    "oversized header": (struct.pack("<II", 2**31, 0), "Oversized", False),
    "oversized body": (struct.pack("<II", 10, 2**30), "Oversized", False),
    "not utf-8": (frame(b"\xff\xfe{}", raw=True), "Malformed", True),
    "not json": (frame(b"{'id': 1}", raw=True), "Malformed", True),
    "a list header": (frame([1, 2]), "Malformed", True),
    "nested deep": (frame(b"[" * 200_000 + b"]" * 200_000, raw=True), "Malformed", True),
    "nested in a value": (frame(b'{"id": 1, "ok": {"$t": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}}", raw=True),
                          "Malformed", True),
    "an integer too long": (frame(b'{"id": 1, "ok": ' + b"9" * 5000 + b"}", raw=True), "Malformed", True),
    "neither ok nor error": (frame({"id": 1}), "Malformed", True),
    "an error not an object": (frame({"id": 1, "error": "boom"}), "Malformed", True),
    "an unknown tag": (frame({"id": 1, "ok": {"$p": "cos\nsystem"}}), "Malformed", True),
    "two tags": (frame({"id": 1, "ok": {"$t": [], "$d": []}}), "Malformed", True),
    "a dict key that is a list": (frame({"id": 1, "ok": {"$d": [[[1], 2]]}}), "Malformed", True),
    "dtype object": (answer_array(["ndarray", "object", [1], 0, False], bytes(8)), "ForbiddenDtype", True),
    "dtype float16": (answer_array(["ndarray", "float16", [4], 0, False], bytes(8)), "ForbiddenDtype", True),
    "dtype big-endian": (answer_array(["ndarray", ">f8", [1], 0, False], bytes(8)), "ForbiddenDtype", True),
    "dtype as a numpy code": (answer_array(["ndarray", "<f8", [1], 0, False], bytes(8)), "ForbiddenDtype", True),
    "more elements than bytes": (answer_array(["ndarray", "float64", [1000], 0, False], bytes(8)), "Malformed", True),
    "a negative size": (answer_array(["ndarray", "float64", [-1], 0, False], bytes(8)), "Malformed", True),
    "a size that is a bool": (answer_array(["ndarray", "float64", [True], 0, False], bytes(8)), "Malformed", True),
    "too many dimensions": (answer_array(["ndarray", "float64", [1] * 9, 0, False], bytes(8)), "Malformed", True),
    "an offset outside": (answer_array(["ndarray", "float64", [1], 64, False], bytes(8)), "Malformed", True),
    "overlapping arrays": (frame({"id": 1, "ok": [{"$a": ["ndarray", "float64", [1], 0, False]},
                                                  {"$a": ["ndarray", "float64", [1], 0, False]}]}, bytes(8)),
                           "Malformed", True),
    "an int tensor with grad": (answer_array(["tensor", "int64", [1], 0, True], bytes(8)), "Malformed", True),
    "an unknown kind": (answer_array(["pickle", "float64", [1], 0, False], bytes(8)), "Malformed", True),
    "gradients of another shape": (frame({"id": 1, "ok": {"$a": ["tensor", "float32", [], 0, True]},
                                          "grads": [{"$a": ["tensor", "float32", [2], 8, False]}]}, bytes(16)),
                                   "Malformed", True),
    "a frame cut short": (struct.pack("<II", 100, 0) + b'{"id"', "Timeout", False),
    "an answer to a call never made": (frame({"id": 7, "ok": 1}), "Malformed", False),
    "hangs up": (b"", "Closed", False),
}


def fake_kernel(sock: socket.socket, answer: bytes, then_serve: bool = True) -> None:
    """Read one call, answer it with ``answer`` (nothing: hang up), then (still open) answer every call with 1."""
    reader = wire.FrameReader(sock)
    try:
        reader.frame()
        if not answer:
            sock.close()
            return
        sock.sendall(answer)
        while then_serve:
            raw, _ = reader.frame()
            ident = json.loads(raw)["id"]
            sock.sendall(frame({"id": ident, "ok": 1, "after": []}))
    except (EOFError, OSError):
        pass


@pytest.fixture
def no_unpickling(monkeypatch):
    """Anything that would unpickle fails the test loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("the trusted side unpickled something")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", refuse)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_answer_is_that_calls_typed_error(case, no_unpickling):
    answer, kind, usable = HOSTILE[case]
    mine, theirs = socket.socketpair()
    kernel = threading.Thread(target=fake_kernel, args=(theirs, answer), daemon=True)
    kernel.start()
    chan = Channel(None, timeout=0.5, sock=mine)
    with pytest.raises(CallError) as info:
        remote_grad(chan, "f", torch.ones(3, requires_grad=True))  # a call that keeps its graph: any answer parsed
    assert info.value.kind == kind, info.value
    if usable:
        assert chan.call("f", 1) == 1 and chan.closed is None
    else:
        with pytest.raises(CallError) as after:
            chan.call("f", 1)
        assert after.value.kind == "Closed" and chan.closed
    chan.close()
    theirs.close()
    kernel.join(5)


def test_bool_bytes_other_than_0_and_1_are_read_as_true(no_unpickling):
    """numpy would keep the byte 2 in a bool array as an invalid bool: the channel reads bytes and compares."""
    mine, theirs = socket.socketpair()
    answer = answer_array(["ndarray", "bool", [3], 0, False], bytes([0, 1, 2]))
    threading.Thread(target=fake_kernel, args=(theirs, answer), daemon=True).start()
    with Channel(None, timeout=2, sock=mine) as chan:
        got = chan.call("f")
    assert got.dtype == np.bool_ and got.tolist() == [False, True, True] and got.view(np.uint8).tolist() == [0, 1, 1]


def test_a_slow_drip_answer_meets_the_deadline_of_the_whole_call():
    """A kernel that sends one byte at a time cannot hold a call past its deadline (each read is not a new wait)."""
    mine, theirs = socket.socketpair()
    answer = frame({"id": 1, "ok": 1})

    def drip():
        wire.FrameReader(theirs).frame()
        try:
            for byte in answer:
                theirs.send(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass

    threading.Thread(target=drip, daemon=True).start()
    chan = Channel(None, timeout=0.5, sock=mine)
    start = time.monotonic()
    with pytest.raises(CallError) as info:
        chan.call("f")
    assert info.value.kind == "Timeout" and time.monotonic() - start < 0.8
    assert chan.closed  # part of a frame came: the framing is lost
    theirs.close()


def slow_echo_kernel(sock: socket.socket, delay: float) -> None:
    """Waits ``delay`` before reading anything, then answers each call with the length of its body."""
    time.sleep(delay)
    reader = wire.FrameReader(sock)
    try:
        while True:
            raw, body = reader.frame()
            sock.sendall(frame({"id": json.loads(raw)["id"], "ok": len(body)}))
    except (EOFError, OSError):
        pass


@pytest.mark.parametrize("size", [3_000, 1_000_000])
def test_a_call_larger_than_the_socket_buffer_arrives_whole(size):
    """A kernel slow to read, a send buffer smaller than the call: the call is sent whole (one sendmsg may send part
    of it), within the deadline."""
    mine, theirs = socket.socketpair()
    mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    threading.Thread(target=slow_echo_kernel, args=(theirs, 0.2), daemon=True).start()
    with Channel(None, timeout=10, sock=mine) as chan:
        assert chan.call("f", np.zeros(size)) == 8 * size
        assert chan.call("f", np.zeros(size)) == 8 * size


def test_a_kernel_that_never_reads_the_call_is_a_timeout():
    mine, theirs = socket.socketpair()
    mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    chan = Channel(None, timeout=0.3, sock=mine)
    errors: list = []

    def call():
        try:
            chan.call("f", np.zeros(1_000_000))
        except CallError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(2.0)
    outlived = caller.is_alive()
    theirs.close()  # (frees a caller still blocked in its send)
    caller.join(5)
    assert not outlived, "the send outlived the call's deadline"
    assert [e.kind for e in errors] == ["Timeout"] and chan.closed


def test_a_socket_planted_as_a_symlink_is_refused(tmp_path):
    """The kernel owns the folder its socket lives in; under /proc/<pid>/root an absolute symlink resolves in the
    grader's filesystem. A symlink to a socket of the host is refused, where a plain connect would follow it."""
    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    host.bind(str(tmp_path / "host.sock"))
    host.listen(1)
    (tmp_path / "channel.sock").symlink_to(tmp_path / "host.sock")
    plain = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    plain.connect(str(tmp_path / "channel.sock"))  # what following the path would do: reach the host's socket
    plain.close()
    with pytest.raises(CallError, match="not a socket") as info:
        Channel(str(tmp_path / "channel.sock"), connect_timeout=1)
    assert info.value.kind == "Closed"
    (tmp_path / "file.sock").write_text("")
    with pytest.raises(CallError, match="not a socket"):
        Channel(str(tmp_path / "file.sock"), connect_timeout=1)
    host.close()


def test_the_server_survives_malformed_calls(tmp_path):
    """The kernel's server answers a call it cannot decode with that call's error, and ends a connection whose framing
    is lost: the next connection is served."""
    sock_a, sock_b = socket.socketpair()
    server = wire.Server({"f": lambda x: x})
    thread = threading.Thread(target=server.serve_connection, args=(sock_b,), daemon=True)
    thread.start()
    sock_a.sendall(frame({"op": "call", "id": 1, "fn": "f", "args": [{"$a": ["ndarray", "object", [1], 0, False]}]},
                         bytes(8)))
    chan = Channel(None, timeout=5, sock=sock_a)
    chan.next_id = 1
    header, _ = chan.receive(1, time.monotonic() + 5, "f")
    assert header["error"]["type"] == "ForbiddenDtype"
    assert chan.call("f", [1.5]) == [1.5]
    sock_a.sendall(struct.pack("<II", 2**31, 0))
    thread.join(5)
    assert not thread.is_alive()
    chan.close()


# ------------------------------------------------------------------------------------------------ the real sandbox
SANDBOXED = STUDENT + '''

def escape_attempt():
    import os
    return sorted(os.listdir("/run/kernel"))
'''


def test_a_sandboxed_kernel_cannot_point_the_grader_at_a_host_socket(course, tmp_path):
    """In the real sandbox: the kernel plants, in its /run/kernel, a symlink to a socket of the grader's host. Followed
    through /proc/<pid>/root it reaches that socket (the attack is real); the channel refuses it."""
    from autograder.execute import KernelSession

    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    host.bind(str(tmp_path / "host.sock"))
    host.listen(1)
    with KernelSession(course.assignment().limits, {"gradekit": ROOT / "gradekit"}) as kernel:
        if kernel.isolation["level"] != "full":
            pytest.skip("needs the sandbox's own /run/kernel (level full)")
        planted = kernel.run(f"import os\nos.symlink({str(tmp_path / 'host.sock')!r}, '/run/kernel/channel.sock')")
        assert planted.status == "ok", planted.error
        _, outside = client.socket_paths(kernel.box)
        plain = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        plain.connect(outside)  # a plain connect, as by path: the grader's host socket answers
        plain.close()
        with pytest.raises(CallError, match="not a socket"):
            Channel(outside, connect_timeout=1)
    host.close()


def test_the_channel_to_a_sandboxed_kernel(course):
    """A real kernel (the probed isolation level, bubblewrap here): served after its cells, reached from the grader
    through /proc/<pid>/root; values, states in place, gradients and errors as from a plain process."""
    from autograder.execute import KernelSession

    assignment = course.assignment()
    with KernelSession(assignment.limits, {"gradekit": ROOT / "gradekit"}) as kernel:
        assert kernel.run(SANDBOXED).status == "ok"
        with client.start(kernel, timeout=20) as chan:
            level = kernel.isolation["level"]
            if level == "full":
                assert chan.path == f"/proc/{kernel.box.child_pid}/root/run/kernel/channel.sock"
                assert "channel.sock" in chan.call("escape_attempt")
            assert chan.call("echo", np.arange(3.0), {1: "a"})[1] == {1: "a"}
            reply = chan.call_back("update_in_place", np.zeros((3, 1)), 2, 1.0, 0.5, back=[0])
            np.testing.assert_array_equal(reply.after[0], [[0.0], [0.0], [0.5]])
            log_probs = torch.tensor([-0.5, -1.2], requires_grad=True)
            baseline = torch.tensor([0.1, 0.2], requires_grad=True)
            remote_grad(chan, "loss_leaky", log_probs, torch.ones(2), baseline).backward()
            torch.testing.assert_close(log_probs.grad, torch.tensor([-0.45, -0.4]))
            assert baseline.grad is not None
            with pytest.raises(CallError) as info:
                chan.call("broken", np.ones(2))
            assert info.value.type == "IndexError" and "y[10]" in info.value.where
            with pytest.raises(CallError) as info:
                chan.call("hang", 5, timeout=0.2)
            assert info.value.kind == "Timeout"
        with client.start(kernel, "forked.sock", timeout=20, fork=True) as first, Channel(first.path) as second:
            (n1, pid1), (n2, pid2) = first.call("count"), second.call("count")
            assert n1 == n2 == 1 and pid1 != pid2  # a copy of the kernel per connection: seeds in parallel
            log_probs = torch.tensor([-0.5, -1.2], requires_grad=True)
            remote_grad(second, "loss_leaky", log_probs, torch.ones(2), torch.zeros(2)).backward()
            torch.testing.assert_close(log_probs.grad, torch.tensor([-0.5, -0.5]))
        assert kernel.run("print('still a kernel')").status == "ok"
