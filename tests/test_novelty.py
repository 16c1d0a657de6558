"""jaxnas.strategies.novelty: archives, distances, k-NN novelty, EN²AS's ES and NSAS's selection.

Reference values come from closed forms or from brute-force numpy over the definitions (a node's
set of (input, op != none) pairs; explicit one-hot matrices). Each function is jitted once here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.spaces.genotypes import DARTS_EDGES, NB201_EDGES
from jaxnas.strategies import novelty as nv

EDGE_NB201 = nv.EdgeMatch(nv.NB201_CELLS)
EDGE_DARTS = nv.EdgeMatch(nv.DARTS_CELLS)
NB201_CODE = nv.PerEdgeEncoding(5)
DARTS_CODE = nv.DartsNodeEncoding(8)

knn = jax.jit(nv.knn_novelty, static_argnames=("k", "distance"))
distance = jax.jit(lambda d, a, b: d(a, b), static_argnums=0)
encode = jax.jit(lambda code, path: code.encode(path), static_argnums=0)
decode = jax.jit(lambda code, x: code.decode(x), static_argnums=0)
add = jax.jit(nv.add)
push = jax.jit(nv.push)
greedy = jax.jit(nv.greedy_novelty_replace, static_argnames=("num_draws", "k", "distance"))
most_similar = jax.jit(nv.replace_most_similar, static_argnames=("distance",))
total_distance = jax.jit(nv.total_distance, static_argnames=("distance",))
covers = jax.jit(nv.covers)
disjoint = jax.jit(nv.disjoint)
complement = jax.jit(nv.complement, static_argnames=("cells",))


# --- numpy references -------------------------------------------------------------------------

def random_nb201(rng, count=None):
    return {"cell": rng.integers(0, 5, (6,) if count is None else (count, 6)).astype(np.int32)}


def random_darts_cell(rng):
    cell = np.zeros(14, np.int32)
    for dst in range(2, 6):
        for src in rng.choice(dst, 2, replace=False):
            cell[DARTS_EDGES.index((src, dst))] = rng.integers(1, 8)
    return cell


def random_darts(rng):
    return {"normal": random_darts_cell(rng), "reduce": random_darts_cell(rng)}


def node_sets(path, edges_of):
    """[(cell, node) -> frozenset of (input, op != none)], straight from the definition."""
    sets = {}
    for key, edges in edges_of.items():
        for e, (src, dst) in enumerate(edges):
            entry = sets.setdefault((key, dst), set())
            if path[key][e] != 0:
                entry.add((src, int(path[key][e])))
    return sets


def np_edge_match(a, b, edges_of):
    sa, sb = node_sets(a, edges_of), node_sets(b, edges_of)
    return sum(sa[n] != sb[n] for n in sa) / len(sa)


def np_one_hot_l2(a, b, num_ops):
    hot = lambda p: np.concatenate([np.eye(num_ops)[p[key]] for key in sorted(p)])
    return np.linalg.norm(hot(a) - hot(b))


def valid_darts(path):
    for cell in path.values():
        for dst in range(2, 6):
            used = [src for src in range(dst) if cell[DARTS_EDGES.index((src, dst))] != 0]
            if len(used) != 2:
                return False
    return True


def archive_of(rows: np.ndarray, size: int, key="cell"):
    return nv.Archive({key: jnp.asarray(rows)}, jnp.int32(size))


NB201_SETS = {"cell": NB201_EDGES}
DARTS_SETS = {"normal": DARTS_EDGES, "reduce": DARTS_EDGES}


# --- encodings --------------------------------------------------------------------------------

def test_darts_encoding_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(10):
        path = random_darts(rng)
        x = encode(DARTS_CODE, path)
        for key, cell in path.items():
            expected = []
            for dst in range(2, 6):
                srcs = [s for s in range(dst) if cell[DARTS_EDGES.index((s, dst))]]
                for s in srcs:
                    expected += [s, cell[DARTS_EDGES.index((s, dst))]]
            np.testing.assert_array_equal(x[key], expected)
        back = decode(DARTS_CODE, x)
        for key in path:
            np.testing.assert_array_equal(back[key], path[key])
        np.testing.assert_array_equal(encode(DARTS_CODE, back)["normal"], x["normal"])


def test_darts_decode_clips_and_separates_equal_inputs():
    big = decode(DARTS_CODE, {"normal": jnp.full(16, 100.0), "reduce": jnp.full(16, -100.0)})
    for dst in range(2, 6):
        row = lambda key, src: int(big[key][DARTS_EDGES.index((src, dst))])
        # input1 clipped to the last input dst-1, input2 the nearest other one, ops to 7 and 1.
        assert row("normal", dst - 1) == 7 and row("normal", dst - 2) == 7
        assert row("reduce", 0) == 1 and row("reduce", 1) == 1
    for key in big:
        assert int(jnp.sum(big[key] != 0)) == 8

    # Node 4 (i = 2, inputs 0..3): input1 = 1; input2 rounds to 1 too and moves to its side.
    for x2, src2 in ((1.3, 2), (0.8, 0)):
        x = np.tile(np.array([0.0, 1.0, 1.0, 1.0], np.float32), 4)
        x[8:12] = [1.0, 3.2, x2, 5.6]
        cell = np.asarray(decode(DARTS_CODE, {"normal": x})["normal"])
        node = cell[DARTS_EDGES.index((0, 4)):DARTS_EDGES.index((0, 4)) + 4]
        expected = np.zeros(4, np.int32)
        expected[1], expected[src2] = 3, 6
        np.testing.assert_array_equal(node, expected)

    rng = np.random.default_rng(1)
    noisy = decode(DARTS_CODE, {k: jnp.asarray(rng.normal(2, 3, (200, 16)), jnp.float32)
                                for k in ("normal", "reduce")})
    assert all(valid_darts({k: np.asarray(v[i]) for k, v in noisy.items()}) for i in range(200))
    assert all(int(noisy[k].max()) <= 7 for k in noisy)


def test_nb201_encoding():
    x = {"cell": jnp.array([-0.7, 0.4, 1.6, 2.2, 3.9, 7.0])}
    np.testing.assert_array_equal(decode(NB201_CODE, x)["cell"], [0, 0, 2, 2, 4, 4])
    path = random_nb201(np.random.default_rng(2))
    np.testing.assert_array_equal(decode(NB201_CODE, encode(NB201_CODE, path))["cell"],
                                  path["cell"])


# --- distances and novelty --------------------------------------------------------------------

@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_distances_match_definitions(space):
    rng = np.random.default_rng(3)
    sample, measure, edges_of, num_ops = (
        (random_nb201, EDGE_NB201, NB201_SETS, 5) if space == "nb201"
        else (random_darts, EDGE_DARTS, DARTS_SETS, 8))
    pairs = [(sample(rng), sample(rng)) for _ in range(20)]
    pairs += [(p, {k: v.copy() for k, v in p.items()}) for p, _ in pairs[:3]]
    stack = lambda i: {k: np.stack([pair[i][k] for pair in pairs]) for k in pairs[0][i]}
    a, b = stack(0), stack(1)
    for measure_, reference in ((measure, lambda p, q: np_edge_match(p, q, edges_of)),
                                (nv.OneHotL2(), lambda p, q: np_one_hot_l2(p, q, num_ops))):
        ab = np.asarray(distance(measure_, a, b))
        np.testing.assert_allclose(ab, np.asarray(distance(measure_, b, a)))
        np.testing.assert_allclose(ab, [reference(p, q) for p, q in pairs], rtol=1e-6)
        np.testing.assert_array_equal(ab[-3:], 0.0)


def test_distances_maximal_when_nothing_is_shared():
    ones, twos = {"cell": np.ones(6, np.int32)}, {"cell": np.full(6, 2, np.int32)}
    assert float(distance(EDGE_NB201, ones, twos)) == 1.0
    np.testing.assert_allclose(distance(nv.OneHotL2(), ones, twos), np.sqrt(12.0))
    a = random_darts(np.random.default_rng(4))
    shifted = {k: np.where(v != 0, v % 7 + 1, 0).astype(np.int32) for k, v in a.items()}
    assert float(distance(EDGE_DARTS, a, shifted)) == 1.0  # (8 - 0) / 8
    np.testing.assert_allclose(distance(nv.OneHotL2(), a, shifted), np.sqrt(2 * 16))
    one_node = {k: v.copy() for k, v in a.items()}
    one_node["normal"][:2] = shifted["normal"][:2]  # node 2 of the normal cell
    assert float(distance(EDGE_DARTS, a, one_node)) == 1 / 8


@pytest.mark.parametrize("measure", [EDGE_NB201, nv.OneHotL2()])
def test_knn_novelty_is_the_mean_of_the_k_nearest(measure):
    rng = np.random.default_rng(5)
    rows = random_nb201(rng, 12)["cell"]
    query = random_nb201(rng)
    reference = (lambda p, q: np_edge_match(p, q, NB201_SETS)) if measure is EDGE_NB201 \
        else (lambda p, q: np_one_hot_l2(p, q, 5))
    gaps = np.array([reference(query, {"cell": r}) for r in rows])
    brute = lambda members, k: np.sort(gaps[members])[:k].mean()
    np.testing.assert_allclose(knn(query, archive_of(rows, 9), 4, measure), brute(range(9), 4),
                               rtol=1e-6)
    order = np.concatenate([rng.permutation(9), np.arange(9, 12)])
    np.testing.assert_allclose(knn(query, archive_of(rows[order], 9), 4, measure),
                               brute(range(9), 4), rtol=1e-6)
    np.testing.assert_allclose(knn(query, archive_of(rows, 9), 4, measure, exclude=3),
                               brute([0, 1, 2, 4, 5, 6, 7, 8], 4), rtol=1e-6)
    np.testing.assert_allclose(knn(query, archive_of(rows, 3), 4, measure), brute(range(3), 3),
                               rtol=1e-6)
    assert float(knn(query, archive_of(rows, 0), 4, measure)) == 0.0


# --- EN²AS ------------------------------------------------------------------------------------

def test_es_gradient_is_unbiased_for_a_quadratic_novelty():
    # N(z) = -||z - c||^2: E[N(x + sigma eps)] = -||x - c||^2 - sigma^2 d, gradient -2 (x - c).
    x, c = jnp.array([1.0, 0.0, 1.5]), jnp.array([0.5, -1.0, 2.0])
    novelty = lambda z: -jnp.sum((z["x"] - c) ** 2)
    grads = jax.jit(jax.vmap(
        lambda key: nv.es_step(key, {"x": x}, novelty, 10, 0.5, 0.0).grad["x"]))
    g = np.asarray(grads(jax.random.split(jax.random.key(0), 4000)))
    mean, se = g.mean(0), g.std(0) / np.sqrt(len(g))
    assert np.all(se < 0.05)
    np.testing.assert_array_less(np.abs(mean - np.array([-1.0, -2.0, 1.0])), 4 * se)


def test_en2as_step_scores_against_the_others_and_writes_back():
    rows = np.array([[1] * 6, [1] * 6, [2, 2, 2, 1, 1, 1], [0] * 6], np.float32)
    archive = archive_of(rows, 3)
    step = jax.jit(nv.en2as_step, static_argnums=(3, 4, 5, 6, 7))
    new, path, es = step(jax.random.key(1), archive, 2, NB201_CODE, EDGE_NB201, 1, 4, 1e-3, 1e-5)
    # Tiny perturbations decode to row 2, whose nearest other member is [1]*6: nodes 1 and 2
    # differ, node 3 matches, so 2/3 (it would be 0 if row 2 were not left out).
    np.testing.assert_allclose(es.novelty, np.full(4, 2 / 3), rtol=1e-6)
    np.testing.assert_allclose(new.paths["cell"][2], rows[2] + 1e-5 * es.grad["cell"], rtol=1e-6)
    np.testing.assert_array_equal(np.delete(np.asarray(new.paths["cell"]), 2, 0),
                                  np.delete(rows, 2, 0))
    assert int(new.size) == 3
    np.testing.assert_array_equal(path["cell"], [2, 2, 2, 1, 1, 1])


# --- archives ---------------------------------------------------------------------------------

def test_archive_never_grows_past_its_capacity():
    paths = [{"cell": np.full(6, i, np.int32)} for i in range(7)]
    grown = fifo = nv.empty_archive({"cell": 6}, 5)
    for path in paths:
        grown, fifo = add(grown, path), push(fifo, path)
        assert int(grown.size) <= 5 and int(fifo.size) <= 5
    np.testing.assert_array_equal(grown.paths["cell"][:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(fifo.paths["cell"][:, 0], [2, 3, 4, 5, 6])
    assert int(grown.size) == int(fifo.size) == 5


# --- NSAS -------------------------------------------------------------------------------------

def test_greedy_replacement_never_lowers_novelty():
    rng = np.random.default_rng(6)
    for trial in range(12):
        archive = archive_of(random_nb201(rng, 5)["cell"], 5)
        recent = archive_of(random_nb201(rng, 8)["cell"], 6)
        m = int(rng.integers(5))
        after = greedy(jax.random.key(trial), archive, recent, m, num_draws=6, k=4,
                       distance=EDGE_NB201)
        before_n = knn(nv.member(archive, m), archive, 4, EDGE_NB201, exclude=m)
        after_n = knn(nv.member(after, m), after, 4, EDGE_NB201, exclude=m)
        assert float(after_n) >= float(before_n)
        kept = np.delete(np.asarray(after.paths["cell"]), m, 0)
        np.testing.assert_array_equal(kept, np.delete(np.asarray(archive.paths["cell"]), m, 0))
        assert any((np.asarray(after.paths["cell"][m]) == r).all()
                   for r in [archive.paths["cell"][m], *recent.paths["cell"][:6]])


def test_greedy_replacement_identity_and_choice():
    rows = np.array([[1] * 6, [1] * 6, [1] * 6], np.int32)
    archive = archive_of(rows, 3)
    recent = archive_of(np.array([[1] * 6, [3] * 6], np.int32), 2)
    run = lambda n, rec: greedy(jax.random.key(0), archive, rec, 0, num_draws=n, k=2,
                                distance=EDGE_NB201)
    np.testing.assert_array_equal(run(0, recent).paths["cell"], rows)
    np.testing.assert_array_equal(run(5, recent._replace(size=jnp.int32(0))).paths["cell"], rows)
    # [3]*6 (novelty 1) beats the member (0); 64 draws miss it with probability 2^-64.
    np.testing.assert_array_equal(run(64, recent).paths["cell"][0], [3] * 6)
    # A draw only as novel as the member does not replace it (Algorithm 2 asks for more).
    tied = archive_of(np.array([[2] * 6, [1] * 6, [1] * 6], np.int32), 3)
    kept = greedy(jax.random.key(0), tied, archive_of(np.array([[3] * 6], np.int32), 1), 0,
                  num_draws=4, k=2, distance=EDGE_NB201)
    np.testing.assert_array_equal(kept.paths["cell"][0], [2] * 6)


def test_replace_most_similar_and_diversity():
    t = np.array([2, 2, 2, 2, 2, 3], np.int32)
    rows = np.array([[1] * 6, [2] * 6, [3] * 6, t], np.int32)  # row 3 is not a member
    new, index = most_similar(archive_of(rows, 3), {"cell": t}, distance=EDGE_NB201)
    assert int(index) == 1
    np.testing.assert_array_equal(new.paths["cell"][1], t)

    rng = np.random.default_rng(7)
    for _ in range(10):
        archive = archive_of(random_nb201(rng, 5)["cell"], 5)
        path = random_nb201(rng)
        before = float(total_distance(archive, distance=EDGE_NB201))
        members = np.asarray(archive.paths["cell"])
        brute = sum(np_edge_match({"cell": members[i]}, {"cell": members[j]}, NB201_SETS)
                    for i in range(5) for j in range(i + 1, 5))
        np.testing.assert_allclose(before, brute, rtol=1e-6)
        new, index = most_similar(archive, path, distance=EDGE_NB201)
        novelty_of = lambda p: float(knn(p, archive, 4, EDGE_NB201, exclude=index))
        gain = novelty_of(path) - novelty_of(nv.member(archive, index))
        # Eq. 3.4 with k = M - 1: the total moves by (M - 1) times the novelty gained.
        np.testing.assert_allclose(float(total_distance(new, distance=EDGE_NB201)) - before,
                                   4 * gain, atol=1e-5)


def test_coverage_and_disjointness_by_hand():
    current = {"cell": np.array([1, 2, 3, 4, 0, 1], np.int32)}
    constraints = np.array([[1] * 6, [2, 2, 3, 4, 4, 4], [1, 2, 3, 4, 0, 2]], np.int32)
    assert bool(covers(archive_of(constraints, 2), current))
    assert not bool(covers(archive_of(constraints, 2), {"cell": current["cell"] % 4 + 1}))
    distinct = np.array([[i] * 6 for i in range(5)] + [[1] * 6], np.int32)
    distinct[1, 0] = 0  # none on an edge is no weight: rows 0 and 1 share nothing
    assert bool(disjoint(archive_of(distinct, 5)))  # row 5 (shares with row 1) is not a member
    distinct[2, 3] = 1
    assert not bool(disjoint(archive_of(distinct, 5)))


def test_complement_makes_coverage_true():
    rng = np.random.default_rng(8)
    uncovered = 0
    for _ in range(15):
        current, fill = random_nb201(rng), random_nb201(rng)
        rows = np.concatenate([random_nb201(rng, 2)["cell"], np.zeros((1, 6), np.int32)])
        constraints = archive_of(rows, 2)
        uncovered += not bool(covers(constraints, current))
        extra = complement(current, constraints, fill, cells=nv.NB201_CELLS)
        assert bool(covers(nv.add(constraints, extra), current))
        extra = np.asarray(extra["cell"])
        # Node by node: the current path's node where some edge is uncovered, else fill's.
        covered = (current["cell"] == 0) | (rows[:2] == current["cell"]).any(0)
        for dst in (1, 2, 3):
            node = [e for e, (_, d) in enumerate(NB201_EDGES) if d == dst]
            source = current if not covered[node].all() else fill
            np.testing.assert_array_equal(extra[node], source["cell"][node])
    assert uncovered >= 10

    current, fill = random_darts(rng), random_darts(rng)
    constraints = nv.Archive({k: jnp.asarray(np.stack([random_darts_cell(rng)] * 2))
                              for k in ("normal", "reduce")}, jnp.int32(1))
    extra = complement(current, constraints, fill, cells=nv.DARTS_CELLS)
    assert valid_darts({k: np.asarray(v) for k, v in extra.items()})
    assert bool(covers(nv.add(constraints, extra), current))


# --- bad values -------------------------------------------------------------------------------

def test_bad_values_raise():
    archive = nv.empty_archive({"cell": 6}, 4)
    path = {"cell": jnp.zeros(6, jnp.int32)}
    novelty = lambda z: -jnp.sum(z["x"] ** 2)
    key, x = jax.random.key(0), {"x": jnp.zeros(2)}
    cases = [
        (lambda: nv.empty_archive({"cell": 6}, 0), "capacity"),
        (lambda: nv.empty_archive({"cell": 0}, 4), "row width"),
        (lambda: nv.knn_novelty(path, archive, 0, EDGE_NB201), "k "),
        (lambda: nv.knn_novelty(path, archive, 5, EDGE_NB201), "k .*at most 4"),
        (lambda: nv.greedy_novelty_replace(key, archive, archive, 0, -1, 2, EDGE_NB201),
         "num_draws"),
        (lambda: nv.es_step(key, x, novelty, 0, 1.0, 0.01), "num_perturbations"),
        (lambda: nv.es_step(key, x, novelty, -3, 1.0, 0.01), "num_perturbations"),
        (lambda: nv.es_step(key, x, novelty, 10, 0.0, 0.01), "sigma"),
        (lambda: nv.es_step(key, x, novelty, 10, -1.0, 0.01), "sigma"),
        (lambda: EDGE_DARTS(path, path), "edges"),
        (lambda: DARTS_CODE.decode({"normal": jnp.zeros(14)}), "16 entries"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
