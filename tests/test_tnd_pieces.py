"""TND-NAS's pure pieces: the jit-able cost table against the discrete networks it prices, the
rewards of Eq. 9/10 on hand-computed values, REINFORCE against closed forms and enumeration, and
the shrinking of the operation sets (spec 000, sections 2, 7 and 8)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas.engine.train_loop import network_size
from jaxnas.spaces import PUBLISHED, DartsSpace, NB201Space
from jaxnas.spaces.costs import cost_tables, restrict
from jaxnas.spaces.ops import TND_NORMAL_OPS, TND_REDUCE_OPS
from jaxnas.spaces.paths import path_genotype
from jaxnas.strategies.reinforce import (BaselineState, init_reinforce, log_prob,
                                         reinforce_optimizer, reinforce_update, sample_paths,
                                         surrogate_loss, update_baseline)
from jaxnas.strategies.rewards import CostTerm, Reward
from jaxnas.strategies.shrinking import op_counts, shrink, single_op_genotype

# TND-NAS's candidates (spec 000, section 3), and the table's union.
NORMAL_OPS, REDUCE_OPS = TND_NORMAL_OPS, TND_REDUCE_OPS
ALL_OPS = NORMAL_OPS + REDUCE_OPS[2:]
IMAGE = (32, 32, 3)


# ---------------------------------------------------------------- cost tables


@functools.cache
def _tables(space):
    return cost_tables(space, 10, IMAGE)


def _genotype(space, path):
    """The discrete network's genotype of a one-op-per-edge path (any in-degree)."""
    if isinstance(space, NB201Space):
        return path_genotype(space, path)
    return single_op_genotype({kind: tuple((space.ops[i],) for i in np.asarray(path[kind]))
                               for kind in ("normal", "reduce")}, space.edge_list)


def _path_of(space, genotype):
    """The path of a DARTS genotype: its genes' ops, ``none`` on the other edges."""
    path = {}
    for kind in ("normal", "reduce"):
        ops = np.full(len(space.edge_list), space.ops.index("none"), np.int32)
        for op, src, dst in genotype.edges(kind):
            ops[space.edge_list.index((src, dst))] = space.ops.index(op)
        path[kind] = ops
    return path


def _random_paths(space, count, seed):
    """``count`` random paths, any op on any edge (so 0 to all inputs per node)."""
    rng = np.random.default_rng(seed)
    shapes = space.arch_shapes()
    return [{k: rng.integers(0, K, E).astype(np.int32) for k, (E, K) in shapes.items()}
            for _ in range(count)]


def _uniform_path(space, op):
    shapes = space.arch_shapes()
    return {k: np.full(E, space.ops.index(op), np.int32) for k, (E, _) in shapes.items()}


def _check_exact(space, paths):
    tables = _tables(space)
    for path in paths:
        params, macs = network_size(space.network(_genotype(space, path), 10), IMAGE)
        assert int(tables["params"].cost(path)) == params
        assert int(tables["macs"].cost(path)) == macs


@pytest.mark.parametrize("genotype, C, expected", [
    ("DARTS_V2", 36, 3_349_342),
    ("PDARTS", 36, 3_433_798),
    ("TND_NAS_CIFAR10_S", 16, 1_099_034),
    ("TND_NAS_CIFAR10_S", 24, 2_433_634),
])
def test_cost_table_matches_the_spec_fixtures(genotype, C, expected):
    space = DartsSpace(C=C, layers=20, ops=ALL_OPS)
    assert int(_tables(space)["params"].cost(_path_of(space, PUBLISHED[genotype]))) == expected


def test_cost_table_macs_of_darts_v2():
    space = DartsSpace(C=36, layers=20, ops=ALL_OPS)
    path = _path_of(space, PUBLISHED["DARTS_V2"])
    assert int(_tables(space)["macs"].cost(path)) == 528_359_040  # count_macs; Zhang's 528M


def test_cost_table_equals_the_evaluation_network_at_full_depth():
    space = DartsSpace(C=16, layers=20, ops=ALL_OPS)
    _check_exact(space, _random_paths(space, 1, seed=0))


