"""A narrow, typed channel to the student's functions: the kernel serves calls, a trusted process makes them.

The trusted side (the grader, or a process it starts) runs the experiment: loops, environments, random numbers,
optimisers and the records a verdict reads. The kernel only answers calls to the functions its notebook defined:
``serve(globals(), path)`` listens on a Unix socket at ``path`` (in the sandbox's private ``/run/kernel``, which the
grader reaches through ``/proc/<pid>/root``). The client is ``autograder.channel``.

Wire format, both ways: one frame per message, ``<u32 header length><u32 body length>``, a UTF-8 JSON header, then a
body of raw little-endian array buffers, each at an 8-byte aligned offset, in order. Nothing is ever unpickled or
evaluated: a header is parsed by ``json``, an array is ``numpy.frombuffer`` of an allow-listed dtype.

A value in the header is JSON (null, booleans, integers, floats including NaN and ±Infinity, strings, lists), or an
object with exactly one key:

- ``{"$t": [...]}`` a tuple; ``{"$d": [[key, value], ...]}`` a dict (keys: null, bool, int, float or str);
- ``{"$a": [kind, dtype, shape, offset, grad]}`` an array in the body: ``kind`` ``"ndarray"`` or ``"tensor"``,
  ``dtype`` one of ``DTYPES``, ``shape`` a list of sizes, ``offset`` its first byte in the body, ``grad`` whether
  the tensor requires grad (a leaf that requires grad on the receiving side).

Messages (headers): a call ``{"op": "call", "id": n, "fn": name, "args": [...], "back": [i, ...], "keep": bool}``;
its answer ``{"id": n, "ok": value, "after": [state of args[i] after the call, for each i in back]}`` or
``{"id": n, "error": {"type", "message", "where", "function"}}``. With ``keep``, the kernel keeps the graph of the
call's tensor result; ``{"op": "vjp", "id": m, "of": n, "grad": [upstream gradient]}`` then answers
``{"id": m, "ok": [gradient of the result with respect to each argument tensor that required grad, or null]}``: the
vector-Jacobian product, and the graph is dropped. A result that is one number comes with ``"grads"``, the same
gradients for an upstream gradient of 1 (what ``loss.backward()`` asks): a loss's step is one round trip, not two.

Generic: no assignment's content is named here. torch is imported only when a tensor crosses.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PREFIX = struct.Struct("<II")  # header length, body length
DTYPES = {"float32": "<f4", "float64": "<f8", "int64": "<i8", "int32": "<i4", "bool": "|b1"}
NUMPY_NAMES = {np.dtype(code): name for name, code in DTYPES.items()}
NUMPY_DTYPES = {name: np.dtype(code) for name, code in DTYPES.items()}
SCALARS = (type(None), bool, int, float, str)  # what JSON gives as it is
ALIGN = 8
DUMPS = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps with arguments makes one a call
KEPT_GRAPHS = 256  # graphs of calls whose gradient has not been asked yet, kept by the kernel (the oldest dropped)


@dataclass(frozen=True)
class Limits:
    """What one frame may hold; beyond it the frame is refused unread (``Oversized``) or unparsed (``Malformed``)."""

    header_bytes: int = 1 << 20
    body_bytes: int = 64 << 20
    arrays: int = 4096
    depth: int = 32
    ndim: int = 8


class WireError(Exception):
    """A frame that breaks the format; ``kind`` names how (the client turns it into that call's typed error)."""

    kind = "Malformed"


class Oversized(WireError):
    kind = "Oversized"


class ForbiddenDtype(WireError):
    kind = "ForbiddenDtype"


class Unsupported(WireError):
    """A value of a type the channel does not carry (the sender's side: nothing was sent)."""

    kind = "Unsupported"


# ------------------------------------------------------------------------------------------------------- encoding
class Encoder:
    """Turns a value into (header node, buffers): plain data, arrays and tensors; anything else is ``Unsupported``."""

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self.buffers: list = []
        self.size = 0
        self.tensors: list = []  # tensors encoded, in order (the kernel keeps those of a result for its gradient)

    def value(self, v, depth: int = 0):
        if type(v) in SCALARS:  # (the common case first: exact types)
            return v
        if depth > self.limits.depth:
            raise Unsupported(f"values nested deeper than {self.limits.depth}")
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return v
        if isinstance(v, list):
            if type(v) is list and all(type(x) in SCALARS for x in v):  # (a flat list of numbers: as it is)
                return v
            return [self.value(x, depth + 1) for x in v]
        if isinstance(v, tuple):
            return {"$t": [self.value(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            return {"$d": [[self.key(k), self.value(x, depth + 1)] for k, x in v.items()]}
        if isinstance(v, np.ndarray):
            return self.array(v, "ndarray", False)
        if isinstance(v, np.generic):
            if isinstance(v, np.bool_):
                return bool(v)
            if isinstance(v, np.integer):
                return int(v)
            if isinstance(v, np.floating):
                return float(v)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(v, torch.Tensor):
            self.tensors.append(v)
            data = v.detach()
            if data.device.type != "cpu":
                data = data.cpu()
            return self.array(data.numpy(), "tensor", bool(v.requires_grad))
        raise Unsupported(f"a value of type {type(v).__name__} cannot cross the channel")

    def key(self, k):
        if isinstance(k, np.generic):
            k = k.item()
        if k is None or isinstance(k, (bool, int, float, str)):
            return k
        raise Unsupported(f"a dict key of type {type(k).__name__} cannot cross the channel")

    def array(self, a: np.ndarray, kind: str, grad: bool):
        name = NUMPY_NAMES.get(a.dtype)
        if name is None and a.dtype.byteorder == ">":
            name = NUMPY_NAMES.get(a.dtype.newbyteorder("<"))
        if name is None:
            raise Unsupported(f"arrays of dtype {a.dtype} cannot cross the channel (allowed: {', '.join(DTYPES)})")
        if len(self.buffers) >= self.limits.arrays:
            raise Oversized(f"more than {self.limits.arrays} arrays in one message")
        data = np.asarray(a, dtype=DTYPES[name])  # (not ascontiguousarray: it makes a 0-d array 1-d)
        if not data.flags.c_contiguous:
            data = data.copy()
        offset = -self.size % ALIGN + self.size
        if offset > self.size:
            self.buffers.append(bytes(offset - self.size))
        self.buffers.append(data.reshape(-1).view(np.uint8))  # its bytes (0-d and empty arrays too), not copied
        self.size = offset + data.nbytes
        if self.size > self.limits.body_bytes:
            raise Oversized(f"more than {self.limits.body_bytes} bytes of arrays in one message")
        return {"$a": [kind, name, list(data.shape), offset, grad]}


def encode(message: dict, limits: Limits = Limits()) -> tuple[list, list]:
    """A message as the buffers of one frame (prefix, header, body parts), and the tensors it holds."""
    encoder = Encoder(limits)
    header = {k: (encoder.value(v) if k in ("args", "ok", "after", "grad", "grads") else v)
              for k, v in message.items()}
    try:
        text = DUMPS(header).encode()
    except ValueError as exc:  # an integer of more digits than Python converts
        raise Unsupported(str(exc)[:200]) from None
    if len(text) > limits.header_bytes:
        raise Oversized(f"a header of {len(text)} bytes (at most {limits.header_bytes})")
    return [PREFIX.pack(len(text), encoder.size), text, *encoder.buffers], encoder.tensors


# ------------------------------------------------------------------------------------------------------- decoding
def parse_header(data: bytes | memoryview, limits: Limits = Limits()) -> dict:
    """The JSON header of a frame: a dict; UTF-8, JSON and nesting errors are ``Malformed`` (nothing executed)."""
    try:
        header = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"the header is not JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise WireError(f"the header is a JSON {type(header).__name__}, not an object")
    return header


class Decoder:
    """Turns header nodes back into values, reading arrays from ``body`` (a bytearray: arrays are writable views)."""

    def __init__(self, body: bytearray, limits: Limits = Limits()):
        self.body, self.limits = body, limits
        self.end = 0  # where the last array ended: arrays come in order, never overlapping
        self.count = 0

    def value(self, node, depth: int = 0):
        if type(node) in SCALARS:
            return node
        if depth > self.limits.depth:
            raise WireError(f"values nested deeper than {self.limits.depth}")
        if isinstance(node, list):
            if all(type(x) in SCALARS for x in node):  # (a flat list of numbers, fresh from json: as it is)
                return node
            return [self.value(x, depth + 1) for x in node]
        if not isinstance(node, dict) or len(node) != 1:
            raise WireError("an object in a value must have exactly one key ($t, $d or $a)")
        (tag, inner), = node.items()
        if tag == "$t" and isinstance(inner, list):
            return tuple(self.value(x, depth + 1) for x in inner)
        if tag == "$d" and isinstance(inner, list):
            out = {}
            for pair in inner:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise WireError("a dict entry must be a [key, value] pair")
                key = pair[0]
                if not (key is None or isinstance(key, (bool, int, float, str))):
                    raise WireError("a dict key must be null, a boolean, a number or a string")
                out[key] = self.value(pair[1], depth + 1)
            return out
        if tag == "$a" and isinstance(inner, list):
            return self.array(inner)
        raise WireError(f"unknown value tag {str(tag)[:20]!r}")

    def array(self, spec: list):
        if len(spec) != 5:
            raise WireError("an array is [kind, dtype, shape, offset, grad]")
        kind, dtype, shape, offset, grad = spec
        if kind not in ("ndarray", "tensor") or not isinstance(grad, bool):
            raise WireError("an array's kind is ndarray or tensor, its grad a boolean")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise ForbiddenDtype(f"dtype {str(dtype)[:20]!r} is not allowed (allowed: {', '.join(DTYPES)})")
        if (not isinstance(shape, list) or len(shape) > self.limits.ndim
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise WireError(f"an array's shape must be at most {self.limits.ndim} sizes >= 0")
        self.count += 1
        if self.count > self.limits.arrays:
            raise Oversized(f"more than {self.limits.arrays} arrays in one message")
        code = NUMPY_DTYPES[dtype]
        nbytes = math.prod(shape) * code.itemsize
        if type(offset) is not int or offset != -self.end % ALIGN + self.end or offset + nbytes > len(self.body):
            raise WireError("an array's bytes are not where the frame's layout puts them")
        self.end = offset + nbytes
        if dtype == "bool":  # any byte but 0 or 1 would make an invalid numpy bool: read bytes, compare
            array = np.frombuffer(self.body, np.uint8, nbytes, offset).reshape(shape) != 0
        else:
            array = np.frombuffer(self.body, code, nbytes // code.itemsize, offset).reshape(shape)
        if kind == "ndarray":
            if grad:
                raise WireError("an ndarray cannot require grad")
            return array
        import torch

        tensor = torch.from_numpy(array)
        if grad:
            if not tensor.is_floating_point():
                raise WireError(f"a tensor of dtype {dtype} cannot require grad")
            tensor.requires_grad_(True)
        return tensor


# ------------------------------------------------------------------------------------------------------- transport
def send(sock: socket.socket, parts: list) -> None:
    """The frame's parts, all of them: one ``sendmsg`` (no copy) when that takes them whole, else what is left."""
    total = sum(len(p) for p in parts)
    sent = sock.sendmsg(parts) if total < 1 << 16 else 0
    if sent < total:
        sock.sendall(memoryview(b"".join(parts))[sent:])


class FrameReader:
    """Reads frames from a stream socket, as few ``recv`` calls as it takes (a small frame: one). ``frame`` returns
    (header bytes, body bytearray of its own); raises ``EOFError`` (closed), ``TimeoutError`` (past ``deadline``, a
    ``time.monotonic()``; ``partial`` says whether part of a frame had arrived) or ``Oversized`` (the prefix announces
    more than ``limits``: nothing more is read)."""

    CHUNK = 1 << 16

    def __init__(self, sock: socket.socket, limits: Limits = Limits()):
        self.sock, self.limits = sock, limits
        self.buffer = bytearray(self.CHUNK)  # reused: what a recv brings, up to a whole small frame
        self.start = self.end = 0  # the bytes of the buffer not yet returned
        self.partial = False

    def _recv(self, view: memoryview, deadline: float | None) -> int:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
        try:
            k = self.sock.recv_into(view)
        except socket.timeout:
            raise TimeoutError from None
        if k == 0:
            raise EOFError
        self.partial = True
        return k

    def frame(self, deadline: float | None = None) -> tuple[bytes, bytearray]:
        self.partial = self.end > self.start
        if self.start and self.end - self.start < PREFIX.size:  # room for a prefix: move what is left to the front
            self.buffer[:self.end - self.start] = self.buffer[self.start:self.end]
            self.start, self.end = 0, self.end - self.start
        view = memoryview(self.buffer)
        while self.end - self.start < PREFIX.size:
            self.end += self._recv(view[self.end:], deadline)
        head_len, body_len = PREFIX.unpack_from(self.buffer, self.start)
        if head_len > self.limits.header_bytes or body_len > self.limits.body_bytes:
            raise Oversized(f"a frame of {head_len} + {body_len} bytes (at most {self.limits.header_bytes} + "
                            f"{self.limits.body_bytes})")
        need = PREFIX.size + head_len + body_len
        if self.start + need <= len(self.buffer):  # it fits the buffer: read it there
            while self.end - self.start < need:
                self.end += self._recv(view[self.end:], deadline)
            at = self.start + PREFIX.size
            header = bytes(view[at:at + head_len])
            body = bytearray(view[at + head_len:self.start + need])
            self.start += need
            if self.start == self.end:
                self.start = self.end = 0
            return header, body
        frame = bytearray(need)  # larger: a buffer of its own, exactly its size (nothing past it is read)
        have = self.end - self.start
        frame[:have] = view[self.start:self.end]
        self.start = self.end = 0
        out = memoryview(frame)
        while have < need:
            have += self._recv(out[have:], deadline)
        return bytes(out[PREFIX.size:PREFIX.size + head_len]), bytearray(out[PREFIX.size + head_len:])


# ------------------------------------------------------------------------------------------------------- the server
class Server:
    """Answers calls to the callables of ``namespace`` (looked up by name at each call) on a connected socket."""

    def __init__(self, namespace: dict, limits: Limits = Limits()):
        self.namespace, self.limits = namespace, limits
        self.graphs: dict[int, tuple] = {}  # call id -> (argument tensors that required grad, result tensor)

    def answer(self, header: dict, body: bytearray) -> dict:
        """One request's answer (a message for ``encode``): never raises for anything the student's code does."""
        ident = header.get("id")
        try:
            if header.get("op") == "vjp":
                return {"id": ident, "ok": self.vjp(header, body)}
            name = header.get("fn")
            fn = self.namespace.get(name) if isinstance(name, str) else None
            if not callable(fn):
                return {"id": ident, "error": {"type": "NameError", "message": f"function `{name}` is not defined",
                                               "where": "", "function": str(name)}}
            args = Decoder(body, self.limits).value(header.get("args", []))
            if header.get("keep"):  # (a thread's grad mode is its own: on, unless the server runs in a forward)
                import torch

                with torch.enable_grad():
                    result = fn(*args)
            else:
                result = fn(*args)
            answer = {"id": ident, "fn": name, "ok": result, "after": [args[i] for i in header.get("back", [])]}
            if header.get("keep"):
                grads = self.keep(ident, args, result)
                if grads is not None:
                    answer["grads"] = grads
            return answer
        except WireError as exc:
            return {"id": ident, "error": {"type": exc.kind, "message": str(exc), "where": "", "function": ""}}
        except BaseException as exc:  # noqa: BLE001 - anything the student's code raises is data
            return {"id": ident, "error": described(exc)}

    def keep(self, ident, args, result) -> list | None:
        """Keep the graph of a result that requires grad; for a one-number result, its gradients for an upstream 1."""
        import torch

        if not (isinstance(result, torch.Tensor) and result.requires_grad):
            return None
        leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        self.graphs[ident] = (leaves, result)
        while len(self.graphs) > KEPT_GRAPHS:
            del self.graphs[next(iter(self.graphs))]
        if result.numel() != 1 or not leaves:
            return None
        with torch.enable_grad():
            return list(torch.autograd.grad(result, leaves, retain_graph=True, allow_unused=True))

    def vjp(self, header: dict, body: bytearray) -> list:
        import torch

        leaves, result = self.graphs.pop(header.get("of"), (None, None))
        if result is None:
            raise WireError("no kept graph for that call (no gradient asked before, or it was dropped)")
        (upstream,) = Decoder(body, self.limits).value(header.get("grad"))
        with torch.enable_grad():
            grads = torch.autograd.grad(result, leaves, grad_outputs=upstream, allow_unused=True)
        return list(grads)

    def reply(self, sock: socket.socket, answer: dict) -> None:
        fn = answer.pop("fn", "")
        try:
            parts, _ = encode(answer, self.limits)
        except Exception as exc:  # noqa: BLE001 - the student's result cannot cross (its type, or its own code
            # running as it is read: a dict's items(), a tensor subclass): that call's error, sent instead
            reason = str(exc) if isinstance(exc, WireError) else f"{type(exc).__name__} while reading it"
            error = {"type": "ContractError", "where": "", "function": str(fn),
                     "message": f"the function's result cannot be sent to the grader: {reason[:300]}"}
            parts, _ = encode({"id": answer.get("id"), "error": error}, self.limits)
        send(sock, parts)

    def serve_connection(self, sock: socket.socket) -> None:
        reader = FrameReader(sock, self.limits)
        while True:
            try:
                raw, body = reader.frame()
                header = parse_header(raw, self.limits)
            except (EOFError, OSError, WireError):
                return
            try:
                self.reply(sock, self.answer(header, body))
            except OSError:  # the trusted side has gone (it gave up waiting): the next connection is served
                return


def described(exc: BaseException) -> dict:
    """``gradekit.protocol.describe`` of an exception, even one whose message cannot be read (its ``__str__``
    raises, as a student's own exception class may)."""
    from gradekit.protocol import describe

    try:
        return describe(exc)
    except Exception:  # noqa: BLE001
        return {"type": type(exc).__name__, "message": "(its message could not be read)", "where": "",
                "function": ""}


def serve(namespace: dict, path: str | os.PathLike, background: bool = True, limits: Limits = Limits(),
          fork: bool = False):
    """Listen on a Unix socket at ``path`` and answer calls to the callables of ``namespace`` (a notebook's
    ``globals()``). In a thread of its own (``background``: the cell returns at once, the thread is returned), or in
    this one until the listening socket is closed. One connection at a time; with ``fork``, each connection is served
    by a forked copy of this process (seeds in parallel, each with the notebook's state as it was when the connection
    came, as forked seeds have today), whose printed output goes nowhere; when no process can be forked (the
    notebook used up the processes it may have), by this thread, one connection after the other."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    server = Server(namespace, limits)
    copies: set[int] = set()

    def loop() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            if not fork:
                with sock:
                    server.serve_connection(sock)
                continue
            reap(copies)
            try:
                pid = os.fork()
            except OSError:  # no process left to fork (the notebook used up its limit): served here, one at a time
                with sock:
                    server.serve_connection(sock)
                continue
            if pid == 0:  # the copy: serve this connection, then leave without any clean-up of the parent's
                try:
                    listener.close()
                    sys.stdout = sys.stderr = open(os.devnull, "w")  # the kernel's output streams are not ours
                    torch = sys.modules.get("torch")
                    if torch is not None:
                        torch.set_num_threads(1)  # a forked torch forgets the parent's setting
                    server.serve_connection(sock)
                finally:
                    os._exit(0)
            copies.add(pid)
            sock.close()

    if not background:
        loop()
        return None
    thread = threading.Thread(target=loop, name="gradekit-channel", daemon=True)
    thread.start()
    return thread


def reap(copies: set[int]) -> None:
    """Collect the copies that have finished (no zombies left in the kernel); only ours, never another child's."""
    for pid in list(copies):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            copies.discard(pid)


# --------------------------------------------------------------------------------------- the same, in one process
def crossed(value, limits: Limits = Limits()):
    """``value`` as the other side of the channel would get it: encoded and decoded (a copy, whose types, dtypes and
    sizes the wire allows, else ``WireError``)."""
    parts, _ = encode({"ok": value}, limits)
    header = parse_header(parts[1], limits)
    return Decoder(bytearray(b"".join(parts[2:])), limits).value(header["ok"])


def copying(fn, in_place=(), limits: Limits = Limits()):
    """``fn`` called as the grader calls it across the channel, in this process (the student's own checks): its
    arguments and its result are copies as the wire carries them, tensors that require grad excepted (the gradient
    flows through them as it does across the wall), and only the arguments at the positions ``in_place`` (those the
    contract lets it update in place) are written back into the caller's objects. So a function that only works
    when it shares objects with the loop, or returns what cannot cross, fails here as it does in the grade."""
    import numpy as np

    def grad(v) -> bool:
        return getattr(v, "requires_grad", False) is True

    def call(*args):
        sent = [a if grad(a) else crossed(a, limits) for a in args]
        result = fn(*sent)
        for i in in_place:
            if i < len(args) and isinstance(args[i], np.ndarray) and isinstance(sent[i], np.ndarray) \
                    and sent[i].shape == args[i].shape:
                args[i][...] = sent[i]
            elif i < len(args) and isinstance(args[i], list) and isinstance(sent[i], list):
                args[i][:] = sent[i]
            elif i < len(args) and isinstance(args[i], dict) and isinstance(sent[i], dict):
                args[i].clear()
                args[i].update(sent[i])
        if grad(result):
            return result
        try:
            return crossed(result, limits)
        except WireError as exc:
            from gradekit.drivers import ContractError

            raise ContractError(f"`{getattr(fn, '__name__', 'the function')}`'s result cannot be sent to the grader: "
                                f"{str(exc)[:300]}") from None

    call.__name__ = call.__qualname__ = getattr(fn, "__name__", "function")
    return call
