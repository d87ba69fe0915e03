"""WEAT effect size and permutation p-value on hand-built vectors with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dl2llm.responsible.weat import (
    WeatTest,
    associations,
    effect_size,
    permutation_p_value,
    run_weat,
)


def test_effect_size_and_exact_p_on_known_associations():
    s_x, s_y = np.array([1.0, 2.0, 3.0]), np.array([-1.0, -2.0, -3.0])
    # means 2 and -2; pooled sample std sqrt(28 / 5)
    assert effect_size(s_x, s_y) == pytest.approx(4 / np.sqrt(28 / 5), abs=1e-12)
    p_value, exact = permutation_p_value(s_x, s_y)
    assert exact
    assert p_value == pytest.approx(1 / 20)  # only the observed split of C(6, 3) = 20 is as large


def test_sampled_p_value_agrees_with_exact_enumeration():
    rng = np.random.default_rng(3)
    s_x, s_y = rng.normal(0.3, 1, 7), rng.normal(0, 1, 7)
    pooled, observed = np.concatenate([s_x, s_y]), s_x.sum() - s_y.sum()
    exact = np.mean(
        [
            2 * pooled[list(c)].sum() - pooled.sum() >= observed - 1e-12
            for c in itertools.combinations(range(14), 7)
        ]
    )
    sampled, is_exact = permutation_p_value(s_x, s_y, n_permutations=2000, seed=0)
    assert not is_exact
    assert sampled == pytest.approx(exact, abs=0.03)


def test_associations_are_cosine_differences():
    targets = np.array([[1.0, 0.0], [0.0, 2.0]])
    a, b = np.array([[3.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(associations(targets, a, b), [1.0, -1.0], atol=1e-12)


def test_run_weat_on_separable_vectors_gives_maximal_association():
    vectors = {
        "x1": [1.0, 0.1], "x2": [1.0, 0.2], "x3": [1.0, 0.3],
        "y1": [0.1, 1.0], "y2": [0.2, 1.0], "y3": [0.3, 1.0],
        "a1": [1.0, 0.0], "b1": [0.0, 1.0],
    }  # fmt: skip

    def lookup(words):
        return np.array([vectors[w] for w in words if w in vectors]).reshape(-1, 2)

    test = WeatTest("toy", ("x1", "x2", "x3", "oov"), ("y1", "y2", "y3"), ("a1",), ("b1",))
    result = run_weat(test, lookup)
    assert result["n_targets"] == 3
    assert result["effect_size"] > 1.5
    assert result["p_value"] == pytest.approx(1 / 20)
