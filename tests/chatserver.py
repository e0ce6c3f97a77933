"""A real OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

Built on the standard library (``http.server.ThreadingHTTPServer``, HTTP/1.1 keep-alive, Nagle off).
It serves ``POST /v1/chat/completions`` and ``GET /v1/models``, and offers:

* a pluggable **policy**: any callable ``policy(request: ChatRequest) -> Reply | str`` decides what the
  "model" says. :class:`PolePolicy` answers Fair-PP questions by their meaning (the text of the option
  it picks), so a probe lands where the policy says, even with the options swapped; the policy sees the
  system prompt, so persona role-play can be simulated by reading ``request.system``;
* configurable per-request ``latency``, ``logprobs`` on/off (ignored or rejected), ``seed`` support;
* injected **faults** (:class:`Fault`): ``429`` with ``retry-after``, ``500``/``503``, ``slow`` replies
  past the client's timeout, ``malformed`` JSON, ``empty`` choices, ``refusal`` text, ``echo_key``
  (echo the Authorization header back, to check that clients never store it);
* ``block_after(n)``: hold every chat request after the n-th until :meth:`ChatServer.release`;
* counters: every request, by prompt (``per_prompt``), and served replies, with
  :meth:`ChatServer.wait_for` to wait for a count without sleeping.

Run it alone for benchmarks: ``python3 tests/chatserver.py --latency 0.1`` prints ``PORT <n>``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

__all__ = ["ChatServer", "ChatRequest", "Reply", "Fault", "Policy", "PolePolicy", "fixed_policy",
           "hash_policy", "parse_options_block"]


@dataclass
class ChatRequest:
    """One chat-completions request as the policy sees it."""

    body: dict[str, Any]
    headers: Mapping[str, str]  # names in lower case
    index: int  # 1-based order of arrival among chat requests

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def system(self) -> str | None:
        sys_msgs = [m.get("content") for m in self.messages if m.get("role") == "system"]
        return sys_msgs[0] if sys_msgs else None

    @property
    def user(self) -> str:
        users = [m.get("content") for m in self.messages if m.get("role") == "user"]
        return str(users[-1]) if users else ""


@dataclass
class Reply:
    """What the model says: its text, and optionally the first token's distribution (``{token: p}``).

    ``tokens`` splits ``text`` into tokens for the logprobs content (default: one token).
    ``answer_at`` is the index of the token whose alternatives ``top`` describes (default 0).
    """

    text: str | None
    top: dict[str, float] | None = None
    tokens: list[str] | None = None
    answer_at: int = 0
    refusal: str | None = None
    prompt_tokens: int = 40
    completion_tokens: int = 1


Policy = Callable[[ChatRequest], "Reply | str"]


@dataclass
class Fault:
    """An injected fault: ``kind`` is ``429``, ``500``, ``503``, ``slow``, ``malformed``, ``empty``,
    ``refusal`` or ``echo_key``. ``times`` is how many requests it hits (``None``: every match);
    ``match`` limits it to requests whose user message contains that text (or satisfies the callable).
    ``retry_after`` (seconds, sent as ``retry-after``) / ``retry_after_ms``; ``delay`` for ``slow``."""

    kind: str
    times: int | None = 1
    match: str | Callable[[ChatRequest], bool] | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    delay: float = 5.0
    text: str = "I cannot answer this question; I do not take sides on political issues."
    hits: int = 0

    def applies(self, req: ChatRequest) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(req))
        return self.match in req.user


def parse_options_block(user: str) -> dict[str, str]:
    """``{"A": text, "B": text, "C": text}`` from lines such as ``A. Give everyone ...``.

    >>> parse_options_block("Q?\\nA. one\\nB. two\\nC. N/A\\nAnswer with a letter.")
    {'A': 'one', 'B': 'two', 'C': 'N/A'}
    """
    out = {}
    for line in user.splitlines():
        m = re.match(r"^\s*\(?([ABC])[\.\)]\s+(.*\S)\s*$", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (the same question always gives the same)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def fixed_policy(letter: str = "A", *, logprobs: dict[str, float] | None = None) -> Policy:
    """Always answer ``letter`` (with an optional first-token distribution)."""
    return lambda req: Reply(letter, top=logprobs or {letter: 1.0})


def hash_policy(p: Mapping[str, float] | None = None) -> Policy:
    """Answer a letter drawn deterministically from the user message, with ``p`` as the logprobs
    (default A 0.45, B 0.45, C 0.1)."""
    p = dict(p or {"A": 0.45, "B": 0.45, "C": 0.1})
    letters = list(p)
    cum = [sum(p[k] for k in letters[: i + 1]) for i in range(len(letters))]

    def policy(req: ChatRequest) -> Reply:
        u = _unit(req.user) * cum[-1]
        letter = next(k for k, c in zip(letters, cum) if u < c)
        return Reply(letter, top=dict(p))

    return policy


@dataclass
class PolePolicy:
    """Answer Fair-PP questions by meaning: pick the second pole with probability ``p_b[dimension]``.

    ``poles`` maps a question's option-A text to ``(dimension, option-B text)`` (build it with
    :meth:`from_questions`). The presented options may be in any order: the policy finds which
    presented letter carries the second pole's text. ``na`` is the N/A probability. With
    ``soft=True`` the first-token distribution is exactly (1-na)(1-p_b), (1-na)p_b, na (spread over
    the spellings "B", " B", "b" to exercise clients); the chosen letter is drawn deterministically
    from the question text. ``by_system`` overrides ``p_b`` per system prompt (persona role-play).
    """

    poles: dict[str, tuple[int, str]]
    p_b: dict[int, float]
    na: float = 0.0
    soft: bool = True
    by_system: dict[str, dict[int, float]] = field(default_factory=dict)

    @classmethod
    def from_questions(cls, questions: Any, p_b: dict[int, float], **kw: Any) -> "PolePolicy":
        poles = {}
        for opts, dim in zip(questions["options"], questions["dimension"]):
            o = parse_options_block(str(opts))
            poles[o["A"]] = (int(dim), o["B"])
        return cls(poles=poles, p_b=dict(p_b), **kw)

    def __call__(self, req: ChatRequest) -> Reply:
        opts = parse_options_block(req.user)
        a_text, b_text = opts.get("A", ""), opts.get("B", "")
        if a_text in self.poles:
            dim, second = self.poles[a_text]
            b_letter, a_letter = "B", "A"
        elif b_text in self.poles:  # presented swapped: the first pole is shown as B
            dim, second = self.poles[b_text]
            b_letter, a_letter = "A", "B"
        else:
            return Reply("I am not sure what this question asks.", top={"I": 0.9, "A": 0.1})
        table = self.p_b
        for key, override in self.by_system.items():
            if req.system and key in req.system:
                table = override
        pb = table[dim]
        p = {a_letter: (1 - self.na) * (1 - pb), b_letter: (1 - self.na) * pb, "C": self.na}
        u = _unit(req.user, req.system, req.body.get("seed"))
        letter = "C" if u < self.na else (b_letter if _unit("pole", req.user) < pb else a_letter)
        if not self.soft:
            return Reply(letter, top=None)
        top = {}
        for k, v in p.items():  # spread each option's mass over spellings a client must merge
            top[k], top[" " + k], top[k.lower()] = 0.7 * v, 0.2 * v, 0.1 * v
        return Reply(letter, top=top)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else a stdlib server manages ~20 requests/s
    server: "_Server"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _auth_ok(self) -> bool:
        owner = self.server.owner
        if owner.api_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {owner.api_key}":
            return True
        self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
        return False

    def do_GET(self) -> None:  # noqa: N802
        owner = self.server.owner
        owner._count("GET " + self.path)
        if self.path.rstrip("/").endswith("/models"):
            if not self._auth_ok():
                return
            self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "chatserver"} for m in owner.models]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, {"error": {"message": "request body is not JSON"}})
            return
        req = owner._arrive(body, {k.lower(): v for k, v in self.headers.items()})
        if not self._auth_ok():
            return
        t_arrive = time.monotonic()
        if owner._hold(req):  # blocked until release; the client may have gone away
            self.close_connection = True
            return
        if owner.latency > 0:
            owner._stop.wait(owner.latency)
        status, payload, headers = owner._respond(req)
        self._send(status, payload, headers)
        owner._served(req, status, payload, t_arrive)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256
    owner: "ChatServer"


class ChatServer:
    """A chat-completions server on ``127.0.0.1`` (see the module docstring).

    Examples
    --------
    >>> with ChatServer(fixed_policy("B")) as srv:
    ...     srv.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, policy: Policy | None = None, *, latency: float = 0.0, logprobs: bool = True,
                 logprobs_mode: str = "ignore", seed: bool = True, models: tuple[str, ...] = ("test-model",),
                 api_key: str | None = None, port: int = 0) -> None:
        self.policy = policy or hash_policy()
        self.latency = latency
        self.logprobs = logprobs
        self.logprobs_mode = logprobs_mode  # ignore | reject (when logprobs is False)
        self.seed = seed
        self.models = list(models)
        self.api_key = api_key
        self.faults: list[Fault] = []
        self.requests = Counter()  # "POST chat" / "GET /v1/models" / ...
        self.per_prompt: Counter[str] = Counter()  # chat requests per user message (all arrivals)
        self.served_prompt: Counter[str] = Counter()  # 200 replies with choices per user message
        self.statuses: Counter[int] = Counter()
        self.seen_headers: list[dict[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        #: (arrival time, reply time, user message, status) of every chat request answered
        self.events: list[tuple[float, float, str, int]] = []
        self.keep_bodies = True
        self._lock = threading.Condition()
        self._chat_n = 0
        self._served_n = 0
        self._block_after: int | None = None
        self._held = 0
        self._release = threading.Event()
        self._drop = False
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a client is given (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ChatServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="chatserver")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._release.set()
        if self._thread is not None:  # shutdown() waits for serve_forever, which must have started
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls -----------------------------------------------------------------------------
    def inject(self, kind: str, **kw: Any) -> Fault:
        """Add a fault rule (see :class:`Fault`); returns it so a test can read ``hits``."""
        fault = Fault(kind, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def block_after(self, n: int | None) -> None:
        """Hold every chat request after the ``n``-th (counted from now on) until :meth:`release`."""
        with self._lock:
            self._block_after = None if n is None else self._chat_n + n
            self._release.clear()

    def release(self, *, drop: bool = False) -> None:
        """Stop holding requests; held ones are answered, or with ``drop`` closed without a reply
        (use that after killing the client, so its abandoned requests count as never served)."""
        with self._lock:
            self._block_after = None
            self._drop = drop
        self._release.set()

    @property
    def chat_requests(self) -> int:
        return self._chat_n

    @property
    def served(self) -> int:
        """Chat replies sent with status 200."""
        return self._served_n

    @property
    def held(self) -> int:
        return self._held

    def wait_for(self, what: Callable[["ChatServer"], bool], timeout: float = 30.0) -> bool:
        """Wait (on a condition variable, no polling) until ``what(server)`` holds."""
        with self._lock:
            return self._lock.wait_for(lambda: what(self), timeout=timeout)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.per_prompt.clear()
            self.served_prompt.clear()
            self.statuses.clear()
            self.bodies.clear()
            self.events.clear()
            self.seen_headers.clear()

    # -- internals ----------------------------------------------------------------------------
    def _count(self, key: str) -> None:
        with self._lock:
            self.requests[key] += 1
            self._lock.notify_all()

    def _arrive(self, body: dict[str, Any], headers: dict[str, str]) -> ChatRequest:
        with self._lock:
            self._chat_n += 1
            req = ChatRequest(body=body, headers=headers, index=self._chat_n)
            self.requests["POST chat"] += 1
            self.per_prompt[req.user] += 1
            if self.keep_bodies:
                self.bodies.append(body)
                self.seen_headers.append(headers)
            self._lock.notify_all()
        return req

    def _hold(self, req: ChatRequest) -> bool:
        with self._lock:
            blocked = self._block_after is not None and req.index > self._block_after
            if blocked:
                self._held += 1
                self._lock.notify_all()
        if not blocked:
            return False
        self._release.wait()
        with self._lock:
            self._held -= 1
            drop = self._drop
        return self._stop.is_set() or drop

    def _served(self, req: ChatRequest, status: int, payload: Any, t_arrive: float) -> None:
        with self._lock:
            self.statuses[status] += 1
            if self.keep_bodies:
                self.events.append((t_arrive, time.monotonic(), req.user, status))
            if status == 200:
                self._served_n += 1
                if isinstance(payload, dict) and payload.get("choices"):
                    self.served_prompt[req.user] += 1
            self._lock.notify_all()

    def _fault(self, req: ChatRequest) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.applies(req):
                    f.hits += 1
                    return f
        return None

    def _respond(self, req: ChatRequest) -> tuple[int, Any, dict[str, str]]:
        body = req.body
        if body.get("model") not in self.models:
            return 404, {"error": {"message": f"model {body.get('model')!r} not found"}}, {}
        if not self.logprobs and body.get("logprobs") and self.logprobs_mode == "reject":
            return 400, {"error": {"message": "logprobs are not supported", "param": "logprobs"}}, {}
        if not self.seed and "seed" in body:
            return 400, {"error": {"message": "unknown parameter: seed", "param": "seed"}}, {}
        fault = self._fault(req)
        if fault is not None:
            kind = fault.kind
            if kind in ("429", "500", "502", "503"):
                headers = {}
                if fault.retry_after is not None:
                    headers["retry-after"] = f"{fault.retry_after:g}"
                if fault.retry_after_ms is not None:
                    headers["retry-after-ms"] = f"{fault.retry_after_ms:g}"
                return int(kind), {"error": {"message": f"injected {kind}", "type": "server_error"}}, headers
            if kind == "slow":
                self._stop.wait(fault.delay)
            elif kind == "malformed":
                return 200, b'{"id": "x", "choices": [{"message": {"content": "A"', {}
            elif kind == "empty":
                return 200, self._completion(req, None, choices=[]), {}
            elif kind == "refusal":
                return 200, self._completion(req, Reply(fault.text, top={"I": 0.95, "A": 0.05})), {}
            elif kind == "echo_key":
                auth = req.headers.get("authorization", "")
                return 200, self._completion(req, Reply(f"B. your header was {auth}", top={"B": 1.0})), {}
        reply = self.policy(req)
        if isinstance(reply, str):
            reply = Reply(reply)
        return 200, self._completion(req, reply), {}

    def _completion(self, req: ChatRequest, reply: Reply | None, *,
                    choices: list[Any] | None = None) -> dict[str, Any]:
        body = req.body
        if choices is None:
            assert reply is not None
            message: dict[str, Any] = {"role": "assistant", "content": reply.text}
            if reply.refusal is not None:
                message["refusal"] = reply.refusal
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop",
                                      "logprobs": None}
            if self.logprobs and body.get("logprobs") and reply.text is not None:
                choice["logprobs"] = {"content": self._logprobs(reply, int(body.get("top_logprobs") or 0))}
            choices = [choice]
        usage = {"prompt_tokens": reply.prompt_tokens if reply else 40,
                 "completion_tokens": reply.completion_tokens if reply else 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        out = {"id": f"chatcmpl-{req.index}", "object": "chat.completion", "created": int(time.time()),
               "model": body.get("model"), "choices": choices, "usage": usage}
        if self.seed and "seed" in body:
            out["system_fingerprint"] = "fp_chatserver"
        return out

    @staticmethod
    def _logprobs(reply: Reply, k: int) -> list[dict[str, Any]]:
        tokens = reply.tokens or [reply.text or ""]
        out = []
        for i, tok in enumerate(tokens):
            if i == reply.answer_at and reply.top:
                top = sorted(reply.top.items(), key=lambda kv: -kv[1])
                chosen_p = reply.top.get(tok, max(reply.top.values()))
            else:
                top, chosen_p = [(tok, 1.0)], 1.0
            entry = {"token": tok, "logprob": math.log(max(chosen_p, 1e-12)), "bytes": list(tok.encode()),
                     "top_logprobs": [{"token": t, "logprob": math.log(max(p, 1e-12)),
                                       "bytes": list(t.encode())} for t, p in top[:k]]}
            out.append(entry)
        return out


def main(argv: list[str] | None = None) -> int:
    """Serve until killed; print ``PORT <n>`` once listening (used by ``bench/bench_probe.py``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--no-logprobs", action="store_true")
    ap.add_argument("--model", default="test-model")
    args = ap.parse_args(argv)
    srv = ChatServer(latency=args.latency, logprobs=not args.no_logprobs, models=(args.model,), port=args.port)
    srv.keep_bodies = False
    print(f"PORT {srv.port}", flush=True)
    srv.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
