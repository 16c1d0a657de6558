"""Constrained DARTS (spec 003, section 7): the projection Pi_S (optimal by brute force,
idempotent, ties), the CRB activation and mask, the CS10 and FIMT schedules (FIMT's period of 11
with a constant statistic), the split fraction, the proximity penalty, and the strategy in a
search: resume, metrics, the schedule figure and bad options."""

import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas.data import search_split
from jaxnas.engine import search
from jaxnas.spaces import get_space
from jaxnas.spaces.projection import project_cell
from jaxnas.strategies import (FIMT, ClippedReLU, Constant, get_strategy, split_fraction)
from jaxnas.strategies import constrained
from jaxnas.strategies.constrained import proximity

# A toy cell: inputs 0, 1; node 2 <- {0, 1}; node 3 <- {0, 1, 2}; ops (none, a, b).
TOY_EDGES = ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
TOY_ALLOWED = (False, True, True)


def _discretization_set():
    """Every z in S for the toy cell: per node 2 distinct incoming edges, one op other than
    `none` each."""
    per_node = {}
    for dst in (2, 3):
        incoming = [e for e, (_, d) in enumerate(TOY_EDGES) if d == dst]
        per_node[dst] = [{e1: o1, e2: o2} for e1, e2 in itertools.combinations(incoming, 2)
                         for o1 in (1, 2) for o2 in (1, 2)]
    for a, b in itertools.product(per_node[2], per_node[3]):
        z = np.zeros((5, 3))
        for e, o in {**a, **b}.items():
            z[e, o] = 1.0
        yield z


@pytest.mark.parametrize("seed", range(5))
def test_projection_is_the_nearest_point_of_the_discretization_set(seed):
    a = np.random.default_rng(seed).uniform(0, 1, (5, 3)).astype(np.float32)
    z = np.asarray(project_cell(a, TOY_EDGES, TOY_ALLOWED))
    candidates = list(_discretization_set())
    assert len(candidates) == 1 * 4 * 3 * 4  # C(2,2) * 2^2 for node 2, C(3,2) * 2^2 for node 3
    best = min(np.sum((a - c) ** 2) for c in candidates)
    assert np.sum((a - z) ** 2) == pytest.approx(best, rel=1e-6)
    assert any(np.array_equal(z, c) for c in candidates)  # z itself lies in S
    np.testing.assert_array_equal(project_cell(z, TOY_EDGES, TOY_ALLOWED), z)  # idempotent


def test_projection_of_the_darts_cell():
    space = get_space("darts", C=4, layers=3)
    rng = np.random.default_rng(3)
    weights = {k: jax.nn.softmax(jnp.asarray(rng.normal(size=(14, 8))), -1)
               for k in ("normal", "reduce")}
    z = jax.device_get(jax.jit(space.project)(weights))
    for cell in ("normal", "reduce"):
        assert set(np.unique(z[cell])) <= {0.0, 1.0}
        assert z[cell][:, 0].sum() == 0  # `none` is never chosen
        assert np.all(z[cell].sum(-1) <= 1)
        for dst in range(2, 6):
            rows = [e for e, (_, d) in enumerate(space.edge_list) if d == dst]
            assert z[cell][rows].sum() == 2  # two edges from distinct sources per node
    # The genotype of Pi_S(a) is DARTS's derivation of a (each node's two genes in source order
    # rather than by strength).
    by_node = lambda cell: [sorted(cell[i:i + 2], key=lambda g: g[1]) for i in range(0, 8, 2)]
    derived, projected = space.derive(jax.device_get(weights)), space.derive(z)
    assert by_node(projected.normal) == by_node(derived.normal)
    assert by_node(projected.reduce) == by_node(derived.reduce)
    np.testing.assert_array_equal(jax.device_get(space.project(z))["normal"], z["normal"])


def test_projection_ties_go_to_the_lowest_source_and_the_derivation_warns(caplog):
    a = np.zeros((5, 3), np.float32)
    a[4, 2] = 0.7  # node 3: only its edge from node 2 is alive; node 2: nothing alive
    z = np.asarray(project_cell(a, TOY_EDGES, TOY_ALLOWED))
    assert z[0, 1] == z[1, 1] == 1  # node 2: sources 0 and 1, the first allowed op
    assert z[2, 1] == 1 and z[4, 2] == 1 and z[3].sum() == 0  # node 3: node 2, then source 0
    # A search whose alpha left a node with fewer live edges says so when it derives.
    space = get_space("nb201", C=4, N=1, ops=("skip_connect", "nor_conv_3x3"))
    strategy = get_strategy("constrained", space, {"name": "adam", "weight_decay": 0.0},
                            activation="crb")
    arch = strategy.init(jax.random.PRNGKey(0), space.arch_shapes())
    arch = arch._replace(alpha={"cell": arch.alpha["cell"].at[2].set(0.0)})
    constrained._warn_once.cache_clear()  # it warns once per message and process
    with caplog.at_level("WARNING", logger="jaxnas"):
        genotype = strategy.derive(arch, space)
    assert "without a live operation (rows [2])" in caplog.text
    assert genotype.ops[2] == "skip_connect"


