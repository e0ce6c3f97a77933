"""The endpoint and the one seam to the network: an OpenAI-compatible chat backend.

:class:`Endpoint` describes where to send requests; its API key (and extra header values) are kept
out of ``repr``, out of :meth:`Endpoint.card` and out of every cache key, so nothing that is stored
can carry them. :class:`OpenAIBackend` is the only code that imports ``openai`` (lazily, on first
use); the runner talks to any object with its two coroutines (:class:`ChatBackend`), so tests can
swap it. Errors come back as :class:`CallError` with a ``kind`` the runner's retry rule reads.
"""
from __future__ import annotations

import email.utils
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol
from urllib.parse import urlsplit, urlunsplit

from fairpp.schema import FairppError

__all__ = ["Endpoint", "CallError", "ChatBackend", "OpenAIBackend", "api_key_from_env", "redact",
           "RETRYABLE", "PRESETS"]

#: Error kinds the runner retries (with jittered backoff, honouring ``retry-after``).
RETRYABLE = frozenset({"rate_limit", "server", "timeout", "connection", "bad_response"})

#: Base URLs of common OpenAI-compatible servers (the page offers them as presets).
PRESETS = {
    "OpenAI": "https://api.openai.com/v1",
    "OpenRouter": "https://openrouter.ai/api/v1",
    "vLLM": "http://localhost:8000/v1",
    "Ollama": "http://localhost:11434/v1",
    "llama.cpp server": "http://localhost:8080/v1",
    "LM Studio": "http://localhost:1234/v1",
}


def api_key_from_env(name: str = "OPENAI_API_KEY") -> str | None:
    """The API key in environment variable ``name`` (``None`` when unset or empty)."""
    value = os.environ.get(name, "").strip()
    return value or None


def parse_headers(lines: Any) -> dict[str, str]:
    """Extra request headers from ``NAME=VALUE`` or ``Name: value`` items (one per line in a string).

    Blank lines are skipped; a line without a name raises :class:`FairppError` naming it (without its value,
    which may be a secret).

    >>> parse_headers("X-Title=Fair-PP\\nHTTP-Referer: https://example.org\\n")
    {'X-Title': 'Fair-PP', 'HTTP-Referer': 'https://example.org'}
    """
    items = lines.splitlines() if isinstance(lines, str) else list(lines or [])
    headers: dict[str, str] = {}
    for i, item in enumerate(items, 1):
        if not str(item).strip():
            continue
        cut = min((k for k in (item.find("="), item.find(":")) if k > 0), default=-1)
        name, value = (item[:cut].strip(), item[cut + 1:].strip()) if cut > 0 else ("", "")
        if not name or any(c.isspace() for c in name):
            shown = (item[:cut] if cut > 0 else item.split()[0] if item.split() else item)[:40]
            raise FairppError(f"header line {i} ({shown!r}...): write NAME=VALUE or Name: value, one per line.")
        headers[name] = value
    return headers


def redact(text: Any, secrets: tuple[str, ...]) -> Any:
    """Replace every secret (length >= 4) in ``text`` with ``***``; non-strings pass through.

    >>> redact("key sk-abc123 leaked", ("sk-abc123",))
    'key *** leaked'
    """
    if not isinstance(text, str):
        return text
    for s in secrets:
        if s and len(s) >= 4 and s in text:
            text = text.replace(s, "***")
    return text


