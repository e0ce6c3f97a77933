"""Probe throughput against the local chat server, relative to a ceiling measured in the same run.

For each setting, the ceiling is the same number of bare ``openai`` client calls
(``AsyncOpenAI.chat.completions.create``) at the same concurrency against the same server; the probe
is a full :class:`fairpp.probe.ProbeRun` (plan, cache lookups, prompts, extraction, every answer
written to DuckDB as it arrives, the summary at the end), timed from start to summary. The two are
measured alternately, ``--rounds`` times each, and the best of each is compared.

Targets (issue 4): at zero server latency, probe >= 0.80 x ceiling; at 100 ms latency and
concurrency 32, probe >= 0.85 x the ideal concurrency / latency.

Run: ``python3 bench/bench_probe.py`` (about a minute). The server runs in its own process.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fairpp.probe import Endpoint, ProbeConfig, ProbeParams, ProbeRun, plan_probe
from fairpp.probe.prompts import build_messages, request_body
from fairpp.store import Store

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process (all threads), to compare the work per call independently of other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "chatserver.py"), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}/v1"


def build_db(path: Path) -> None:
    try:
        from fairpp.sources.demo import build_demo

        batch = build_demo()
    except ImportError:
        sys.exit("bench_probe needs fairpp.sources.demo (the synthetic demo) for its questions")
    with Store(path) as s:
        s.load(batch)


async def bare_calls(url: str, bodies: list[dict], concurrency: int) -> float:
    """Seconds for the bare client to make every call, ``concurrency`` at a time."""
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, timeout=60)
    queue = list(reversed(bodies[:concurrency]))

    async def worker() -> None:
        while queue:
            body = queue.pop()
            await client.chat.completions.create(**body)

    await asyncio.gather(*[worker() for _ in range(concurrency)])  # open the connections
    queue = list(reversed(bodies))
    t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - t0
    await client.close()
    return elapsed


def probe_once(db: Path, url: str, n: int, concurrency: int, tag: str) -> tuple[float, int]:
    """Seconds for a full probe of ``n`` questions (start to summary) and the answers it stored."""
    with Store(db) as store:
        cfg = ProbeConfig(Endpoint(url, "test-model", api_key="bench"), n=n, concurrency=concurrency, fresh=tag,
                          params=ProbeParams(temperature=0.7))  # sampled: never answered from the cache
        t0 = time.perf_counter()
        run = ProbeRun(store, cfg)
        summary = run.run()
        return time.perf_counter() - t0, int(summary["answered"])


def setting(db: Path, *, latency: float, concurrency: int, n: int, rounds: int) -> dict:
    proc, url = start_server(latency)
    try:
        with Store(db, read_only=True) as store:
            plan = plan_probe(store, ProbeConfig(Endpoint(url, "test-model"), n=n))
            qs = plan.questions
        bodies = [request_body("test-model", build_messages(t, o), ProbeParams(temperature=0.7))
                  for t, o in zip(qs["text"], qs["options"])]
        probe_once(db, url, 50, concurrency, f"warm-{latency}")  # imports, first connections
        ceiling, probe = [], []
        cpu_bare, cpu_probe = [], []
        for r in range(rounds):
            c0 = cpu_seconds()
            ceiling.append(len(bodies) / asyncio.run(bare_calls(url, bodies, concurrency)))
            c1 = cpu_seconds()
            seconds, answered = probe_once(db, url, n, concurrency, f"bench-{latency}-{r}-{time.time()}")
            cpu_bare.append((c1 - c0) / len(bodies) * 1000)
            cpu_probe.append((cpu_seconds() - c1) / max(answered, 1) * 1000)
            probe.append(answered / seconds)
            print(f"  latency {latency:g} s, round {r + 1}: bare {ceiling[-1]:.0f}/s ({cpu_bare[-1]:.2f} ms CPU each), "
                  f"probe {probe[-1]:.0f}/s ({cpu_probe[-1]:.2f} ms CPU each)", file=sys.stderr, flush=True)
    finally:
        proc.kill()
        proc.wait()
    out = {"latency_s": latency, "concurrency": concurrency, "n": n, "ceiling_per_s": max(ceiling),
           "probe_per_s": max(probe), "ceiling_rounds": ceiling, "probe_rounds": probe,
           "cpu_ms_per_call_bare": min(cpu_bare), "cpu_ms_per_answer_probe": min(cpu_probe)}
    out["ratio_to_ceiling"] = out["probe_per_s"] / out["ceiling_per_s"]
    if latency > 0:
        out["ideal_per_s"] = concurrency / latency
        out["ratio_to_ideal"] = out["probe_per_s"] / out["ideal_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-fast", type=int, default=1000, help="questions at zero latency")
    ap.add_argument("--n-slow", type=int, default=960, help="questions at 100 ms latency")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.duckdb"
        build_db(template)
        results = []
        for latency, conc, n in ((0.0, 8, args.n_fast), (0.1, 32, args.n_slow)):
            db = Path(tmp) / f"bench-{latency}.duckdb"
            shutil.copy(template, db)
            results.append(setting(db, latency=latency, concurrency=conc, n=n, rounds=args.rounds))
    fast, slow = results
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"load_average": load, "cpus": os.cpu_count(), "settings": results}, indent=1))
    else:
        print(f"zero latency, concurrency 8: probe {fast['probe_per_s']:.0f}/s vs bare client "
              f"{fast['ceiling_per_s']:.0f}/s -> ratio {fast['ratio_to_ceiling']:.2f} (target >= 0.80)")
        print(f"100 ms latency, concurrency 32: probe {slow['probe_per_s']:.0f}/s vs ideal {slow['ideal_per_s']:.0f}/s "
              f"-> ratio {slow['ratio_to_ideal']:.2f} (target >= 0.85); bare client {slow['ceiling_per_s']:.0f}/s "
              f"(ratio {slow['ratio_to_ceiling']:.2f})")
        print(f"CPU per answer (this process, all threads): probe {fast['cpu_ms_per_answer_probe']:.2f} ms vs bare "
              f"{fast['cpu_ms_per_call_bare']:.2f} ms at zero latency; {slow['cpu_ms_per_answer_probe']:.2f} vs "
              f"{slow['cpu_ms_per_call_bare']:.2f} ms at 100 ms. Load average {load:.1f} on {os.cpu_count()} CPUs "
              "(ratios to the ideal need an otherwise idle machine).")
    ok = fast["ratio_to_ceiling"] >= 0.80 and slow["ratio_to_ideal"] >= 0.85
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