def test_crb_activation_init_and_gradient():
    relaxation = ClippedReLU()
    alpha = relaxation.init(jax.random.PRNGKey(0), {"normal": (14, 7), "reduce": (14, 7)})
    for a in alpha.values():
        assert np.all(np.abs(np.asarray(a) - 1 / 7) < 1e-3) and np.std(np.asarray(a)) > 1e-5
    x = jnp.array([-0.5, 0.0 - 1e-3, 0.25, 0.75, 1.0 + 1e-3, 2.0])
    weights = relaxation.weights({"cell": x})["cell"]
    np.testing.assert_allclose(weights, [0, 0, 0.25, 0.75, 1, 1])
    grad = jax.grad(lambda a: jnp.sum(relaxation.weights({"cell": a})["cell"]))(x)
    np.testing.assert_array_equal(grad, [0, 0, 1, 1, 0, 0])


def test_constant_schedule_moves_every_tenth_step():
    schedule, state = Constant(10), Constant(10).init()
    moves = [bool(schedule.decide(state, jnp.int32(t))[0]) for t in range(30)]
    assert [t for t, m in enumerate(moves) if m] == [9, 19, 29]


def _simulate(schedule, statistics):
    state, moves = schedule.init(), []
    for t, value in enumerate(statistics):
        move, state = schedule.decide(state, t)
        moves.append(bool(move))
        state = schedule.observe(state, jnp.float32(value))
    return moves, state


def test_fimt_moves_once_every_eleven_steps_with_a_constant_statistic():
    moves, _ = _simulate(FIMT(), [5.0] * 300)
    times = [t for t, m in enumerate(moves) if m]
    assert not moves[0]  # no move before the EWMA exists
    # tau0 = 1 < 5: tau must first grow past 5 (1.05^k > 5 at k = 33), then the period is 11.
    assert times[0] == 34
    assert set(np.diff(times)) == {11}


def test_fimt_moves_more_often_while_the_statistic_falls():
    # With log F falling by r per step, tau keeps pace in log space when a move fraction m
    # satisfies (1 - m) log(1.05) - 10 m log(1.05) = -r: m = (1 + r / log 1.05) / 11.
    r = np.log(100) / 599
    falling, _ = _simulate(FIMT(), np.exp(np.log(5.0) - r * np.arange(600)))
    constant, _ = _simulate(FIMT(), [5.0] * 600)
    late = slice(300, 600)
    assert sum(constant[late]) == pytest.approx(300 / 11, abs=1)
    assert sum(falling[late]) == pytest.approx(300 * (1 + r / np.log(1.05)) / 11, abs=1.5)


def test_fimt_ewma_and_threshold_by_hand():
    values = [4.0, 2.0, 8.0]
    _, state = _simulate(FIMT(ewma=0.2, tau0=1.0, growth=1.05), values)
    ewma = 4.0
    for v in values[1:]:
        ewma = 0.2 * v + 0.8 * ewma
    assert float(state.ewma) == pytest.approx(ewma) and float(state.statistic) == 8.0
    assert float(state.tau) == pytest.approx(1.05 ** 2)  # no move yet: grown twice


def test_split_fraction_and_the_search_split():
    assert split_fraction(10) == pytest.approx(0.909090909)
    train, val = search_split(50000, split_fraction(10), seed=0)
    assert len(train) == 45455 and len(val) == 4545


def test_proximity_penalty_identities():
    space = get_space("nb201", C=4, N=1)
    identity = type("Identity", (), {"weights": staticmethod(lambda alpha: alpha)})()
    rule = proximity(space, identity, rho=0.1)
    in_s = {"cell": jnp.asarray(np.eye(5)[[1, 2, 3, 4, 1, 2]], jnp.float32)}
    for progress in (0.0, 0.5):
        updates, state = rule.update(jax.tree.map(jnp.zeros_like, in_s), rule.init(in_s), in_s,
                                     progress=progress)
        assert float(state.metrics["arch/proximity_penalty"]) == 0.0
        assert float(jnp.abs(updates["cell"]).max()) == 0.0
    a = {"cell": jnp.asarray(np.random.default_rng(0).uniform(size=(6, 5)), jnp.float32)}
    zero = jax.tree.map(jnp.zeros_like, a)
    updates, _ = rule.update(zero, rule.init(a), a, progress=0.0)
    assert float(jnp.abs(updates["cell"]).max()) == 0.0  # c = 0 at the start: no effect
    updates, state = rule.update(zero, rule.init(a), a, progress=0.6)
    # The unsquared norm's gradient has norm c rho / 2 wherever a is outside S.
    assert float(jnp.linalg.norm(updates["cell"])) == pytest.approx(0.6 * 0.1 / 2, rel=1e-5)
    gap = np.asarray(a["cell"] - space.project(a)["cell"])
    assert float(state.metrics["arch/proximity_penalty"]) == pytest.approx(
        0.6 * 0.1 / 2 * np.linalg.norm(gap), rel=1e-5)


