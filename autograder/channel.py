"""The trusted side of the channel to a kernel's functions (``gradekit.channel`` serves them in the kernel).

The grader (or a process it starts) calls the student's functions by name with typed values and gets typed values
back: what the function returned, and the state after the call of the arguments it may change in place. Nothing the
kernel sends is executed or unpickled: a frame is a JSON header parsed by ``json`` and arrays read by
``numpy.frombuffer`` with an allow-listed dtype, within ``Limits``. Every call has a deadline. Whatever goes wrong is
that call's ``CallError`` (``kind``: ``Raised`` for an exception of the student's code, with the line it came from;
``Timeout``, ``Closed``, ``Oversized``, ``Malformed``, ``ForbiddenDtype``, ``Unsupported``); the trusted side never
crashes on an answer. A frame whose framing is lost (oversized, cut short, late in the middle) closes the channel:
every later call is ``Closed`` at once, and the engine restarts the kernel as after a dead one.

``remote_grad`` makes a function of tensors a ``torch.autograd.Function`` of the trusted side: its forward sends
the inputs and gets the value, its backward sends the upstream gradient and gets the kernel's gradient of its own
result with respect to the inputs it was given (a vector-Jacobian product): a trusted network trains through a
remote loss as it would in-process, and a gradient that should not flow (into an argument the function should have
detached) is seen on the trusted side.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from dataclasses import dataclass, field

import numpy as np

from gradekit.channel import Decoder, FrameReader, Limits, Oversized, WireError, encode, parse_header, send

SOCKET_NAME = "channel.sock"
SERVE_CELL = "__import__('gradekit.channel').channel.serve(globals(), {path!r}, fork={fork!r})"


class CallError(Exception):
    """A call that gave no value. ``as_dict()`` is the shape of ``gradekit.protocol.describe``."""

    def __init__(self, kind: str, message: str, where: str = "", function: str = "", type_: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.where, self.function = kind, message, where, function
        self.type = type_ or kind

    def as_dict(self) -> dict:
        return {"type": self.type, "message": self.message, "where": self.where, "function": self.function}

    def __repr__(self) -> str:
        return f"CallError({self.kind}: {self.type}: {self.message[:80]!r} {self.where})"


@dataclass
class Reply:
    value: object
    after: list = field(default_factory=list)  # the state after the call of the arguments named in ``back``
    grads: list | None = None  # a kept one-number result's gradients for an upstream 1


def socket_paths(box, name: str = SOCKET_NAME) -> tuple[str, str]:
    """Where a kernel in ``box`` (``autograder.sandbox.Box``) listens: (its own path, the grader's path to it). At level
    full, its private ``/run/kernel``, reached through ``/proc/<pid>/root`` as its ZeroMQ sockets are; below it, the
    kernel's folder (``Box.paths``: its level's)."""
    return box.paths(name)


def connect_socket(path: str, timeout: float) -> socket.socket:
    """Connect to the Unix socket at ``path`` itself: its last component is opened without following a symlink (the
    kernel owns the folder it lives in, and under ``/proc/<pid>/root`` an absolute symlink would resolve in the
    grader's filesystem, to any socket of the host), must be a socket, and is connected to through that open file.
    Until ``timeout``, a path that is not there yet or refuses (a server about to listen) is tried again."""
    folder, name = os.path.split(path)
    end = time.monotonic() + timeout
    while True:
        try:
            return _connect_once(folder, name, path, end)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() > end:
                raise CallError("Closed", f"nothing listens at {path} ({exc.strerror})") from None
            time.sleep(0.01)
        except OSError as exc:
            raise CallError("Closed", f"cannot connect to {path}: {exc}") from None


def _connect_once(folder: str, name: str, path: str, end: float) -> socket.socket:
    directory = os.open(folder, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=directory)
    finally:
        os.close(directory)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise CallError("Closed", f"{path} is not a socket (a symlink or a file planted there?)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(max(0.01, end - time.monotonic()))
            sock.connect(f"/proc/self/fd/{fd}")
        except BaseException:
            sock.close()
            raise
        return sock
    finally:
        os.close(fd)


class Channel:
    """Calls to the functions a kernel serves: ``Channel(path).call("f", x)``. One call at a time."""

    def __init__(self, path: str | None, timeout: float = 10.0, limits: Limits = Limits(),
                 connect_timeout: float = 10.0, sock: socket.socket | None = None):
        """Connect to the socket at ``path``, or use ``sock``, a connected stream socket (a socketpair's end)."""
        self.path, self.timeout, self.limits = path, timeout, limits
        self.sock = sock if sock is not None else connect_socket(path, connect_timeout)
        self.reader = FrameReader(self.sock, limits)
        self.next_id = 0
        self.closed: str | None = None  # why the channel is closed, once it is
        self.stale = 0  # late answers to calls that had already timed out, dropped

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, why: str = "closed by the grader") -> None:
        if self.closed is None:
            self.closed = why
            self.sock.close()

    # ---------------------------------------------------------------------------------------------- the calls
    def call(self, fn: str, *args, timeout: float | None = None):
        """``fn(*args)`` in the kernel: its value, or a ``CallError``."""
        return self.request({"op": "call", "fn": fn, "args": list(args)}, timeout).value

    def call_back(self, fn: str, *args, back=(), timeout: float | None = None) -> Reply:
        """``fn(*args)`` in the kernel, and the state after the call of the arguments at the positions ``back``
        (those it may change in place: an array, a list, a dict)."""
        return self.request({"op": "call", "fn": fn, "args": list(args), "back": list(back)}, timeout, len(back))

    def request(self, message: dict, timeout: float | None = None, n_after: int = 0) -> Reply:
        if self.closed is not None:
            raise CallError("Closed", f"the channel is closed ({self.closed})", function=str(message.get("fn", "")))
        self.next_id += 1
        ident = message["id"] = self.next_id
        parts, _ = encode(message, self.limits)  # the trusted side's own values: a failure here is the grader's bug
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            self.sock.settimeout(max(1e-3, deadline - time.monotonic()))  # (a kernel that does not read: the deadline)
            send(self.sock, parts)
        except socket.timeout:
            self.close("a call not read by the kernel before the deadline")
            raise CallError("Timeout", "the kernel did not read the call before the deadline",
                            function=str(message.get("fn", ""))) from None
        except OSError as exc:
            self.close(f"the kernel closed it: {exc}")
            raise CallError("Closed", f"the kernel closed the channel ({exc})") from None
        header, body = self.receive(ident, deadline, str(message.get("fn", "")))
        return self.parse(header, body, n_after, str(message.get("fn", "")))

    def receive(self, ident: int, deadline: float, fn: str) -> tuple[dict, bytearray]:
        """The answer to call ``ident``: answers to earlier calls (late ones) are dropped."""
        while True:
            try:
                raw, body = self.reader.frame(deadline)
            except TimeoutError:
                if not self.reader.partial:  # nothing of an answer arrived: usable still, a late answer is dropped
                    raise CallError("Timeout", "no answer before the deadline (an endless loop, or too slow?)",
                                    function=fn) from None
                self.close("an answer cut short at the deadline")
                raise CallError("Timeout", "the answer did not arrive whole before the deadline", function=fn) from None
            except Oversized as exc:
                self.close("an oversized answer")
                raise CallError("Oversized", f"an oversized answer: {exc}", function=fn) from None
            except (EOFError, OSError):
                self.close("the kernel closed it")
                raise CallError("Closed", "the kernel closed the channel (did its process stop?)",
                                function=fn) from None
            try:
                header = parse_header(raw, self.limits)
            except WireError as exc:
                raise CallError(exc.kind, str(exc), function=fn) from None
            got = header.get("id")
            if type(got) is int and got < ident:
                self.stale += 1
                continue
            if got != ident:
                self.close("an answer to a call never made")
                raise CallError("Malformed", "an answer to a call that was never made", function=fn)
            return header, body

    def parse(self, header: dict, body: bytearray, n_after: int, fn: str) -> Reply:
        if "error" in header:
            error = header["error"]
            if not isinstance(error, dict):
                raise CallError("Malformed", "an error that is not an object", function=fn)
            text = {k: str(error.get(k, ""))[:500] for k in ("type", "message", "where", "function")}
            raise CallError("Raised", text["message"], text["where"], text["function"] or fn, text["type"] or "Error")
        if "ok" not in header:
            raise CallError("Malformed", "an answer with neither ok nor error", function=fn)
        decoder = Decoder(body, self.limits)
        try:
            value = decoder.value(header["ok"])
            after = decoder.value(header.get("after", []))
            grads = decoder.value(header["grads"]) if "grads" in header else None
        except WireError as exc:
            raise CallError(exc.kind, str(exc), function=fn) from None
        except RecursionError:
            raise CallError("Malformed", "values nested too deep", function=fn) from None
        if not isinstance(after, list) or len(after) != n_after:
            raise CallError("Malformed", f"{n_after} argument states expected after the call", function=fn)
        return Reply(value, after, grads)

    # ---------------------------------------------------------------------------------------------- gradients
    def call_keep(self, fn: str, args: list, timeout: float | None = None, back=()) -> tuple[int, Reply]:
        """``fn(*args)`` with the kernel keeping the graph of its tensor result: (the call's id, the reply, whose
        ``grads``, for a one-number result, are the gradients for an upstream 1, checked as ``vjp``'s, else None)."""
        import torch  # lazy: torch costs 1.7 s, which a grade's start does without (tests/test_startup.py)

        reply = self.request({"op": "call", "fn": fn, "args": args, "keep": True, "back": list(back)}, timeout,
                             len(back))
        if reply.grads is not None:
            shapes = [a.shape for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
            reply.grads = self.checked_grads(reply.grads, shapes, fn)
        return self.next_id, reply

    def vjp(self, of: int, upstream, shapes: list, fn: str = "", timeout: float | None = None) -> list:
        """The gradient of call ``of``'s result with respect to each of its argument tensors that required grad,
        given the ``upstream`` gradient of the result: a float tensor of each shape in ``shapes``, or None."""
        reply = self.request({"op": "vjp", "of": of, "grad": [upstream], "fn": fn}, timeout)
        return self.checked_grads(reply.value, shapes, fn)

    @staticmethod
    def checked_grads(grads, shapes: list, fn: str) -> list:
        import torch  # lazy: torch costs 1.7 s, which a grade's start does without (tests/test_startup.py)

        if not isinstance(grads, list) or len(grads) != len(shapes):
            raise CallError("Malformed", f"{len(shapes)} gradients expected", function=fn)
        for g, shape in zip(grads, shapes):
            if g is not None and not (isinstance(g, torch.Tensor) and g.is_floating_point()
                                      and tuple(g.shape) == tuple(shape)):
                raise CallError("Malformed", f"a gradient that is not a float tensor of shape {tuple(shape)}",
                                function=fn)
        return [None if g is None else g.detach() for g in grads]


def remote_grad(channel: Channel, fn: str, *args, timeout: float | None = None, back=()):
    """``fn(*args)`` in the kernel as a differentiable function of the trusted side's tensors that require grad.

    A float tensor result that requires grad in the kernel requires grad here, its backward asking the kernel for the
    vector-Jacobian product; any other result (detached, rebuilt with ``torch.tensor``, an array) comes back as it is,
    with no gradient. The arguments at the positions ``back`` are written back after the call, as
    ``remote_function`` does.
    """
    import torch  # lazy: torch costs 1.7 s, which a grade's start does without (tests/test_startup.py)

    for a in args:
        if not isinstance(a, torch.Tensor) and nested_grad(a):
            raise TypeError(f"a tensor that requires grad inside a {type(a).__name__} argument of `{fn}`: its "
                            "gradient would not flow back; pass it as an argument of its own (torch.stack it)")
    slots = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]
    if not slots:
        reply = channel.call_back(fn, *args, back=back, timeout=timeout)
    else:
        sent = list(args)
        for i in slots:
            sent[i] = args[i].detach().requires_grad_(True)
        ident, reply = channel.call_keep(fn, sent, timeout, back)
    for i, state in zip(back, reply.after):
        write_back(args[i], state, fn)
    value = reply.value
    if not slots or not (isinstance(value, torch.Tensor) and value.requires_grad):
        return value
    how = (channel, fn, ident, reply.grads, timeout, value)
    return _remote().apply(how, *(args[i] for i in slots))


def nested_grad(value, depth: int = 0) -> bool:
    """Whether a list, tuple or dict holds a tensor that requires grad (at any depth)."""
    import torch  # lazy: torch costs 1.7 s, which a grade's start does without (tests/test_startup.py)

    if isinstance(value, torch.Tensor):
        return value.requires_grad
    if depth < 32 and isinstance(value, (list, tuple)):
        return any(nested_grad(v, depth + 1) for v in value)
    if depth < 32 and isinstance(value, dict):
        return any(nested_grad(v, depth + 1) for v in value.values())
    return False


_REMOTE = None


def _remote():
    """The ``torch.autograd.Function`` of a remote call, made once (torch is imported when a gradient crosses)."""
    global _REMOTE
    if _REMOTE is not None:
        return _REMOTE
    import torch  # lazy: torch costs 1.7 s, which a grade's start does without (tests/test_startup.py)

    class Remote(torch.autograd.Function):
        """The result of a call already made (``how``): forward returns its value, backward asks for the VJP."""

        @staticmethod
        def forward(ctx, how, *tensors):
            ctx.how = how
            ctx.shapes = [t.shape for t in tensors]
            ctx.dtypes = [t.dtype for t in tensors]
            return how[-1].detach()

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, upstream):
            channel, fn, ident, grads, timeout, _ = ctx.how
            if grads is None or upstream.numel() != 1 or upstream.item() != 1.0:
                grads = channel.vjp(ident, upstream.contiguous(), ctx.shapes, fn, timeout)
            # (else what the kernel computed for loss.backward(): no second round trip)
            return (None, *(g if g is None or g.dtype == dtype else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes)))

    _REMOTE = Remote
    return Remote


