"""The Probe page's widgets, its session's run, and the cached map it draws on.

The API key a user types lives only in that user's ``st.session_state`` (the password widget's value)
and in the :class:`~fairpp.probe.Endpoint` of the run held there; it is never written anywhere (the probe
engine keeps keys out of run cards, cache keys, logs and packs). A key may also come from an environment
variable or ``st.secrets`` on the server, by name. Widget keys are ``"probe.<field>"``.
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from fairpp import explore, probe, space
from fairpp.schema import FairppError, persona_names
from fairpp.ui import data
from fairpp.ui.selection import Selection

__all__ = [
    "KEY_SOURCES",
    "RUN_KEY",
    "api_key",
    "base_map",
    "config_form",
    "connection_test",
    "current_run",
    "endpoint_form",
    "nearest",
    "pack_panel",
    "probe_layer",
    "progress",
    "runs_frame",
    "start",
]

RUN_KEY = "probe.run"  # the session's ProbeRun (one per user session)
POLL_KEY = "probe.polling"
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*_API_KEY")
KEY_SOURCES = ("Type it (kept in this browser session only)", "Environment variable", "Streamlit secrets")


def _apply_preset() -> None:
    st.session_state["probe.base_url"] = probe.PRESETS[st.session_state["probe.preset"]]


def api_key(source: str, *, typed: str | None, name: str) -> str | None:
    """The key from the chosen source: typed (session only), an environment variable or ``st.secrets``."""
    if source == KEY_SOURCES[0]:
        return (typed or "").strip() or None
    if source == KEY_SOURCES[1]:
        if not _ENV_NAME.fullmatch(name or ""):
            raise FairppError(f"environment variable {name!r} is not offered: only names like OPENAI_API_KEY "
                              "(capitals, ending in _API_KEY) can be read, so no other server setting leaves it.")
        return probe.api_key_from_env(name)
    try:
        value = st.secrets.get(name)
    except (StreamlitSecretNotFoundError, FileNotFoundError):
        return None
    return str(value).strip() or None if value else None


def endpoint_form() -> probe.Endpoint | None:
    """Preset, base URL, model id and API key; ``None`` until a URL and a model are given."""
    names = list(probe.PRESETS)
    st.session_state.setdefault("probe.preset", "vLLM")
    st.session_state.setdefault("probe.base_url", probe.PRESETS[st.session_state["probe.preset"]])
    c1, c2, c3 = st.columns([1, 2, 2])
    c1.selectbox("Preset", names, key="probe.preset", on_change=_apply_preset,
                 help="Fills in the usual base URL of each server; edit it as needed.")
    url = c2.text_input("Base URL", key="probe.base_url", help="The OpenAI-compatible API root, ending in /v1.")
    model = c3.text_input("Model id", key="probe.model", placeholder="e.g. gpt-4o-mini or meta-llama/Llama-3.1-8B",
                          help="As listed by the endpoint's /v1/models (Test connection shows them).")
    k1, k2 = st.columns([1, 2])
    source = k1.radio("API key", KEY_SOURCES, key="probe.key_source",
                      help="Local servers (vLLM, Ollama, llama.cpp, LM Studio) need no key.")
    if source == KEY_SOURCES[0]:
        typed = k2.text_input("Key", type="password", key="probe.api_key", placeholder="sk-… (optional)",
                              help="Held in memory for this browser session only: never stored, logged or exported.")
        name = ""
    else:
        typed = None
        name = k2.text_input("Name of the variable / secret", key="probe.key_name", value="OPENAI_API_KEY")
    key = api_key(source, typed=typed, name=name)
    if source != KEY_SOURCES[0]:
        k2.caption("Key found." if key else f"No key named {name!r} on the server; requests go without one.")
    with st.expander("Extra request headers"):
        raw = st.text_area("Headers, one per line", key="probe.headers", height=80,
                           placeholder="X-Title=Fair-PP Explorer\nHTTP-Referer: https://example.org",
                           help="NAME=VALUE or Name: value. Like the key, the values stay in this browser session: "
                                "never stored, logged or exported.")
    try:
        headers = probe.parse_headers(raw)
    except FairppError as exc:
        st.error(str(exc))
        return None
    if not url.strip() or not model.strip():
        return None
    return probe.Endpoint(url.strip(), model.strip(), api_key=key, headers=headers, timeout=60.0)


def connection_test(endpoint: probe.Endpoint) -> None:
    """The Test connection button and the last report of this session (the report never holds the key)."""
    if st.button("Test connection", key="probe.test", icon=":material/network_check:"):
        with st.spinner(f"Contacting {endpoint.host}…"):
            st.session_state["probe.report"] = probe.check_connection(endpoint, timeout=10.0).as_dict()
    report = st.session_state.get("probe.report")
    if not report or report["base_url"] != endpoint.public_url or report["model"] != endpoint.model:
        return
    rep = probe.ConnectionReport(**report)
    (st.success if rep.ok else st.error)(rep.describe().replace("\n", "  \n"))
    if rep.models and not rep.model_listed:
        st.caption("Models served: " + ", ".join(rep.models[:20]))


def config_form(endpoint: probe.Endpoint) -> probe.ProbeConfig | None:
    """Sample size, concurrency, prompt, reply, role-play, repeats, option swap and budget.

    Returns ``None`` after showing an error when the fields contradict each other (persona and custom prompt).
    """
    c1, c2, c3 = st.columns(3)
    n = c1.number_input("Questions (sample size)", 5, 5000, 100, step=10, key="probe.n",
                        help="A stratified sample (dimension x topic x group type); the same every time.")
    conc = c2.number_input("Concurrency", 1, 64, 8, key="probe.concurrency")
    temp = c3.number_input("Temperature", 0.0, 2.0, 0.0, step=0.1, key="probe.temperature",
                           help="0: deterministic, cached and never paid for twice.")
    with st.expander("Role-play, system prompt, reply, repeats and option swap"):
        a1, a2, a3 = st.columns(3)
        persona = a1.selectbox("Role-play persona", ["(none)", *persona_names()], key="probe.persona")
        repeats = a2.number_input("Repeats per question", 1, 20, 1, key="probe.repeats")
        swap = a3.slider("Share of questions with A/B swapped", 0.0, 1.0, 0.0, 0.1, key="probe.swap",
                         help="Measures position bias; answers are mapped back.")
        system = st.text_area("Custom system prompt (instead of a persona)", key="probe.system_prompt", height=80,
                              help="Sent before every question. Its SHA-256 is in the run card; its text is not.")
        r1, r2, _ = st.columns(3)
        reply = r1.number_input("Max reply tokens", 1, 4096, probe.ProbeParams().max_tokens, key="probe.reply_tokens",
                                help="The answer is one letter; reasoning models may need more room.")
        seed = r2.number_input("Request seed (0 = none)", 0, 2**31 - 1, 0, key="probe.seed",
                               help="Passed to endpoints that accept a seed.")
    with st.expander("Budget and early stop"):
        b1, b2, b3 = st.columns(3)
        max_req = b1.number_input("Max requests (0 = no limit)", 0, 10**7, 0, key="probe.max_requests")
        max_tok = b2.number_input("Max tokens in total (0 = no limit)", 0, 10**10, 0, step=10000, key="probe.max_tokens")
        width = b3.number_input("Stop at interval width (0 = off)", 0.0, 1.0, 0.0, step=0.05, key="probe.width")
        m1, m2, m3 = st.columns(3)
        price_in = m1.number_input("Price per million prompt tokens", 0.0, 1000.0, 0.0, step=0.05, format="%.3f",
                                   key="probe.price_in")
        price_out = m2.number_input("Price per million reply tokens", 0.0, 1000.0, 0.0, step=0.05, format="%.3f",
                                    key="probe.price_out")
        max_cost = m3.number_input("Max cost (0 = no limit)", 0.0, 10**6 * 1.0, 0.0, step=1.0, format="%.2f",
                                   key="probe.max_cost", help="In the prices' currency; needs at least one price.")
    persona_name = None if persona == "(none)" else persona
    if persona_name and system.strip():
        st.error("Give a role-play persona or a custom system prompt, not both: set the persona to (none) or clear "
                 "the prompt.")
        return None
    priced = bool(price_in or price_out)
    if max_cost and not priced:
        st.error("A max cost needs a price: enter the endpoint's price per million prompt and/or reply tokens.")
        return None
    budget = probe.Budget(max_requests=int(max_req) or None, max_tokens=int(max_tok) or None,
                          max_cost=float(max_cost) or None, target_width=float(width) or None,
                          **({"price_in": float(price_in), "price_out": float(price_out)} if priced else {}))
    params = probe.ProbeParams(temperature=float(temp), max_tokens=int(reply), seed=int(seed) or None)
    return probe.ProbeConfig(endpoint, n=int(n), concurrency=int(conc), repeats=int(repeats), swap_share=float(swap),
                             persona=persona_name, system_prompt=system.strip() or None, params=params, budget=budget)


def current_run() -> Any:
    """This session's :class:`~fairpp.probe.ProbeRun` (or ``None``)."""
    return st.session_state.get(RUN_KEY)


