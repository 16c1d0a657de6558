"""Single paths (``jaxnas.spaces.paths``) and model selection over them
(``jaxnas.strategies.selection``): validity, uniformity, the mutation's move set, one-hot weights,
genotype round trips, and random search / regularized evolution on fitnesses with known optima."""

import functools
import itertools
import math
from collections import Counter

import jax
import numpy as np
import pytest
from scipy import stats

from jaxnas.benchmarks import NB201Table, parse_arch_str
from jaxnas.spaces import NB201_EDGES, NB201_OPS, DartsSpace, NB201Genotype, NB201Space
from jaxnas.spaces.paths import mutate_path, path_genotype, path_key, path_weights, sample_path
from jaxnas.spaces.published import DARTS_V1, DARTS_V2, PDARTS
from jaxnas.strategies.selection import random_search, regularized_evolution

NB201 = NB201Space()
DARTS = DartsSpace()
FIXED = DartsSpace(edges="fixed")
CELLS = ("normal", "reduce")
N = 2000  # paths per draw (one batch size: one compilation per space)


# ---------------------------------------------------------------- helpers (by the definitions)


def draw(space, seed):
    """N sampled paths, as a batch ``{key: [N, E]}``."""
    keys = jax.random.split(jax.random.key(seed), N)
    return jax.device_get(jax.vmap(functools.partial(sample_path, space))(keys))


def children(space, parent, seed, n):
    """n mutations of ``parent``, as a list of paths."""
    keys = jax.random.split(jax.random.key(seed), n)
    mutate = jax.vmap(functools.partial(mutate_path, space), (0, None))
    return rows(jax.device_get(mutate(keys, parent)))


def rows(batch):
    n = len(next(iter(batch.values())))
    return [{name: cells[i] for name, cells in batch.items()} for i in range(n)]


def is_valid(space, path):
    """The definition of a valid path, checked edge by edge."""
    if isinstance(space, NB201Space):
        return (set(path) == {"cell"} and len(path["cell"]) == len(NB201_EDGES)
                and all(0 <= op < len(space.ops) for op in path["cell"]))
    if set(path) != set(CELLS):
        return False
    for cell in CELLS:
        ops = [space.ops[i] for i in path[cell]]
        for dst in range(2, 6):
            into = [(src, op) for (src, d), op in zip(space.edge_list, ops) if d == dst]
            used = [(src, op) for src, op in into if op != "none"]
            sources = {src for src, _ in used}
            if len(used) != (2 if space.edges == "all" else len(into)) or len(sources) != len(used):
                return False
    return True


def op_changes(path, cell, edge, choices):
    """The paths with the op of ``edge`` of ``cell`` replaced by another of ``choices``."""
    for op in choices:
        if op != path[cell][edge]:
            new = dict(path, **{cell: path[cell].copy()})
            new[cell][edge] = op
            yield new


def neighbours(space, path):
    """``{path_key: probability}`` of every path one move away (module docstring of paths)."""
    probability = {}
    if isinstance(space, NB201Space):
        for e, (_, dst) in enumerate(NB201_EDGES):
            for new in op_changes(path, "cell", e, range(len(space.ops))):
                probability[path_key(new)] = 1 / 3 / dst / (len(space.ops) - 1)
        return probability
    none = space.ops.index("none") if "none" in space.ops else None
    real_ops = [i for i, op in enumerate(space.ops) if op != "none"]
    input_nodes = [3, 4, 5] if space.edges == "all" else []
    moves = (len(real_ops) > 1) + bool(input_nodes)
    for cell in CELLS:
        used = [e for e, op in enumerate(path[cell]) if op != none]
        for e in used:  # op move: node 1/4, one of its 2 edges 1/2, another op
            for new in op_changes(path, cell, e, real_ops):
                probability[path_key(new)] = 1 / 2 / moves / 4 / 2 / (len(real_ops) - 1)
        for dst in input_nodes:  # input move: node 1/3, one of its 2 edges 1/2, a free source
            into = [e for e, (_, d) in enumerate(space.edge_list) if d == dst]
            for old, new_edge in itertools.product(into, into):
                if old in used and new_edge not in used:
                    new = dict(path, **{cell: path[cell].copy()})
                    new[cell][new_edge], new[cell][old] = path[cell][old], none
                    probability[path_key(new)] = 1 / 2 / moves / 3 / 2 / (dst - 2)
    return probability