@pytest.mark.parametrize("space", [DartsSpace(C=8, layers=5, ops=ALL_OPS),
                                   DartsSpace(C=4, layers=3, edges="fixed"),
                                   NB201Space(C=8, N=2)], ids=["darts", "fixed", "nb201"])
def test_cost_table_equals_the_discrete_network_for_random_paths(space):
    _check_exact(space, _random_paths(space, 4, seed=1) + [_uniform_path(space, "none")])


def test_cost_table_is_jit_able_batched_and_float64_exact():
    space = DartsSpace(C=36, layers=20, ops=ALL_OPS)
    largest = _uniform_path(space, "conv_3x3")
    network = space.network(_genotype(space, largest), 10)
    paths = _random_paths(space, 5, seed=2) + [largest]
    with jax.enable_x64(True):
        exact = cost_tables(space, 10, IMAGE, dtype=jnp.float64)["macs"]
        assert exact.cost(largest) == network_size(network, IMAGE)[1] > 2**31
        batched = jax.jit(exact.cost)(jax.tree.map(lambda *p: np.stack(p), *paths))
        np.testing.assert_array_equal(batched, [exact.cost(path) for path in paths])


def test_cost_table_extremes_and_none():
    table = _tables(DartsSpace(C=16, layers=20, ops=ALL_OPS))["params"]
    normal = np.asarray(table.edges["normal"])
    assert set(np.argmax(normal, axis=1)) == {ALL_OPS.index("conv_3x3")}
    assert np.all(normal[:, ALL_OPS.index("none")] == 0)
    assert np.all(normal >= 0) and np.all(np.asarray(table.edges["reduce"]) >= 0)
    # Pools and the identity have no parameters; a reduction cell's skip is a FactorizedReduce
    # on its 8 stride-2 edges only: C^2 + 2C at C = 32 and 64 (reductions at cells 6 and 13).
    reduce = np.asarray(table.edges["reduce"])
    strided = [e for e, (src, _) in enumerate(DartsSpace().edge_list) if src < 2]
    skip = reduce[:, ALL_OPS.index("skip_connect")]
    assert np.all(skip[strided] == 32 * 32 + 64 + 64 * 64 + 128)
    assert np.all(np.delete(skip, strided) == 0)
    for pool in ("max_pool_3x3", "avg_pool_3x3", "max_pool_5x5", "max_pool_7x7"):
        assert np.all(reduce[:, ALL_OPS.index(pool)] == 0)


def test_restricted_table_prices_local_indices():
    space = DartsSpace(C=8, layers=5, ops=ALL_OPS)
    table = _tables(space)["params"]
    rng = np.random.default_rng(3)
    edge_ops = {kind: tuple(tuple(rng.permutation(ALL_OPS)[:4]) for _ in range(14))
                for kind in ("normal", "reduce")}
    local = restrict(table, ALL_OPS, edge_ops)
    path = {kind: rng.integers(0, 4, 14).astype(np.int32) for kind in edge_ops}
    full = {kind: np.array([ALL_OPS.index(edge_ops[kind][e][i]) for e, i in enumerate(p)])
            for kind, p in path.items()}
    assert local.cost(path) == table.cost(full)
    with pytest.raises(ValueError, match="conv_9x9.*not in the cost table"):
        restrict(table, ALL_OPS, {**edge_ops, "normal": (("none", "conv_9x9"),) * 14})
    with pytest.raises(ValueError, match="same number on each of its 14 edges"):
        ragged = (("none",),) * 13 + (("none", "conv_3x3"),)
        restrict(table, ALL_OPS, {**edge_ops, "normal": ragged})
    with pytest.raises(ValueError, match="cell kinds"):
        restrict(table, ALL_OPS, {"normal": edge_ops["normal"]})


# ---------------------------------------------------------------- rewards


def test_eq9_on_hand_computed_values():
    reward = Reward((CostTerm("params", 4.4e6, -1.0),))
    assert reward(0.5, {"params": 8.8e6}) == pytest.approx(0.25)
    reward = Reward((CostTerm("params", 4.4e6, -0.5),))
    assert reward(0.5, {"params": 1.1e6}) == pytest.approx(1.0)
    reward = Reward((CostTerm("params", 4.4e6, -0.6),))
    assert reward(0.9, {"params": 3.3e6}) == pytest.approx(0.9 * 0.75 ** -0.6, rel=1e-6)


