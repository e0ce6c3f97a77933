"""Tests of the hub download (``fairpp.sources.hub``) against a real local HTTP server (``tests/fakehub.py``).

No test needs the internet: ``HF_ENDPOINT`` points at a fake hub on 127.0.0.1, at a closed port, or at
a socket that never answers.
"""
from __future__ import annotations

import io
import time
from itertools import product

import numpy as np
import pandas as pd
import pytest

from fairpp.schema import Batch, LoadError, model_info, persona_names, taxonomy
from fairpp.sources import hub
from fairpp.sources.published import to_wide
from fairpp.store import Store
from fakehub import FakeHub, Repo, SilentServer, closed_port

MODELS = ["Qwen2.5-7B-Instruct", "Mistral-7B-Instruct-v0.3"]
N_TRAIN, N_TEST = 20, 10
TOKEN = "hf_fairpp_test_token"


# -- a small dataset in the published layout ---------------------------------------------------------


def _questions(n: int, *, offset: int = 0, prefix: str = "Which is fairer") -> pd.DataFrame:
    """``n`` distinct questions on one real problem: (group, dimension) pairs from ``offset`` on."""
    tax = taxonomy()
    topic = tax["topics"][0]
    category = topic["problem_categories"][0]
    groups = [(t["name"], g) for t in tax["group_types"] for g in t["groups"]]
    pairs = list(product(groups, range(1, 6)))[offset:offset + n]
    return pd.DataFrame([
        {"question_id": f"q{offset + i}", "topic": topic["name"], "problem_category": category["name"],
         "specific_problem": category["problems"][0], "group_type": gt, "group_name": g, "dimension": d,
         "text": f"{prefix} for {g} on dimension {d}?", "options": "A. first pole\nB. second pole\nC. N/A"}
        for i, ((gt, g), d) in enumerate(pairs)])


def _batch(questions: pd.DataFrame, respondents: list[str], seed: int) -> Batch:
    rng = np.random.default_rng(seed)
    answers = pd.DataFrame([{"question_id": q, "respondent": r, "answer": rng.choice(["A", "B", "C"])}
                            for q in questions["question_id"] for r in respondents])
    kinds = pd.DataFrame([{"respondent": r, "kind": "persona" if r in persona_names() else "model",
                           **(model_info(r) if r in MODELS else {})} for r in respondents])
    return Batch(questions=questions, respondents=kinds, answers=answers)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    """``train.csv`` (20 questions x 7 personas) and ``test.parquet`` (10 questions x 7 personas + 2 models)."""
    train = to_wide(_batch(_questions(N_TRAIN), persona_names(), seed=1))
    test = to_wide(_batch(_questions(N_TEST, offset=N_TRAIN), persona_names() + MODELS, seed=2))
    return {"README.md": b"# Fair-PP (test copy)\n", "data/train.csv": _csv(train),
            "data/test.parquet": _parquet(test)}


@pytest.fixture(scope="module")
def simulation_file() -> bytes:
    """Five scenario questions answered by the personas, with a ``simulation_question`` column."""
    wide = to_wide(_batch(_questions(5, offset=N_TRAIN + N_TEST, prefix="In this scenario, which is fairer"),
                          persona_names(), seed=3))
    wide.insert(wide.columns.get_loc("Question") + 1, "simulation_question", wide["Question"])
    return _csv(wide)


