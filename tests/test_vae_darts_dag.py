"""DARTS-space cells as op-on-vertex DAGs for E²NAS's graph VAE (jaxnas.vae.darts_dag): the
form of a hand-written cell, round trips and injectivity over sampled cells, every kind of DAG
that is no cell named, bad path cells refused, the depth mask, and the uniform sampler."""

import itertools
import re

import jax
import numpy as np
import pytest

from jaxnas.spaces import DARTS_EDGES, DARTS_OPS, DartsSpace
from jaxnas.vae import (DARTS_CHAIN, DARTS_DAG_NUM_OPS, DARTS_DAG_OPS, DARTS_END, DARTS_INPUT,
                        DARTS_NUM_VERTICES, DARTS_START, Dag, dag_to_darts, darts_dags,
                        darts_depth, darts_problem, darts_to_dag, sample_darts_cells)
from jaxnas.vae.depth import chain_depth

N = 11
NONE, MAX, AVG, SKIP, SEP3, SEP5, DIL3, DIL5 = range(8)  # indices into DARTS_OPS
# The edges into each node, as indices into DARTS_EDGES: node n's edges from sources 0..n-1.
NODE_EDGES = {2: [0, 1], 3: [2, 3, 4], 4: [5, 6, 7, 8], 5: [9, 10, 11, 12, 13]}
# The source an operation vertex reads, by its in-edges (the form of the module docstring).
SOURCE_OF = {(0,): 0, (1,): 1, (2, 3): 2, (4, 5): 3, (6, 7): 4}

# node 2: sep_conv_3x3 ~ 0, skip_connect ~ 1; node 3: max_pool ~ 0, dil_conv_3x3 ~ 2;
# node 4: avg_pool ~ 1, sep_conv_5x5 ~ 3; node 5: dil_conv_5x5 ~ 2, skip_connect ~ 3.
HAND_CELL = [SEP3, SKIP,                      # (0,2) (1,2)
             MAX, NONE, DIL3,                 # (0,3) (1,3) (2,3)
             NONE, AVG, NONE, SEP5,           # (0,4) (1,4) (2,4) (3,4)
             NONE, NONE, DIL5, SKIP, NONE]    # (0,5) (1,5) (2,5) (3,5) (4,5)
# Vertex 2+k: the k-th operation in node order, the smaller source first; DAG types index
# DARTS_DAG_OPS = DARTS_OPS without none (max 0, avg 1, skip 2, sep3 3, sep5 4, dil3 5, dil5 6).
HAND_TYPES = [8, 7, 3, 2, 0, 5, 1, 4, 6, 2, 9]
HAND_EDGES = {(0, 1),                       # c_{k-1} from c_{k-2}
              (0, 2), (1, 3),               # node 2 (vertices 2, 3) reads 0 and 1
              (0, 4), (2, 5), (3, 5),       # node 3 (4, 5) reads 0 and node 2
              (1, 6), (4, 7), (5, 7),       # node 4 (6, 7) reads 1 and node 3
              (2, 8), (3, 8), (4, 9), (5, 9),  # node 5 (8, 9) reads nodes 2 and 3
              (6, 10), (7, 10), (8, 10), (9, 10)}  # the sinks: nobody reads nodes 4 and 5


def _cell(reads: dict) -> np.ndarray:
    """A path cell from ``{node: ((source, op), (source, op))}``."""
    cell = np.zeros(14, np.int32)
    for node, pair in reads.items():
        for source, op in pair:
            cell[NODE_EDGES[node][source]] = op
    return cell


# Node n reads 0 and n-1: node 2 reads c_{k-1} (node 1) and nodes 3..5 their predecessor, 4.
CHAIN_CELL = _cell({n: ((0, SEP3), (n - 1, DIL5)) for n in range(2, 6)})
# Every node reads only the cell inputs 0 and 1: node 2's read of c_{k-1} is its chain
# connection (node 2 has no other inputs), nodes 3..5 read neither node 2, 3 nor 4: depth 1.
INPUTS_CELL = _cell({n: ((0, MAX), (1, SKIP)) for n in range(2, 6)})


@pytest.fixture(scope="module")
def cells():
    return sample_darts_cells(jax.random.PRNGKey(0), 20_000)


@pytest.fixture(scope="module")
def dags(cells):
    return darts_dags(cells)


def _one(dags, row):
    return Dag(dags.types[row], dags.adj[row])


# ------------------------------------------------------------------ the form