def start(plan: probe.ProbePlan) -> Any:
    """Start ``plan`` in the background as this session's run (a running one must be cancelled first)."""
    old = current_run()
    if old is not None and not old.finished:
        raise FairppError("a probe is already running in this session; cancel it first.")
    run = probe.ProbeRun(data.get_store(), plan).start()
    st.session_state[RUN_KEY] = run
    st.session_state[POLL_KEY] = True
    return run


def progress(snap: probe.Progress) -> None:
    """Progress bar and counters of a run."""
    st.progress(min(snap.done / snap.planned, 1.0) if snap.planned else 0.0,
                text=f"**{snap.status}** · {snap.done:,} of {snap.planned:,} done"
                     + (f" · stopped: {snap.stop_reason}" if snap.stop_reason else ""))
    eta = "–" if snap.eta_s is None else f"{snap.eta_s:,.0f} s"
    values = {"Answered": f"{snap.answered:,}", "Cached": f"{snap.cached:,}", "Failed": f"{snap.failed:,}",
              "Refused": f"{snap.refused:,}", "Unparsed": f"{snap.unparsed:,}", "ETA": eta,
              "Tokens": f"{snap.tokens:,}", "Rate": f"{snap.rate:.1f}/s"}
    if snap.cost:
        values["Cost"] = f"{snap.cost:,.4f}"
    for col, (label, value) in zip(st.columns(len(values)), values.items()):
        col.metric(label, value)
    if snap.error:
        st.error(f"The run failed: {snap.error}")