def _constrained_config(tiny_config, **strategy):
    overrides = {"strategy.name": "constrained", "space.ops": ("skip_connect", "nor_conv_1x1",
                                                               "nor_conv_3x3", "avg_pool_3x3"),
                 "optim_alpha.weight_decay": 0.0, "optim_alpha.lr": 0.02,
                 **{f"strategy.{k}": v for k, v in strategy.items()}}
    config = tiny_config(**overrides)
    config.space.node_bn = True
    config.log_every = 1
    return config


@pytest.mark.slow
def test_a_fimt_crb_admm_search_resumes_bit_exact_and_reports(tmp_path, tiny_config,
                                                              resumed_search):
    config = _constrained_config(tiny_config, activation="crb", schedule="fimt",
                                 regularizer="admm", admm_period=2, fimt_tau0=20.0)
    config.update_from_flattened_dict({"epochs": 1, "max_steps": 30, "checkpoint_every": 10})
    resumed_search(config, stop=17)
    records = [json.loads(line) for line in open(tmp_path / "full" / "metrics.jsonl")]
    updates = [r["arch/alpha_updates"] for r in records]
    assert updates == sorted(updates) and 2 <= updates[-1] < 30  # moved, but not every step
    assert all(k in records[-1] for k in ("fimt/statistic", "fimt/ewma", "fimt/tau",
                                          "arch/live_ops", "arch/admm_penalty"))
    assert records[-1]["arch/admm_penalty"] > 0
    # val_loss is that of the last architecture update, also at steps without one.
    assert all(r["val_loss"] > 0 for r in records if r["arch/alpha_updates"] > 0)
    assert os.path.exists(tmp_path / "full" / "alpha_schedule.png")
    genotype = json.load(open(tmp_path / "full" / "genotype.json"))
    assert genotype["strategy"] == "constrained" and "none" not in genotype["ops"]


def test_the_crb_mask_prunes_for_good_in_a_search(tmp_path, tiny_config):
    # A large architecture step prunes some operations within a few dozen steps.
    config = _constrained_config(tiny_config, activation="crb")
    config.update_from_flattened_dict({"optim_alpha.lr": 0.05, "max_steps": 40,
                                       "checkpoint_every": 40})
    state = search(config, str(tmp_path / "run")).state
    alpha = np.asarray(state.arch.alpha["cell"])
    get = lambda name: np.asarray(optax.tree_utils.tree_get(state.arch.rule, name)["cell"])  # noqa
    mask = get("mask")
    assert (~mask).sum() > 0 and np.all(alpha[~mask] == 0.0) and np.all(alpha[mask] > 0)
    assert np.all(get("mu")[~mask] == 0) and np.all(get("nu")[~mask] == 0)
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    live = [r["arch/live_ops"] for r in records]
    assert live == sorted(live, reverse=True) and live[-1] == mask.sum()


def test_cs10_and_proximity_in_a_search(tmp_path, tiny_config):
    config = _constrained_config(tiny_config, schedule="constant", regularizer="proximity")
    config.space.ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    config.space.node_bn = False
    config.update_from_flattened_dict({"optim_alpha.weight_decay": 1e-3, "max_steps": 25,
                                       "checkpoint_every": 25})
    search(config, str(tmp_path / "run"))
    records = {r["step"]: r for r in map(json.loads, open(tmp_path / "run" / "metrics.jsonl"))}
    assert [records[s]["arch/alpha_updates"] for s in (9, 10, 19, 20, 25)] == [0, 1, 1, 2, 2]
    assert records[25]["arch/proximity_penalty"] > 0 and records[25]["arch/live_ops"] == 24
    assert "fimt/tau" not in records[25]


@pytest.mark.parametrize("options,match", [
    ({"activation": "relu"}, "config.strategy.activation must be one of 'softmax', 'crb'"),
    ({"schedule": "cs10"}, "config.strategy.schedule must be one of"),
    ({"regularizer": "l1"}, "config.strategy.regularizer must be one of"),
    ({"rho_p": -0.1}, "config.strategy.rho_p must be a number >= 0"),
    ({"schedule": "fimt", "fimt_ewma": 0.0}, "EWMA weight must be in"),
    ({"regularizer": "admm", "admm_decay": 2.0}, r"decay must be in \[0, 1\]"),
    ({"activation": "crb"}, "CRB removes the 'none' operation"),
    ({"momentum": 0.9}, r"Unknown option\(s\) \['momentum'\] for strategy 'constrained'"),
])
def test_constrained_option_errors(options, match):
    space = get_space("nb201", C=4, N=1)
    with pytest.raises(ValueError, match=match):
        get_strategy("constrained", space, {"name": "adam", "weight_decay": 0.0}, **options)


