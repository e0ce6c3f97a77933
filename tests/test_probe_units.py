"""Unit tests of the probe's pure parts: prompt building, answer extraction, sampling, settings."""
from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from fairpp.probe.endpoint import Endpoint, redact, retry_after_seconds
from fairpp.probe.extract import BadReply, extract, letter_probs, normalise_token
from fairpp.probe.plan import Budget, ProbeConfig, RetryPolicy
from fairpp.probe.prompts import (INSTRUCTION, ProbeParams, build_messages, cache_key, parse_options,
                                  persona_prompt, request_body, unswap)
from fairpp.probe.sampling import expected_widths, stratified_sample, swapped_for, task_order
from fairpp.schema import FairppError, taxonomy

OPTIONS = "A. Allocate by contribution.\nB. Give everyone an equal share.\nC. N/A"


def lp(p: float) -> float:
    return math.log(p)


def completion(content, *, top=None, tokens=None, refusal=None, choices=True):
    msg = {"role": "assistant", "content": content}
    if refusal is not None:
        msg["refusal"] = refusal
    choice = {"index": 0, "message": msg, "finish_reason": "stop"}
    if top is not None:
        toks = tokens or [content]
        choice["logprobs"] = {"content": [
            {"token": t, "logprob": 0.0, "top_logprobs": [{"token": k, "logprob": lp(v)} for k, v in top.items()]
             if i == len(toks) - 1 else []} for i, t in enumerate(toks)]}
    return {"choices": [choice] if choices else []}


# -- prompts ---------------------------------------------------------------------------------------
def test_messages_hold_question_options_and_instruction():
    msgs = build_messages("Which is fairer?", OPTIONS)
    assert msgs == [{"role": "user", "content": f"Which is fairer?\n\n{OPTIONS}\n\n{INSTRUCTION}"}]


def test_swapped_prompt_shows_b_text_as_a_and_keeps_c():
    user = build_messages("Q?", OPTIONS, swap=True)[0]["content"]
    assert "A. Give everyone an equal share." in user and "B. Allocate by contribution." in user
    assert "C. N/A" in user


def test_persona_system_prompt_comes_first():
    msgs = build_messages("Q?", OPTIONS, system=persona_prompt("Loyal Nationals"))
    assert msgs[0]["role"] == "system" and "Loyal Nationals" in msgs[0]["content"]
    portrayal = next(p["portrayal"] for p in taxonomy()["personas"] if p["name"] == "Loyal Nationals")
    assert msgs[0]["content"].startswith(portrayal)


@pytest.mark.parametrize("name", ["nobody", "Dis"])  # unknown, ambiguous prefix
def test_persona_prompt_rejects_unknown_or_ambiguous(name):
    with pytest.raises(FairppError, match="use one of"):
        persona_prompt(name)


def test_options_need_a_and_b():
    with pytest.raises(FairppError, match="options A and B"):
        parse_options("just text")
    assert parse_options("A) one\nB) two")["C"] == "N/A"


def test_request_body_and_logprobs_switch():
    msgs = build_messages("Q?", OPTIONS)
    body = request_body("m", msgs, ProbeParams(seed=7))
    assert body["logprobs"] is True and body["top_logprobs"] == 10 and body["seed"] == 7
    assert "logprobs" not in request_body("m", msgs, ProbeParams(), logprobs=False)
    assert "logprobs" not in request_body("m", msgs, ProbeParams(logprobs=False), logprobs=True)


def test_cache_key_covers_endpoint_model_messages_params_and_sample():
    msgs = build_messages("Q?", OPTIONS)
    base = request_body("m", msgs, ProbeParams())
    k = cache_key("http://h/v1", base, 0)
    assert k == cache_key("http://h/v1", dict(reversed(list(base.items()))), 0)
    assert k != cache_key("http://other/v1", base, 0)
    assert k != cache_key("http://h/v1", {**base, "model": "m2"}, 0)
    assert k != cache_key("http://h/v1", request_body("m", build_messages("Q?", OPTIONS, swap=True), ProbeParams()), 0)
    assert k != cache_key("http://h/v1", request_body("m", msgs, ProbeParams(max_tokens=9)), 0)
    assert k != cache_key("http://h/v1", base, 1)


def test_params_validate_and_know_when_deterministic():
    assert ProbeParams().deterministic and not ProbeParams(temperature=0.7).deterministic
    with pytest.raises(FairppError, match="temperature"):
        ProbeParams(temperature=3)
    with pytest.raises(FairppError, match="max_tokens"):
        ProbeParams(max_tokens=0)