@st.cache_data(show_spinner=False, max_entries=8)
def base_map(sel: Selection) -> dict[str, Any]:
    """The frozen PCA map of the Regional models page (fitted on the personas), and its PCA for probes."""
    comp = data.model_comparison(sel)
    if len(comp.dims) < 2:
        raise FairppError("the map needs at least two dimensions; clear the dimension filter")
    personas = [p for p in persona_names() if p in comp.points.index] or \
        comp.positions.loc[comp.positions["kind"] == "persona", "respondent"].unique().tolist()
    placed, cloud, explained = explore.model_map_frames(comp, personas=personas)
    pts = comp.points.dropna()
    ref = pts.loc[[p for p in personas if p in pts.index]]
    pca = space.FrozenPCA.fit(ref, n_components=max(1, min(2, len(ref) - 1, pts.shape[1])))
    titles = [f"PC{i + 1} ({r:.0%} of persona variance)" for i, r in enumerate(explained)] + ["PC2"]
    return {"placed": placed, "cloud": cloud, "titles": titles[:2], "pca": pca, "dims": list(pts.columns),
            "comparison": comp.positions}


def _place(pca: Any, pts: pd.DataFrame) -> pd.DataFrame:
    placed = pca.transform(pts)
    if "PC2" not in placed:
        placed["PC2"] = 0.0
    return placed