def test_constrained_rule_errors():
    space = get_space("nb201", C=4, N=1, ops=("skip_connect", "nor_conv_3x3"))
    with pytest.raises(ValueError, match="CRB turns the alpha weight decay off"):
        get_strategy("constrained", space, {"name": "adam"}, activation="crb")
    with pytest.raises(ValueError, match="config.optim_alpha.name 'vadam' is not an update rule"):
        get_strategy("constrained", space, {"name": "vadam"})
    with pytest.raises(ValueError, match=r"Unknown field\(s\) \['beta'\] in config.optim_alpha"):
        get_strategy("constrained", space, {"name": "adam", "beta": 0.9})
    with pytest.raises(ValueError, match="lr must be a number > 0"):
        get_strategy("constrained", space, {"name": "adam", "lr": -1.0})


@pytest.mark.parametrize("variant", ["darts", "cs10", "fimt", "crb", "fimt_crb", "pr", "pr_fimt",
                                     "pr_fimt_crb", "admm", "admm_fimt", "admm_fimt_crb"])
def test_constrained_configs_are_table_1s_rows(variant):
    from experiments.configs import constrained_cnn
    from jaxnas import hypergrad as hg
    from jaxnas import transforms
    from jaxnas.engine import build
    from jaxnas.strategies import Alternating, Softmax

    config = constrained_cnn.get_config(variant)
    config.dataset = "digits"
    strategy = build(config).strategy
    parts = set(variant.split("_"))
    schedule = {"cs10": Constant(10), "fimt": FIMT(10, 0.2, 1.0, 1.05)}
    expected = next((schedule[p] for p in ("cs10", "fimt") if p in parts), Alternating())
    assert strategy.schedule == expected
    assert config.train_portion == (10 / 11 if parts & {"cs10", "fimt"} else 0.5)
    assert strategy.method(0.025) == hg.FirstOrder()
    crb = "crb" in parts
    assert strategy.relaxation == (ClippedReLU() if crb else Softmax())
    assert ("none" not in config.space.ops) == crb == config.space.node_bn
    assert (config.optim_alpha.weight_decay == 0.0) == crb
    state = strategy.rule.init(strategy.relaxation.init(jax.random.PRNGKey(0),
                                                        {"normal": (14, 7 if crb else 8),
                                                         "reduce": (14, 7 if crb else 8)}))
    assert (optax.tree_utils.tree_get(state, "mask") is not None) == crb
    penalties = set(transforms.collect_metrics(state))
    assert penalties == ({"arch/proximity_penalty"} if "pr" in parts else
                         {"arch/admm_penalty"} if "admm" in parts else set())
    assert (config.strategy.rho_p, config.strategy.rho_a, config.strategy.admm_period,
            config.strategy.admm_decay) == (0.1, 0.1, 10, 0.8)
    assert (config.epochs, config.batch_size, config.space.C, config.space.layers) == (50, 64, 16, 8)


@pytest.mark.parametrize("name,options", [("nb201", {"N": 1}), ("darts", {"layers": 3})])
def test_node_batch_norm_makes_a_cell_blind_to_the_scale_of_its_weights(name, options):
    # CRB's weights do not sum to 1 per edge; the non-affine batch norm after each node's sum
    # (training mode) removes their common scale, which a supernet without it passes through.
    from jaxnas.spaces import init_variables

    x = jax.random.normal(jax.random.PRNGKey(0), (8, 8, 8, 3))
    outputs = {}
    for node_bn in (False, True):
        space = get_space(name, C=4, node_bn=node_bn, **options)
        net = space.supernet(10)
        weights = {k: jnp.full(shape, 0.3) for k, shape in space.arch_shapes().items()}
        variables = init_variables(net, jax.random.PRNGKey(1), x[:1], weights)
        bn = [k for k in jax.tree_util.tree_leaves_with_path(variables["batch_stats"])
              if "node" in jax.tree_util.keystr(k[0])]
        assert bool(bn) == node_bn
        assert not any("node" in jax.tree_util.keystr(p)
                       for p, _ in jax.tree_util.tree_leaves_with_path(variables["params"]))
        run = lambda w: net.apply(variables, x, w, train=True, mutable=["batch_stats"])[0]  # noqa
        scaled = jax.tree.map(lambda w: 2.5 * w, weights)
        outputs[node_bn] = float(jnp.max(jnp.abs(run(weights) - run(scaled))))
    assert outputs[True] < 1e-3 < outputs[False]