def test_the_constants_describe_the_form():
    assert DARTS_DAG_OPS == ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                             "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    assert (DARTS_INPUT, DARTS_DAG_NUM_OPS, DARTS_START, DARTS_END, DARTS_NUM_VERTICES) == \
        (7, 8, 8, 9, 11)
    assert DartsSpace().edge_list == DARTS_EDGES
    assert [DARTS_EDGES[e] for e in NODE_EDGES[4]] == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_a_hand_written_cell_has_the_hand_derived_dag():
    assert HAND_CELL == _cell({2: ((0, SEP3), (1, SKIP)), 3: ((0, MAX), (2, DIL3)),
                               4: ((1, AVG), (3, SEP5)), 5: ((2, DIL5), (3, SKIP))}).tolist()
    dag = darts_to_dag(HAND_CELL)
    assert dag.types.dtype == np.int32 and dag.adj.dtype == bool
    assert dag.types.tolist() == HAND_TYPES
    assert {(int(u), int(v)) for u, v in np.argwhere(dag.adj)} == HAND_EDGES
    assert darts_problem(dag) is None
    assert dag_to_darts(dag).tolist() == HAND_CELL
    assert dag_to_darts(dag).dtype == np.int32


def test_the_cell_inputs_only_cell_leaves_every_operation_a_sink():
    dag = darts_to_dag(INPUTS_CELL)
    reads = {(0, 1)} | {(0, v) for v in (2, 4, 6, 8)} | {(1, v) for v in (3, 5, 7, 9)}
    assert {(int(u), int(v)) for u, v in np.argwhere(dag.adj)} == \
        reads | {(v, 10) for v in range(2, 10)}


def test_other_op_lists_index_the_same_dag():
    ops = tuple(reversed(DARTS_OPS))  # none last
    cell = np.array([ops.index(DARTS_OPS[i]) for i in HAND_CELL])
    dag = darts_to_dag(cell, ops)
    assert dag.types.tolist() == HAND_TYPES
    assert dag_to_darts(dag, ops).tolist() == cell.tolist()
    with pytest.raises(ValueError, match=r"'sep_conv_3x3' on vertex 2, which ops=.* lacks"):
        dag_to_darts(dag, ("none", "max_pool_3x3"))


# ------------------------------------------------------------------ round trips, injectivity


def test_sampled_cells_round_trip_through_their_dags(cells, dags):
    assert dags.types.shape == (len(cells), N) and dags.adj.shape == (len(cells), N, N)
    assert dags.types.dtype == np.int32 and dags.adj.dtype == bool
    assert not np.tril(dags.adj).any()  # a topological order
    for row in range(3000):
        dag = _one(dags, row)
        assert darts_problem(dag) is None
        np.testing.assert_array_equal(dag_to_darts(dag), cells[row])
        if row % 50 == 0:
            one = darts_to_dag(cells[row])
            np.testing.assert_array_equal(one.types, dag.types)
            np.testing.assert_array_equal(one.adj, dag.adj)


def test_distinct_cells_have_distinct_dags(cells, dags):
    # Every wiring of the 4 nodes (1 * 3 * 6 * 10 source pairs), each with 3 op assignments, and
    # the sampled cells.
    wirings = itertools.product(*(itertools.combinations(range(n), 2) for n in range(2, 6)))
    rng = np.random.default_rng(0)
    made = [_cell({n: tuple((s, op) for s, op in zip(pair, rng.integers(1, 8, 2)))
                   for n, pair in zip(range(2, 6), wiring)})
            for wiring in wirings for _ in range(3)]
    batch = np.concatenate([np.array(made), cells])
    made_dags = darts_dags(batch)
    flat = np.concatenate([made_dags.types, made_dags.adj.reshape(len(batch), -1)], axis=1)
    distinct_cells = len(np.unique(batch, axis=0))
    assert distinct_cells > 20_000
    assert len(np.unique(flat, axis=0)) == distinct_cells
    assert len(np.unique(np.concatenate([batch, flat], axis=1), axis=0)) == distinct_cells
    # The 180 wirings with the same ops differ in their edges alone.
    same_ops = [_cell({n: ((s, SEP3), (t, SEP3)) for n, (s, t) in zip(range(2, 6), wiring)})
                for wiring in itertools.product(*(itertools.combinations(range(n), 2)
                                                  for n in range(2, 6)))]
    assert len(same_ops) == 180
    assert len(np.unique(darts_dags(np.array(same_ops)).adj.reshape(180, -1), axis=0)) == 180


def test_the_operation_reading_the_smaller_source_comes_first(dags):
    for row in range(0, len(dags.types), 40):
        adj = dags.adj[row]
        for first in (2, 4, 6, 8):
            sources = [SOURCE_OF[tuple(np.flatnonzero(adj[:, v]).tolist())]
                       for v in (first, first + 1)]
            assert sources[0] < sources[1]
        # The same DAG with node 5's operations listed the other way round is no cell.
        order = [0, 1, 2, 3, 4, 5, 6, 7, 9, 8, 10]
        swapped = Dag(dags.types[row][order], adj[order][:, order])
        assert "not in ascending order" in darts_problem(swapped)