def darts_path(space, genotype):
    """The path of a DARTS genotype, built from its genes."""
    path = {}
    for cell in CELLS:
        ops = np.full(len(space.edge_list), space.ops.index("none"), np.int32)
        for op, src, dst in genotype.edges(cell):
            ops[space.edge_list.index((src, dst))] = space.ops.index(op)
        path[cell] = ops
    return path


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("space", [
    NB201, DARTS, FIXED, NB201Space(ops=("skip_connect", "nor_conv_3x3")),
    DartsSpace(ops=("none", "skip_connect")),
    DartsSpace(edges="fixed", ops=("skip_connect", "sep_conv_3x3")),
], ids=["nb201", "darts", "fixed", "nb201-2ops", "darts-1op", "fixed-no-none"])
def test_sampled_paths_are_valid(space):
    batch = draw(space, 0)
    for name, (edges, _) in space.arch_shapes().items():
        assert batch[name].shape == (N, edges) and batch[name].dtype == np.int32
    assert all(is_valid(space, path) for path in rows(batch))


def test_nb201_sampling_is_uniform_over_the_ops_of_every_edge():
    ops = draw(NB201, 1)["cell"]
    counts = np.stack([np.bincount(ops[:, e], minlength=len(NB201_OPS)) for e in range(6)])
    statistic = stats.chisquare(counts, axis=1).statistic.sum()  # chi2 with 6 * 4 dof
    assert stats.chi2.sf(statistic, 6 * 4) > 1e-3
    # Pairs of edges are independent: joint counts of edges 0 and 5 over the 25 op pairs.
    pairs = np.bincount(ops[:, 0] * 5 + ops[:, 5], minlength=25)
    assert stats.chisquare(pairs).pvalue > 1e-3


def test_darts_sampling_is_uniform_over_source_pairs_and_ops():
    batch = draw(DARTS, 2)
    none = DARTS.ops.index("none")
    for cell in CELLS:
        ops = batch[cell]
        for dst in range(3, 6):
            into = [e for e, (_, d) in enumerate(DARTS.edge_list) if d == dst]
            pairs = Counter(tuple(np.flatnonzero(row[into] != none)) for row in ops)
            assert len(pairs) == math.comb(dst, 2)
            assert stats.chisquare(list(pairs.values())).pvalue > 1e-3
        used = ops[ops != none]
        assert stats.chisquare(np.bincount(used, minlength=8)[1:]).pvalue > 1e-3


# ---------------------------------------------------------------- mutation


# The rarest move has probability 1/36, 1/384, 1/96 and 1/36: at least 30 expected draws each.
@pytest.mark.parametrize("space, draws", [(NB201, 2000), (DARTS, 12000), (FIXED, 4000),
                                          (DartsSpace(ops=("none", "skip_connect")), 2000)],
                         ids=["nb201", "darts", "fixed", "darts-1op"])
def test_mutation_reaches_exactly_the_neighbours_with_the_move_probabilities(space, draws):
    parent = rows(draw(space, 3))[0]
    expected = neighbours(space, parent)
    assert sum(expected.values()) == pytest.approx(1.0)
    kids = children(space, parent, 4, draws)
    assert all(is_valid(space, kid) for kid in kids)
    counts = Counter(path_key(kid) for kid in kids)
    assert set(counts) == set(expected)  # always different, never elsewhere, every neighbour
    keys = list(expected)
    observed = [counts[k] for k in keys]
    assert stats.chisquare(observed, [draws * expected[k] for k in keys]).pvalue > 1e-3


def test_mutation_counts_of_neighbours_in_closed_form():
    # NB201: 6 edges x 4 other ops; DARTS: per cell 8 used edges x 6 other ops and
    # 2 * (1 + 2 + 3) input moves; the fixed-edge cell only the op moves.
    assert len(neighbours(NB201, rows(draw(NB201, 5))[0])) == 6 * 4
    assert len(neighbours(DARTS, rows(draw(DARTS, 5))[0])) == 2 * (8 * 6 + 2 * (1 + 2 + 3))
    assert len(neighbours(FIXED, rows(draw(FIXED, 5))[0])) == 2 * 8 * 6


@pytest.mark.parametrize("space, fn, match", [
    (NB201Space(ops=()), sample_path, "no operations"),
    (DartsSpace(ops=("none",)), sample_path, "no operation other than 'none'"),
    (DartsSpace(ops=("skip_connect", "sep_conv_3x3")), sample_path, "lacks 'none'"),
    (NB201Space(ops=("skip_connect",)), mutate_path, "no neighbour"),
    (DartsSpace(edges="fixed", ops=("none", "skip_connect")), mutate_path, "no neighbour"),
])
def test_spaces_whose_ops_allow_no_path_or_no_move_raise(space, fn, match):
    key = jax.random.key(0)
    path = {name: np.zeros(edges, np.int32) for name, (edges, _) in space.arch_shapes().items()}
    with pytest.raises(ValueError, match=match):
        fn(space, key) if fn is sample_path else fn(space, key, path)


# ---------------------------------------------------------------- weights and genotypes