def remote_function(channel: Channel, fn: str, timeout: float | None = None, in_place=()):
    """A stand-in for the kernel's ``fn`` that a trusted loop calls as it would the function itself: tensors that
    require grad go through ``remote_grad``; the arguments at the positions ``in_place`` (those the function's contract
    lets it change in place: an array, a list, a dict) come back and are written into the caller's objects, as an
    in-process call would have left them. No other argument is ever written: the loop's own objects (the rewards it
    records, say) stay the loop's, whatever the function does to its copies."""
    allowed = tuple(in_place)

    def call(*args):
        back = [i for i in allowed if i < len(args) and isinstance(args[i], (np.ndarray, list, dict))]
        return remote_grad(channel, fn, *args, timeout=timeout, back=back)

    call.__name__ = call.__qualname__ = fn
    return call


def write_back(target, state, fn: str = "") -> None:
    """Make ``target`` (the caller's array, list or dict) hold ``state``, its state in the kernel after the call."""
    if isinstance(target, np.ndarray):
        if not isinstance(state, np.ndarray) or state.shape != target.shape:
            raise CallError("Raised", f"an argument array came back as {type(state).__name__} "
                            f"{getattr(state, 'shape', '')}, not of shape {target.shape}", function=fn,
                            type_="ContractError")
        target[...] = state
    elif isinstance(target, list) and isinstance(state, list):
        target[:] = state
    elif isinstance(target, dict) and isinstance(state, dict):
        target.clear()
        target.update(state)
    else:
        raise CallError("Raised", f"a {type(target).__name__} argument came back as {type(state).__name__}",
                        function=fn, type_="ContractError")


def start(kernel, name: str = SOCKET_NAME, timeout: float = 10.0, limits: Limits = Limits(),
          fork: bool = False) -> Channel:
    """Start serving the kernel's functions (a cell run after the graded cells) and connect: ``kernel`` is an
    ``autograder.execute.KernelSession`` or ``KernelThread``. With ``fork``, each connection is served by a copy of
    the kernel: ``Channel(chan.path)`` opens another, for a seed in parallel."""
    inside, outside = socket_paths(kernel.box, name)
    run = kernel.run(SERVE_CELL.format(path=inside, fork=fork))
    if run.status != "ok":
        raise CallError("Closed", f"the kernel did not start serving ({run.status}: {run.error})")
    return Channel(outside, timeout, limits)
