"""Probe any model through an OpenAI-compatible endpoint and see where it lands.

The only package that imports ``openai`` (lazily: importing :mod:`fairpp.probe` does not).

Typical use (a page or a script)::

    from fairpp.probe import Endpoint, ProbeConfig, ProbeRun, plan_probe, check_connection
    ep = Endpoint("http://localhost:8000/v1", "my-model", api_key=key)
    check_connection(ep).describe()
    plan = plan_probe(store, ProbeConfig(ep, n=300))      # sample + expected interval widths
    run = ProbeRun(store, plan).start()                    # background thread
    run.snapshot(); run.answers(since); run.cancel()       # from any thread
    run.wait(); run.summary                                # positions, nearest persona

Modules: :mod:`~fairpp.probe.endpoint` (endpoint, client seam), :mod:`~fairpp.probe.prompts` and
:mod:`~fairpp.probe.extract` (pure request building / reply parsing), :mod:`~fairpp.probe.sampling`
and :mod:`~fairpp.probe.plan` (what is asked), :mod:`~fairpp.probe.runner` (the asyncio runner),
:mod:`~fairpp.probe.summary`, :mod:`~fairpp.probe.packs`, :mod:`~fairpp.probe.connection`.
"""
from typing import Any

import pandas as pd

from fairpp.probe.connection import ConnectionReport, check_connection
from fairpp.probe.endpoint import PRESETS, CallError, Endpoint, OpenAIBackend, api_key_from_env, parse_headers
from fairpp.probe.extract import Extracted, extract, letter_probs
from fairpp.probe.packs import default_pack_name, export_pack, import_pack, pack_bytes, read_pack
from fairpp.probe.plan import Budget, ProbeConfig, ProbePlan, RetryPolicy, plan_probe
from fairpp.probe.prompts import ProbeParams, build_messages, persona_prompt
from fairpp.probe.runner import ProbeRun
from fairpp.probe.sampling import DEFAULT_SAMPLE_SEED, expected_widths, stratified_sample
from fairpp.probe.summary import position_bias, probe_cloud, probe_points, probe_positions, run_summary
from fairpp.probe.tally import ProbeAnswer, Progress
from fairpp.store.runs import RunStore

__all__ = [
    "Endpoint", "PRESETS", "CallError", "OpenAIBackend", "api_key_from_env", "parse_headers", "ConnectionReport", "check_connection",
    "ProbeParams", "build_messages", "persona_prompt", "Extracted", "extract", "letter_probs",
    "DEFAULT_SAMPLE_SEED", "stratified_sample", "expected_widths", "RetryPolicy", "Budget", "ProbeConfig",
    "ProbePlan", "plan_probe", "ProbeRun", "ProbeAnswer", "Progress", "run_summary", "probe_positions",
    "probe_points", "probe_cloud", "position_bias", "export_pack", "import_pack", "read_pack", "pack_bytes",
    "default_pack_name", "list_runs",
]


def list_runs(store: Any) -> pd.DataFrame:
    """Every probe run in the store, newest first (a DataFrame of run cards)."""
    return RunStore(store).list_runs()