def test_eq10_on_hand_computed_values_and_a_equal_1_is_eq9():
    reward = Reward((CostTerm("params", 4.4e6, -1.0, 0.25), CostTerm("macs", 5e8, -1.0, 0.75)))
    # 0.8 * (0.25 * 2 + 0.75 * 0.5)
    assert reward(0.8, {"params": 2.2e6, "macs": 1e9}) == pytest.approx(0.7)
    eq10 = Reward((CostTerm("params", 3.2e6, -0.6, 1.0), CostTerm("macs", 5e8, -0.3, 0.0)))
    eq9 = Reward((CostTerm("params", 3.2e6, -0.6),))
    costs = {"params": jnp.array([1e6, 3e6, 9e6]), "macs": jnp.array([1e8, 5e8, 2e9])}
    acc = jnp.array([0.3, 0.6, 0.9])
    np.testing.assert_allclose(jax.jit(eq10)(acc, costs), eq9(acc, costs), rtol=1e-6)


def test_reward_monotonicity_and_scale():
    params = jnp.linspace(0.5e6, 10e6, 20)
    beta = -0.6
    reward = Reward((CostTerm("params", 4.4e6, beta),))
    r = reward(0.9, {"params": params})
    assert np.all(np.diff(np.asarray(r)) < 0)  # strictly decreasing in Params
    assert np.all(np.asarray(reward(0.95, {"params": params})) > np.asarray(r))
    assert reward(0.7, {"params": 4.4e6}) == pytest.approx(0.7)  # Params = P gives Acc
    assert np.all(Reward((CostTerm("params", 4.4e6, 0.0),))(0.7, {"params": params}) == 0.7)
    s = 2.5  # P -> sP multiplies R by s^-beta: the ranking is P's to keep
    scaled = Reward((CostTerm("params", s * 4.4e6, beta),))(0.9, {"params": params})
    np.testing.assert_allclose(scaled, r * s ** -beta, rtol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: CostTerm("params", 4.4e6, 0.5), "exponent must be <= 0"),
    (lambda: CostTerm("params", 0.0, -0.6), "target must be > 0"),
    (lambda: CostTerm("params", -1.0, -0.6), "target must be > 0"),
    (lambda: CostTerm("params", "4.4", -0.6), "target must be > 0"),
    (lambda: CostTerm("params", 4.4e6, float("nan")), "exponent must be <= 0"),
    (lambda: CostTerm("params", 4.4e6, -0.6, 1.5), r"weight must be in \[0, 1\]"),
    (lambda: Reward((CostTerm("params", 4.4e6, -0.6, 0.5), CostTerm("macs", 5e8, -1, 0.6))),
     "must sum to 1"),
    (lambda: Reward((CostTerm("params", 4.4e6, -0.6, 0.5),)), "must sum to 1"),
    (lambda: Reward(()), "one or more CostTerm"),
    (lambda: Reward((CostTerm("params", 1, -1, 0.5), CostTerm("params", 2, -1, 0.5))),
     "one term"),
    (lambda: Reward((CostTerm("params", 1, -1),))(0.5, {"macs": 1.0}), r"needs the cost\(s\)"),
])
def test_reward_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------- REINFORCE


def _probs(logits):
    return jax.nn.softmax(logits, axis=-1)


def test_sampling_frequencies_follow_the_softmax():
    logits = {"normal": jax.random.normal(jax.random.key(0), (14, 10)),
              "reduce": jax.random.normal(jax.random.key(1), (14, 6))}
    M = 20_000
    paths = sample_paths(jax.random.key(2), logits, M)
    again = sample_paths(jax.random.key(2), logits, M)
    for kind, x in logits.items():
        assert paths[kind].shape == (M, 14) and paths[kind].dtype == jnp.int32
        np.testing.assert_array_equal(paths[kind], again[kind])
        p = np.asarray(_probs(x))
        freq = np.asarray(jax.nn.one_hot(paths[kind], x.shape[1]).mean(0))
        assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / M))


