"""Question bank, personas and role-play generation against the local chat-completions server."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import chatserver
import pytest
from chatserver import ChatRequest, ChatServer

from fairpp.cli import main
from fairpp.generate.bank import BankError, default_taxonomy_path, expand, load_taxonomy
from fairpp.store import Store

# -- a server whose answer depends on the persona in the system prompt ----------------------------------------
POLICY = {"Progressive Activists": "B", "Backbone Conservatives": "A", "Night Owls": "C"}


def persona_policy(req: ChatRequest) -> str:
    system = req.system or ""
    for name, letter in POLICY.items():
        if name in system:
            return letter
    return "unsure"  # no persona: unparsed


class _BatchHandler(chatserver._Handler):
    """The test server's handler plus /v1/files and /v1/batches (a batch runs synchronously on creation)."""

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.rstrip("/")
        if "/batches/" in path:
            self._send(200, owner.batches[path.rsplit("/", 1)[1]])
        elif path.endswith("/content"):
            data = owner.files[path.split("/files/")[1].split("/")[0]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            super().do_GET()

    def do_POST(self) -> None:
        owner = self.server.owner
        path = self.path.rstrip("/")
        if not path.endswith(("/files", "/batches")):
            return super().do_POST()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path.endswith("/files"):
            boundary = self.headers["Content-Type"].split("boundary=")[1].encode()
            part = next(p for p in raw.split(b"--" + boundary) if b'name="file"' in p)
            content = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
            fid = f"file-{uuid.uuid4().hex[:8]}"
            owner.files[fid] = content
            return self._send(200, {"id": fid, "object": "file", "purpose": "batch"})
        body = json.loads(raw)
        out = []
        for line in owner.files[body["input_file_id"]].decode().splitlines():
            r = json.loads(line)
            req = owner._arrive(r["body"], {})
            status, payload, _ = owner._respond(req)
            if r["custom_id"] in owner.fail_ids:
                out.append({"id": "r", "custom_id": r["custom_id"], "response": None,
                            "error": {"code": "server_error", "message": "injected"}})
            else:
                out.append({"id": "r", "custom_id": r["custom_id"],
                            "response": {"status_code": status, "request_id": "q", "body": payload}, "error": None})
        oid = f"file-{uuid.uuid4().hex[:8]}"
        owner.files[oid] = ("\n".join(json.dumps(o) for o in out) + "\n").encode()
        bid = f"batch-{uuid.uuid4().hex[:8]}"
        owner.batches[bid] = {"id": bid, "status": "completed", "output_file_id": oid}
        self._send(200, {"id": bid, "status": "validating"})


@pytest.fixture
def server():
    with ChatServer(persona_policy) as srv:
        yield srv


@pytest.fixture
def batch_server():
    srv = ChatServer(persona_policy)
    srv._httpd.RequestHandlerClass = _BatchHandler
    srv.files, srv.batches, srv.fail_ids = {}, {}, set()
    with srv:
        yield srv


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "gen.duckdb"
    assert main(["questions", "build", "--db", str(path)]) == 0
    return path


def _q(path: Path, sql: str, params=()):
    with Store(path, read_only=True) as s, s.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


def _tax() -> dict:
    return json.loads(default_taxonomy_path().read_text())


# -- question bank --------------------------------------------------------------------------------------------
def test_bank_build_is_idempotent_and_grows_with_the_file(db, tmp_path, capsys):
    assert _q(db, "SELECT count(*), count(split) FROM questions")[0] == (28420, 0)
    assert _q(db, "SELECT kind, role FROM sources") == [("bank", "extra")]
    assert main(["questions", "build", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["added"] == 0
    tax = _tax()
    tax["group_types"][0]["groups"].append("intersex people")  # a new group
    tax["topics"][0]["problem_categories"][0]["problems"].append("broadband")  # a new problem
    f = tmp_path / "mine.json"
    f.write_text(json.dumps(tax))
    assert main(["questions", "build", "--taxonomy", str(f), "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 99 * 10 + 30 * 10 - 10  # new group x 99 problems + new problem x 30 groups, once
    assert _q(db, "SELECT count(*) FROM questions WHERE group_name = 'intersex people'")[0][0] == 99 * 10


def test_bank_questions_survive_a_dataset_reload(db):
    from conftest import small_wide

    from fairpp.sources.files import read_files

    csv = db.parent / "w.csv"
    small_wide().to_csv(csv, index=False)
    with Store(db) as s:
        s.load(read_files([csv]))
        s.load(read_files([csv]))  # replace the dataset
    assert _q(db, "SELECT count(*) FROM questions JOIN sources USING (source_id) WHERE kind = 'bank'")[0][0] == 28420


def test_a_new_template_and_yaml(tmp_path):
    import yaml

    tax = _tax()
    tpl = json.loads(json.dumps(tax["templates"][0]))
    tpl["question"] = "Thinking of {group}, how should {problem} be shared?"
    tax["templates"].append(tpl)
    f = tmp_path / "t.yaml"
    f.write_text(yaml.safe_dump(tax, allow_unicode=True))
    q = expand(load_taxonomy(f))
    assert len(q) == 28420 // 2 * 3 and q["question_id"].is_unique
    assert set(q["template"]) == {1, 2, 3}


@pytest.mark.parametrize("edit, message", [
    (lambda t: t["templates"][1]["options"]["3"].pop("B"), "templates[1].options['3'] is missing 'B'"),
    (lambda t: t["topics"].append({"name": "x", "problem_categories": []}), "topic 'x' has no problem categories"),
    (lambda t: t["group_types"][0].update(groups=[]), "group type 'Gender' has no groups"),
    (lambda t: t["dimensions"].append({"number": 6, "name": "new", "pole_a": "p", "pole_b": "q"}),
     "only dimensions [1, 2, 3, 4, 5] are supported"),
    (lambda t: t["templates"][0].update(question="How should {who} get {problem}?"), "unknown placeholder"),
    (lambda t: t["group_types"][1]["groups"].append("men"), "group 'men' appears twice"),
])
def test_bad_taxonomy_names_the_entry_and_writes_nothing(db, tmp_path, capsys, edit, message):
    tax = _tax()
    edit(tax)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(tax))
    with pytest.raises(BankError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_taxonomy(f)
    before = _q(db, "SELECT count(*) FROM questions")[0][0]
    assert main(["questions", "build", "--taxonomy", str(f), "--db", str(db)]) == 2
    assert message in capsys.readouterr().err
    assert _q(db, "SELECT count(*) FROM questions")[0][0] == before
    assert _q(db, "SELECT count(*) FROM sources")[0][0] == 1


def test_unreadable_taxonomy_files(tmp_path, capsys):
    f = tmp_path / "broken.json"
    f.write_text("{ nope")
    assert main(["questions", "check", "--taxonomy", str(f)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["questions", "check", "--taxonomy", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read the taxonomy file" in capsys.readouterr().err


# -- personas -------------------------------------------------------------------------------------------------
def test_personas_cli(db, capsys):
    assert main(["personas", "add", "Night Owls", "--portrayal", "You are a night owl.", "--db", str(db)]) == 0
    assert main(["personas", "add", "Night Owls", "--portrayal", "Again.", "--db", str(db)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["personas", "add", "loyal nationals", "--portrayal", "x", "--db", str(db)]) == 2
    assert main(["personas", "add", "Empty", "--portrayal", "  ", "--db", str(db)]) == 2
    capsys.readouterr()
    assert main(["personas", "list", "--db", str(db), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows][-1] == "Night Owls" and sum(r["builtin"] for r in rows) == 7
    assert main(["personas", "remove", "Night Owls", "--db", str(db)]) == 0
    assert main(["personas", "remove", "Night Owls", "--db", str(db)]) == 2


# -- live generation ------------------------------------------------------------------------------------------
def _answers(db: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for who, ans in _q(db, "SELECT respondent, answer FROM answers"):
        out.setdefault(who, set()).add(ans)
    return out


def test_each_persona_lands_where_the_policy_says(db, server, capsys):
    assert main(["personas", "add", "Night Owls", "--portrayal", "You are one of the Night Owls.", "--db", str(db)]) == 0
    capsys.readouterr()
    rc = main(["generate", "--persona", "progressive", "--persona", "Backbone Conservatives", "--persona", "night owls",
               "--base-url", server.url, "--model", "test-model", "--n", "25", "--concurrency", "4", "--no-progress",
               "--db", str(db), "--json"])
    assert rc == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in results] == ["complete"] * 3
    got = _answers(db)
    assert got == {"Progressive Activists (test-model)": {"B"}, "Backbone Conservatives (test-model)": {"A"},
                   "Night Owls (test-model)": {"C"}}
    assert {n for n, k in _q(db, "SELECT respondent, kind FROM respondents") if k == "custom"} == set(got)
    assert _q(db, "SELECT count(*) FROM answers")[0][0] == 75
    # the same persona's system prompt is the engine's role-play prompt
    assert any("You are one of the Progressive Activists" in (b["messages"][0]["content"]) for b in server.bodies)
    # run again: resumes, asks nothing
    n = server.chat_requests
    assert main(["generate", "--persona", "progressive", "--base-url", server.url, "--model", "test-model",
                 "--n", "25", "--no-progress", "--db", str(db)]) == 0
    assert server.chat_requests == n


@pytest.mark.parametrize("argv, message", [
    (["--persona", "Nobody"], "persona 'Nobody' is unknown"),
    ([], "no persona selected"),
    (["--persona", "progressive", "--split", "test"], "no questions match"),
])
def test_bad_selections_write_nothing(db, server, capsys, argv, message):
    rc = main(["generate", *argv, "--base-url", server.url, "--model", "test-model", "--n", "5", "--no-progress",
               "--db", str(db)])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert server.chat_requests == 0
    assert _q(db, "SELECT count(*) FROM answers")[0][0] == 0
    assert _q(db, "SELECT count(*) FROM respondents")[0][0] == 0
    if _q(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'probe_runs'")[0][0]:
        assert _q(db, "SELECT count(*) FROM probe_runs")[0][0] == 0  # empty tables at most, no run


# -- batch mode -----------------------------------------------------------------------------------------------
def test_batch_round_trip(db, batch_server, tmp_path, capsys):
    req = tmp_path / "requests.jsonl"
    rc = main(["generate", "--persona", "progressive", "--persona", "backbone", "--base-url", batch_server.url,
               "--model", "test-model", "--n", "20", "--batch-file", str(req), "--submit", "--poll", "0",
               "--db", str(db), "--json"])
    assert rc == 0, capsys.readouterr().err
    payload = json.loads(capsys.readouterr().out)
    lines = [json.loads(x) for x in req.read_text().splitlines()]
    assert len(lines) == 40
    assert set(lines[0]) == {"custom_id", "method", "url", "body"}
    assert lines[0]["method"] == "POST" and lines[0]["url"] == "/v1/chat/completions"
    assert lines[0]["body"]["model"] == "test-model" and lines[0]["body"]["messages"][0]["role"] == "system"
    assert len({x["custom_id"] for x in lines}) == 40
    rep = payload["ingest"]
    assert (rep["lines"], rep["stored"], rep["failed"], rep["duplicate"]) == (40, 40, 0, 0)
    assert _answers(db) == {"Progressive Activists (test-model)": {"B"}, "Backbone Conservatives (test-model)": {"A"}}
    assert {v["status"] for v in rep["runs"].values()} == {"complete"}
    # ingesting the same output again adds nothing, and says so
    out = Path(payload["output"])
    assert main(["generate", "ingest", str(out), "--db", str(db), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["stored"], again["duplicate"]) == (0, 40)
    assert _q(db, "SELECT count(*) FROM answers")[0][0] == 40


def test_batch_failures_are_counted_and_asked_again(db, batch_server, tmp_path, capsys):
    req = tmp_path / "r.jsonl"
    args = ["generate", "--persona", "progressive", "--base-url", batch_server.url, "--model", "test-model",
            "--n", "10", "--batch-file", str(req), "--db", str(db), "--json"]
    assert main(args) == 0  # written, not submitted
    ids = [json.loads(x)["custom_id"] for x in req.read_text().splitlines()]
    batch_server.fail_ids = set(ids[:3])
    capsys.readouterr()
    assert main([*args, "--submit", "--poll", "0"]) == 0
    rep = json.loads(capsys.readouterr().out)["ingest"]
    assert (rep["stored"], rep["failed"]) == (7, 3)
    assert next(iter(rep["runs"].values()))["status"] == "incomplete"
    batch_server.fail_ids = set()
    assert main([*args, "--submit", "--poll", "0"]) == 0  # only the 3 missing are asked
    assert len(req.read_text().splitlines()) == 3
    rep = json.loads(capsys.readouterr().out)["ingest"]
    assert rep["stored"] == 3 and next(iter(rep["runs"].values()))["status"] == "complete"


def test_ingest_rejects_foreign_or_broken_files_and_writes_nothing(db, tmp_path, capsys):
    f = tmp_path / "out.jsonl"
    f.write_text(json.dumps({"custom_id": "probe-000000000000:1:0:0", "response": {"status_code": 200, "body": {}}})
                 + "\n")
    assert main(["generate", "ingest", str(f), "--db", str(db)]) == 2
    assert "is not in this database" in capsys.readouterr().err
    f.write_text('{"custom_id": "request-1", "response": null}\n')
    assert main(["generate", "ingest", str(f), "--db", str(db)]) == 2
    assert "was not written by fairpp" in capsys.readouterr().err
    f.write_text("not json\n")
    assert main(["generate", "ingest", str(f), "--db", str(db)]) == 2
    assert "line 1 is not JSON" in capsys.readouterr().err
    assert _q(db, "SELECT count(*) FROM answers")[0][0] == 0


def test_submit_to_an_endpoint_without_batches(db, server, tmp_path, capsys):
    rc = main(["generate", "--persona", "progressive", "--base-url", server.url, "--model", "test-model", "--n", "5",
               "--batch-file", str(tmp_path / "r.jsonl"), "--submit", "--poll", "0", "--db", str(db)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not run batches" in err and "fairpp generate ingest" in err
    assert (tmp_path / "r.jsonl").exists()  # the requests file is kept for submitting elsewhere