@dataclass(frozen=True, repr=False)
class Endpoint:
    """An OpenAI-compatible endpoint: base URL, model id, key and extra headers.

    The key is never part of ``repr``, of :meth:`card` or of a cache key. Local servers (vLLM,
    Ollama, llama.cpp, LM Studio) accept any key; ``None`` sends a placeholder.

    Examples
    --------
    >>> e = Endpoint("https://user:pw@api.example.com/v1?key=s3cret", "gpt-x", api_key="sk-123456")
    >>> e.host, e.public_url, "sk-123456" in repr(e)
    ('api.example.com', 'https://api.example.com/v1', False)
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False, compare=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    timeout: float = 60.0

    def __post_init__(self) -> None:
        parts = urlsplit(str(self.base_url).strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FairppError(f"base URL {self.base_url!r} is not an http(s) URL; give one such as "
                              f"{PRESETS['vLLM']} or {PRESETS['OpenAI']}.")
        if not str(self.model).strip():
            raise FairppError("model is empty; give the model id the endpoint serves (see its /v1/models).")
        if not float(self.timeout) > 0:
            raise FairppError(f"timeout={self.timeout!r} must be a positive number of seconds.")

    def __repr__(self) -> str:
        return f"Endpoint({self.public_url!r}, {self.model!r})"

    @property
    def host(self) -> str:
        """Host (and port) without credentials."""
        parts = urlsplit(self.base_url.strip())
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else ""

    @property
    def public_url(self) -> str:
        """The base URL without credentials, query or fragment: what runs and cache keys record."""
        parts = urlsplit(self.base_url.strip())
        return urlunsplit((parts.scheme, self.host, parts.path.rstrip("/"), "", ""))

    @property
    def request_url(self) -> str:
        """The base URL requests go to (credentials in the URL are dropped; query kept)."""
        parts = urlsplit(self.base_url.strip())
        return urlunsplit((parts.scheme, self.host, parts.path.rstrip("/"), parts.query, ""))

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be stored: the key, header values, URL credentials and query values."""
        parts = urlsplit(self.base_url.strip())
        out = [self.api_key or "", parts.password or "", parts.username or ""]
        out += [str(v) for v in self.headers.values()]
        out += [kv.partition("=")[2] for kv in parts.query.split("&") if kv]
        bearer = [f"Bearer {s}" for s in out if s]
        return tuple(s for s in bearer + out if s and len(s) >= 4)

    def card(self) -> dict[str, Any]:
        """What a run card records about the endpoint: no key, no header values."""
        return {"endpoint_host": self.host, "base_url": self.public_url, "model": self.model,
                "header_names": sorted(self.headers), "timeout": float(self.timeout),
                "key_given": bool(self.api_key)}