# ------------------------------------------------------------------ DAGs that are no cells


def _permute(types, adj, order):
    return types[order], adj[order][:, order]


def _set(array, index, value):
    array[index] = value
    return array


@pytest.mark.parametrize("change,match", [
    (lambda t, a: (_set(t, 0, DARTS_INPUT), a), r"vertex 0 has type 7, not the start type \(8\)"),
    (lambda t, a: (_set(t, 1, 0), a), r"vertex 1 has type 0, not the input c_\{k-1\} type \(7\)"),
    (lambda t, a: (_set(t, 10, DARTS_START), a), r"vertex 10 has type 8, not the end type \(9\)"),
    (lambda t, a: (_set(t, 4, DARTS_INPUT), a),
     r"operation vertices 2..9 have types \[3, 2, 7, 5, 1, 4, 6, 2\], not all in 0..6"),
    (lambda t, a: (_set(t, 9, -1), a), r"have types \[3, 2, 0, 5, 1, 4, 6, -1\], not all"),
    (lambda t, a: (t, _set(a, (4, 5), True)),  # node 3's vertex 5 also reads its sibling
     r"operation vertex 5 of node 3 has in-edges from \[2, 3, 4\], none of the sets node 3 may "
     r"read: \[0\] \(source 0\), \[1\] \(source 1\), \[2, 3\] \(source 2\)"),
    (lambda t, a: (t, _set(a, (5, 7), False)),  # vertex 7 reads half of node 3
     r"operation vertex 7 of node 4 has in-edges from \[4\], none of the sets"),
    (lambda t, a: (t, _set(_set(a, (1, 3), False), (0, 3), True)),
     r"the operation vertices 2 and 3 of node 2 both read source 0"),
    (lambda t, a: _permute(t, a, [0, 1, 2, 3, 5, 4, 6, 7, 8, 9, 10]),
     r"the operation vertices 4 and 5 of node 3 read sources 2 and 0, not in ascending order"),
    (lambda t, a: (t, _set(a, (0, 1), False)),
     r"vertex 1 \(c_\{k-1\}\) has in-edges from \[\], not from vertex 0 alone \(the edge 0->1 "
     r"is missing\)"),
    (lambda t, a: (t, _set(a, (1, 1), True)), r"vertex 1 \(c_\{k-1\}\) has in-edges from \[0, 1\]"),
    (lambda t, a: (t, _set(a, (3, 0), True)), r"the start vertex 0 has in-edges from \[3\]"),
    (lambda t, a: (t, _set(a, (8, 6), True)), r"1 edges u->v with u >= v \(8->6\)"),
    (lambda t, a: (t, _set(a, (4, 4), True)), r"1 edges u->v with u >= v \(4->4\)"),
    (lambda t, a: (t, _set(a, (8, 10), False)),
     r"end vertex 10 has in-edges from \[6, 7, 9\], not from the vertices without an out-edge "
     r"\(the sinks \[6, 7, 8, 9\]\)"),
    (lambda t, a: (t, _set(a, (2, 10), True)), r"in-edges from \[2, 6, 7, 8, 9\], not .*sinks"),
    (lambda t, a: (t[:10], a[:10, :10]),
     r"types of shape \(10,\) and adj of shape \(10, 10\), not \(11,\) and \(11, 11\)"),
    (lambda t, a: (t, a[None]), r"adj of shape \(1, 11, 11\)"),
    (lambda t, a: (t.astype(np.float32), a), r"types have dtype float32, not an integer"),
    (lambda t, a: (t, _set(a.astype(np.float32), (0, 2), 0.5)), r"values other than 0 and 1"),
])
def test_a_dag_that_is_no_darts_cell_is_named(change, match):
    dag = darts_to_dag(HAND_CELL)
    types, adj = change(dag.types.copy(), dag.adj.copy())
    problem = darts_problem(Dag(types, adj))
    assert problem is not None and re.search(match, problem), problem
    with pytest.raises(ValueError, match="is not a DARTS cell: " + re.escape(problem)):
        dag_to_darts(Dag(types, adj))


# ------------------------------------------------------------------ bad path cells


def _edit(edge, value):
    cell = np.array([HAND_CELL] * 3)
    cell[-1, edge] = value
    return cell


