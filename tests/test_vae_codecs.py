"""``jaxnas.vae.codecs``: a decoding read back as a valid path cell of its space, and the
decoder's operation distributions placed on that cell's edges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.spaces.genotypes import DARTS_EDGES
from jaxnas.spaces.ops import DARTS_OPS, NB201_OPS
from jaxnas.vae import Dag, DagProbs
from jaxnas.vae.codecs import DartsCodec, NB201Codec, codec_for
from jaxnas.vae.darts_dag import DARTS_DAG_OPS, darts_problem, op_vertices

DARTS = DartsCodec()
NONE = DARTS_OPS.index("none")


def _exact_probs(dags: Dag, num_types: int) -> DagProbs:
    """The distributions of a decoder sure of every choice of ``dags``."""
    return DagProbs(jax.nn.one_hot(dags.types, num_types), jnp.asarray(dags.adj, jnp.float32))


@pytest.fixture(scope="module")
def darts_cells():
    return DARTS.sample_cells(jax.random.key(0), 500)


def _read(codec, dags, probs):
    cells, vertices = jax.jit(codec.decoded_cell)(dags, probs)
    return np.asarray(cells), np.asarray(vertices)


def test_a_darts_decoding_that_is_a_cell_reads_back_as_that_cell(darts_cells):
    dags = DARTS.dags(darts_cells)
    cells, vertices = _read(DARTS, dags, _exact_probs(dags, DARTS.num_ops + 2))
    np.testing.assert_array_equal(cells, darts_cells)
    # Each used edge names the vertex of its operation: a vertex of its node, of its type.
    used = darts_cells != NONE
    np.testing.assert_array_equal(vertices >= 0, used)
    for cell, dag_types, where in zip(darts_cells, dags.types, vertices):
        for e, (_, dst) in enumerate(DARTS_EDGES):
            if cell[e] != NONE:
                assert where[e] in op_vertices(dst)
                assert DARTS_DAG_OPS[dag_types[where[e]]] == DARTS_OPS[cell[e]]
        assert sorted(where[where >= 0]) == list(range(2, 10))


def test_the_decoded_edges_decide_and_the_probabilities_only_break_ties(darts_cells):
    """A cell's DAG with distributions that disagree with it (uniform noise) still reads back
    as the cell: the decided edges agree with it most."""
    dags = DARTS.dags(darts_cells)
    rng = np.random.default_rng(1)
    probs = DagProbs(jnp.asarray(rng.dirichlet(np.ones(DARTS.num_ops + 2), dags.types.shape)),
                     jnp.asarray(rng.random(dags.adj.shape), jnp.float32))
    np.testing.assert_array_equal(_read(DARTS, dags, probs)[0], darts_cells)


def _hand_dag():
    """A DAG that is no cell: node 2's first vertex reads both inputs, node 3's two vertices
    both read node 2 only, and a vertex of node 5 has the input type."""
    types = np.array([8, 7, 0, 1, 2, 3, 4, 5, 6, 7, 9])
    adj = np.zeros((11, 11), bool)
    adj[0, 1] = True
    adj[[0, 1], 2] = True  # node 2, vertex 2: sources 0 and 1 at once
    adj[1, 3] = True  # vertex 3 reads c_{k-1}
    adj[[2, 3], 4] = adj[[2, 3], 5] = True  # node 3: both vertices read node 2
    adj[0, 6] = adj[1, 7] = True  # node 4 reads 0 and 1
    adj[[6, 7], 8] = adj[0, 9] = True  # node 5 reads node 4 and 0
    adj[[8, 9, 4, 5], 10] = True
    return Dag(types[None], adj[None])


def test_a_decoding_that_is_no_cell_reads_as_the_closest_cell():
    dag = _hand_dag()
    assert darts_problem(Dag(dag.types[0], dag.adj[0])) is not None
    p = np.full((1, 11, 11), 0.5, np.float32)
    p[0, 1, 2], p[0, 0, 2] = 0.9, 0.6  # vertex 2 agrees with source 0 or 1 in 1 edge each; the
    # log-odds prefer 1, but vertex 3 reads 1 (3 agreeing edges), and the sources must differ
    p[0, 0, 4], p[0, 0, 5] = 0.2, 0.8  # node 3: one vertex must give up node 2; vertex 5
    # reading 0 (2 agreeing edges, log-odds of 0.8) beats vertex 4 reading 0 or 1 (1 edge) and
    # vertex 5 reading 1 (2 edges, log-odds of 0.5)
    type_probs = np.full((1, 11, 10), 0.01, np.float32)
    type_probs[0, 9, 3] = 0.5  # vertex 9 (type: the input) reads as its likeliest op, 3
    probs = DagProbs(jnp.asarray(type_probs), jnp.asarray(p))
    cells, vertices = _read(DARTS, dag, probs)
    edge = {pair: e for e, pair in enumerate(DARTS_EDGES)}
    expected = np.full(14, NONE)  # DAG type t is DARTS_OPS[t + 1]
    expected[edge[0, 2]], expected[edge[1, 2]] = 1 + 0, 1 + 1
    expected[edge[2, 3]], expected[edge[0, 3]] = 1 + 2, 1 + 3
    expected[edge[0, 4]], expected[edge[1, 4]] = 1 + 4, 1 + 5
    expected[edge[4, 5]], expected[edge[0, 5]] = 1 + 6, 1 + 3
    np.testing.assert_array_equal(cells[0], expected)
    assert vertices[0, edge[0, 2]] == 2 and vertices[0, edge[1, 2]] == 3
    assert vertices[0, edge[2, 3]] == 4 and vertices[0, edge[0, 3]] == 5
    dags = DARTS.dags(cells)
    assert darts_problem(Dag(dags.types[0], dags.adj[0])) is None


def test_darts_soft_weights_put_each_vertex_distribution_on_its_edge(darts_cells):
    dags = DARTS.dags(darts_cells[:20])
    rng = np.random.default_rng(2)
    type_probs = rng.dirichlet(np.ones(DARTS.num_ops + 2), dags.types.shape).astype(np.float32)
    probs = DagProbs(jnp.asarray(type_probs), jnp.asarray(dags.adj, jnp.float32))
    _, vertices = _read(DARTS, dags, probs)
    soft = np.asarray(DARTS.soft_weights(probs, vertices))
    assert soft.shape == (20, 14, len(DARTS_OPS))
    for b in range(20):
        for e in range(14):
            if vertices[b, e] < 0:
                np.testing.assert_array_equal(soft[b, e], 0)
                continue
            row = type_probs[b, vertices[b, e]]
            assert soft[b, e, NONE] == 0
            for t, op in enumerate(DARTS_DAG_OPS):
                assert soft[b, e, DARTS_OPS.index(op)] == row[t]


def test_nb201_reads_every_decoding_as_its_operation_vertices():
    codec = NB201Codec()
    cells = codec.all_cells()[::997]
    dags = codec.dags(cells)
    rng = np.random.default_rng(3)
    type_probs = rng.dirichlet(np.ones(7), dags.types.shape).astype(np.float32)
    probs = DagProbs(jnp.asarray(type_probs), jnp.asarray(dags.adj, jnp.float32))
    got, vertices = _read(codec, dags, probs)
    np.testing.assert_array_equal(got, cells)
    np.testing.assert_array_equal(vertices, np.broadcast_to(np.arange(1, 7), cells.shape))
    np.testing.assert_array_equal(codec.soft_weights(probs, vertices),
                                  type_probs[:, 1:7, :len(NB201_OPS)])


def test_codecs_describe_cells_and_unknown_spaces_are_named():
    assert NB201Codec().describe([0, 1, 2, 3, 4, 0]) == (
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
    cell = np.full(14, NONE)
    cell[[0, 1, 2, 4, 5, 8, 9, 13]] = [1, 2, 3, 4, 5, 6, 7, 1]
    assert DARTS.describe(cell) == ("|max_pool_3x3~0 avg_pool_3x3~1|skip_connect~0 "
                                    "sep_conv_3x3~2|sep_conv_5x5~0 dil_conv_3x3~3|"
                                    "dil_conv_5x5~0 max_pool_3x3~4|")
    with pytest.raises(ValueError, match=r"spaces \['darts', 'nb201'\], got 'nas101'"):
        codec_for("nas101")