@pytest.mark.parametrize("space", [NB201, DARTS, FIXED], ids=["nb201", "darts", "fixed"])
def test_path_weights_are_one_hot(space):
    path = rows(draw(space, 6))[0]
    weights = path_weights(space, path)
    assert {name: w.shape for name, w in weights.items()} == space.arch_shapes()
    for name, w in weights.items():
        assert w.dtype == np.float32
        expected = np.zeros(w.shape, np.float32)
        expected[np.arange(len(path[name])), path[name]] = 1.0
        np.testing.assert_array_equal(w, expected)


def test_nb201_genotype_round_trip():
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    path = {"cell": np.array([NB201_OPS.index(op) for op in parse_arch_str(arch)], np.int32)}
    assert path_genotype(NB201, path).arch_str == arch
    for path in rows(draw(NB201, 7))[:50]:
        direct = NB201Genotype(tuple(NB201_OPS[i] for i in path["cell"]))
        assert path_genotype(NB201, path) == direct


@pytest.mark.parametrize("genotype", [DARTS_V1, DARTS_V2, PDARTS], ids=["v1", "v2", "pdarts"])
def test_darts_genotype_round_trip_of_published_cells(genotype):
    derived = path_genotype(DARTS, darts_path(DARTS, genotype))
    for cell in CELLS:
        assert sorted(derived.edges(cell)) == sorted(genotype.edges(cell))
    assert (derived.normal_concat, derived.reduce_concat) == (genotype.normal_concat,
                                                              genotype.reduce_concat)


@pytest.mark.parametrize("space", [DARTS, FIXED], ids=["darts", "fixed"])
def test_darts_genotype_round_trip_of_sampled_paths(space):
    for path in rows(draw(space, 8))[:50]:
        genotype = path_genotype(space, path)
        direct = {cell: sorted((space.ops[op], src, dst)
                               for (src, dst), op in zip(space.edge_list, path[cell])
                               if space.ops[op] != "none") for cell in CELLS}
        assert {cell: sorted(genotype.edges(cell)) for cell in CELLS} == direct
        assert path_key(darts_path(space, genotype)) == path_key(path)


def test_path_key_is_hashable_and_tells_paths_apart():
    a, b = rows(draw(DARTS, 9))[:2]
    assert hash(path_key(a)) == hash(path_key({k: list(v) for k, v in a.items()}))
    assert path_key(a) != path_key(b)
    assert path_key(a) == tuple(a["normal"]) + tuple(a["reduce"])


# ---------------------------------------------------------------- selection

SAMPLE = functools.partial(sample_path, NB201)
MUTATE = functools.partial(mutate_path, NB201)
TARGET = np.array([3, 0, 2, 4, 1, 3], np.int32)


def matches(paths):
    """The synthetic fitness: the number of edges equal to TARGET (6 only at TARGET)."""
    return np.array([np.sum(path["cell"] == TARGET) for path in paths])


def test_random_search_over_every_path_finds_the_optimum():
    result = random_search(matches, SAMPLE, 5 ** 6, seed=0)
    keys = [path_key(path) for path in result.paths]
    assert sorted(keys) == sorted(itertools.product(range(5), repeat=6))
    np.testing.assert_array_equal(result.best_path["cell"], TARGET)
    assert result.best_score == 6
    np.testing.assert_array_equal(result.scores, matches(result.paths))


def test_random_search_scores_distinct_paths_once_and_is_deterministic():
    batches = []
    result = random_search(lambda paths: batches.append(paths) or matches(paths), SAMPLE, 200, 1)
    assert len(batches) == 1 and len({path_key(p) for p in batches[0]}) == 200
    again = random_search(matches, SAMPLE, 200, 1)
    other = random_search(matches, SAMPLE, 200, 2)
    assert [path_key(p) for p in again.paths] == [path_key(p) for p in result.paths]
    assert [path_key(p) for p in other.paths] != [path_key(p) for p in result.paths]
    assert result.best_score == result.scores.max() == matches([result.best_path])[0]


def test_random_search_asking_for_more_paths_than_the_space_has_raises():
    tiny = functools.partial(sample_path, NB201Space(ops=("none", "skip_connect")))
    assert len(random_search(matches, tiny, 2 ** 6, 0).paths) == 2 ** 6
    with pytest.raises(ValueError, match="exceeds the number of paths"):
        random_search(matches, tiny, 2 ** 6 + 1, 0)


def test_regularized_evolution_finds_the_optimum():
    # From 5 matching edges the one missing move has probability 1/36 to 1/12 per cycle, so
    # 1000 cycles leave a wide margin.
    for seed in range(2):
        result = regularized_evolution(matches, SAMPLE, MUTATE, population=10, sample_size=5,
                                       cycles=1000, seed=seed)
        np.testing.assert_array_equal(result.best_path["cell"], TARGET)
        assert result.best_score == 6