@pytest.mark.parametrize("cells,ops,match", [
    (np.array([HAND_CELL[:13]] * 3), DARTS_OPS, r"\[C, 14\].*got shape \(3, 13\)"),
    (np.array(HAND_CELL), DARTS_OPS, r"\[C, 14\].*got shape \(14,\)"),
    (np.array([HAND_CELL], float), DARTS_OPS, r"integer op indices, got dtype float64"),
    (_edit(5, 8), DARTS_OPS,
     r"Cell 2 holds 8 on edge 5 \(0, 4\), not an index into ops \(0..7\)"),
    (_edit(0, -1), DARTS_OPS, r"Cell 2 holds -1 on edge 0 \(0, 2\)"),
    (_edit(3, SEP3), DARTS_OPS, r"Cell 2 \(ops .*\) uses 3 of the edges into node 3, not 2"),
    (_edit(12, NONE), DARTS_OPS, r"Cell 2 \(ops .*\) uses 1 of the edges into node 5, not 2"),
    (_edit(0, NONE), DARTS_OPS, r"uses 1 of the edges into node 2"),
    (np.array([HAND_CELL]), DARTS_OPS[1:], r"lacks 'none'"),
    (_edit(11, 8), DARTS_OPS + ("sep_conv_7x7",),
     r"Cell 2 puts 'sep_conv_7x7' on an edge into node 5; the DAG form has the operations"),
])
def test_a_bad_path_cell_is_named(cells, ops, match):
    with pytest.raises(ValueError, match=match):
        darts_dags(cells, ops)


def test_darts_to_dag_takes_one_cell():
    with pytest.raises(ValueError, match=r"one DARTS path cell int \[14\], got shape \(2, 14\)"):
        darts_to_dag(np.array([HAND_CELL] * 2))


# ------------------------------------------------------------------ depth


def test_the_chain_mask_counts_the_depth(cells, dags):
    assert not DARTS_CHAIN.flags.writeable and DARTS_CHAIN.shape == (N, N)
    assert {(int(u), int(v)) for u, v in np.argwhere(DARTS_CHAIN)} == {
        (1, 2), (1, 3), (2, 4), (2, 5), (4, 6), (4, 7), (6, 8), (6, 9)}
    depth = darts_depth(cells)
    np.testing.assert_array_equal(np.asarray(chain_depth(dags.adj, DARTS_CHAIN)), depth)
    assert set(np.unique(depth).tolist()) == {1, 2, 3, 4}
    # Node 2 reads c_{k-1} always, node n = 3, 4, 5 reads node n-1 with probability
    # (n-1)/C(n,2) = 2/n (the pairs that hold n-1): a mean of 1 + 2/3 + 1/2 + 2/5, variance
    # 2/9 + 1/4 + 6/25 (sd of the 20k mean 0.006).
    assert abs(depth.mean() - (1 + 2 / 3 + 1 / 2 + 2 / 5)) < 0.03
    # The chain cell: every node reads its predecessor (node 2 reads c_{k-1}): 4. The inputs-only
    # cell: node 2 reads c_{k-1} (it has no other inputs), nodes 3..5 read no node: 1. The hand
    # cell: nodes 2, 3, 4 read their predecessor, node 5 reads nodes 2 and 3: 3.
    hand = np.array([CHAIN_CELL, INPUTS_CELL, HAND_CELL])
    assert darts_depth(hand).tolist() == [4, 1, 3]
    assert np.asarray(chain_depth(darts_dags(hand).adj, DARTS_CHAIN)).tolist() == [4, 1, 3]


# ------------------------------------------------------------------ sampling


def test_sampled_cells_are_valid_path_cells(cells):
    assert cells.shape == (20_000, 14) and cells.dtype == np.int32
    for n, edges in NODE_EDGES.items():
        node = cells[:, edges]
        assert np.all(np.sum(node != NONE, axis=1) == 2)
        assert np.all((node >= 0) & (node < len(DARTS_OPS)))


def test_sampling_is_deterministic_in_the_key(cells):
    np.testing.assert_array_equal(sample_darts_cells(jax.random.PRNGKey(0), 20_000), cells)
    other = sample_darts_cells(jax.random.PRNGKey(1), 20_000)
    assert np.mean(np.all(other == cells, axis=1)) < 0.01
    assert sample_darts_cells(jax.random.PRNGKey(0), 0).shape == (0, 14)
    with pytest.raises(ValueError, match=r"count must be an integer >= 0, got -1"):
        sample_darts_cells(jax.random.PRNGKey(0), -1)


def test_sampled_sources_and_operations_are_uniform(cells):
    for n, edges in NODE_EDGES.items():
        used = cells[:, edges] != NONE
        pairs = list(itertools.combinations(range(n), 2))
        for pair in pairs:  # 1, 3, 6, 10 pairs; sd of a frequency at most 0.0034
            freq = np.mean(used[:, pair[0]] & used[:, pair[1]])
            assert abs(freq - 1 / len(pairs)) < 0.02, (n, pair, freq)
    ops = cells[cells != NONE]
    assert len(ops) == 8 * len(cells)
    freqs = np.bincount(ops, minlength=8)[1:] / len(ops)  # sd 0.0009 each
    np.testing.assert_allclose(freqs, 1 / 7, atol=0.01)