def test_grad_log_prob_is_onehot_minus_p():
    logits = {"normal": jax.random.normal(jax.random.key(3), (14, 10)),
              "reduce": jax.random.normal(jax.random.key(4), (14, 6))}
    path = jax.tree.map(lambda x: x[0], sample_paths(jax.random.key(5), logits, 1))
    grads = jax.grad(log_prob)(logits, path)
    for kind, x in logits.items():
        np.testing.assert_allclose(grads[kind],
                                   jax.nn.one_hot(path[kind], x.shape[1]) - _probs(x), atol=1e-6)
    expected = sum(float(jnp.sum(jax.nn.log_softmax(x)[jnp.arange(14), path[k]]))
                   for k, x in logits.items())
    assert float(log_prob(logits, path)) == pytest.approx(expected, rel=1e-6)


def test_surrogate_gradient_is_the_score_function_estimate():
    logits = {"cell": jax.random.normal(jax.random.key(6), (6, 5))}
    paths = sample_paths(jax.random.key(7), logits, 8)
    adv = jax.random.normal(jax.random.key(8), (8,))
    grads = jax.grad(surrogate_loss)(logits, paths, adv)
    onehot = jax.nn.one_hot(paths["cell"], 5)
    expected = -jnp.mean(adv[:, None, None] * (onehot - _probs(logits["cell"])), axis=0)
    np.testing.assert_allclose(grads["cell"], expected, atol=1e-6)


# Toy bandit: 2 edges x 3 ops, a fixed reward per path.
BANDIT_R = np.array([[0.1, 0.5, 0.2], [0.9, 0.3, 0.4], [0.0, 0.7, 1.0]], np.float32)
BANDIT_LOGITS = {"cell": jnp.array([[0.3, -0.5, 0.1], [0.0, 0.8, -0.4]])}


def _true_gradient():
    def expected_reward(logits):
        p = _probs(logits["cell"])
        return jnp.sum(p[0][:, None] * p[1][None, :] * BANDIT_R)
    return jax.grad(expected_reward)(BANDIT_LOGITS)["cell"]


def test_reinforce_is_unbiased_by_enumeration():
    paths = {"cell": jnp.array([(i, j) for i in range(3) for j in range(3)], jnp.int32)}
    rewards = jnp.asarray(BANDIT_R.reshape(-1))
    weights = jnp.exp(log_prob(BANDIT_LOGITS, paths))  # pi(g)
    assert float(weights.sum()) == pytest.approx(1.0, rel=1e-6)
    for b in (0.0, 0.45):
        # E[-grad surrogate] = sum_g pi(g) (R(g) - b) grad log pi(g); M * pi(g) weights a mean.
        estimate = jax.grad(surrogate_loss)(BANDIT_LOGITS, paths, 9 * weights * (rewards - b))
        np.testing.assert_allclose(-estimate["cell"], _true_gradient(), atol=1e-6)


def test_reinforce_monte_carlo_approaches_the_true_gradient():
    paths = sample_paths(jax.random.key(9), BANDIT_LOGITS, 50_000)
    rewards = jnp.asarray(BANDIT_R)[paths["cell"][:, 0], paths["cell"][:, 1]]
    for b in (0.0, 0.45):
        estimate = jax.grad(surrogate_loss)(BANDIT_LOGITS, paths, rewards - b)
        np.testing.assert_allclose(-estimate["cell"], _true_gradient(), atol=0.01)


def test_ema_baseline():
    state = BaselineState(jnp.zeros(()), jnp.zeros((), jnp.int32))
    state = update_baseline(state, jnp.float32(0.3), 0.95)
    assert float(state.value) == pytest.approx(0.3) and int(state.count) == 1
    state = update_baseline(state, jnp.float32(0.5), 0.95)
    assert float(state.value) == pytest.approx(0.3 + 0.95 * 0.2) and int(state.count) == 2


