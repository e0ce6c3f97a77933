"""The question bank: the taxonomy + templates file, its validation, and its expansion into questions.

The file (JSON, or YAML with the same structure; default: the packaged ``fairpp/data/taxonomy.json``) holds
``topics`` (each with ``problem_categories``, each with ``problems``), ``group_types`` (each with ``groups``),
``dimensions`` (``number``, ``name``, ``pole_a``, ``pole_b``), ``templates`` (``question`` with the
placeholders ``{group}`` and ``{problem}``, and ``options``: for every dimension number an ``A`` (first pole)
and a ``B`` (second pole) wording, which may use the same placeholders) and ``personas`` (``name``,
``portrayal``, ``summary``). Every (problem, group, dimension, template) makes one question whose options
are ``A. ...``, ``B. ...`` and ``C. N/A``; the question set is ``template`` and the split is empty.

Add a group, a problem, a template (with options for every dimension) and rebuild
(``fairpp questions build --taxonomy FILE``): the question id is a hash of the content, so a rebuild adds
only what is new. Dimensions are limited to those the rest of the tool understands
(:data:`SUPPORTED_DIMENSIONS`, 1..5): a sixth dimension is rejected with a message saying so.

>>> tax = load_taxonomy()
>>> q = expand(tax)
>>> len(q), q["question_set"].unique().tolist(), q["split"].isna().all()
(28420, ['template'], np.True_)
"""
from __future__ import annotations

import hashlib
import json
import string
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairpp.schema import FairppError, question_ids

__all__ = [
    "SUPPORTED_DIMENSIONS",
    "BankError",
    "default_taxonomy_path",
    "expand",
    "load_taxonomy",
    "question_grid",
    "taxonomy_sha256",
    "validate",
    "wording",
]

#: Dimension numbers the store, the preference space and the figures understand.
SUPPORTED_DIMENSIONS: tuple[int, ...] = (1, 2, 3, 4, 5)
_PLACEHOLDERS = {"group", "problem"}


class BankError(FairppError):
    """A taxonomy/templates file that cannot be used; the message names the bad entry and the fix."""


def default_taxonomy_path() -> Path:
    """The packaged taxonomy file (copy it to start your own)."""
    return Path(str(resources.files("fairpp").joinpath("data/taxonomy.json")))


