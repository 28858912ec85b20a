"""A fresh Jupyter kernel (nbclient) for one submission, in a sandbox, under limits.

Student code only ever runs in this kernel. It runs in the best sandbox the machine gives (``autograder/sandbox/``: bubblewrap
with every namespace and only the ``visible`` folders bound, or an unprivileged uid of its own, or nothing), with an
address-space, CPU-time, file-size and process limit, threads pinned to one, and no more than ``output_kb`` of printed
text per cell kept. The grader talks to it over Unix sockets. A cell that times out or kills the kernel ends with a
status, never an exception: the kernel and everything it started are killed and a new kernel started, so the grader
can replay the definitions and go on with the next check.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Empty
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.util import run_sync
from traitlets import Type
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from autograder import gate, sandbox

THREAD_VARS = sandbox.THREAD_VARS


@dataclass
class CellRun:
    status: str  # "ok", "error", "timeout" or "died"
    outputs: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def error(self) -> dict | None:
        """The error output of the cell (ename, evalue, traceback), if any."""
        return next((o for o in self.outputs if o.get("output_type") == "error"), None)


def kernel_env(path: str | None = None) -> dict:
    """The grader's environment with one thread, no display, fixed hashing and ``path`` (a folder of packages) as its
    only PYTHONPATH: for running notebooks outside the sandbox as a student's Jupyter would (tests, the source
    notebook). The sandboxed kernel's environment is ``sandbox.kernel_env``, an allow-list."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    env.update({var: "1" for var in THREAD_VARS})
    env["MPLBACKEND"] = "Agg"
    env["PYTHONHASHSEED"] = "0"
    env.pop("PYTHONPATH", None)
    if path:
        env["PYTHONPATH"] = path
    return env


class ReadyClient(AsyncKernelClient):
    """jupyter_client's kernel client, with the gate's transport caps on its sockets (no message over
    ``gate.MESSAGE_BYTES`` is read into the grader's memory; at most ``QUEUED`` wait on a socket), and its wait for a
    new kernel stops as soon as the kernel has answered: it does not then wait for 0.2 s of silence on IOPub
    (jupyter_client's last step), it drops what IOPub holds at once. A status message that comes later is no cell's:
    nbclient only reads the messages of the cell it runs. 0.2 s of wall time at every kernel start."""

    QUEUED = 64
    box: sandbox.Box | None = None

    def _make_url(self, channel: str) -> str:
        """A kernel's socket as the grader pinned it (``sandbox.Box.socket``), never its path again."""
        return f"ipc://{self.box.socket(getattr(self, f'{channel}_port'))}" if self.box else super()._make_url(channel)

    def _create_connected_socket(self, channel, identity=None):
        self.context.setsockopt(zmq.MAXMSGSIZE, gate.MESSAGE_BYTES)  # for sockets made from now on
        self.context.setsockopt(zmq.RCVHWM, self.QUEUED)
        return super()._create_connected_socket(channel, identity)

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:  # as jupyter_client: kernel_info until it is answered, and IOPub has delivered
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        while True:  # what IOPub holds now, without waiting for more
            try:
                await self.iopub_channel.get_msg(timeout=0)
            except Empty:
                return


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command is the sandbox's (``box.command``), over Unix sockets: the kernel binds
    them inside the sandbox and the grader connects through the sandbox's ``/proc/<pid>/root``."""

    box: sandbox.Box | None = None
    client_factory = Type(ReadyClient, klass=AsyncKernelClient)
    launched: threading.Event | None = None  # set once the kernel's process is started

    def format_kernel_cmd(self, extra_arguments=None):
        return self.box.command(list(extra_arguments or []))

    def _make_url(self, channel: str) -> str:
        return f"ipc://{self.box.socket(getattr(self, f'{channel}_port'))}"

    def client(self, **kwargs):
        client = super().client(**kwargs)
        client.box = self.box  # its sockets through the box's pinned descriptors
        return client

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        kw.update(self.box.popen_kwargs())
        await super()._async_launch_kernel(kernel_cmd, **kw)
        if self.launched is not None:
            self.launched.set()
        self.box.started()
        self.ip = self.box.client_ip()


class CappedClient(NotebookClient):
    """nbclient's client behind the gate (``gate.Gate``): a kernel's message is dropped or cleaned before nbclient
    sees it, so nothing it keeps (outputs, widget state, display ids) is larger or dirtier than the gate allows."""

    gate: gate.Gate | None = None
    store_widget_state = False  # (no comm message passes the gate; and none would be kept)
    iopub_timeout = 10  # after a cell's reply, the wait for its last outputs (nbclient: 4 s)
    idle = False  # whether the current cell's end was seen on IOPub (else its connection was dropped: reconnect)

    def process_message(self, msg, cell, cell_index):
        msg = self.gate.admit(msg, cell.outputs)
        if msg is None:
            return None
        if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
            self.idle = True
        return super().process_message(msg, cell, cell_index)