@pytest.fixture
def fake(files, simulation_file):
    server = FakeHub({
        hub.DATASET_REPO: Repo(dict(files)),
        "tests/private": Repo(dict(files), token=TOKEN),
        "tests/docs-only": Repo({"README.md": b"nothing here\n"}),
        hub.SIMULATION_REPO: Repo({"simulation.csv": simulation_file}),
        "tests/overlap": Repo({"train.csv": files["data/train.csv"]}),
    })
    yield server
    server.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean hub environment; returns a setter for HF_ENDPOINT."""
    for name in ("HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "FAIRPP_HUB_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)

    def point_at(endpoint: str) -> None:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)

    return point_at


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "db.duckdb") as s:
        yield s


def _expected_info(repo: str) -> dict:
    return {"source": {"kind": "hub", "label": f"Fair-PP published dataset ({repo})", "synthetic": False},
            "questions": N_TRAIN + N_TEST, "answers": (N_TRAIN + N_TEST) * 7 + N_TEST * len(MODELS),
            "respondents": {"persona": 7, "model": len(MODELS)}}


# -- downloads -------------------------------------------------------------------------------------------


def test_fetch_downloads_csv_and_parquet_train_first(fake, env, tmp_path, files):
    env(fake.endpoint)
    got = hub.fetch(cache_dir=tmp_path / "cache")
    assert [p.name for p in got] == ["train.csv", "test.parquet"]
    assert got.simulation == []
    assert all(str(p).startswith(str(tmp_path / "cache")) for p in got)
    assert got[0].read_bytes() == files["data/train.csv"]
    assert got[1].read_bytes() == files["data/test.parquet"]
    paths = [r.path for r in fake.requests if r.method == "GET"]
    assert "/api/datasets/tools-o/Fair-PP/revision/main" in paths
    assert not any(p.endswith("README.md") for p in paths)  # only the data files are downloaded


def test_load_from_hub_counts_and_source(fake, env, tmp_path, store):
    env(fake.endpoint)
    report = hub.load_from_hub(store, cache_dir=tmp_path / "cache")
    assert report["questions"] == N_TRAIN + N_TEST
    assert store.info() == _expected_info(hub.DATASET_REPO)
    q = store.questions()
    assert q["split"].value_counts().to_dict() == {"train": N_TRAIN, "test": N_TEST}
    src = store.sources().iloc[0]
    assert src["kind"] == "hub" and "tools-o/Fair-PP" in src["label"]
    assert "train.csv" in src["files"] and "test.parquet" in src["files"]


def test_hf_endpoint_is_read_at_call_time(fake, env, tmp_path):
    env(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(LoadError):
        hub.fetch(cache_dir=tmp_path / "cache")
    env(fake.endpoint)
    assert len(hub.fetch(cache_dir=tmp_path / "cache")) == 2


def test_hf_token_is_sent_as_bearer(fake, env, tmp_path, monkeypatch, store):
    env(fake.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.load_from_hub(store, repo="tests/private", cache_dir=tmp_path / "cache")
    sent = {r.headers.get("authorization") for r in fake.requests}
    assert sent == {f"Bearer {TOKEN}"}
    assert store.info() == _expected_info("tests/private")


def test_private_repo_without_token_says_hf_token(fake, env, tmp_path):
    env(fake.endpoint)
    with pytest.raises(LoadError) as err:
        hub.fetch(repo="tests/private", cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert "tests/private" in msg and "HF_TOKEN" in msg and "401" in msg and "fairpp load" in msg
    assert all("authorization" not in r.headers for r in fake.requests)


def test_unknown_repo_names_the_repo(fake, env, tmp_path):
    env(fake.endpoint)
    with pytest.raises(LoadError) as err:
        hub.fetch(repo="nobody/no-such-dataset", cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert "nobody/no-such-dataset" in msg and "404" in msg and "HF_TOKEN" in msg and "fairpp load" in msg


def test_repo_without_data_files(fake, env, tmp_path):
    env(fake.endpoint)
    with pytest.raises(LoadError, match="no CSV or Parquet files") as err:
        hub.fetch(repo="tests/docs-only", cache_dir=tmp_path / "cache")
    assert "tests/docs-only" in str(err.value) and "fairpp load" in str(err.value)


def test_invalid_repo_id(env, tmp_path):
    with pytest.raises(LoadError, match="not a valid hub repo id"):
        hub.fetch(repo="no spaces allowed", cache_dir=tmp_path / "cache")


# -- offline and unreachable hubs --------------------------------------------------------------------------


def test_closed_port_fails_fast_with_the_alternative(env, tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env(endpoint)
    start = time.monotonic()
    with pytest.raises(LoadError) as err:
        hub.fetch(cache_dir=tmp_path / "cache")
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"took {elapsed:.1f} s"
    msg = str(err.value)
    assert msg.startswith(f"cannot reach {endpoint}: ") and "fairpp load" in msg
    assert "refused" in msg.lower()


def test_unreachable_hub_falls_back_to_the_cache(fake, env, tmp_path, caplog):
    env(fake.endpoint)
    first = hub.fetch(cache_dir=tmp_path / "cache")
    env(f"http://127.0.0.1:{closed_port()}")
    assert hub.fetch(cache_dir=tmp_path / "cache") == first
    assert "using the copy cached" in caplog.text


def test_silent_server_fails_within_the_timeout(silent, env, tmp_path):
    env(silent.endpoint)
    start = time.monotonic()
    with pytest.raises(LoadError) as err:
        hub.fetch(cache_dir=tmp_path / "cache")  # the default timeout, settings().hub_timeout = 8 s
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"took {elapsed:.1f} s"
    msg = str(err.value)
    assert msg.startswith(f"cannot reach {silent.endpoint}: no answer within 8 s") and "fairpp load" in msg


def test_timeout_comes_from_settings(silent, env, tmp_path, monkeypatch):
    env(silent.endpoint)
    monkeypatch.setenv("FAIRPP_HUB_TIMEOUT", "0.5")
    with pytest.raises(LoadError, match=r"no answer within 0\.5 s"):
        hub.fetch(cache_dir=tmp_path / "cache")
    with pytest.raises(LoadError, match=r"no answer within 0\.2 s"):
        hub.fetch(cache_dir=tmp_path / "cache", timeout=0.2)


def test_failed_fetch_leaves_the_store_unchanged(fake, env, tmp_path, store):
    env(fake.endpoint)
    hub.load_from_hub(store, cache_dir=tmp_path / "cache")
    before, sources = store.info(), store.sources()
    env(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(LoadError, match="fairpp load"):
        hub.load_from_hub(store, cache_dir=tmp_path / "other-cache")
    env(fake.endpoint)
    with pytest.raises(LoadError, match="nobody/missing"):
        hub.load_from_hub(store, repo="nobody/missing", cache_dir=tmp_path / "cache")
    assert store.info() == before
    pd.testing.assert_frame_equal(store.sources(), sources)


# -- the simulation repo ----------------------------------------------------------------------------------


def test_simulation_files_are_kept_apart_and_appended(fake, env, tmp_path, store):
    env(fake.endpoint)
    got = hub.fetch(simulation=True, cache_dir=tmp_path / "cache")
    assert [p.name for p in got] == ["train.csv", "test.parquet"]
    assert [p.name for p in got.simulation] == ["simulation.csv"]
    assert [p.name for p in hub.fetch_simulation(cache_dir=tmp_path / "cache")] == ["simulation.csv"]

    report = hub.load_from_hub(store, simulation=True, cache_dir=tmp_path / "cache")
    info = store.info()
    base = _expected_info(hub.DATASET_REPO)
    assert info["questions"] == base["questions"] + 5 == report["questions"]
    assert info["answers"] == base["answers"] + 5 * 7 == report["answers"]
    assert info["respondents"] == base["respondents"]
    assert info["source"]["kind"] == "hub"
    assert info["source"]["label"] == (f"Fair-PP published dataset ({hub.DATASET_REPO}) + "
                                       f"Fair-PP simulation ({hub.SIMULATION_REPO})")
    assert report["simulation"]["questions"] == 5


def test_simulation_overlapping_the_dataset_loads_nothing(fake, env, tmp_path, store, monkeypatch):
    env(fake.endpoint)
    monkeypatch.setattr(hub, "SIMULATION_REPO", "tests/overlap")
    with pytest.raises(LoadError, match="Nothing was loaded"):
        hub.load_from_hub(store, simulation=True, cache_dir=tmp_path / "cache")
    assert store.is_empty()
