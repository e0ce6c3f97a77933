"""The scenario variant: vignettes per option written through the probe engine's seam, against the local server."""
from __future__ import annotations

import hashlib
import json

import duckdb
import pytest
from chatserver import ChatRequest, ChatServer, parse_options_block

from fairpp.cli import main
from fairpp.generate.scenario import (
    SCENARIO_SET,
    WRITER_PROMPT,
    VignetteError,
    parse_vignettes,
    scenario_question,
)

# The server writes vignettes for the scenario instruction and answers as a persona otherwise.
PERSONA_LETTER = {"Progressive Activists": "B", "Backbone Conservatives": "A"}


def _bad(user: str) -> bool:
    """About a quarter of the questions (fixed by their text) get a reply that is not JSON."""
    return hashlib.sha256(user.encode()).digest()[0] % 4 == 0


def scenario_policy(req: ChatRequest, *, bad: bool = True) -> str:
    if req.system == WRITER_PROMPT:
        opts = parse_options_block(req.user.replace("Options:\n", ""))
        if bad and _bad(req.user):
            return "Sure! Here are the scenarios: A) ..."  # not JSON
        return json.dumps({k: f"In the story for {k}, people act on this idea: {opts[k]}" for k in "ABC"})
    for name, letter in PERSONA_LETTER.items():
        if name in (req.system or ""):
            return letter
    return "unsure"


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "scen.duckdb"
    assert main(["questions", "build", "--db", str(path)]) == 0
    return path


def _q(db, sql, params=()):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def _writer_requests(srv: ChatServer) -> int:
    return sum(1 for b in srv.bodies if b["messages"][0]["content"] == WRITER_PROMPT)


# -- pure parts -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply, message", [
    ("", "empty"),
    ("A: one, B: two", "not one JSON object"),
    ('["a", "b", "c"]', "not an object"),
    ('{"A": "Ann wins the open race fairly.", "B": "Ben gets help to catch up."}', "exactly the keys"),
    (('{"A": "Ann wins the open race fairly.", "B": "Ben gets help to catch up.", '
      '"C": "Cal shrugs the whole thing off.", "D": "extra"}'), "exactly the keys"),
    ('{"A": "Ann wins the open race fairly.", "B": "   ", "C": "Cal shrugs the whole thing off."}', "B is empty"),
    ('{"A": "short", "B": "Ben gets help to catch up.", "C": "Cal shrugs the whole thing off."}', "A has 5 characters"),
    ('{"A": "Ann wins the open race fairly.", "B": "' + "x" * 700 + '", "C": "Cal shrugs the whole thing off."}',
     "B has 700 characters"),
    ('{"A": "Ann wins the open race fairly.", "B": 3, "C": "Cal shrugs the whole thing off."}', "not a string"),
    ('{"A": "Ann wins the open race fairly.", "B": "ann wins the open race  fairly.", "C": "Cal shrugs the whole thing off."}',
     "the same text"),
])
def test_parse_vignettes_rejects_bad_replies(reply, message):
    with pytest.raises(VignetteError, match=message):
        parse_vignettes(reply)


def test_parse_vignettes_accepts_a_fenced_object_and_collapses_lines():
    got = parse_vignettes('```json\n{"A": "Ann wins\\nthe open race.", "B": "Ben gets help to catch up.", '
                          '"C": "Cal shrugs the whole thing off."}\n```')
    assert got["A"] == "Ann wins the open race."


def test_scenario_question_keeps_taxonomy_and_option_meaning():
    src = {"question_id": 7, "question_set": "template", "topic": "t", "problem_category": "c",
           "specific_problem": "p", "group_type": "g", "group_name": "n", "dimension": 3, "template": 2,
           "text": "Who should get more?", "options": "A. a\nB. b\nC. N/A", "split": "train"}
    q = scenario_question(src, {"A": "Ann won it.", "B": "Ben needed it.", "C": "Cal sees neither as deciding."})
    assert q["question_set"] == SCENARIO_SET and q["split"] == "train" and q["template"] == 2
    assert q["options"].splitlines()[2] == "C. Cal sees neither as deciding."
    assert q["question_id"] != 7