def _torch_reference(logits, steps, lr, wd, b1=0.5, b2=0.999, clip=5.0, step=0.95,
                     decay_first=False):
    """Hand-written: the closed-form gradient with the moving-average baseline, clipped to norm
    ``clip``, plus ``wd * logits``, then Adam with bias correction (PyTorch's order;
    ``decay_first``: the decay added before clipping instead)."""
    x = np.asarray(logits, np.float64)
    m = v = np.zeros_like(x)
    b = None
    for t, (paths, rewards) in enumerate(steps, start=1):
        b = rewards.mean() if b is None else b + step * (rewards.mean() - b)
        p = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
        onehot = np.eye(x.shape[1])[paths]
        g = -np.mean((rewards - b)[:, None, None] * (onehot - p), axis=0)
        if decay_first:
            g = g + wd * x
        g = g * min(1.0, clip / np.linalg.norm(g))
        if not decay_first:
            g = g + wd * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + 1e-8)
    return x


@pytest.mark.parametrize("optim_alpha", [None, {"lr": 0.05, "weight_decay": 0.3}])
def test_reinforce_update_is_clipped_adam_with_weight_decay(optim_alpha):
    logits = {"cell": jnp.array([[1.5, -1.0, 0.5], [0.2, 2.0, -1.0]])}
    tx = reinforce_optimizer(optim_alpha)
    update = jax.jit(functools.partial(reinforce_update, tx=tx, baseline_step=0.95))
    state = init_reinforce(logits, tx)
    steps = []
    for i in range(3):
        paths = sample_paths(jax.random.key(10 + i), state.logits, 10)
        rewards = 1000.0 * jax.random.uniform(jax.random.key(20 + i), (10,))
        state, info = update(state, paths, rewards)
        steps.append((np.asarray(paths["cell"]), np.asarray(rewards, np.float64)))
        assert float(info["grad_norm"]) > 5  # clipping is active
    assert update._cache_size() == 1
    assert int(state.baseline.count) == 3
    options = {"lr": 6e-3, "wd": 1e-3}
    if optim_alpha:
        options = {"lr": optim_alpha["lr"], "wd": optim_alpha["weight_decay"]}
    reference = _torch_reference(logits["cell"], steps, **options)
    np.testing.assert_allclose(state.logits["cell"], reference, rtol=1e-5, atol=1e-6)
    if optim_alpha:  # the test can tell the decay applied before clipping, or none
        for wrong in (_torch_reference(logits["cell"], steps, **options, decay_first=True),
                      _torch_reference(logits["cell"], steps, lr=options["lr"], wd=0.0)):
            assert np.max(np.abs(wrong - reference)) > 1e-3


def test_reinforce_update_without_baseline():
    logits = {"cell": jnp.zeros((2, 3))}
    tx = optax.sgd(1.0)
    paths = {"cell": jnp.array([[0, 1], [2, 2]], jnp.int32)}
    rewards = jnp.array([1.0, 3.0])
    state, info = reinforce_update(init_reinforce(logits, tx), paths, rewards, tx=tx,
                                   baseline_step=None)
    assert float(info["baseline"]) == 0.0 and int(state.baseline.count) == 0
    expected = jnp.mean(rewards[:, None, None] * (jax.nn.one_hot(paths["cell"], 3) - 1 / 3), 0)
    np.testing.assert_allclose(state.logits["cell"], expected, atol=1e-6)  # SGD ascends R


@pytest.mark.parametrize("call, match", [
    (lambda: sample_paths(jax.random.key(0), {"cell": jnp.zeros((6, 5))}, 0), "M must be"),
    (lambda: sample_paths(jax.random.key(0), {"cell": jnp.zeros((6, 5))}, 2.0), "M must be"),
    (lambda: reinforce_optimizer(clip_norm=0), "clip_norm must be"),
    (lambda: reinforce_optimizer({"lr": -1.0}), "lr must be"),
    (lambda: _update(jnp.zeros(3), baseline_step=0.95), r"rewards \[M\]"),
    (lambda: _update(jnp.zeros((2, 1)), baseline_step=0.95), r"rewards \[M\]"),
    (lambda: _update(jnp.zeros(2), baseline_step=1.5), "baseline_step must be"),
    (lambda: _update(jnp.zeros(2), baseline_step=0), "baseline_step must be"),
])
def test_reinforce_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _update(rewards, baseline_step):
    logits = {"cell": jnp.zeros((6, 5))}
    tx = reinforce_optimizer()
    paths = {"cell": jnp.zeros((2, 6), jnp.int32)}
    return reinforce_update(init_reinforce(logits, tx), paths, rewards, tx=tx,
                            baseline_step=baseline_step)


