"""The one gate for everything the student's kernel sends the grader: what passes it is bounded and clean.

The kernel is the student's process: every message it sends (size, type, text) is the student's choice. Before a
message reaches nbclient, the gate (``Gate.admit``) keeps only the kinds a grade reads, on an allow-list, and cuts
what it keeps to stated sizes:

- message kinds: ``status``, ``execute_input``, ``stream``, ``display_data``, ``execute_result``, ``error`` and
  ``clear_output``; everything else is dropped, among them widget (comm) messages and their binary buffers (nbclient
  would keep them all in the grader's memory) and ``update_display_data``; no display id is kept;
- bytes: a message over ``MESSAGE_BYTES`` never arrives (ZeroMQ's ``MAXMSGSIZE`` on the grader's sockets drops it,
  and the connection, at the transport, before it is read into memory; at most 64 messages wait on a socket:
  ``execute.ReadyClient``); the grader then reconnects to the same kernel, and that cell's later outputs are lost;
  a cell keeps at most ``CELL_BYTES``
  of outputs (stream text: course.toml's ``output_kb``); one kernel session (a student's grade) at most
  ``SESSION_BYTES`` in all, after which nothing more is kept;
- text: every string, also inside an answer's JSON, is cut to ``STRING_CHARS`` characters (stream text to the
  cell's room) and cleaned by ``clean_text``: terminal escape sequences and control characters removed (newline and
  tab kept), lone surrogates (which no UTF-8 writer or XML file accepts) replaced by U+FFFD, bidirectional overrides
  removed; nested data deeper than ``DEPTH`` is cut.
"""

from __future__ import annotations

import re

MESSAGE_BYTES = 8 << 20  # ZeroMQ's MAXMSGSIZE on the grader's sockets: the largest answer a check sends is ~0.1 MB
CELL_BYTES = 8 << 20  # rich outputs (answers) kept per cell
SESSION_BYTES = 64 << 20  # everything kept from one kernel session (a whole grade: ~2 MB in this course)
STRING_CHARS = 2_000  # one string: an error message, a traceback line, a name (an answer's numbers are no strings)
DEPTH = 32  # nesting of lists and dicts inside an answer
KINDS = frozenset({"status", "execute_input", "stream", "display_data", "execute_result", "error", "clear_output"})
TRUNCATED = "\n[output truncated by the grader]\n"

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str, limit: int = STRING_CHARS) -> str:
    """``text`` cut to ``limit`` characters, without terminal escapes, control characters (but newline and tab),
    bidirectional overrides or lone surrogates."""
    if not isinstance(text, str):
        text = str(text)
    cut = len(text) > limit
    text = text[:limit]
    if not text.isascii():
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))
    return text + (TRUNCATED if cut else "")


def clean_data(value, depth: int = 0):
    """JSON-like data with every string cleaned and cut, every key a clean string, nothing deeper than ``DEPTH``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if depth >= DEPTH:
        return None
    if isinstance(value, dict):
        return {clean_text(str(k), 200): clean_data(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_data(v, depth + 1) for v in value]
    return clean_text(repr(value), 200)


def size(value) -> int:
    """A cheap upper bound of ``value``'s size as text (strings counted by length), without serialising it."""
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 24
    return total


class Gate:
    """One kernel session's gate. ``admit(msg, outputs)`` returns the message to hand on, cleaned, or None to drop
    it; ``outputs`` are the current cell's outputs so far (for its caps)."""

    def __init__(self, stream_bytes: int = 256 << 10, cell_bytes: int = CELL_BYTES,
                 session_bytes: int = SESSION_BYTES):
        self.stream_bytes, self.cell_bytes, self.session_bytes = stream_bytes, cell_bytes, session_bytes
        self.kept = 0  # bytes kept in this session
        self.dropped = 0  # messages dropped or cut in this session

    def admit(self, msg: dict, outputs: list) -> dict | None:
        kind = msg.get("msg_type") if isinstance(msg, dict) else None
        content = msg.get("content") if kind else None
        if kind not in KINDS or not isinstance(content, dict):
            self.dropped += 1
            return None
        if kind in ("status", "execute_input", "clear_output"):
            return msg
        content = dict(content)
        content.pop("transient", None)  # no display id: nbclient would update earlier outputs through it
        if kind == "stream":
            kept = sum(len(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
            room = min(self.stream_bytes - kept, self.session_bytes - self.kept)
            text = content.get("text")
            if room <= 0 or not isinstance(text, str):
                self.dropped += 1
                return None
            content["text"] = clean_text(text, room)
            content["name"] = "stderr" if content.get("name") == "stderr" else "stdout"
        else:
            kept = sum(size(o.get("data", {})) for o in outputs if o.get("output_type") != "stream")
            incoming = size(content)
            if kept + incoming > self.cell_bytes or self.kept + incoming > self.session_bytes:
                self.dropped += 1
                return None
            content = clean_data(content)
            if kind == "error":
                content["traceback"] = [line for line in content.get("traceback") or [] if isinstance(line, str)]
                content["ename"] = clean_text(str(content.get("ename", "Error")), 200)
                content["evalue"] = clean_text(str(content.get("evalue", "")))
            elif not isinstance(content.get("data"), dict):
                self.dropped += 1
                return None
        self.kept += size(content)
        return {**msg, "content": content}
