"""The probe from the command line: kill-and-resume in a subprocess, --json, packs, and the key in logs."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from conftest import demo_template_db
from chatserver import ChatServer, PolePolicy
from fairpp.cli import main
from fairpp.probe.prompts import build_messages
from fairpp.store import RunStore, Store

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-CLI-NEVER-STORE-92b1e07d"
P_B = {1: 0.25, 2: 0.4, 3: 0.5, 4: 0.6, 5: 0.75}


def _template(factory: pytest.TempPathFactory) -> Path:
    return demo_template_db(factory)


@pytest.fixture
def db(tmp_path_factory, tmp_path) -> Path:
    path = tmp_path / "cli.duckdb"
    shutil.copy(_template(tmp_path_factory), path)
    return path


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    with Store(_template(tmp_path_factory), read_only=True) as s:
        return PolePolicy.from_questions(s.questions(), P_B, na=0.05)


def probe_argv(url: str, db: Path, *extra: str) -> list[str]:
    return ["probe", "--base-url", url, "--model", "test-model", "--db", str(db), "--timeout", "10", *extra]


def texts_by_task(db: Path, run_id: str) -> tuple[set, dict]:
    """Answered (question, sample) pairs of the run, and each question's prompt as the server sees it."""
    with Store(db) as s:
        answered = RunStore(s).answered_tasks(run_id)
        q = s.questions()
    prompt = {qid: build_messages(t, o)[-1]["content"] for qid, t, o in zip(q["question_id"], q["text"], q["options"])}
    return answered, prompt


class StoredLog:
    """Reads a probe's ``-v`` log as it is written: how many answers it has stored so far."""

    def __init__(self, stream) -> None:
        self.text = ""
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, b""):
            with self.cond:
                self.text += line.decode(errors="replace")
                self.cond.notify_all()

    def stored(self) -> int:
        return max([int(n) for n in re.findall(r"stored \d+ answer\(s\), (\d+) this session", self.text)] or [0])

    def wait_for_stored(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.stored() >= n, timeout)


@pytest.mark.parametrize("mode", ["blocked", "flowing"])
def test_a_killed_probe_resumes_without_asking_an_answered_question_again(db, policy, mode):
    n = 120
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    with ChatServer(policy) as srv:
        if mode == "blocked":
            srv.block_after(40)  # the 41st request and later hang until the test lets them go
            killed_when = lambda s: s.served >= 40 and s.held >= 1  # noqa: E731
        else:  # after 40 fast replies each takes 0.3 s: killed while replies keep arriving
            srv.inject("slow", times=None, delay=0.3, match=lambda r: r.index > 40)
            killed_when = lambda s: s.served >= 46  # noqa: E731
        argv = [sys.executable, "-m", "fairpp", "-v", *probe_argv(srv.url, db, "--n", str(n), "--concurrency",
                                                                  "4", "--no-progress", "--json")]
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        log = StoredLog(proc.stderr)
        try:
            assert srv.wait_for(killed_when, timeout=120), log.text[-2000:]
            assert log.wait_for_stored(30, timeout=60), log.text[-2000:]  # some answers are safely stored
        finally:
            proc.kill()  # SIGKILL: no clean-up of any kind
            proc.wait()
            proc.stdout.close()
        srv.release(drop=True)  # requests the dead process left behind are never answered
        srv.faults.clear()
        asked_before = Counter(srv.per_prompt)

        run_id = next(iter(_run_ids(db)))
        answered_before, prompt = texts_by_task(db, run_id)
        assert 0 < len(answered_before) < n

        again = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=300)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        summary = json.loads(again.stdout)
        asked_after = Counter(srv.per_prompt)

    assert (summary["run_id"], summary["status"], summary["answered"]) == (run_id, "complete", n)
    answered_after, _ = texts_by_task(db, run_id)
    assert len(answered_after) == n
    with Store(db) as s:
        per_task = s.answers(respondents=[summary["respondent"]]).groupby(["question_id", "sample"]).size()
    assert len(per_task) == n and per_task.max() == 1  # every question answered exactly once
    for qid, _sample in answered_before:  # nothing answered before the kill was asked again
        assert asked_after[prompt[qid]] == asked_before[prompt[qid]]
    new = asked_after - asked_before
    assert sum(new.values()) == n - len(answered_before)  # and everything else exactly once
    assert max(new.values()) == 1


def _run_ids(db: Path) -> list[str]:
    with Store(db) as s:
        return RunStore(s).list_runs()["run_id"].tolist()


