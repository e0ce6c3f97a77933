"""Tests of fairpp.space (and the projections it re-exports) against independent computations."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.decomposition import PCA
from sklearn.metrics import cohen_kappa_score

from fairpp import space
from fairpp.schema import AnswerMatrix, FairppError

Z95 = 1.959963984540054  # standard normal 97.5% quantile


# ---------------------------------------------------------------------------------- fixtures

def _matrix(probs: np.ndarray, dims: np.ndarray, names: list[str] | None = None) -> AnswerMatrix:
    r, q, _ = probs.shape
    names = names or [f"r{i}" for i in range(r)]
    return AnswerMatrix(names, ["persona"] * r, [f"q{i}" for i in range(q)], dims, probs)


@pytest.fixture
def matrix() -> AnswerMatrix:
    """7 respondents x 400 questions: biased random answers, missing blocks, soft rows.

    r4 answers only questions 0..199 and r5 only 200..399 (disjoint); r3 misses 0..99;
    r2's first 60 answers are soft (Dirichlet); r6 misses a few scattered questions.
    """
    rng = np.random.default_rng(42)
    r, q = 7, 400
    dims = np.tile(np.arange(1, 6), q // 5)
    rng.shuffle(dims)
    bias = rng.dirichlet(np.ones(3) * 2, size=r)
    hard = np.stack([rng.choice(3, size=q, p=b) for b in bias])
    probs = np.eye(3)[hard]
    probs[2, :60] = rng.dirichlet(np.ones(3), size=60)
    probs[3, :100] = np.nan
    probs[4, 200:] = np.nan
    probs[5, :200] = np.nan
    probs[6, rng.choice(q, size=37, replace=False)] = np.nan
    return _matrix(probs, dims)


def _shared(m: AnswerMatrix, i: int, j: int, dimension: int | None = None) -> np.ndarray:
    mask = ~np.isnan(m.probs[i, :, 0]) & ~np.isnan(m.probs[j, :, 0])
    if dimension is not None:
        mask &= np.asarray(m.dimension) == dimension
    return mask


# ---------------------------------------------------------------------------------- Wilson

def _wilson_textbook(x: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927): (p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = x / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_wilson_known_values():
    low, high = space.wilson_interval([0, 5, 10], [10, 10, 10])
    np.testing.assert_allclose(low, [0.0, 0.236593, 0.722467], atol=1e-6)
    np.testing.assert_allclose(high, [0.277533, 0.763407, 1.0], atol=1e-6)


@pytest.mark.parametrize("x,n", [(0, 1), (3, 7), (12.4, 30.2), (99.5, 100), (1, 3000)])
def test_wilson_matches_closed_form(x, n):
    low, high = space.wilson_interval(x, n)
    exp_low, exp_high = _wilson_textbook(x, n)
    assert float(low) == pytest.approx(exp_low, abs=1e-12)
    assert float(high) == pytest.approx(exp_high, abs=1e-12)


def test_wilson_level_and_zero_trials():
    low90, high90 = space.wilson_interval(5, 10, level=0.90)
    exp = _wilson_textbook(5, 10, z=1.6448536269514722)
    np.testing.assert_allclose([low90, high90], exp, atol=1e-12)
    low, high = space.wilson_interval([0, 2], [0, 4])
    assert np.isnan(low[0]) and np.isnan(high[0]) and not np.isnan(low[1])


@pytest.mark.parametrize("kwargs,match", [
    ({"successes": 5, "trials": 4}, "exceed"),
    ({"successes": -1, "trials": 4}, "negative"),
    ({"successes": 1, "trials": 4, "level": 1.5}, "level=1.5"),
])
def test_wilson_rejects_bad_input(kwargs, match):
    with pytest.raises(FairppError, match=match):
        space.wilson_interval(kwargs.pop("successes"), kwargs.pop("trials"), **kwargs)


# ---------------------------------------------------------------------------------- positions

def _counts() -> pd.DataFrame:
    return pd.DataFrame({
        "respondent": ["a", "a", "b", "b"], "kind": ["persona", "persona", "model", "model"],
        "dimension": [1, 2, 1, 2], "specific_problem": ["food", "food", "water", "water"],
        "n_a": [3.0, 0.0, 2.5, 10.0], "n_b": [7.0, 0.0, 1.5, 0.0], "n_c": [5.0, 4.0, 0.0, 0.0],
        "n_unparsed": [9.0, 2.0, 0.0, 1.0],
    }, index=[10, 11, 12, 13])


def test_positions_definitions():
    c = _counts()
    out = space.positions(c)
    assert list(out.columns[: len(c.columns)]) == list(c.columns)
    assert out.index.tolist() == c.index.tolist()
    pd.testing.assert_frame_equal(out[c.columns], c)
    np.testing.assert_allclose(out["position"], [0.7, np.nan, 1.5 / 4.0, 0.0])
    np.testing.assert_allclose(out["na_rate"], [5 / 15, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(out["n"], [15.0, 4.0, 4.0, 10.0])  # n_unparsed never counted
    exp_low, exp_high = _wilson_textbook(7, 10)
    assert out["ci_low"].iloc[0] == pytest.approx(exp_low)
    assert out["ci_high"].iloc[0] == pytest.approx(exp_high)
    assert np.isnan(out["ci_low"].iloc[1]) and np.isnan(out["ci_high"].iloc[1])
    assert (out["ci_low"] <= out["position"]).iloc[[0, 2, 3]].all()
    assert (out["position"] <= out["ci_high"]).iloc[[0, 2, 3]].all()


def test_positions_unparsed_does_not_move_numbers():
    a = space.positions(_counts())
    b = space.positions(_counts().assign(n_unparsed=0.0))
    cols = ["position", "ci_low", "ci_high", "na_rate", "n"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_positions_errors():
    with pytest.raises(FairppError, match="n_unparsed"):
        space.positions(_counts().drop(columns="n_unparsed"))
    with pytest.raises(FairppError, match="n_b"):
        space.positions(_counts().assign(n_b=-1.0))


# ---------------------------------------------------------------------------------- unit vectors

def _long_positions() -> pd.DataFrame:
    rows = []
    for resp, kind in [("a", "persona"), ("b", "model")]:
        for unit in ["food", "water", "tax"]:
            for d in range(1, 6):
                rows.append((resp, kind, unit, d, 0.1 * d + (0.05 if resp == "b" else 0)))
    pos = pd.DataFrame(rows, columns=["respondent", "kind", "specific_problem", "dimension",
                                      "position"])
    # a/tax lacks dimension 3; b/water has an undefined position on dimension 5
    pos = pos[~((pos.respondent == "a") & (pos.specific_problem == "tax") & (pos.dimension == 3))]
    pos.loc[(pos.respondent == "b") & (pos.specific_problem == "water") & (pos.dimension == 5),
            "position"] = np.nan
    return pos


def test_unit_vectors_shape_and_drops():
    v = space.unit_vectors(_long_positions(), unit=["specific_problem"])
    assert list(v.columns) == [1, 2, 3, 4, 5]
    assert all(isinstance(c, int) for c in v.columns)
    assert v.attrs["dropped"] == 2
    assert sorted(v.index.tolist()) == [("a", "persona", "food"), ("a", "persona", "water"),
                                        ("b", "model", "food"), ("b", "model", "tax")]
    np.testing.assert_allclose(v.loc[("b", "model", "food")].to_numpy(),
                               [0.15, 0.25, 0.35, 0.45, 0.55])


def test_unit_vectors_rejects_duplicates():
    with pytest.raises(FairppError, match="unit="):
        space.unit_vectors(_long_positions(), unit=[])  # several rows per respondent x dimension


# ---------------------------------------------------------------------------------- JS distance

@pytest.mark.parametrize("base", [2.0, math.e])
@pytest.mark.parametrize("dimension", [None, 3])
def test_js_matches_scipy(matrix, base, dimension):
    out = space.js_distances(matrix, base=base, dimension=dimension)
    r = len(matrix.respondents)
    for i in range(r):
        for j in range(r):
            mask = _shared(matrix, i, j, dimension)
            assert out["n_shared"][i, j] == mask.sum()
            if not mask.any():
                assert np.isnan(out["js_distance"][i, j])
                continue
            p = matrix.probs[i, mask].sum(axis=0)
            q = matrix.probs[j, mask].sum(axis=0)
            expected = jensenshannon(p / p.sum(), q / q.sum(), base=base)
            assert out["js_distance"][i, j] == pytest.approx(expected, abs=1e-9), (i, j)


def test_js_properties(matrix):
    out = space.js_distances(matrix)
    d = out["js_distance"]
    finite = ~np.isnan(d)
    np.testing.assert_array_equal(finite, finite.T)
    np.testing.assert_allclose(d[finite], d.T[finite], atol=1e-12)
    np.testing.assert_array_equal(np.diag(d), 0.0)
    assert (d[finite] >= 0).all() and (d[finite] <= 1).all()
    assert out["respondents"] == matrix.respondents
    assert out["n_shared"].dtype.kind == "i"
    # r4 and r5 answered disjoint question sets
    assert out["n_shared"][4, 5] == 0 and np.isnan(d[4, 5]) and np.isnan(d[5, 4])
    assert np.isnan(matrix.probs[3, 0]).all()  # input untouched: NaN not zeroed in place


def test_js_extremes_and_bases():
    probs = np.eye(3)[[[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1]]]
    m = _matrix(probs, np.ones(4, dtype=int))
    d2 = space.js_distances(m)["js_distance"]
    de = space.js_distances(m, base=math.e)["js_distance"]
    assert d2[0, 1] == pytest.approx(1.0)
    assert de[0, 1] == pytest.approx(math.sqrt(math.log(2)))  # the paper's ~0.83 ceiling
    np.testing.assert_allclose(de, d2 * math.sqrt(math.log(2)))


def test_js_respondent_without_answers_gets_nan_diagonal():
    probs = np.eye(3)[[[0, 1, 2], [0, 1, 2]]]
    probs[1] = np.nan
    d = space.js_distances(_matrix(probs, np.array([1, 2, 3])))["js_distance"]
    assert d[0, 0] == 0.0 and np.isnan(d[1, 1]) and np.isnan(d[0, 1])


def test_equal_marginals_opposite_answers():
    probs = np.eye(3)[[[0, 1] * 10, [1, 0] * 10]]
    m = _matrix(probs, np.ones(20, dtype=int))
    assert space.js_distances(m)["js_distance"][0, 1] == pytest.approx(0.0, abs=1e-12)
    ag = space.agreement(m)
    assert ag["agreement"][0, 1] == 0.0
    assert ag["kappa"][0, 1] == pytest.approx(-1.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"base": 1.0}, "base=1.0"), ({"base": -2.0}, "base"), ({"dimension": 6}, "dimension=6"),
])
def test_js_rejects_bad_options(matrix, kwargs, match):
    with pytest.raises(FairppError, match=match):
        space.js_distances(matrix, **kwargs)


def test_partially_nan_row_is_rejected(matrix):
    probs = matrix.probs.copy()
    probs[0, 0, 2] = np.nan
    with pytest.raises(FairppError, match="NaN"):
        space.js_distances(_matrix(probs, matrix.dimension))


# ---------------------------------------------------------------------------------- agreement

@pytest.mark.parametrize("dimension", [None, 2])
def test_agreement_and_kappa_match_sklearn(matrix, dimension):
    out = space.agreement(matrix, dimension=dimension)
    r = len(matrix.respondents)
    for i in range(r):
        for j in range(r):
            mask = _shared(matrix, i, j, dimension)
            assert out["n_shared"][i, j] == mask.sum()
            if not mask.any():
                assert np.isnan(out["agreement"][i, j]) and np.isnan(out["kappa"][i, j])
                continue
            y1 = np.argmax(matrix.probs[i, mask], axis=1)
            y2 = np.argmax(matrix.probs[j, mask], axis=1)
            assert out["agreement"][i, j] == pytest.approx(np.mean(y1 == y2), abs=1e-12)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = cohen_kappa_score(y1, y2, labels=[0, 1, 2])
            if np.isnan(expected):
                assert np.isnan(out["kappa"][i, j])
            else:
                assert out["kappa"][i, j] == pytest.approx(expected, abs=1e-9), (i, j)


def test_kappa_undefined_when_expected_agreement_is_one():
    probs = np.eye(3)[[[0] * 6, [0] * 6, [1] * 6]]
    out = space.agreement(_matrix(probs, np.ones(6, dtype=int)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(cohen_kappa_score([0] * 6, [0] * 6, labels=[0, 1, 2]))
    assert np.isnan(out["kappa"][0, 1]) and out["agreement"][0, 1] == 1.0
    assert out["kappa"][0, 2] == pytest.approx(cohen_kappa_score([0] * 6, [1] * 6,
                                                                 labels=[0, 1, 2]))


def test_soft_answers_use_argmax_with_first_option_on_ties():
    probs = np.array([[[0.2, 0.5, 0.3], [0.4, 0.4, 0.2], [0.1, 0.45, 0.45]],
                      [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    out = space.agreement(_matrix(probs, np.array([1, 1, 1])))
    assert out["agreement"][0, 1] == 1.0


# ---------------------------------------------------------------------------------- projections

def _points(n: int = 12, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((n, 5)), columns=[1, 2, 3, 4, 5],
                        index=[f"p{i}" for i in range(n)])


def test_frozen_pca_equals_sklearn_fit_transform():
    pts = _points()
    pca = space.FrozenPCA.fit(pts, n_components=2)
    expected = PCA(n_components=2).fit_transform(pts.to_numpy())
    got = pca.transform(pts)
    assert list(got.columns) == ["PC1", "PC2"] and got.index.equals(pts.index)
    np.testing.assert_allclose(got.to_numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(pca.explained_variance_ratio,
                               PCA(n_components=2).fit(pts.to_numpy()).explained_variance_ratio_)


def test_frozen_pca_new_point_does_not_move_old_ones():
    pts = _points()
    pca = space.FrozenPCA.fit(pts, n_components=3)
    before = pca.transform(pts)
    new = pd.DataFrame([[0.9, 0.1, 0.9, 0.1, 0.9]], columns=[1, 2, 3, 4, 5], index=["probe"])
    after = pca.transform(pd.concat([pts, new]))
    pd.testing.assert_frame_equal(after.loc[pts.index], before)
    refit = PCA(n_components=3).fit_transform(pd.concat([pts, new]).to_numpy())[:-1]
    assert not np.allclose(np.abs(refit), np.abs(before.to_numpy()))  # a refit would move them
    shuffled = pts[[5, 3, 1, 2, 4]]  # column order does not matter
    pd.testing.assert_frame_equal(pca.transform(shuffled), before)


def test_frozen_pca_json_round_trip():
    pts = _points()
    pca = space.FrozenPCA.fit(pts, n_components=2)
    restored = space.FrozenPCA.from_dict(json.loads(json.dumps(pca.to_dict())))
    assert restored.features == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(restored.transform(pts), pca.transform(pts))
    with pytest.raises(FairppError, match="lacks column"):
        pca.transform(pts.drop(columns=[3]))
    with pytest.raises(FairppError, match="n_components=9"):
        space.FrozenPCA.fit(pts, n_components=9)


def test_answer_pca_matches_one_hot_sklearn(matrix):
    keep = [0, 1, 2, 6]
    m = _matrix(matrix.probs[keep], matrix.dimension, [matrix.respondents[k] for k in keep])
    out = space.answer_pca(m, n_components=2)
    common = [q for q in range(m.probs.shape[1]) if not np.isnan(m.probs[:, q, 0]).any()]
    x = np.stack([np.concatenate([m.probs[r, q] for q in common]) for r in range(len(keep))])
    expected = PCA(n_components=2).fit_transform(x)
    signs = np.sign((out.to_numpy() * expected).sum(axis=0))
    np.testing.assert_allclose(out.to_numpy(), expected * signs, atol=1e-9)
    assert out.attrs["n_questions"] == len(common) == 400 - 37
    assert out.index.tolist() == m.respondents and list(out.columns) == ["PC1", "PC2"]


def test_answer_pca_needs_common_questions(matrix):
    with pytest.raises(FairppError, match="no question was answered by every respondent"):
        space.answer_pca(matrix)  # r4 and r5 are disjoint


@pytest.mark.slow  # first UMAP fit in a process spends ~20 s in numba JIT; do not skip
def test_umap_embed_shape_and_seed():
    x = np.random.default_rng(0).random((40, 5))
    a = space.umap_embed(x, seed=3)
    b = space.umap_embed(x, seed=3)
    assert a.shape == (40, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert space.umap_embed(x[:6], n_components=3, n_neighbors=50).shape == (6, 3)


def test_umap_embed_refuses_tiny_input():
    with pytest.raises(FairppError, match="specific problem"):
        space.umap_embed(np.zeros((3, 5)))


# ---------------------------------------------------------------------------------- bootstrap

def test_bootstrap_reproducible_and_stratified():
    rng = np.random.default_rng(5)
    dims = np.repeat(np.arange(1, 6), [7, 40, 30, 20, 10])
    ans = np.concatenate([rng.choice(2, 7), rng.choice(3, 40), np.zeros(30, int),
                          np.ones(20, int), np.full(10, 2)])
    probs = np.eye(3)[ans][None]
    m = _matrix(probs, dims, ["x"])
    a = space.bootstrap_positions(m, "x", n_boot=300, seed=7)
    assert a.shape == (300, 5)
    np.testing.assert_array_equal(a, space.bootstrap_positions(m, "x", n_boot=300, seed=7))
    assert not np.array_equal(a, space.bootstrap_positions(m, "x", n_boot=300, seed=8))
    # dimension 1 has 7 A/B answers: every replicate is k/7 (7 draws within that dimension only)
    np.testing.assert_allclose(a[:, 0] * 7, np.round(a[:, 0] * 7), atol=1e-9)
    assert (a[:, 2] == 0).all() and (a[:, 3] == 1).all()  # all-A, all-B dimensions
    assert np.isnan(a[:, 4]).all()  # only N/A answers: position undefined


def test_bootstrap_spread_matches_binomial():
    rng = np.random.default_rng(0)
    probs = np.eye(3)[rng.choice(2, size=500, p=[0.7, 0.3])][None]
    m = _matrix(probs, np.repeat(np.arange(1, 6), 100), ["x"])
    boot = space.bootstrap_positions(m, "x", n_boot=2000, seed=1)
    point = probs[0, :, 1].reshape(5, 100).mean(axis=1)
    np.testing.assert_allclose(boot.mean(axis=0), point, atol=0.01)
    np.testing.assert_allclose(boot.std(axis=0), np.sqrt(point * (1 - point) / 100), rtol=0.12)


def test_bootstrap_soft_and_errors(matrix):
    boot = space.bootstrap_positions(matrix, "r2", n_boot=50, seed=0)
    assert boot.shape == (50, 5) and np.isfinite(boot).all()
    with pytest.raises(FairppError, match="respondent='nobody'"):
        space.bootstrap_positions(matrix, "nobody")
    with pytest.raises(FairppError, match="n_boot=0"):
        space.bootstrap_positions(matrix, "r0", n_boot=0)


# ---------------------------------------------------------------------------------- nearest

def test_nearest_sorted_euclidean():
    pts = _points(6)
    out = space.nearest(pts, target="p0", candidates=["p3", "p1", "p5", "p2"])
    assert list(out.columns) == ["respondent", "distance"]
    expected = {c: np.linalg.norm(pts.loc[c] - pts.loc["p0"]) for c in ["p3", "p1", "p5", "p2"]}
    assert out["respondent"].tolist() == sorted(expected, key=expected.get)
    np.testing.assert_allclose(out["distance"], sorted(expected.values()))


def test_nearest_accepts_unit_vectors_index_and_rejects_unknown():
    pos = _long_positions()
    pos = pos[pos.specific_problem == "food"].drop(columns="specific_problem")
    v = space.unit_vectors(pos, unit=[])
    out = space.nearest(v, target="a", candidates=["b"])
    assert out["distance"].iloc[0] == pytest.approx(math.sqrt(5 * 0.05 ** 2))
    with pytest.raises(FairppError, match="zed"):
        space.nearest(v, target="a", candidates=["zed"])


# ---------------------------------------------------------------------------------- hygiene

def test_import_stays_light():
    code = ("import sys, fairpp.space; bad = {'umap', 'streamlit', 'duckdb'} & set(sys.modules); "
            "print(sorted(bad))")
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root)
    assert res.stdout.strip() == "[]"
