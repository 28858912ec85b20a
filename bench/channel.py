"""What a call to a student's function across the sandbox wall costs: the channel (``gradekit.channel``) side by side
with an in-process call, a bare socketpair echo and a Jupyter message round trip, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/channel.py --calls 2000 --repeats 5
    OMP_NUM_THREADS=1 .venv/bin/python bench/channel.py --parts    # where a remote loss's step goes, part by part
    OMP_NUM_THREADS=1 .venv/bin/python bench/channel.py --wakeups  # the same work alone and by two processes in turn

Payloads: ``small`` (3 float64 values), ``batch`` (4,096 float64 values), each sent to ``f(x): return x`` and back;
``grad``: a remote loss ``-(log_probs * returns).mean()`` over 200 float32 log-probabilities, forward and backward (two
round trips, the vector-Jacobian product included). Ways: ``in-process`` (the same function called directly);
``socketpair`` (bytes of the same size echoed by a forked process: the floor of any two-process design);
``loopback`` (the channel's whole work, both sides' encoding, decoding and autograd, in this one process with no
socket: what the channel costs apart from moving bytes between processes); ``channel,
subprocess`` (a plain Python process serving the function); ``channel, sandbox`` (a real grading kernel at the probed
isolation level, reached through ``/proc/<pid>/root``); ``jupyter`` (``kernel.run`` of a cell calling the function).
For each: the median over repeats of the wall time per call, the trusted side's CPU per call, and the serving
process's CPU per call (``/proc/<pid>/stat``; the sandbox's cgroup). The last lines project a submission's calls.
Run it on a quiet machine before quoting it: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from autograder import channel as client  # noqa: E402
from autograder import config  # noqa: E402
from autograder.execute import KernelSession  # noqa: E402
from gradekit import channel as wire  # noqa: E402

FUNCTIONS = '''
import torch

def f(x):
    return x

def loss(log_probs, returns):
    return -(log_probs * returns).mean()
'''
PAYLOADS = {"small": 3, "batch": 4096}
GRAD_STEPS = 200


def payload(name: str):
    return np.linspace(0.0, 1.0, PAYLOADS[name])


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(step, calls: int, repeats: int, remote_cpu=None) -> tuple[float, float, float | None]:
    """Median wall, trusted CPU and remote CPU per call (µs) of ``step()`` run ``calls`` times, ``repeats`` times."""
    for _ in range(min(calls, 50)):
        step()
    walls, cpus, remotes = [], [], []
    for _ in range(repeats):
        r0 = remote_cpu() if remote_cpu else None
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            step()
        walls.append((time.perf_counter() - w0) / calls * 1e6)
        cpus.append((time.process_time() - c0) / calls * 1e6)
        if remote_cpu:
            remotes.append((remote_cpu() - r0) / calls * 1e6)
    return statistics.median(walls), statistics.median(cpus), statistics.median(remotes) if remotes else None


def grad_step(call_loss):
    log_probs = torch.linspace(-2.0, -0.1, GRAD_STEPS, requires_grad=True)
    returns = torch.linspace(0.0, 1.0, GRAD_STEPS)

    def step():
        call_loss(log_probs, returns).backward()
        log_probs.grad = None
    return step


def channel_rows(chan, calls, repeats, remote_cpu) -> dict:
    rows = {}
    for name in PAYLOADS:
        x = payload(name)
        rows[name] = timed(lambda: chan.call("f", x), calls, repeats, remote_cpu)
    rows["grad"] = timed(grad_step(lambda lp, g: client.remote_grad(chan, "loss", lp, g)), calls // 2, repeats,
                         remote_cpu)
    return rows


class Loopback(client.Channel):
    """A channel whose kernel is a ``gradekit.channel.Server`` in this process: every frame encoded and decoded as
    over the socket, nothing sent."""

    def __init__(self, namespace: dict):
        self.timeout, self.limits, self.next_id, self.closed, self.stale = 10.0, wire.Limits(), 0, None, 0
        self.server = wire.Server(namespace)

    @staticmethod
    def crossed(message: dict) -> tuple[dict, bytearray]:
        parts, _ = wire.encode(message)
        frame = b"".join(bytes(part) for part in parts)
        head_len, _ = wire.PREFIX.unpack_from(frame)
        return wire.parse_header(frame[8:8 + head_len]), bytearray(frame[8 + head_len:])

    def request(self, message: dict, timeout=None, n_after: int = 0):
        self.next_id += 1
        message["id"] = self.next_id
        with torch.enable_grad():  # (a Function's forward runs with autograd off: the kernel's thread has it on)
            answer = self.server.answer(*self.crossed(message))
        answer.pop("fn", None)
        return self.parse(*self.crossed(answer), n_after, str(message.get("fn", "")))


def socketpair_rows(calls, repeats) -> dict:
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        mine.close()
        while True:
            data = theirs.recv(1 << 20)
            if not data:
                os._exit(0)
            theirs.sendall(data)
    theirs.close()
    rows = {}
    try:
        for name in PAYLOADS:
            data = payload(name).tobytes() + b"h" * 100  # the array and a header's worth of bytes

            def step(data=data):
                mine.sendall(data)
                got = 0
                while got < len(data):
                    got += len(mine.recv(1 << 20))
            rows[name] = timed(step, calls, repeats, lambda: proc_cpu(pid))
    finally:
        mine.close()
        os.waitpid(pid, 0)
    return rows


def parts(namespace: dict, number: int) -> list[tuple[str, float]]:
    """Where a remote loss's step goes, part by part, in this one process (µs, the best of 5 timings of ``number``
    runs): each side's encoding and decoding, the kernel's call with its gradient, and the trusted side's autograd
    Function, against the same step in-process. (The socket's part is the socketpair row.)"""
    import timeit

    from autograder.channel import _remote

    log_probs = torch.linspace(-2.0, -0.1, GRAD_STEPS, requires_grad=True)
    returns = torch.linspace(0.0, 1.0, GRAD_STEPS)
    call = {"op": "call", "id": 1, "fn": "loss", "args": [log_probs.detach().requires_grad_(True), returns],
            "keep": True, "back": []}
    server = wire.Server(namespace)
    bare = client.Channel.__new__(client.Channel)  # a channel's parsing, without a socket
    bare.limits = wire.Limits()
    sent, _ = wire.encode(call)
    call_head, call_body = sent[1], b"".join(bytes(part) for part in sent[2:])
    args = wire.Decoder(bytearray(call_body)).value(wire.parse_header(call_head)["args"])
    answer = server.answer(wire.parse_header(call_head), bytearray(call_body))
    answer.pop("fn", None)
    back, _ = wire.encode(answer)
    answer_head, answer_body = back[1], b"".join(bytes(part) for part in back[2:])
    reply = bare.parse(wire.parse_header(answer_head), bytearray(answer_body), 0, "loss")
    leaf = log_probs.detach().requires_grad_(True)

    def kernel_call():
        with torch.enable_grad():
            return server.keep(2, args, namespace["loss"](*args))

    def trusted_function():
        _remote().apply((None, "loss", 1, reply.grads, None, reply.value), leaf).backward()

    def in_process():
        namespace["loss"](leaf, returns).backward()

    steps = [("trusted: encode the call", lambda: wire.encode(call)),
             ("kernel: decode the call", lambda: wire.Decoder(bytearray(call_body)).value(
                 wire.parse_header(call_head)["args"])),
             ("kernel: the function and its gradient", kernel_call),
             ("kernel: encode the answer", lambda: wire.encode(answer)),
             ("trusted: decode the answer", lambda: bare.parse(wire.parse_header(answer_head),
                                                               bytearray(answer_body), 0, "loss")),
             ("trusted: autograd Function, forward + backward", trusted_function),
             ("in-process: the function + backward", in_process)]
    out = []
    for name, step in steps:
        step()
        out.append((name, min(timeit.repeat(step, number=number, repeat=5)) / number * 1e6))
    return out


def wakeups(namespace: dict, calls: int, repeats: int) -> dict[str, list[float]]:
    """The CPU of the same work (one side's share of a remote loss step: the loss and its backward, a call encoded and
    decoded) done alone, and done by two processes in turn, each waking the other through a socketpair as the channel
    does: both free to run on any core, both on one core, each on a core of its own. µs per step, per repeat."""
    loss = grad_step(namespace["loss"])
    call = {"op": "call", "id": 1, "fn": "loss", "args": [torch.linspace(-2.0, -0.1, GRAD_STEPS), [1.0, 2.0]]}

    def work():
        loss()
        parts_, _ = wire.encode(call)
        wire.Decoder(bytearray(b"".join(bytes(p) for p in parts_[2:]))).value(wire.parse_header(parts_[1])["args"])

    cores = sorted(os.sched_getaffinity(0))
    placements = {"free": (None, None), "one core": (cores[0], cores[0]), "two cores": (cores[0], cores[-1])}
    out: dict[str, list[float]] = {"alone": []} | {f"{name} ({side})": [] for name in placements
                                                      for side in ("caller", "peer")}
    for _ in range(repeats):
        out["alone"].append(timed(work, calls, 1)[1])
        for name, (mine, theirs) in placements.items():
            a, b = socket.socketpair()
            pid = os.fork()
            if pid == 0:  # the peer: wait for the caller, work, wake it
                try:
                    a.close()
                    if theirs is not None:
                        os.sched_setaffinity(0, {theirs})
                    while b.recv(1):
                        work()
                        b.sendall(b"x")
                finally:
                    os._exit(0)
            b.close()
            before = os.sched_getaffinity(0)

            def step():
                a.sendall(b"x")
                a.recv(1)
                work()
            try:
                if mine is not None:
                    os.sched_setaffinity(0, {mine})
                _, caller, peer = timed(step, calls, 1, lambda: proc_cpu(pid))
            finally:  # the peer ends when its socket closes
                os.sched_setaffinity(0, before)
                a.close()
                os.waitpid(pid, 0)
            out[f"{name} (caller)"].append(caller)
            out[f"{name} (peer)"].append(peer)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per repeat (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats, medians reported (default 5)")
    parser.add_argument("--cells", type=int, default=50, help="Jupyter round trips per repeat (default 50)")
    parser.add_argument("--submission-calls", type=int, default=20_000, help="calls a submission makes (20,000)")
    parser.add_argument("--parts", action="store_true", help="only where a remote loss's step goes, part by part")
    parser.add_argument("--wakeups", action="store_true",
                        help="only what waking each other costs two processes: the same work alone and in turn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    results: dict[str, dict] = {}

    namespace: dict = {}
    exec(compile(FUNCTIONS, "functions.py", "exec"), namespace)  # noqa: S102 - the benchmark's own code
    if args.wakeups:
        rows = wakeups(namespace, args.calls, args.repeats)
        alone = statistics.median(rows["alone"])
        print(f"load average before {load_before[0]:.2f} ({os.cpu_count()} cores); one side's work of a remote loss "
              f"step, {args.calls} steps x {args.repeats} repeats (alternating), medians; CPU µs a step")
        for name, values in rows.items():
            print(f"{name:<24}{statistics.median(values):>8.1f}  ({statistics.median(values) / alone:.2f}x alone)")
        return 0
    if args.parts:
        rows = parts(namespace, args.calls)
        print(f"load average before {load_before[0]:.2f} (2 cores); a remote loss of {GRAD_STEPS} float32 "
              f"log-probabilities, one process, best of 5 x {args.calls}; µs")
        for name, micros in rows:
            print(f"{name:<50}{micros:>8.1f}")
        channel = sum(m for name, m in rows if not name.startswith("in-process"))
        print(f"{'both sides, no socket':<50}{channel:>8.1f}  ({channel / rows[-1][1]:.1f}x in-process)")
        return 0
    results["in-process"] = {name: timed(lambda x=payload(name): namespace["f"](x), args.calls, args.repeats)
                             for name in PAYLOADS}
    results["in-process"]["grad"] = timed(grad_step(namespace["loss"]), args.calls // 2, args.repeats)
    results["socketpair"] = socketpair_rows(args.calls, args.repeats)
    results["loopback (no IPC)"] = channel_rows(Loopback(namespace), args.calls, args.repeats, None)

    folder = Path(tempfile.mkdtemp(prefix="bench-channel-"))
    source = folder / "functions.py"
    source.write_text(FUNCTIONS)
    path = str(folder / "channel.sock")
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import torch; torch.set_num_threads(1)\n"
            f"ns = {{}}; exec(compile(open({str(source)!r}).read(), 'functions.py', 'exec'), ns)\n"
            f"import gradekit.channel; gradekit.channel.serve(ns, {path!r}, background=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        with client.Channel(path, timeout=30, connect_timeout=60) as chan:
            results["channel, subprocess"] = channel_rows(chan, args.calls, args.repeats, lambda: proc_cpu(proc.pid))
    finally:
        proc.kill()
        proc.wait()

    assignment = config.load().assignment()
    with KernelSession(assignment.limits, {"gradekit": ROOT / "gradekit"}) as kernel:
        level = kernel.isolation["level"]
        assert kernel.run(FUNCTIONS + "\nimport numpy as np\nx = np.linspace(0.0, 1.0, 3)").status == "ok"
        cgroup_cpu = kernel.box.cgroups.cpu_seconds if kernel.cpu_seconds is not None else None
        with client.start(kernel, timeout=30) as chan:
            results[f"channel, sandbox ({level})"] = channel_rows(chan, args.calls, args.repeats, cgroup_cpu)
        results["jupyter"] = {"small": timed(lambda: kernel.run("f(x)"), args.cells, args.repeats, cgroup_cpu)}

    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores); "
          f"{args.calls} calls x {args.repeats} repeats, medians; µs per call: wall / trusted CPU / serving CPU")
    print(f"{'':<28}" + "".join(f"{name:>26}" for name in (*PAYLOADS, "grad")))
    for way, rows in results.items():
        cells = []
        for name in (*PAYLOADS, "grad"):
            if name not in rows:
                cells.append(f"{'-':>26}")
                continue
            wall, cpu, remote = rows[name]
            cells.append(f"{wall:>10.1f} /{cpu:>6.1f} /{'-' if remote is None else f'{remote:.1f}':>6}")
        print(f"{way:<28}" + "".join(cells))
    sandboxed = results[f"channel, sandbox ({level})"]
    n = args.submission_calls
    for name in (*PAYLOADS, "grad"):
        wall, cpu, remote = sandboxed[name]
        print(f"{n} {name} calls through the sandbox: {wall * n / 1e6:.2f} s wall, "
              f"{(cpu + (remote or 0.0)) * n / 1e6:.2f} CPU-s (both sides)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
