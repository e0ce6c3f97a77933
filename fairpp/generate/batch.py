"""Batch mode: role-play requests as an OpenAI Batch API file, submission and polling, ingestion of the output.

:func:`write_requests` writes one JSON line per request, ``{"custom_id", "method": "POST", "url":
"/v1/chat/completions", "body"}``, with the same prompts a live run sends, and registers one probe run per
persona (status ``pending``) so the output can be matched later. ``custom_id`` is
``"<run_id>:<question_id>:<sample>:<swapped 0|1>"``. :func:`submit` uploads the file (``POST /files``,
purpose ``batch``), creates the batch (``POST /batches``), polls ``GET /batches/{id}`` until it ends and
downloads the output (``GET /files/{id}/content``); an endpoint without these routes raises
:class:`BatchUnsupported`. :func:`ingest` reads an output file (from :func:`submit` or obtained elsewhere):
every line is checked first, then all answers and request-log rows are stored in one transaction, so a bad
file writes nothing. Every line is accounted for: ``stored``, ``failed`` (an error or non-200 status: asked
again by the next batch or live run), ``duplicate`` (already stored).
"""
from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fairpp.generate.run import GenerationJob
from fairpp.probe.extract import extract
from fairpp.probe.prompts import SWAP, build_messages, parse_options, request_body
from fairpp.schema import FairppError
from fairpp.store.personas import PersonaStore
from fairpp.store.runs import RunStore

__all__ = ["CHAT_URL", "BatchError", "BatchUnsupported", "ingest", "parse_custom_id", "submit", "write_requests"]

log = logging.getLogger(__name__)

CHAT_URL = "/v1/chat/completions"


class BatchError(FairppError):
    """A batch file that cannot be written, submitted or ingested; the message names the line and the fix."""