def load_taxonomy(path: str | Path | None = None) -> dict[str, Any]:
    """Read and validate a taxonomy file (``.json``, ``.yaml``/``.yml``); ``None``: the packaged one.

    Raises :class:`BankError` naming the file and the bad entry.
    """
    path = Path(path) if path is not None else default_taxonomy_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BankError(f"cannot read the taxonomy file {path}: {exc.strerror or exc}; check the --taxonomy path.") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            tax = yaml.safe_load(text)
        else:
            tax = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BankError(f"{path.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from exc
    except Exception as exc:  # yaml.YAMLError; yaml is imported lazily
        if type(exc).__module__.startswith("yaml"):
            raise BankError(f"{path.name}: not valid YAML ({exc}).") from exc
        raise
    try:
        validate(tax)
    except BankError as exc:
        raise BankError(f"{path.name}: {exc}") from None
    return tax


def _need_list(obj: Any, key: str, where: str, what: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, list) or not value:
        raise BankError(f"{where} has no {what}; give a non-empty list under {key!r}.")
    return value


def _need_text(obj: Any, key: str, where: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise BankError(f"{where} is missing {key!r}; give it a non-empty text.")
    return value


def _check_placeholders(text: str, where: str) -> None:
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise BankError(f"{where} has a broken placeholder ({exc}); write {{group}} and {{problem}}, "
                        "and double the braces for a literal one ({{ }}).") from None
    bad = used - _PLACEHOLDERS
    if bad:
        raise BankError(f"{where} uses unknown placeholder(s) {sorted(bad)}; only {{group}} and {{problem}} exist.")


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise BankError(f"{what} {n!r} appears twice; names must be unique.")
        seen.add(n)


def validate(tax: Any) -> None:
    """Check a taxonomy dict; raise :class:`BankError` naming the first bad entry.

    >>> validate({"topics": []})
    Traceback (most recent call last):
    ...
    fairpp.generate.bank.BankError: the taxonomy has no topics; give a non-empty list under 'topics'.
    """
    if not isinstance(tax, dict):
        raise BankError("the file must hold one object (a mapping) with topics, group_types, dimensions, templates.")
    problems: list[str] = []
    cats: list[str] = []
    topics = _need_list(tax, "topics", "the taxonomy", "topics")
    for i, t in enumerate(topics):
        name = _need_text(t, "name", f"topics[{i}]")
        for j, c in enumerate(_need_list(t, "problem_categories", f"topic {name!r}", "problem categories")):
            cname = _need_text(c, "name", f"topic {name!r} problem_categories[{j}]")
            cats.append(cname)
            for k, p in enumerate(_need_list(c, "problems", f"problem category {cname!r}", "problems")):
                if not isinstance(p, str) or not p.strip():
                    raise BankError(f"problem category {cname!r} problems[{k}] must be a non-empty text.")
                problems.append(p)
    _unique([t["name"] for t in topics], "topic")
    _unique(cats, "problem category")
    _unique(problems, "problem")
    groups: list[str] = []
    gtypes = _need_list(tax, "group_types", "the taxonomy", "group types")
    for i, y in enumerate(gtypes):
        name = _need_text(y, "name", f"group_types[{i}]")
        for k, g in enumerate(_need_list(y, "groups", f"group type {name!r}", "groups")):
            if not isinstance(g, str) or not g.strip():
                raise BankError(f"group type {name!r} groups[{k}] must be a non-empty text.")
            groups.append(g)
    _unique([y["name"] for y in gtypes], "group type")
    _unique(groups, "group")
    numbers: list[int] = []
    for i, d in enumerate(_need_list(tax, "dimensions", "the taxonomy", "dimensions")):
        num = d.get("number") if isinstance(d, dict) else None
        if isinstance(num, bool) or not isinstance(num, int):
            raise BankError(f"dimensions[{i}] needs an integer 'number'.")
        if num not in SUPPORTED_DIMENSIONS:
            raise BankError(f"dimensions[{i}] has number {num}: only dimensions {list(SUPPORTED_DIMENSIONS)} are "
                            "supported (the store, the preference space and the figures are built on these five); "
                            "edit an existing dimension's wording instead of adding a new number.")
        for key in ("name", "pole_a", "pole_b"):
            _need_text(d, key, f"dimension {num}")
        numbers.append(num)
    if len(set(numbers)) < len(numbers):
        raise BankError(f"dimension numbers repeat ({numbers}); give each dimension its own number.")
    for i, tpl in enumerate(_need_list(tax, "templates", "the taxonomy", "templates")):
        where = f"templates[{i}]"
        _check_placeholders(_need_text(tpl, "question", where), f"{where}.question")
        opts = tpl.get("options") if isinstance(tpl, dict) else None
        if not isinstance(opts, dict):
            raise BankError(f"{where} has no 'options'; give an object with A and B wordings per dimension number.")
        for num in numbers:
            opt = opts.get(str(num))
            if not isinstance(opt, dict):
                raise BankError(f"{where}.options is missing dimension '{num}'; give its A and B wordings.")
            for letter in ("A", "B"):
                text = opt.get(letter)
                if not isinstance(text, str) or not text.strip():
                    raise BankError(f"{where}.options['{num}'] is missing {letter!r}; give the wording of option "
                                    f"{letter} ({'first' if letter == 'A' else 'second'} pole).")
                if "\n" in text:
                    raise BankError(f"{where}.options['{num}'][{letter!r}] spans several lines; keep it on one line.")
                _check_placeholders(text, f"{where}.options['{num}'][{letter!r}]")
    for i, p in enumerate(tax.get("personas") or []):
        _need_text(p, "name", f"personas[{i}]")
        _need_text(p, "portrayal", f"persona {p.get('name')!r}")


def question_grid(tax: dict[str, Any]) -> pd.DataFrame:
    """Every (problem, group, dimension, template) combination with integer codes for each level.

    Columns: ``topic, t, problem_category, k, specific_problem, group_type, y, group_name`` and the codes
    ``s`` (problem), ``g`` (group), ``d`` (dimension index into ``tax["dimensions"]``), ``m`` (template index).
    """
    cats = [(t["name"], ti, c) for ti, t in enumerate(tax["topics"]) for c in t["problem_categories"]]
    probs = [(tn, ti, c["name"], ci, p) for ci, (tn, ti, c) in enumerate(cats) for p in c["problems"]]
    groups = [(y["name"], yi, g) for yi, y in enumerate(tax["group_types"]) for g in y["groups"]]
    n_s, n_g, n_d, n_m = len(probs), len(groups), len(tax["dimensions"]), len(tax["templates"])
    s, g, d, m = (a.ravel() for a in np.meshgrid(np.arange(n_s), np.arange(n_g), np.arange(n_d),
                                                np.arange(n_m), indexing="ij"))
    pr = pd.DataFrame(probs, columns=["topic", "t", "problem_category", "k", "specific_problem"])
    gr = pd.DataFrame(groups, columns=["group_type", "y", "group_name"])
    frame = pd.concat([pr.iloc[s].reset_index(drop=True), gr.iloc[g].reset_index(drop=True)], axis=1)
    frame["s"], frame["g"], frame["d"], frame["m"] = s, g, d, m
    return frame


def wording(tax: dict[str, Any], frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Question text and the options block (``"A. ...\\nB. ...\\nC. N/A"``) of every row of a grid."""
    numbers = [str(x["number"]) for x in tax["dimensions"]]
    texts, options = [], []
    for m, prob, grp, d in zip(frame["m"], frame["specific_problem"], frame["group_name"], frame["d"]):
        tpl = tax["templates"][m]
        opt = tpl["options"][numbers[d]]
        texts.append(tpl["question"].format(group=grp, problem=prob))
        options.append("A. " + opt["A"].format(group=grp, problem=prob) + "\nB. "
                       + opt["B"].format(group=grp, problem=prob) + "\nC. N/A")
    return texts, options


def expand(tax: dict[str, Any]) -> pd.DataFrame:
    """Every question of a (validated) taxonomy as a canonical questions frame (split empty)."""
    q = question_grid(tax)
    texts, options = wording(tax, q)
    dims = np.array([int(x["number"]) for x in tax["dimensions"]])
    questions = pd.DataFrame({
        "question_set": "template", "topic": q["topic"], "problem_category": q["problem_category"],
        "specific_problem": q["specific_problem"], "group_type": q["group_type"], "group_name": q["group_name"],
        "dimension": dims[q["d"].to_numpy()], "template": q["m"].to_numpy() + 1, "text": texts, "options": options,
        "split": None})
    questions.insert(0, "question_id", question_ids(questions))
    return questions


def taxonomy_sha256(tax: dict[str, Any]) -> str:
    """Content hash of a taxonomy (key order does not matter)."""
    return hashlib.sha256(json.dumps(tax, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