# -- against the local server ----------------------------------------------------------------------------
def test_scenarios_stored_failures_recorded_rerun_resumes_and_personas_answer(db, capsys):
    with ChatServer(scenario_policy) as srv:
        base = ["generate", "scenarios", "--base-url", srv.url, "--model", "test-model", "--db", str(db),
                "--slice", "topic=fair rewards", "--n", "40", "--concurrency", "4"]
        rc = main([*base, "--json"])
        out = json.loads(capsys.readouterr().out)
        first_requests = _writer_requests(srv)
        assert first_requests == 40
        assert out["planned"] == 40 and out["stored"] + out["failed"] == 40
        assert out["failed"] > 0 and out["stored"] > 0, out  # the policy fails about a quarter
        assert rc == 1 and out["status"] == "incomplete"
        run_id = out["run_id"]

        # stored: new questions in their own set, each linked to a template question with the same taxonomy
        rows = _q(db, "SELECT q.topic, q.dimension, q.template, s.topic, s.dimension, s.template, s.specific_problem,"
                      " q.specific_problem, q.options, q.text, s.text FROM questions q"
                      " JOIN question_links l USING (question_id)"
                      " JOIN questions s ON s.question_id = l.source_question_id WHERE q.question_set = ?",
                  [SCENARIO_SET])
        assert len(rows) == out["stored"]
        for r in rows:
            assert r[0:3] == r[3:6] and r[6] == r[7] and r[0] == "fair rewards"
            assert [line[:3] for line in r[8].splitlines()] == ["A. ", "B. ", "C. "]
            assert r[9].startswith(r[10])
        # failures: logged with the raw reply, nothing half-stored
        bad = _q(db, "SELECT question_id, error FROM probe_requests WHERE run_id = ? AND status = 'bad_vignettes'",
                 [run_id])
        assert len(bad) == out["failed"]
        assert all("not one JSON object" in e and "Sure! Here are the scenarios" in e for _, e in bad)
        assert not _q(db, "SELECT 1 FROM question_links WHERE source_question_id IN (SELECT question_id FROM "
                          "probe_requests WHERE status = 'bad_vignettes')")
        assert _q(db, "SELECT status, stored, failed FROM scenario_runs WHERE run_id = ?", [run_id]) == [
            ("incomplete", out["stored"], out["failed"])]

        # a rerun asks only the failed questions again, never a stored one
        srv.reset_counts()
        assert main([*base, "--json"]) == 1
        again = json.loads(capsys.readouterr().out)
        assert again["run_id"] == run_id and again["already"] == out["stored"]
        assert _writer_requests(srv) == out["failed"] == again["failed"]
        assert again["stored"] == 0
        assert _q(db, "SELECT count(*) FROM questions WHERE question_set = ?", [SCENARIO_SET])[0][0] == out["stored"]

        # a larger --n extends the same run and asks only the new questions
        srv.reset_counts()
        main([*base[:-4], "--n", "60", "--json"])
        more = json.loads(capsys.readouterr().out)
        assert more["run_id"] == run_id and more["already"] >= out["stored"]
        assert _writer_requests(srv) == 60 - more["already"]

        # the scenario questions are answerable like template questions
        srv.reset_counts()
        n_scen = _q(db, "SELECT count(*) FROM questions WHERE question_set = ?", [SCENARIO_SET])[0][0]
        assert main(["generate", "--persona", "Progressive Activists", "--persona", "Backbone Conservatives",
                     "--base-url", srv.url, "--model", "test-model", "--db", str(db), "--all-questions",
                     "--slice", f"question_set={SCENARIO_SET}", "--no-progress", "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert [r["status"] for r in res] == ["complete", "complete"]
        answers = _q(db, "SELECT a.respondent, a.answer, count(*) FROM answers a JOIN questions q USING (question_id)"
                         " WHERE q.question_set = ? GROUP BY ALL ORDER BY 1", [SCENARIO_SET])
        assert answers == [("Backbone Conservatives (test-model)", "A", n_scen),
                           ("Progressive Activists (test-model)", "B", n_scen)]
        assert _writer_requests(srv) == 0


def test_scenarios_transport_errors_retry_and_auth_errors_stop(db, capsys):
    with ChatServer(lambda req: scenario_policy(req, bad=False)) as srv:
        srv.inject("503", times=2)
        base = ["generate", "scenarios", "--base-url", srv.url, "--model", "test-model", "--db", str(db),
                "--slice", "topic=fair essentials", "--slice", "dimension=1", "--n", "3", "--json"]
        assert main(base) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["stored"] == 3 and out["status"] == "complete" and out["requests"] == 5
    with ChatServer(scenario_policy, api_key="sk-right-key") as srv:
        assert main(["generate", "scenarios", "--base-url", srv.url, "--model", "test-model", "--db", str(db),
                     "--slice", "dimension=2", "--n", "3", "--json"]) == 1
        out = json.loads(capsys.readouterr().out)
        assert out["status"] == "failed" and "401" in out["error"] and out["stored"] == 0


def test_scenarios_bad_arguments_write_nothing(db, capsys):
    assert main(["generate", "scenarios", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--db", str(db),
                 "--slice", f"question_set={SCENARIO_SET}"]) == 2
    assert "template questions" in capsys.readouterr().err
    assert main(["generate", "scenarios", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--db", str(db),
                 "--slice", "topic=no such topic"]) == 2
    assert "no questions match" in capsys.readouterr().err
    assert main(["generate", "scenarios", "--persona", "Night Owls", "--base-url", "http://127.0.0.1:9/v1",
                 "--model", "m", "--db", str(db)]) == 2
    assert not _q(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'scenario_runs'")[0][0] or \
        not _q(db, "SELECT count(*) FROM scenario_runs")[0][0]
