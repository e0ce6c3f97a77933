"""Connection test: can we reach the endpoint, is the model there, does it return logprobs, take a seed?"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from fairpp.probe.endpoint import CallError, ChatBackend, Endpoint, OpenAIBackend, redact
from fairpp.probe.extract import BadReply, reply_text

__all__ = ["ConnectionReport", "check_connection", "acheck_connection"]

_QUESTION = [{"role": "user", "content": "Which letter comes first in the alphabet?\n\nA. A\nB. B\nC. C\n\n"
                                         "Answer with a single letter: A, B or C."}]


@dataclass
class ConnectionReport:
    """What the endpoint supports.

    ``models``: the ids ``/models`` lists (``None`` if that failed); ``model_listed``: whether the
    chosen model is among them; ``chat``: a one-token chat call worked; ``logprobs``: the reply
    carried first-token alternatives; ``seed``: the endpoint accepted a ``seed`` (``None``: unknown);
    ``errors``: step -> message (never the key).
    """

    base_url: str
    model: str
    ok: bool = False
    models: list[str] | None = None
    model_listed: bool | None = None
    chat: bool = False
    logprobs: bool = False
    seed: bool | None = None
    latency_ms: float | None = None
    reply: str | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """A few lines for people."""
        lines = [f"endpoint {self.base_url}, model {self.model}: {'OK' if self.ok else 'NOT usable'}"]
        if self.models is not None:
            lines.append(f"models listed: {len(self.models)}; this model {'is' if self.model_listed else 'is NOT'} "
                         "among them")
        lines.append(f"chat: {'yes' if self.chat else 'no'}"
                     + (f" ({self.latency_ms:.0f} ms, replied {self.reply!r})" if self.chat else ""))
        lines.append(f"logprobs: {'yes' if self.logprobs else 'no (answers will be parsed letters)'}")
        lines.append(f"seed: {'accepted' if self.seed else 'unknown' if self.seed is None else 'refused'}")
        lines += [f"{step}: {msg}" for step, msg in self.errors.items()]
        return "\n".join(lines)


async def acheck_connection(endpoint: Endpoint, *, backend: ChatBackend | None = None,
                            timeout: float = 15.0) -> ConnectionReport:
    """Coroutine behind :func:`check_connection`."""
    report = ConnectionReport(base_url=endpoint.public_url, model=endpoint.model)
    client = backend or OpenAIBackend(endpoint, max_connections=2)
    secrets = endpoint.secrets()
    try:
        try:
            report.models = await client.models(timeout=timeout)
            report.model_listed = endpoint.model in report.models
        except CallError as exc:
            report.errors["models"] = redact(str(exc), secrets)
        # Ask with everything, then drop what the endpoint refuses: seed first, then logprobs.
        for with_logprobs, with_seed in ((True, True), (True, False), (False, True), (False, False)):
            body: dict[str, Any] = {"model": endpoint.model, "messages": _QUESTION, "max_tokens": 1,
                                    "temperature": 0.0}
            if with_logprobs:
                body.update(logprobs=True, top_logprobs=5)
            if with_seed:
                body["seed"] = 0
            t0 = time.perf_counter()
            try:
                data = await asyncio.wait_for(client.chat(body, timeout=timeout), timeout + 1.0)
                content, refusal, logprobs = reply_text(data)
            except (CallError, BadReply, TimeoutError) as exc:
                report.errors["chat"] = redact(str(exc) or type(exc).__name__, secrets)
                if isinstance(exc, CallError) and exc.kind == "client":
                    continue  # a 4xx about a parameter: try without it
                break
            report.errors.pop("chat", None)
            report.chat = True
            report.latency_ms = (time.perf_counter() - t0) * 1000.0
            report.reply = redact(content if content is not None else refusal, secrets)
            report.logprobs = isinstance(logprobs, Mapping) and bool(logprobs.get("content"))
            report.seed = with_seed  # the call that worked carried a seed, or a seed was refused
            break
    finally:
        if backend is None:
            await client.aclose()
    report.ok = report.chat
    return report


def check_connection(endpoint: Endpoint, *, backend: ChatBackend | None = None,
                     timeout: float = 15.0) -> ConnectionReport:
    """Test an endpoint: list models, make one one-token call, and see what it supports.

    Never raises for a network problem: the report says what failed (``errors``), without the key.
    """
    coro = acheck_connection(endpoint, backend=backend, timeout=timeout)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop in this thread
        return asyncio.run(coro)
    # Called from inside a running loop (a notebook, a Playwright script): run on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