class StartLog:
    """What the kernel's process (bwrap, the interpreter) writes to its stderr while it starts: the first ``KEEP``
    bytes, read by a thread of its own, so a start that fails says why (a path the sandbox did not bind). Once the
    kernel has started (and captures its own stderr), ``close`` stops reading: the grader spends nothing on it."""

    KEEP = 4096

    def __init__(self):
        self._read, self.write_fd = os.pipe()
        self.data = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while not self._stop.is_set():
                if select.select([self._read], [], [], 0.1)[0]:
                    chunk = os.read(self._read, 1 << 16)
                    if not chunk:  # every writer is gone
                        break
                    self.data += chunk[:max(0, self.KEEP - len(self.data))]
        finally:
            os.close(self._read)

    def launched(self) -> None:
        """The grader's copy of the writing end, closed once the process has its own."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def text(self, wait: float = 1.0) -> str:
        self._thread.join(wait)
        return gate.clean_text(self.data.decode(errors="replace").strip(), 1000)

    def close(self) -> None:
        self.launched()
        self._stop.set()


class KernelSession:
    """``with KernelSession(limits, visible) as k: k.run(code)``; ``k.restart()`` after a timeout or a dead kernel.

    ``visible`` maps an import name to a host folder; each is bound read-only at ``/grading/<name>`` in the sandbox,
    and ``/grading`` is the kernel's PYTHONPATH. Nothing else of the course is visible. ``isolation`` (the level in
    force and what it covers) is probed before the first kernel starts; below ``min_isolation`` no kernel starts
    (``sandbox.IsolationError``). ``setup`` (a cell, or cells: the instructor's setup cell, then the grader's
    imports) runs as part of every start and restart, up to a cell that fails; ``setup_run`` is the last cell's run.
    ``slot`` tells apart kernels of one grading process that live at the same time (the next student's kernel
    starting while this one's is graded): each gets a uid of its own."""

    def __init__(self, limits, visible: dict[str, Path] | None = None, min_isolation: str = "none",
                 setup: str | list[str] | None = None, slot: int = 0, cpus: int = 1):
        self.limits, self.cpus = limits, cpus
        self.gate = gate.Gate(stream_bytes=int(limits.output_kb * 1024))  # for the session: its caps are a grade's
        self.visible = {name: Path(path) for name, path in (visible or {}).items()}
        self._isolation = sandbox.probe()
        sandbox.require(self._isolation, min_isolation)
        self.setup, self.slot = setup, slot
        self.setup_run: CellRun | None = None
        self.launched = threading.Event()  # the first start's kernel process is started, or that start failed
        self.restarts = 0
        self.pid = 0
        self.box: sandbox.Box | None = None
        # CPU time of the kernels' whole trees so far; None where no cpuacct cgroup measures it
        self.cpu_seconds: float | None = 0.0 if "cpuacct" in self._isolation.cgroups else None

    @property
    def isolation(self) -> dict:
        """The isolation level in force and what it covers (for results.json's ``extra_data.isolation``)."""
        found = self._isolation.as_dict()
        found["host_uid"] = sandbox.fallback_uid(self.slot) if self._isolation.own_uid else os.geteuid()
        if "cpu" in self._isolation.cgroups:
            found["covers"]["cpu"] = (f"cgroup CPU quota of {self.cpus} core{'s' if self.cpus > 1 else ''} "
                                      "(cpu.cfs_quota_us; the seeds it runs at once); RLIMIT_CPU per process")
        return found

    def __enter__(self) -> KernelSession:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _start(self) -> None:
        try:
            self._launch()
        finally:
            self.launched.set()  # (set at the launch itself; here too when the start failed before it)
        for code in [self.setup] if isinstance(self.setup, str) else self.setup or []:
            self.setup_run = self.run(code)
            if self.setup_run.status != "ok":
                break

    def _launch(self) -> None:
        self.box = sandbox.Box(self._isolation, self.limits, self.visible, self.slot, self.cpus)
        # what new_notebook() makes, without validating it: nbformat's first validation takes ~50 ms, before the launch
        self.nb = nbformat.from_dict({"nbformat": 4, "nbformat_minor": nbformat.v4.nbformat_minor, "metadata": {},
                                      "cells": []})
        self.client = CappedClient(self.nb, timeout=int(self.limits.cell_seconds), kernel_name="python3",
                                   kernel_manager_class=SandboxedKernelManager,
                                   allow_errors=True, shutdown_kernel="immediate", startup_timeout=60,
                                   resources={"metadata": {"path": str(self.box.folder)}})
        self.client.gate = self.gate
        km = self.client.km = self.client.create_kernel_manager()
        km.box, km.launched = self.box, self.launched
        km.transport, km.ip, km.connection_file = "ipc", self.box.kernel_ip, self.box.connection_file
        # the command is the sandbox's (format_kernel_cmd): no kernelspec lookup, which would import IPython here;
        # interrupts as messages, since a signal would reach bwrap, not the kernel
        km._kernel_spec = KernelSpec(argv=[], display_name="Python 3", language="python", interrupt_mode="message")
        said = StartLog()
        try:
            self.client.start_new_kernel(stdout=subprocess.DEVNULL, stderr=said.write_fd,
                                         preexec_fn=self.box.preexec)
            said.launched()
            self.pid = km.provisioner.pid
            self.client.start_new_kernel_client()
            said.close()
        except BaseException as exc:
            self._stop()
            said.launched()
            text = said.text()
            said.close()
            if isinstance(exc, Exception) and text:
                raise RuntimeError(f"the kernel did not start ({exc}); its process said: {text}"
                                   f"{sandbox.needs(text)}") from exc
            raise

    def _stop(self) -> None:
        """Kill the kernel and every process it started (the sandbox, its uid, its cgroups), then let nbclient clean
        up and remove the kernel's folder."""
        if self.box is None:
            return
        if self.cpu_seconds is not None:
            self.cpu_seconds += self.box.cgroups.cpu_seconds() or 0.0
        provisioner = getattr(getattr(getattr(self, "client", None), "km", None), "provisioner", None)
        self.box.kill(self.pid or getattr(provisioner, "pid", None) or 0)  # (a start that failed: its process)
        try:
            self.client._cleanup_kernel()
        except Exception:  # noqa: BLE001, S110 - the kernel is gone, which is what we want
            pass
        self.box.close()
        self.box = None
        self.pid = 0

    def _reconnect_iopub(self) -> None:
        """A new IOPub connection (the gate's caps again) to the same kernel, ready when the kernel has answered on
        it; what the old one dropped is lost, as the gate means it to be."""
        kc = self.client.kc
        kc.iopub_channel.close()
        kc._iopub_channel = None
        run_sync(kc.wait_for_ready)(timeout=30)

    def restart(self) -> None:
        self._stop()
        self.restarts += 1
        self._start()

    def run(self, code: str, timeout: float | None = None) -> CellRun:
        cell = nbformat.v4.new_code_cell(code)
        self.nb.cells.append(cell)
        self.client.timeout = max(1, int(timeout or self.limits.cell_seconds))
        start = time.monotonic()
        self.client.idle = False
        try:
            self.client.execute_cell(cell, len(self.nb.cells) - 1, store_history=False)
            if not self.client.idle:  # IOPub lost this cell's end (a message over MAXMSGSIZE dropped its connection)
                try:
                    self._reconnect_iopub()
                except RuntimeError:  # the kernel does not answer on a new connection: it is replaced
                    return CellRun("died", list(cell.outputs), time.monotonic() - start)
        except CellTimeoutError:
            return CellRun("timeout", list(cell.outputs), time.monotonic() - start)
        except DeadKernelError:
            return CellRun("died", list(cell.outputs), time.monotonic() - start)
        run = CellRun("ok", list(cell.outputs), time.monotonic() - start)
        if run.error:
            run.status = "error"
        return run


class KernelThread:
    """A KernelSession that lives in a thread of its own, started (setup cell included) as soon as it is made: a
    batch worker makes the next student's kernel while it grades this one, so the kernel's start leaves the critical
    path. Every call runs in that thread, since the session's event loop and sockets belong to the thread that made
    them. ``with KernelThread(...) as k`` waits for the start; the same methods as KernelSession."""

    def __init__(self, limits, visible=None, min_isolation: str = "none", setup: str | list[str] | None = None,
                 slot: int = 0, cpus: int = 1):
        self.session = KernelSession(limits, visible, min_isolation, setup, slot, cpus)  # the level check, here and now
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"kernel-{slot}")
        self._started = self._thread.submit(self.session._start)
        self._closed = False

    def _call(self, method, *args):
        return self._thread.submit(method, *args).result()

    def wait_launched(self) -> None:
        """Return once the kernel's process is started (or its start failed: ``with`` says how). Up to the launch the
        thread runs ~15 ms of Python, which needs the GIL: work that holds it for long (importing torch holds it a third
        of a second at a time) would delay the kernel's start as much, so the caller lets the launch go first."""
        self.session.launched.wait()

    def __enter__(self) -> KernelThread:
        try:
            self._started.result()
        except BaseException:
            self._closed = True  # a failed start stopped what it had started
            self._thread.shutdown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the kernel (started or not) and its thread; again, it does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self.session._stop)
        finally:
            self._thread.shutdown()

    def run(self, code: str, timeout: float | None = None) -> CellRun:
        return self._call(self.session.run, code, timeout)

    def restart(self) -> None:
        self._call(self.session.restart)

    def __getattr__(self, name):  # limits, isolation, restarts, setup_run, cpu_seconds, box
        return getattr(self.session, name)