class BatchUnsupported(BatchError):
    """The endpoint has no /files + /batches routes."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_custom_id(custom_id: Any) -> tuple[str, int, int, bool]:
    """``(run_id, question_id, sample, swapped)`` from a custom id written by :func:`write_requests`.

    >>> parse_custom_id("probe-abc:123:0:1")
    ('probe-abc', 123, 0, True)
    """
    parts = str(custom_id).split(":")
    try:
        if len(parts) != 4 or parts[3] not in ("0", "1"):
            raise ValueError
        return parts[0], int(parts[1]), int(parts[2]), parts[3] == "1"
    except ValueError:
        raise BatchError(f"custom_id {str(custom_id)[:60]!r} was not written by fairpp (expected "
                         "'<run_id>:<question_id>:<sample>:<0|1>').") from None


def write_requests(store: Any, jobs: Sequence[GenerationJob], path: str | Path) -> dict[str, Any]:
    """Write the jobs' unanswered requests to ``path`` (atomically) and register their runs as pending.

    Returns ``path``, ``requests`` and per-run counts.
    """
    path = Path(path)
    runs = RunStore(store)
    lines, per_run = [], {}
    for job in jobs:
        cfg = job.plan.config
        done = runs.answered_tasks(job.plan.run_id) if runs.get_run(job.plan.run_id) else set()
        texts = job.plan.questions[["text", "options"]].to_dict("index")
        n = 0
        for t in job.plan.tasks:
            if (t.question_id, t.sample) in done:
                continue
            q = texts[t.question_id]
            messages = build_messages(q["text"], q["options"], swap=t.swapped, system=cfg.system)
            body = request_body(cfg.endpoint.model, messages, cfg.params, logprobs=cfg.params.logprobs)
            lines.append(json.dumps({"custom_id": f"{job.plan.run_id}:{int(t.question_id)}:{t.sample}:{int(t.swapped)}",
                                     "method": "POST", "url": CHAT_URL, "body": body}, ensure_ascii=False))
            n += 1
        per_run[job.plan.run_id] = {"respondent": job.respondent, "persona": job.persona.name, "requests": n}
    if not lines:
        raise BatchError("nothing to ask: every selected question is already answered for these personas.")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise BatchError(f"cannot write {path}: {exc}; choose another --batch-file path.") from exc
    finally:
        tmp.unlink(missing_ok=True)
    for job in jobs:  # only after the file exists
        _register(store, job)
    return {"path": str(path), "requests": len(lines), "runs": per_run}


def _register(store: Any, job: GenerationJob) -> None:
    runs = RunStore(store)
    cfg = job.plan.config
    runs.start_run({**job.plan.card(), "batch": True}, respondent_row={
        "respondent": job.respondent, "org": cfg.endpoint.host, "provenance": f"batch run {job.plan.run_id}",
        "description": f"{job.persona.name} role-played by {cfg.endpoint.model} (batch)"})
    runs.finish_run(job.plan.run_id, status="pending", stop_reason="batch", counters={})
    PersonaStore(store).mark_custom(job.respondent)


# -- submission ------------------------------------------------------------------------------------------
def _request(method: str, url: str, *, key: str | None, data: bytes | None = None,
             content_type: str | None = None, timeout: float = 60.0) -> bytes:
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key or 'sk-no-key'}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 405, 501):
            raise BatchUnsupported(f"the endpoint has no {url.rsplit('/v1', 1)[-1].split('/')[1]} route (HTTP "
                                   f"{exc.code}): it does not run batches. Run without --batch, or submit the "
                                   "requests file elsewhere and `fairpp generate ingest OUTPUT`.") from None
        raise BatchError(f"{method} {url.split('?')[0]} failed with HTTP {exc.code}.") from None
    except urllib.error.URLError as exc:
        raise BatchError(f"cannot reach {url.split('?')[0]}: {exc.reason}.") from None


def submit(endpoint: Any, requests_path: str | Path, output_path: str | Path, *, poll_s: float = 5.0,
           timeout_s: float = 24 * 3600.0, on_status: Callable[[dict[str, Any]], None] | None = None,
           wait: Callable[[float], Any] = time.sleep) -> dict[str, Any]:
    """Upload, create the batch, poll until it ends, download the output to ``output_path``; returns the batch."""
    base, key = endpoint.request_url.rstrip("/"), endpoint.api_key
    boundary = uuid.uuid4().hex
    content = Path(requests_path).read_bytes()
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{Path(requests_path).name}\"\r\n"
            "Content-Type: application/jsonl\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    uploaded = json.loads(_request("POST", f"{base}/files", key=key, data=form,
                                   content_type=f"multipart/form-data; boundary={boundary}"))
    batch = json.loads(_request("POST", f"{base}/batches", key=key, content_type="application/json", data=json.dumps(
        {"input_file_id": uploaded["id"], "endpoint": CHAT_URL, "completion_window": "24h"}).encode()))
    start = time.monotonic()
    while batch.get("status") not in ("completed", "failed", "expired", "cancelled"):
        if time.monotonic() - start > timeout_s:
            raise BatchError(f"batch {batch.get('id')} still {batch.get('status')} after {timeout_s:.0f} s; ingest "
                             "its output later with `fairpp generate ingest FILE`.")
        wait(poll_s)
        batch = json.loads(_request("GET", f"{base}/batches/{batch['id']}", key=key))
        if on_status:
            on_status(batch)
    if batch["status"] != "completed" or not batch.get("output_file_id"):
        raise BatchError(f"batch {batch.get('id')} ended {batch.get('status')} without an output file.")
    Path(output_path).write_bytes(_request("GET", f"{base}/files/{batch['output_file_id']}/content", key=key))
    return batch


# -- ingestion -------------------------------------------------------------------------------------------
def ingest(store: Any, output_path: str | Path) -> dict[str, Any]:
    """Store the answers of a batch output file; see the module docstring. Returns the accounting."""
    path = Path(output_path)
    try:
        raw_lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BatchError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    runs = RunStore(store)
    known: dict[str, dict[str, Any]] = {}
    parsed = []
    for i, line in enumerate(raw_lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise BatchError(f"{path.name} line {i} is not JSON; give the batch output file as downloaded.") from None
        if not isinstance(row, dict) or "custom_id" not in row:
            raise BatchError(f"{path.name} line {i} has no custom_id; is this a batch output file?")
        run_id, qid, sample, swapped = parse_custom_id(row["custom_id"])
        if run_id not in known:
            run = runs.get_run(run_id)
            if run is None:
                raise BatchError(f"{path.name} line {i}: run {run_id} is not in this database; ingest into the "
                                 "database that wrote the requests (--db).")
            known[run_id] = run
        parsed.append((i, row, run_id, qid, sample, swapped))
    if not parsed:
        raise BatchError(f"{path.name} holds no results.")
    qids = sorted({p[3] for p in parsed})
    texts = runs.question_texts(qids).set_index("question_id")["options"].to_dict()
    done = {rid: runs.answered_tasks(rid) for rid in known}
    answers, requests, seen = [], [], set()
    counts = {"lines": len(parsed), "stored": 0, "failed": 0, "duplicate": 0}
    now = _now()
    for i, row, run_id, qid, sample, swapped in parsed:
        if qid not in texts:
            raise BatchError(f"{path.name} line {i}: question {qid} is not in this database.")
        if (qid, sample) in done[run_id] or (run_id, qid, sample) in seen:
            counts["duplicate"] += 1
            continue
        resp = row.get("response") or {}
        body = resp.get("body") if isinstance(resp, dict) else None
        status = resp.get("status_code") if isinstance(resp, dict) else None
        usage = (body or {}).get("usage") or {} if isinstance(body, dict) else {}
        pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        if row.get("error") or status != 200 or not isinstance(body, dict) or not body.get("choices"):
            err = json.dumps(row.get("error"))[:500] if row.get("error") else f"status {status}"
            requests.append((run_id, qid, sample, swapped, 1, now, None, "batch_error", status, err, pt, ct,
                             False, None))
            counts["failed"] += 1
            continue
        opts = parse_options(texts[qid])
        shown = {k: opts[SWAP[k]] for k in "ABC"} if swapped else opts
        ex = extract(body, swapped=swapped, shown_options=shown)
        seen.add((run_id, qid, sample))
        answers.append((qid, known[run_id]["respondent"], ex.answer, ex.p_a, ex.p_b, ex.p_c, ex.raw, run_id, sample))
        requests.append((run_id, qid, sample, swapped, 1, now, None, "ok", 200, None, pt, ct, False, None))
        counts["stored"] += 1
    PersonaStore(store).write_batch_results(answers, requests)
    per_run = {}
    for run_id, run in known.items():
        n_ans = runs.run_counts(run_id)["answered"]
        planned = int(run.get("n_planned") or 0)
        status = "complete" if planned and n_ans >= planned else "incomplete"
        runs.finish_run(run_id, status=status, stop_reason=None if status == "complete" else "batch",
                        counters={}, extra_card={"batch_output": path.name})
        per_run[run_id] = {"respondent": run["respondent"], "answered": n_ans, "planned": planned, "status": status}
    log.info("ingested %s: %s", path.name, counts)
    return {**counts, "runs": per_run}