# ---------------------------------------------------------------- shrinking


def test_op_counts_of_tnd_nas():
    counts = op_counts({"normal": 10, "reduce": 6}, {"normal": (4, 3, 2), "reduce": (2, 2, 1)})
    assert counts == {"normal": (10, 6, 3, 1), "reduce": (6, 4, 2, 1)}


@pytest.mark.parametrize("drops, match", [
    ({"normal": (4, 3, 1), "reduce": (2, 2, 1)}, "not 1"),
    ({"normal": (4, 3, 2), "reduce": (2, 2)}, "one drop count per stage"),
    ({"normal": (4, 6, 0), "reduce": (2, 2, 1)}, r"drops 6 operations in stage 1.*hold 6"),
    ({"normal": (-1, 8, 2), "reduce": (2, 2, 1)}, "drops -1"),
    ({"normal": (4, 3, 2)}, "cell kinds"),
])
def test_op_counts_errors(drops, match):
    with pytest.raises(ValueError, match=match):
        op_counts({"normal": 10, "reduce": 6}, drops)


def test_shrink_drops_the_lowest_and_keeps_order():
    edge_ops = {"normal": (NORMAL_OPS,) * 14, "reduce": (REDUCE_OPS,) * 14}
    drops = {"normal": (4, 3, 2), "reduce": (2, 2, 1)}
    for stage in range(3):
        logits = {kind: np.asarray(jax.random.normal(jax.random.key(30 + stage),
                                                     (14, len(ops[0]))))
                  for kind, ops in edge_ops.items()}
        n = {kind: d[stage] for kind, d in drops.items()}
        kept = shrink(edge_ops, logits, n)
        for kind, per_edge in edge_ops.items():
            K = len(per_edge[0])
            for e, ops in enumerate(per_edge):
                # Brute force: an op stays iff fewer than K - n ops have a higher logit.
                stay = tuple(op for k, op in enumerate(ops)
                             if np.sum(logits[kind][e] > logits[kind][e, k]) < K - n[kind])
                assert kept[kind][e] == stay
        edge_ops = kept
    assert all(len(ops) == 1 for per_edge in edge_ops.values() for ops in per_edge)
    genotype = single_op_genotype(edge_ops)
    assert all(op != "none" for op, _, _ in genotype.edges("normal") + genotype.edges("reduce"))


def test_shrink_ties_drop_the_earlier_operation_and_none_may_stay():
    edge_ops = {"normal": (("none", "skip_connect", "conv_3x3"),) * 14}
    logits = {"normal": np.zeros((14, 3))}
    logits["normal"][0] = [5.0, 1.0, 1.0]  # none strongest on edge 0: it stays (A23)
    kept = shrink(edge_ops, logits, {"normal": 2})
    assert kept["normal"][0] == ("none",)
    assert kept["normal"][1:] == (("conv_3x3",),) * 13


def test_shrink_errors():
    edge_ops = {"normal": (("none", "conv_3x3"),) * 14}
    with pytest.raises(ValueError, match="drops 2 operations"):
        shrink(edge_ops, {"normal": np.zeros((14, 2))}, {"normal": 2})
    with pytest.raises(ValueError, match=r"logits have shape \(14, 3\)"):
        shrink(edge_ops, {"normal": np.zeros((14, 3))}, {"normal": 1})


def test_single_op_genotype_has_any_in_degree():
    ops = ["none"] * 14
    ops[5:9] = ["conv_3x3", "skip_connect", "sep_conv_3x3", "conv_1x1"]  # node 4: all 4 inputs
    normal = tuple((op,) for op in ops)  # nodes 2, 3, 5: no input
    genotype = single_op_genotype({"normal": normal, "reduce": (("max_pool_3x3",),) * 14})
    assert genotype.edges("normal") == (("conv_3x3", 0, 4), ("skip_connect", 1, 4),
                                         ("sep_conv_3x3", 2, 4), ("conv_1x1", 3, 4))
    assert len(genotype.edges("reduce")) == 14
    with pytest.raises(ValueError, match="exactly one operation"):
        single_op_genotype({"normal": (("none", "conv_3x3"),) * 14, "reduce": normal})