# -- extraction ------------------------------------------------------------------------------------
def test_spellings_of_a_letter_are_one_option_and_mass_is_renormalised():
    p = letter_probs([{"token": "A", "logprob": lp(0.3)}, {"token": " A", "logprob": lp(0.1)},
                      {"token": "a", "logprob": lp(0.1)}, {"token": "B", "logprob": lp(0.25)},
                      {"token": "C", "logprob": lp(0.05)}, {"token": "I", "logprob": lp(0.2)}])
    assert p == pytest.approx({"A": 0.625, "B": 0.3125, "C": 0.0625})


def test_tokens_that_are_not_options():
    assert [normalise_token(t) for t in ["The", "AB", "Answer", None, "(C)", " b."]] == \
        [None, None, None, None, "C", "B"]
    assert letter_probs([{"token": "Sure", "logprob": -0.1}]) is None
    assert letter_probs([]) is None


def test_logprobs_give_probabilities_of_the_first_answer_token():
    top = {"B": 0.6, " B": 0.1, "A": 0.2, "c": 0.1}
    e = extract(completion("B", top=top))
    assert (e.answer, e.from_logprobs) == ("B", True)
    assert (e.p_a, e.p_b, e.p_c) == pytest.approx((0.2, 0.7, 0.1))


def test_answer_token_found_after_a_preamble():
    top = {" C": 0.9, " A": 0.1}
    e = extract(completion("Answer: C", top=top, tokens=["Answer", ":", " C"]))
    assert e.answer == "C" and e.p_c == pytest.approx(0.9)


def test_without_logprobs_the_parsed_letter_is_the_answer():
    e = extract(completion("b) equal shares"))
    assert (e.answer, e.p_a, e.p_b, e.p_c, e.from_logprobs) == ("B", None, None, None, False)
    assert e.raw == "b) equal shares"


def test_swapped_reply_is_mapped_back_with_its_probabilities():
    e = extract(completion("A", top={"A": 0.8, "B": 0.15, "C": 0.05}), swapped=True)
    assert (e.answer, e.shown) == ("B", "A")
    assert (e.p_a, e.p_b, e.p_c) == pytest.approx((0.15, 0.8, 0.05))
    assert unswap("C", True) == "C"


def test_refusals_and_unparseable_replies_are_classes_with_raw_text_never_c():
    ref = extract(completion("I cannot answer that; I don't take sides.", top={"I": 0.9, "C": 0.1}))
    assert (ref.answer, ref.p_c, ref.raw) == ("refused", None, "I cannot answer that; I don't take sides.")
    field_refusal = extract(completion(None, refusal="I can't help with that request."))
    assert (field_refusal.answer, field_refusal.raw) == ("refused", "I can't help with that request.")
    un = extract(completion("Both have merit.", top={"Both": 1.0}))
    assert (un.answer, un.p_c, un.raw) == ("unparsed", None, "Both have merit.")
    assert extract(completion("")).answer == "unparsed"


def test_a_reply_repeating_one_option_text_is_read_as_that_option():
    shown = parse_options(OPTIONS)
    assert extract(completion("Give everyone an equal share"), shown_options=shown).answer == "B"
    assert extract(completion("Give everyone an equal share"), shown_options=shown, swapped=True).answer == "A"


@pytest.mark.parametrize("reply", [{"choices": []}, {"id": "x"}, [], "text", {"choices": ["x"]}])
def test_bad_shapes_raise_bad_reply(reply):
    with pytest.raises(BadReply):
        extract(reply)


# -- sampling --------------------------------------------------------------------------------------
def _grid() -> pd.DataFrame:
    rows = [{"question_id": f"q{d}{t}{g}{i}", "dimension": d, "topic": f"t{t}", "group_type": f"g{g}"}
            for d in range(1, 6) for t in range(3) for g in range(2) for i in range(10 + t)]
    return pd.DataFrame(rows)


def test_stratified_sample_is_proportional_deterministic_and_order_free():
    q = _grid()
    s = stratified_sample(q, 90)
    assert len(s) == 90 and s["question_id"].is_unique
    assert s.groupby("dimension").size().tolist() == [18] * 5
    assert s.equals(stratified_sample(q.sample(frac=1, random_state=3), 90))
    assert not set(s["question_id"]) == set(stratified_sample(q, 90, seed=1)["question_id"])
    per = s.groupby(["dimension", "topic", "group_type"]).size()
    assert per.min() >= 2 and per.max() <= 4  # every stratum represented, in proportion
    assert len(stratified_sample(q, None)) == len(q) == len(stratified_sample(q, 10_000))


