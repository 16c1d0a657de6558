"""Rank correlations (Kendall tau-b, s-tau) and cell shape metrics, against hand computations."""

import itertools

import numpy as np
import pytest

from jaxnas.analysis import (
    cell_depth,
    kendall_tau,
    l0_depth,
    nb201_depth,
    nb201_skip_count,
    skip_count,
    skip_ratio,
    stability_tau,
)

# ---------------------------------------------------------------- Kendall tau


def test_kendall_tau_perfect_agreement_and_reversal():
    assert kendall_tau([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]) == 1.0
    assert kendall_tau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == -1.0


def test_kendall_tau_four_items_by_hand():
    # x = 1 2 3 4, y = 1 3 2 4: of the 6 pairs only (2nd, 3rd) is discordant.
    # tau = (5 - 1) / 6 = 2/3.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3, abs=1e-12)


def test_kendall_tau_b_with_ties_by_hand():
    # x = 1 2 2 3, y = 1 2 3 3. Pairs: (0,1) (0,2) (0,3) (1,3) concordant; (1,2) tied in x;
    # (2,3) tied in y. n_c - n_d = 4, n_0 = 6, t_x = t_y = 1: tau_b = 4 / sqrt(5 * 5) = 0.8.
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8, abs=1e-12)


def test_kendall_tau_depends_only_on_order():
    scores = [0.3, 91.2, 5.0, 47.5, 12.25]
    ranks = [1, 5, 2, 4, 3]
    other = [2, 1, 5, 3, 4]
    assert kendall_tau(scores, other) == kendall_tau(ranks, other)
    assert kendall_tau(np.exp(scores), other) == kendall_tau(ranks, other)


def test_kendall_tau_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 200):
        x = rng.integers(0, 6, size=n)  # many ties
        y = x + rng.integers(0, 4, size=n)
        if np.all(x == x[0]) or np.all(y == y[0]):
            continue
        expected = stats.kendalltau(x, y, variant="b").statistic
        assert kendall_tau(x, y) == pytest.approx(expected, abs=1e-12)
    x, y = rng.normal(size=500), rng.normal(size=500)
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


@pytest.mark.parametrize("x, y, problem", [
    ([1, 2, 3], [1, 2], "lengths 3 and 2"),
    ([1], [1], "at least 2 items"),
    ([1, 1, 1], [1, 2, 3], "x is constant"),
    ([1, 2, 3], [4, 4, 4], "y is constant"),
    ([1, np.nan, 3], [1, 2, 3], "NaN"),
    ([[1, 2], [3, 4]], [1, 2], "1-D"),
])
def test_kendall_tau_errors(x, y, problem):
    with pytest.raises(ValueError, match=problem):
        kendall_tau(x, y)


def test_stability_tau_by_hand():
    # tau(R1, R2) = 2/3 (the 4-item case above), tau(R1, R3) = -1 (reversal),
    # tau(R2, R3) = -2/3 (reversing one side flips the sign). s-tau = (2/3 - 1 - 2/3) / 3 = -1/3.
    rankings = [[1, 2, 3, 4], [1, 3, 2, 4], [4, 3, 2, 1]]
    assert stability_tau(rankings) == pytest.approx(-1 / 3, abs=1e-12)
    assert stability_tau(np.array(rankings[:2])) == pytest.approx(2 / 3, abs=1e-12)
    assert stability_tau([[1, 2, 3]] * 3) == 1.0