class CallError(FairppError):
    """A request that did not give a usable reply.

    ``kind``: ``rate_limit`` (429), ``server`` (5xx), ``timeout``, ``connection``, ``bad_response``
    (malformed JSON, empty choices), ``auth`` (401/403), ``not_found`` (404) or ``client`` (other
    4xx). ``retry_after`` is the server's ``retry-after`` in seconds, when given.
    """

    def __init__(self, kind: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


class ChatBackend(Protocol):
    """The seam: what the runner needs from a client."""

    async def chat(self, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """POST ``/chat/completions``; the decoded JSON reply, or :class:`CallError`."""

    async def models(self, *, timeout: float) -> list[str]:
        """GET ``/models``: the model ids, or :class:`CallError`."""

    async def aclose(self) -> None:
        """Release connections."""


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date).

    >>> retry_after_seconds({"retry-after": "2"}), retry_after_seconds({"retry-after-ms": "250"})
    (2.0, 0.25)
    """
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value) if name == "retry-after" else None
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    return None


class OpenAIBackend:
    """:class:`ChatBackend` over the ``openai`` package (imported on first use).

    The client makes no retries of its own (the runner owns retries, timeouts and the request log)
    and keeps up to ``max_connections`` connections open. Replies are decoded here, so a malformed
    body becomes ``CallError("bad_response")`` rather than an exception deep in the SDK.

    Chat calls, the hot path of a probe, go straight through the SDK's own HTTP client with the headers the
    SDK would send: the SDK's request machinery costs about a millisecond of CPU per call, which at 32 calls in
    flight on a small machine is what caps the throughput. That client is the SDK's ``DefaultAioHttpClient``
    (the ``openai[aiohttp]`` extra, in the requirements), whose aiohttp transport with its C HTTP parser spends
    far less CPU per request than the default httpx/httpcore stack; without aiohttp the default client is used.
    The model list and everything else go through the SDK.
    """

    def __init__(self, endpoint: Endpoint, *, max_connections: int = 64) -> None:
        self.endpoint = endpoint
        self.max_connections = max(1, int(max_connections))
        self._client: Any = None
        self._raw: Any = None
        self._http: Any = None
        self._chat_url = ""
        self._headers: dict[str, str] = {}

    def _ensure(self) -> Any:
        if self._client is None:
            import httpx2  # openai's transport
            import openai

            limits = httpx2.Limits(max_connections=self.max_connections,
                                   max_keepalive_connections=self.max_connections)
            try:  # the SDK's aiohttp transport (openai[aiohttp]): a fraction of httpcore's CPU per request
                self._http = openai.DefaultAioHttpClient(limits=limits, timeout=self.endpoint.timeout)
            except RuntimeError:  # aiohttp not installed: the SDK's default httpx transport
                self._http = openai.DefaultAsyncHttpxClient(limits=limits, timeout=self.endpoint.timeout)
            self._client = openai.AsyncOpenAI(
                base_url=self.endpoint.request_url, api_key=self.endpoint.api_key or "not-needed",
                max_retries=0, timeout=self.endpoint.timeout, default_headers=dict(self.endpoint.headers),
                http_client=self._http)
            self._raw = httpx2.Response
            parts = urlsplit(self.endpoint.request_url)
            self._chat_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/chat/completions",
                                         parts.query, ""))
            self._headers = {"Accept": "application/json", "Content-Type": "application/json",
                             "Authorization": f"Bearer {self.endpoint.api_key or 'not-needed'}",
                             **{str(k): str(v) for k, v in self.endpoint.headers.items()}}
        return self._client

    async def chat(self, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        import httpx2

        self._ensure()
        try:
            response = await self._http.post(self._chat_url, content=json.dumps(body).encode("utf-8"),
                                             headers=self._headers, timeout=timeout)
        except httpx2.TimeoutException as exc:
            raise self._timeout_error(exc) from exc
        except httpx2.HTTPError as exc:
            raise CallError("connection", f"cannot connect to {self.endpoint.host}: {exc}") from exc
        except Exception as exc:  # what the aiohttp transport passes on unmapped: a reply that is not HTTP
            if not type(exc).__module__.startswith("aiohttp"):
                raise
            raise CallError("bad_response", f"the reply from {self.endpoint.host} is not valid HTTP ({exc})") from exc
        if response.status_code >= 400:
            raise _status_error(response)
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CallError("bad_response", f"the reply is not valid JSON ({exc})",
                            status=response.status_code) from exc

    async def models(self, *, timeout: float) -> list[str]:
        client = self._ensure()
        response = await self._call(client.get("/models", cast_to=self._raw, options={"timeout": timeout}))
        try:
            data = json.loads(response.content)
            return [str(m["id"]) for m in data.get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CallError("bad_response", f"the model list is not the expected JSON ({exc})") from exc

    async def _call(self, coro: Any) -> Any:
        import openai

        try:
            return await coro
        except openai.APITimeoutError as exc:
            raise self._timeout_error(exc) from exc
        except openai.APIConnectionError as exc:
            raise CallError("connection", f"cannot connect to {self.endpoint.host}: {exc}") from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            raise CallError(_status_kind(status), f"HTTP {status}: {_error_message(exc)}", status=status,
                            retry_after=retry_after_seconds(exc.response.headers)) from exc
        except openai.APIError as exc:  # e.g. an unreadable body
            raise CallError("bad_response", str(exc)) from exc

    def _timeout_error(self, exc: BaseException) -> CallError:
        """The :class:`CallError` for a "timeout" from the client: ``timeout``, or ``connection`` when it was not one.

        The SDK's aiohttp transport reports every aiohttp connection error (refused, reset, dropped) as
        ``httpx2.ConnectTimeout``; the aiohttp error it wraps tells a refused connection from a real timeout.
        """
        cause = exc.__cause__
        while cause is not None:
            if type(cause).__module__.startswith("aiohttp") and not isinstance(cause, TimeoutError):
                return CallError("connection", f"cannot connect to {self.endpoint.host}: {cause}")
            cause = cause.__cause__
        return CallError("timeout", "the request timed out")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()  # closes the shared HTTP client too
            self._client = self._http = None


def _status_kind(status: int) -> str:
    return ("rate_limit" if status == 429 else "server" if status >= 500 else
            "auth" if status in (401, 403) else "not_found" if status == 404 else
            "timeout" if status == 408 else "client")


def _status_error(response: Any) -> CallError:
    """The :class:`CallError` for an HTTP error reply (its message from the usual ``{"error": {...}}`` body)."""
    status = int(response.status_code)
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    err = body.get("error", body) if isinstance(body, Mapping) else None
    if isinstance(err, Mapping) and err.get("message"):
        message = str(err["message"])[:300]
    elif isinstance(err, str) and err:
        message = err[:300]
    else:
        message = (response.text or response.reason_phrase or "")[:300]
    return CallError(_status_kind(status), f"HTTP {status}: {message}", status=status,
                     retry_after=retry_after_seconds(response.headers))


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])[:300]
    return str(getattr(exc, "message", exc))[:300]