def op_sum(paths):
    """A fitness on any space: the sum of the op indices."""
    return np.array([sum(int(np.sum(cells)) for cells in path.values()) for path in paths])


@pytest.mark.parametrize("space", [NB201, DARTS], ids=["nb201", "darts"])
def test_regularized_evolution_with_a_population_of_one_is_a_random_walk(space):
    result = regularized_evolution(op_sum, functools.partial(sample_path, space),
                                   functools.partial(mutate_path, space), 1, 1, 40, seed=3)
    assert len(result.paths) == 41
    for parent, child in zip(result.paths, result.paths[1:]):
        assert path_key(child) in neighbours(space, parent)


def test_regularized_evolution_history_scores_and_cache():
    batches = []

    def score(paths):
        batches.append([path_key(p) for p in paths])
        return matches(paths)

    result = regularized_evolution(score, SAMPLE, MUTATE, 10, 3, 200, seed=5)
    assert len(result.paths) == 210 and len(batches[0]) == 10
    for t in range(10, 210):  # every child is one edge away from a living member
        alive = np.stack([p["cell"] for p in result.paths[t - 10:t]])
        assert (np.sum(alive != result.paths[t]["cell"], axis=1) == 1).any()
    np.testing.assert_array_equal(result.scores, matches(result.paths))
    scored = [key for batch in batches for key in batch]
    assert sorted(scored) == sorted({path_key(p) for p in result.paths})  # each path once
    best = int(np.argmax(result.scores))
    assert result.best_score == result.scores[best]
    assert path_key(result.best_path) == path_key(result.paths[best])


def test_regularized_evolution_is_deterministic_given_the_seed():
    run = functools.partial(regularized_evolution, matches, SAMPLE, MUTATE, 10, 3, 40)
    keys = lambda result: [path_key(p) for p in result.paths]  # noqa: E731
    assert keys(run(seed=6)) == keys(run(seed=6))
    assert keys(run(seed=6)) != keys(run(seed=7))
    compiled = mutate_path._cache_size()
    run(seed=8)
    assert mutate_path._cache_size() == compiled  # no retracing
    only_population = run.func(matches, SAMPLE, MUTATE, 10, 3, 0, seed=6)
    assert keys(only_population) == keys(run(seed=6))[:10]


@pytest.mark.parametrize("kwargs, match", [
    (dict(population=0), "population must be an integer >= 1"),
    (dict(sample_size=0), "sample_size must be an integer >= 1"),
    (dict(sample_size=11), "sample_size must be <= population"),
    (dict(cycles=-1), "cycles must be an integer >= 0"),
    (dict(population=2.5), "population must be an integer"),
])
def test_regularized_evolution_argument_errors(kwargs, match):
    arguments = {**dict(population=10, sample_size=3, cycles=5, seed=0), **kwargs}
    with pytest.raises(ValueError, match=match):
        regularized_evolution(matches, SAMPLE, MUTATE, **arguments)


@pytest.mark.parametrize("num_candidates", [0, -3, True, 1.0])
def test_random_search_argument_errors(num_candidates):
    with pytest.raises(ValueError, match="num_candidates must be an integer >= 1"):
        random_search(matches, SAMPLE, num_candidates, 0)


@pytest.mark.parametrize("score, match", [
    (lambda paths: np.zeros(len(paths) + 1), "one score per path"),
    (lambda paths: np.full(len(paths), np.nan), "NaN"),
])
def test_a_bad_score_function_is_named(score, match):
    with pytest.raises(ValueError, match=match):
        random_search(score, SAMPLE, 200, 0)


# ---------------------------------------------------------------- NAS-Bench-201


def test_evolution_beats_random_search_on_nb201_validation_accuracy(nb201_table_path):
    table = NB201Table.load(nb201_table_path)
    codes = [np.ravel_multi_index([NB201_OPS.index(op) for op in parse_arch_str(arch)], (5,) * 6)
             for arch in table.arch_strs]
    accuracy = np.full(5 ** 6, -np.inf)
    accuracy[codes] = table.column("c10_val_200")

    def score(paths):
        return accuracy[np.ravel_multi_index(np.stack([p["cell"] for p in paths], 1), (5,) * 6)]

    # NAS-Bench-201's REA setting (population 10, tournament 3) and 200 evaluations each: the
    # mean over 10 seeds separates the two by several standard errors.
    evolution, random = [], []
    for seed in range(10):
        rea = regularized_evolution(score, SAMPLE, MUTATE, 10, 3, 190, seed)
        rs = random_search(score, SAMPLE, 200, seed)
        assert len(rea.paths) == len(rs.paths) == 200
        evolution.append(rea.best_score)
        random.append(rs.best_score)
    assert np.mean(evolution) >= np.mean(random)