def test_stability_tau_errors():
    with pytest.raises(ValueError, match="N >= 2"):
        stability_tau([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"lengths \[3, 2\]"):
        stability_tau([[1, 2, 3], [1, 2]])


# ---------------------------------------------------------------- DARTS cells

# DARTS_V2 (Liu et al. 2019), the published second-order cells.
DARTS_V2_NORMAL = [('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0),
                   ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0),
                   ('skip_connect', 0), ('dil_conv_3x3', 2)]
DARTS_V2_REDUCE = [('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2),
                   ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2),
                   ('skip_connect', 2), ('max_pool_3x3', 1)]


def test_darts_v2_normal_cell():
    # Nodes: 2 <- (0, 1), 3 <- (0, 1), 4 <- (1, 0), 5 <- (0, 2).
    # Longest paths: nodes 2, 3, 4 are one edge from the inputs; node 5 = 1 + node 2 = 2.
    # Depth connections i-1 -> i among intermediate nodes: 5 reads 2, not 4, so none; the edge
    # c_{k-1} -> node 2 is not counted. Skips: 2 of 8.
    assert cell_depth(DARTS_V2_NORMAL) == 2
    assert l0_depth(DARTS_V2_NORMAL) == 0
    assert skip_count(DARTS_V2_NORMAL) == 2
    assert skip_ratio(DARTS_V2_NORMAL) == 0.25


def test_darts_v2_reduce_cell():
    # Nodes: 2 <- (0, 1), 3 <- (2, 1), 4 <- (0, 2), 5 <- (2, 1): every node after 2 reads node 2,
    # so depth 2; only 2 -> 3 joins consecutive nodes. Skips: 3 of 8.
    assert cell_depth(DARTS_V2_REDUCE) == 2
    assert l0_depth(DARTS_V2_REDUCE) == 1
    assert skip_count(DARTS_V2_REDUCE) == 3
    assert skip_ratio(DARTS_V2_REDUCE) == 3 / 8


def test_all_skip_cells():
    # A chain: node j reads j-2 and j-1, so 1 -> 2 -> 3 -> 4 -> 5 is 4 edges long and the three
    # links 2->3, 3->4, 4->5 are depth connections.
    chain = [('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 1), ('skip_connect', 2),
             ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 3), ('skip_connect', 4)]
    assert [f(chain) for f in (cell_depth, l0_depth, skip_count, skip_ratio)] == [4, 3, 8, 1]
    # Every node reads the two cell inputs: as shallow as a cell gets.
    flat = [('skip_connect', k % 2) for k in range(8)]
    assert [f(flat) for f in (cell_depth, l0_depth, skip_count, skip_ratio)] == [1, 0, 8, 1]


def test_triples_match_pairs():
    triples = [(op, source, 2 + k // 2) for k, (op, source) in enumerate(DARTS_V2_NORMAL)]
    assert [f(triples) for f in (cell_depth, l0_depth, skip_count, skip_ratio)] == [2, 0, 2, 0.25]


def test_triples_with_variable_inputs_and_none():
    # Node 2 has three inputs, node 3 one. Path 0 -> 2 -> 3 -> 4 -> 5 has 4 edges; all three
    # links 2->3, 3->4, 4->5 are present. Skips: 2 of 7 ops.
    cell = [('sep_conv_3x3', 0, 2), ('sep_conv_3x3', 1, 2), ('dil_conv_3x3', 0, 2),
            ('skip_connect', 2, 3), ('sep_conv_5x5', 3, 4), ('max_pool_3x3', 2, 5),
            ('skip_connect', 4, 5)]
    assert (cell_depth(cell), l0_depth(cell), skip_count(cell)) == (4, 3, 2)
    assert skip_ratio(cell) == pytest.approx(2 / 7)
    # A `none` edge is no connection: 2 -> 3 is none, so node 3 is one edge from input 1 and
    # node 4 two; only 3 -> 4 counts. Ops: 3 (the none is not one), skips 1.
    with_none = [('sep_conv_3x3', 0, 2), ('none', 2, 3), ('skip_connect', 1, 3),
                 ('sep_conv_3x3', 3, 4)]
    assert (cell_depth(with_none), l0_depth(with_none), skip_count(with_none)) == (2, 1, 1)
    assert skip_ratio(with_none) == pytest.approx(1 / 3)


@pytest.mark.parametrize("cell, problem", [
    ([], "empty"),
    (DARTS_V2_NORMAL[:7], "got 7 pairs"),
    ([('sep_conv_3x3', 0), ('sep_conv_3x3', 1, 2)], "all be"),
    ([('sep_conv_3x3', 2), ('sep_conv_3x3', 1)], "0 <= input < node"),
    ([('sep_conv_3x3', 0, 1)], "node >= 2"),
    ([('sep_conv_3x3', 'a')] * 2, "integers"),
])
def test_malformed_cells(cell, problem):
    with pytest.raises(ValueError, match=problem):
        cell_depth(cell)


def test_skip_ratio_of_an_all_none_cell_is_an_error():
    with pytest.raises(ValueError, match="every edge"):
        skip_ratio([('none', 0), ('none', 1)])


# ---------------------------------------------------------------- NB201 cells

BEST_C10 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
            "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")


def test_nb201_by_hand():
    all_skip = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
                "+|skip_connect~0|skip_connect~1|skip_connect~2|")
    assert (nb201_skip_count(all_skip), nb201_depth(all_skip)) == (6, 3)
    assert (nb201_skip_count(BEST_C10), nb201_depth(BEST_C10)) == (1, 3)
    # Only the skip 3 <- 0 reaches the output.
    assert nb201_depth("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|") == 1
    # Node 1 is dead, so its edge into node 2 does not lengthen the path 0 -> 2 -> 3.
    dead_node_1 = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert nb201_depth(dead_node_1) == 2
    assert nb201_depth("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == 0


def test_nb201_counts_over_the_whole_space():
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    archs = ["|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*c)
             for c in itertools.product(ops, repeat=6)]
    # Each of the 6 edges is skip_connect in 5**5 of the 5**6 cells.
    assert sum(nb201_skip_count(a) for a in archs) == 6 * 5**5
    # Cells whose output is unreachable (edge 3<-0 is none, 1 way):
    #  node 1 live (4 ways): 3<-1 must be none; node 2 live (24 of the 25 ways of 2<-0, 2<-1)
    #   needs 3<-2 none, dead (1 way) leaves 3<-2 free (5): 4 * (24 + 5) = 116;
    #  node 1 dead (1 way): 3<-1 free (5); node 2 live iff 2<-0 is not none (4 * 5 = 20 ways,
    #   3<-2 none) or dead (1 * 5 ways, 3<-2 free): 5 * (20 + 25) = 225.
    assert sum(nb201_depth(a) == 0 for a in archs) == 116 + 225


def test_pareto_front_keeps_the_non_dominated_points_by_cost():
    from jaxnas.analysis import pareto_front

    costs = [3.0, 1.0, 2.0, 2.0, 4.0, 1.0]
    scores = [0.9, 0.5, 0.8, 0.7, 0.9, 0.5]
    # 3 is dominated by 2 (same cost, lower score), 4 by 0 (same score, higher cost); 1 and 5
    # are equal in both and both kept.
    assert pareto_front(costs, scores).tolist() == [1, 5, 2, 0]
    rng = np.random.default_rng(0)
    c, s = rng.random(30), rng.random(30)
    front = set(pareto_front(c, s).tolist())
    for i in range(30):  # brute force: on the front iff nothing is at least as good and better
        dominated = any(c[j] <= c[i] and s[j] >= s[i] and (c[j] < c[i] or s[j] > s[i])
                        for j in range(30))
        assert (i in front) == (not dominated)
    with pytest.raises(ValueError, match=r"two \[N\] arrays"):
        pareto_front([1.0, 2.0], [1.0])