def probe_layer(run_ids: list[str], base: dict[str, Any], *, n_boot: int = 100) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Points (``respondent, kind, PC1, PC2, 1..5``) and bootstrap clouds of probe runs on the base map.

    A run shows once it is recorded and has an answer on every dimension of the map.
    """
    store, dims = data.get_store(), base["dims"]
    points, clouds = [], []
    for rid in run_ids:
        try:
            pts = probe.probe_points(probe.probe_positions(store, rid, kinds=()))
        except FairppError:  # a run that is starting has no run card yet
            continue
        if pts.empty or not set(dims) <= set(pts.columns) or pts[dims].isna().any(axis=None):
            continue
        placed = _place(base["pca"], pts[dims])
        points.append(pd.concat([placed, pts[dims]], axis=1).rename_axis("respondent").reset_index())
        reps = pd.DataFrame(probe.probe_cloud(store, rid, n_boot=n_boot), columns=list(space.DIMENSIONS))
        reps = reps[dims].dropna()
        if len(reps):
            clouds.append(_place(base["pca"], reps).assign(respondent=points[-1]["respondent"].iloc[0]))
    cols = ["respondent", "PC1", "PC2"]
    return (pd.concat(points, ignore_index=True).assign(kind="probe") if points else pd.DataFrame(columns=cols),
            pd.concat(clouds, ignore_index=True) if clouds else pd.DataFrame(columns=cols))


def nearest(run_id: str, regions: dict[str, Any]) -> None:
    """The run's nearest persona and nearest regional model (with its region), on the run's questions."""
    s = probe.run_summary(data.get_store(), run_id)
    p, m = s.get("nearest_persona"), s.get("nearest_model")
    region = (regions.get(m["respondent"]) if m else None) or "–"
    st.markdown(f"**Nearest persona:** {p['respondent'] if p else '–'}"
                + (f" (distance {p['distance']:.3f})" if p else "")
                + f" · **Nearest regional model:** {m['respondent'] if m else '–'}"
                + (f" (distance {m['distance']:.3f}), region **{region}**" if m else ""))
    st.caption(f"Distances in the full position space, on the {s['answered']:,} answers of this run and the same "
               "questions answered by the personas and models.")


def runs_frame() -> pd.DataFrame:
    """Every probe run in the store, newest first, with the columns people read."""
    runs = probe.list_runs(data.get_store())
    cols = ["run_id", "respondent", "model", "endpoint_host", "persona", "status", "answered", "failed", "refused",
            "n_planned", "completeness", "started_at", "imported"]
    return runs[[c for c in cols if c in runs.columns]]


def pack_panel(runs: pd.DataFrame) -> None:
    """Download a run as a probe pack; upload a pack to replay a colleague's run at no cost."""
    c1, c2 = st.columns(2)
    with c1:
        if runs.empty:
            st.caption("No run to export yet.")
        else:
            rid = st.selectbox("Run to export", runs["run_id"].tolist(), key="probe.pack_run",
                               format_func=dict(zip(runs["run_id"], runs["respondent"])).get)
            st.download_button("Download probe pack", data=lambda: probe.pack_bytes(data.get_store(), rid),
                               file_name=probe.default_pack_name(rid), mime="application/gzip",
                               key="probe.pack_download", icon=":material/download:")
    with c2:
        up = st.file_uploader("Import a probe pack", type=["gz", "json"], key="probe.pack_upload")
        replace = st.checkbox("Replace the run if it is already here", key="probe.pack_replace")
        if up is not None and st.button("Import", key="probe.pack_import", icon=":material/upload:"):
            rid = probe.import_pack(data.get_store(), up.getvalue(), replace=replace)
            data.invalidate()
            st.success(f"Imported run {rid}.")


def positions_table(run_ids: list[str]) -> pd.DataFrame:
    """Wide positions (with intervals) of the given runs, on each run's own questions."""
    store = data.get_store()
    frames = [probe.probe_positions(store, rid, kinds=()) for rid in run_ids]
    frames = [f for f in frames if not f.empty]
    return explore.position_table(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()


def finished_polling() -> bool:
    """True once, when this session's run has ended after the page polled it (then rerun the whole page)."""
    run = current_run()
    if run is not None and run.finished and st.session_state.get(POLL_KEY):
        st.session_state[POLL_KEY] = False
        return True
    return False