def test_expected_widths_shrink_with_n():
    w = expected_widths({1: 25, 2: 100, 3: 400})
    assert w[1] > w[2] > w[3] and w[3] == pytest.approx(0.098, abs=0.002)


def test_swap_share_and_task_order():
    q = _grid()
    tasks = task_order(q, repeats=3, swap_share=0.5)
    assert len(tasks) == 3 * len(q)
    assert [t.sample for t in tasks] == sorted(t.sample for t in tasks)  # repeat 0 first
    share = sum(t.swapped for t in tasks) / len(tasks)
    assert 0.4 < share < 0.6
    assert not any(swapped_for(x, 0, share=0.0) for x in q["question_id"])
    assert all(swapped_for(x, 0, share=1.0) for x in q["question_id"])


# -- endpoint, config, retry -------------------------------------------------------------------------
def test_endpoint_never_shows_its_key():
    e = Endpoint("https://u:pw@api.example.com/v1/?api-key=QUERYSECRET", "m", api_key="sk-SECRET-1",
                 headers={"X-Api-Key": "HDRSECRET"})
    text = repr(e) + str(e.card()) + e.public_url
    for secret in ("sk-SECRET-1", "HDRSECRET", "QUERYSECRET", "pw"):
        assert secret not in text
    assert e.card()["header_names"] == ["X-Api-Key"]
    assert set(("sk-SECRET-1", "HDRSECRET", "QUERYSECRET", "Bearer sk-SECRET-1")) <= set(e.secrets())
    assert redact("Bearer sk-SECRET-1 and HDRSECRET", e.secrets()) == "*** and ***"


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://x/v1", ""])
def test_endpoint_rejects_bad_urls(url):
    with pytest.raises(FairppError, match="http"):
        Endpoint(url, "m")


def test_config_identity_ignores_key_concurrency_and_budget():
    a = ProbeConfig(Endpoint("http://h/v1", "m", api_key="k1"), n=10)
    b = ProbeConfig(Endpoint("http://h/v1", "m", api_key="k2"), n=10, concurrency=32,
                    budget=Budget(max_requests=3))
    assert a.run_id == b.run_id
    assert a.run_id != ProbeConfig(Endpoint("http://h/v1", "m"), n=10, fresh="again").run_id
    assert a.run_id != ProbeConfig(Endpoint("http://h/v1", "m"), n=10, persona="Loyal Nationals").run_id
    assert a.run_id != ProbeConfig(Endpoint("http://h/v1", "m"), n=10, params=ProbeParams(temperature=1)).run_id


@pytest.mark.parametrize("kwargs, match", [({"concurrency": 0}, "concurrency"), ({"concurrency": 65}, "concurrency"),
                                           ({"swap_share": 1.5}, "swap_share"), ({"repeats": 0}, "repeats"),
                                           ({"persona": "nobody"}, "persona")])
def test_config_validation(kwargs, match):
    with pytest.raises(FairppError, match=match):
        ProbeConfig(Endpoint("http://h/v1", "m"), **kwargs)


def test_budget_needs_prices_for_money():
    with pytest.raises(FairppError, match="price"):
        Budget(max_cost=1.0)
    assert Budget(price_in=2.0, price_out=8.0).cost(1_000_000, 500_000) == pytest.approx(6.0)


def test_retry_delay_is_jittered_capped_and_honours_retry_after():
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    rng = random.Random(1)
    delays = [policy.delay(k, rng=rng) for k in range(1, 10)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) == len(delays)
    assert policy.delay(1, retry_after=3.0, rng=rng) >= 3.0
    assert policy.delay(1, retry_after=1e6, rng=rng) <= policy.max_retry_after_s + 1
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None and retry_after_seconds({"retry-after": "soon"}) is None


def test_check_connection_works_inside_a_running_event_loop():
    """Playwright's sync API or a notebook keeps a loop running in the main thread; the check still runs."""
    import asyncio
    import socket

    from fairpp.probe import Endpoint, check_connection

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def inside_a_loop():
        return check_connection(Endpoint(f"http://127.0.0.1:{port}/v1", "m"), timeout=5)

    report = asyncio.run(inside_a_loop())
    assert report.ok is False and report.errors