def test_json_prints_only_the_summary_and_the_bar_goes_to_stderr(db, policy, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(policy) as srv:
        assert main(probe_argv(srv.url, db, "--n", "60", "--swap-share", "0.5", "--json")) == 0
        out, err = capsys.readouterr()
    summary = json.loads(out)
    assert {"run_id", "answered", "failed", "refused", "positions", "nearest_persona"} <= set(summary)
    assert (summary["answered"], summary["failed"], summary["refused"]) == (60, 0, 0)
    assert [p["dimension"] for p in summary["positions"]] == [1, 2, 3, 4, 5]
    assert all(p["ci_low"] <= p["position"] <= p["ci_high"] for p in summary["positions"])
    assert set(summary["nearest_persona"]) >= {"respondent", "distance"}
    assert summary["position_bias"]["n_swapped"] > 0
    assert "60/60" in err and summary["run_id"] in err  # tqdm's bar
    assert KEY not in out + err


def test_text_output_check_and_runs(db, policy, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(policy) as srv:
        assert main(probe_argv(srv.url, db, "--n", "30", "--persona", "Loyal Nationals", "--no-progress")) == 0
        text = capsys.readouterr().out
        assert "as Loyal Nationals" in text and "nearest persona:" in text and "95% interval" in text
        assert main(probe_argv(srv.url, db, "--check", "--json")) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["ok"], report["logprobs"], report["model_listed"]) == (True, True, True)
    assert main(["probe-runs", "--db", str(db), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 1 and runs[0]["status"] == "complete" and runs[0]["answered"] == 30


def test_api_key_env_names_the_variable_and_missing_ones_are_reported(db, policy, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MY_PROBE_KEY", KEY)
    with ChatServer(policy, api_key=KEY) as srv:
        assert main(probe_argv(srv.url, db, "--n", "10", "--no-progress", "--json",
                               "--api-key-env", "MY_PROBE_KEY")) == 0
        assert json.loads(capsys.readouterr().out)["answered"] == 10
        assert main(probe_argv(srv.url, db, "--n", "10", "--api-key-env", "NOT_SET_ANYWHERE")) == 2
        assert "NOT_SET_ANYWHERE" in capsys.readouterr().err
        monkeypatch.delenv("MY_PROBE_KEY")
        assert main(probe_argv(srv.url, db, "--n", "10", "--no-progress", "--temperature", "0.5")) == 1
        err = capsys.readouterr().err
        assert "is failed" in err and "401" in err and "run the same command again" in err


def test_the_key_stays_out_of_logs_db_and_packs(db, policy, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(policy) as srv:
        srv.inject("echo_key", times=3)
        srv.inject("500", times=2)
        assert main(["-v", *probe_argv(srv.url, db, "--n", "40", "--json")]) == 0
        summary = json.loads(capsys.readouterr().out)
    err = capsys.readouterr().err
    pack = tmp_path / "out" / "pack.json.gz"
    assert main(["probe-pack", "export", summary["run_id"], str(pack), "--db", str(db)]) == 0
    assert main(["probe-pack", "export", summary["run_id"], str(pack.with_suffix("")), "--db", str(db)]) == 0
    logs = capsys.readouterr()
    assert KEY not in err + logs.out + logs.err
    for path in [*db.parent.rglob("*"), *pack.parent.rglob("*")]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_pack_round_trip_through_the_command_line(db, policy, tmp_path, capsys, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)  # the default pack name lands in the working directory
    with ChatServer(policy) as srv:
        assert main(probe_argv(srv.url, db, "--n", "25", "--no-progress", "--json")) == 0
        run_id = json.loads(capsys.readouterr().out)["run_id"]
        assert main(["probe-pack", "export", run_id, "--db", str(db), "--json"]) == 0
        written = Path(json.loads(capsys.readouterr().out)["file"])
        assert written == Path(f"{run_id}.fairpp-probe.json.gz") and written.exists()
        other = tmp_path / "other.duckdb"
        shutil.copy(_template(tmp_path_factory), other)
        assert main(["probe-pack", "import", str(written), "--db", str(other)]) == 0
        assert f"imported run {run_id}" in capsys.readouterr().out
        assert main(["probe-pack", "import", str(written), "--db", str(other)]) == 2
        assert "--replace" in capsys.readouterr().err
        before = srv.chat_requests
        assert main(probe_argv(srv.url, other, "--n", "25", "--no-progress", "--json")) == 0
        assert json.loads(capsys.readouterr().out)["answered"] == 25 and srv.chat_requests == before


def test_slice_limits_the_questions_asked(db, policy, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with Store(db, read_only=True) as s:
        topic = sorted(s.questions()["topic"].dropna().unique())[0]
    with ChatServer(policy) as srv:
        assert main(probe_argv(srv.url, db, "--n", "40", "--slice", f"topic={topic}", "--json")) == 0
        summary = json.loads(capsys.readouterr()[0])
        assert main(probe_argv(srv.url, db, "--n", "5", "--slice", "colour=red")) == 2
        assert "COLUMN=VALUE" in capsys.readouterr()[1]
    assert summary["answered"] == 40
    answered, _ = texts_by_task(db, summary["run_id"])
    with Store(db) as s:
        q = s.questions().set_index("question_id")
    assert {q.loc[qid, "topic"] for qid, _ in answered} == {topic}
    assert {q.loc[qid, "question_set"] for qid, _ in answered} == {"template"}
