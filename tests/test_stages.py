"""Staged searches (P-DARTS, TND-NAS): DARTS spaces with per-cell and per-edge candidates, the
stage plan and its errors, the configs of both methods, and a staged search end to end: stopped
in its second stage and resumed bit-exact, its stages rebuilt from the workdir, its
any-in-degree cell retrained (spec 000, sections 2, 7 and 8)."""

import json
import os

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxnas.engine import build, load_search, search, train
from jaxnas.engine.stages import check_shrinking, shrink_stage, stage_plan
from jaxnas.engine.train_loop import network_size
from jaxnas.spaces import DartsSpace, load_genotype
from jaxnas.spaces.costs import cost_tables, restrict
from jaxnas.spaces.darts import reduction_layers
from jaxnas.spaces.ops import TND_NORMAL_OPS, TND_REDUCE_OPS
from jaxnas.strategies.shrinking import single_op_genotype

# Parameter-free or cheap candidates keep the compiled programs small.
NORMAL = ("none", "skip_connect", "conv_1x1", "avg_pool_3x3")
REDUCE = ("none", "skip_connect", "max_pool_3x3")


# ---------------------------------------------------------------- spaces with own candidates


def _edge_ops(seed, num_edges=14):
    """Random per-edge candidates: 2 of NORMAL and 2 of REDUCE on every edge, in order."""
    rng = np.random.default_rng(seed)
    pick = lambda ops: tuple(ops[i] for i in sorted(rng.choice(len(ops), 2, replace=False)))  # noqa: E731
    return {"normal": tuple(pick(NORMAL) for _ in range(num_edges)),
            "reduce": tuple(pick(REDUCE) for _ in range(num_edges))}


def test_a_space_with_reduce_ops_holds_them_in_its_reduction_cells():
    space = DartsSpace(C=4, layers=3, ops=NORMAL, reduce_ops=REDUCE)
    assert space.arch_shapes() == {"normal": (14, 4), "reduce": (14, 3)}
    weights = {k: jnp.ones(s) / s[1] for k, s in space.arch_shapes().items()}
    params = space.supernet(10).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), weights)["params"]
    # cell0 is normal, cell1 reduces: their edges hold their own candidates (those with
    # parameters: conv_1x1 in the normal cell, the stride-2 skip's FactorizedReduce).
    assert set(params["cell0"]["dag"]["edge_2_0"]) == {"conv_1x1"}
    assert set(params["cell1"]["dag"]["edge_2_0"]) == {"skip_connect"}
    assert DartsSpace(C=4, layers=3, ops=NORMAL).uniform and not space.uniform


def test_per_edge_candidates_build_derive_and_project_by_each_edges_names():
    edge_ops = _edge_ops(0)
    space = DartsSpace(C=4, layers=3, edge_ops=edge_ops)
    assert space.cell_ops() == edge_ops and space.arch_shapes() == {"normal": (14, 2),
                                                                    "reduce": (14, 2)}
    assert hash(space) == hash(DartsSpace(C=4, layers=3, edge_ops=dict(edge_ops)))
    weights = {k: jax.random.uniform(jax.random.key(i), s)
               for i, (k, s) in enumerate(sorted(space.arch_shapes().items()))}
    params = space.supernet(10).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), weights)["params"]
    for e, (src, dst) in enumerate(space.edge_list):
        held = set(params["cell0"]["dag"].get(f"edge_{dst}_{src}", {}))
        assert held == {"conv_1x1"} & set(edge_ops["normal"][e])
    genotype = space.derive(weights)
    for kind in ("normal", "reduce"):  # each gene: the edge's strongest candidate but none
        w = np.asarray(weights[kind])
        for op, src, dst in genotype.edges(kind):
            e = space.edge_list.index((src, dst))
            names = edge_ops[kind][e]
            best = max((k for k, n in enumerate(names) if n != "none"), key=lambda k: w[e, k])
            assert op == names[best]
    projected = space.project(weights)
    for kind in ("normal", "reduce"):
        z = np.asarray(projected[kind])
        none = np.array([[n == "none" for n in names] for names in edge_ops[kind]])
        assert not z[none].any()  # never a none
        assert z.sum() == len(genotype.edges(kind))


def test_per_edge_candidate_errors():
    with pytest.raises(ValueError, match="needs 14 edges holding the same number"):
        DartsSpace(edge_ops={"normal": (NORMAL,) * 13, "reduce": (REDUCE,) * 14})
    with pytest.raises(ValueError, match="needs the cell kinds"):
        DartsSpace(edge_ops={"normal": (NORMAL,) * 14})
    with pytest.raises(ValueError, match="Unknown operation 'conv_9x9'"):
        DartsSpace(reduce_ops=("none", "conv_9x9"))


def test_cost_tables_of_per_edge_candidates_price_the_real_network():
    edge_ops = _edge_ops(1)
    space = DartsSpace(C=8, layers=5, edge_ops=edge_ops)
    tables = cost_tables(space, 10, (32, 32, 3))
    full = DartsSpace(C=8, layers=5, ops=NORMAL + REDUCE[2:])
    chex.assert_trees_all_equal(tables["params"], restrict(
        cost_tables(full, 10, (32, 32, 3))["params"], full.ops, edge_ops))
    rng = np.random.default_rng(2)
    for _ in range(2):
        path = {k: rng.integers(0, 2, 14) for k in ("normal", "reduce")}
        genotype = single_op_genotype({k: tuple((edge_ops[k][e][i],) for e, i in enumerate(p))
                                       for k, p in path.items()})
        assert tables["params"].cost(path) == network_size(space.network(genotype, 10),
                                                           (32, 32, 3))[0]


def test_the_tnd_nas_stages_reduce_at_the_papers_cells():
    assert [reduction_layers(n) for n in (5, 12, 20)] == [(1, 3), (4, 8), (6, 13)]


# ---------------------------------------------------------------- the plan and the configs


def _stages(**fields):
    return ml_collections.ConfigDict({"stages": fields})


def test_stage_plan_reads_the_stages_and_their_values():
    assert stage_plan(ml_collections.ConfigDict({"stages": {}})) is None
    plan = stage_plan(_stages(drop={"normal": (4, 3, 2), "reduce": (2, 2, 1)},
                              space={"layers": (5, 12, 20)},
                              strategy={"param_target": (4.4e6, 3.2e6, 1.8e6)}))
    assert plan.count == 3 and plan.final == "single"
    assert check_shrinking(plan, {"normal": (14, 10), "reduce": (14, 6)}) == {
        "normal": (10, 6, 3, 1), "reduce": (6, 4, 2, 1)}


@pytest.mark.parametrize("fields, shapes, match", [
    (dict(drop={"normal": (4, 3), "reduce": (2, 2)}), None, "not 1"),
    (dict(drop={"normal": (4, 3, 2), "reduce": (2, 2, 1)}, space={"layers": (5, 12)}), None,
     "one value per stage"),
    (dict(drop={"normal": (4, 3, 2), "reduce": (2, 2, 1)}, final="best"), None, "'single'"),
    (dict(drop={"normal": (4, 3, 2), "reduce": (2, 2, 1)}, epochs=(1, 2, 3)), None,
     "unknown field"),
    (dict(drop={"cell": (4,)}), None, "cell kinds"),
    (dict(drop={"normal": (10, 0, 0), "reduce": (2, 2, 1)}), None, "drops 10 operations"),
])
def test_stage_plan_errors(fields, shapes, match):
    with pytest.raises(ValueError, match=match):
        plan = stage_plan(_stages(**fields))
        check_shrinking(plan, shapes or {"normal": (14, 10), "reduce": (14, 6)})


def test_the_tnd_nas_and_pdarts_configs_build_every_stage():
    from experiments.configs import pdarts_cnn, tnd_nas_cnn

    config = tnd_nas_cnn.get_config()
    config.dataset = "digits"
    plan = stage_plan(config)
    assert plan.final == "single"
    edge_ops = None
    for k, (layers, cells, target) in enumerate(zip((5, 12, 20), ((10, 6), (6, 4), (3, 2)),
                                                    (4.4e6, 3.2e6, 1.8e6))):
        setup = build(plan.config(config, k, edge_ops))
        assert setup.space.layers == layers and setup.space.C == 24
        assert setup.space.arch_shapes() == {"normal": (14, cells[0]), "reduce": (14, cells[1])}
        assert setup.strategy.reward.terms[0].target == target
        assert setup.strategy.reward.terms[0].exponent == -0.6
        logits = {kind: np.arange(shape[1], dtype=float)[None].repeat(14, 0)
                  for kind, shape in setup.space.arch_shapes().items()}
        edge_ops = shrink_stage(plan, k, setup.space.cell_ops(), logits)
    # The lowest-indexed candidates went first: the last of each list is left.
    assert edge_ops == {"normal": ((TND_NORMAL_OPS[-1],),) * 14,
                        "reduce": ((TND_REDUCE_OPS[-1],),) * 14}
    c100 = tnd_nas_cnn.get_config("cifar100")
    assert c100.stages.strategy.beta == (-0.75, -0.85, -0.85)
    assert tnd_nas_cnn.get_config("accuracy").strategy.beta == 0.0
    pdarts = pdarts_cnn.get_config()
    pdarts.dataset = "digits"
    plan = stage_plan(pdarts)
    assert plan.final == "derive" and plan.space["layers"] == (5, 11, 17)
    setup = build(plan.config(pdarts, 0, None))
    assert check_shrinking(plan, setup.space.arch_shapes())["normal"] == (8, 5, 3, 3)
    assert setup.strategy.warmup_epochs == 10


# ---------------------------------------------------------------- a staged search end to end


def _staged_config(final="single", max_steps=0):
    from experiments.configs import pdarts_cnn

    c = pdarts_cnn.get_config()
    c.dataset = "digits"
    c.batch_size = 16
    c.space.C = 4
    c.space.ops = NORMAL
    c.space.reduce_ops = REDUCE
    c.epochs = 2
    c.epoch_steps = 3
    c.strategy.warmup_epochs = 1
    c.optim_alpha.lr = 0.05
    c.stages = ml_collections.ConfigDict(dict(
        drop=dict(normal=(1, 2), reduce=(1, 1)), space=dict(layers=(3, 4)), final=final))
    c.max_steps = max_steps
    c.log_every = 2
    c.checkpoint_every = 2
    return c


@pytest.mark.slow
def test_a_staged_search_resumes_in_its_second_stage_bit_exact(tmp_path):
    full = search(_staged_config(), str(tmp_path / "full"))
    part = str(tmp_path / "part")
    search(_staged_config(max_steps=9), part)  # stage 0's 6 steps, then 3 of stage 1's
    assert os.path.exists(os.path.join(part, "stage0", "kept_ops.json"))
    assert not os.path.exists(os.path.join(part, "stage1", "kept_ops.json"))
    assert not os.path.exists(os.path.join(part, "genotype.json"))
    resumed = search(_staged_config(), part)
    chex.assert_trees_all_equal(jax.device_get(full.state), jax.device_get(resumed.state))
    assert full.steps == resumed.steps == 12
    for name in ("genotype.json", "stage0/kept_ops.json", "stage1/kept_ops.json"):
        assert open(tmp_path / "full" / name).read() == open(os.path.join(part, name)).read()
    logged = {r["step"]: r for r in map(json.loads, open(os.path.join(part, "stage1",
                                                                       "metrics.jsonl")))}
    for line in open(tmp_path / "full" / "stage1" / "metrics.jsonl"):  # + the stop's step 3
        assert logged[json.loads(line)["step"]] == json.loads(line)

    # Stage 0 trained the weights alone in its first epoch: alpha moved only after it.
    records = [json.loads(line) for line in open(tmp_path / "full" / "stage0" / "metrics.jsonl")]
    assert [r["arch/alpha_updates"] for r in records] == [0, 1, 3]
    # Stage 1 is rebuilt from its workdir alone: its supernet holds what stage 0 kept.
    kept = json.load(open(tmp_path / "full" / "stage0" / "kept_ops.json"))["kept"]
    setup, state = load_search(str(tmp_path / "full" / "stage1"))
    assert setup.space.layers == 4 and setup.space.arch_shapes() == {"normal": (14, 3),
                                                                     "reduce": (14, 2)}
    assert {k: [list(ops) for ops in v] for k, v in setup.space.cell_ops().items()} == kept
    chex.assert_trees_all_equal(jax.device_get(state.params), jax.device_get(full.state.params))
    # The final cell: one operation per edge, none edges removed, any number of inputs.
    saved = json.load(open(tmp_path / "full" / "genotype.json"))
    final = json.load(open(tmp_path / "full" / "stage1" / "kept_ops.json"))["kept"]
    assert all(len(ops) == 1 for per_edge in final.values() for ops in per_edge)
    expected = single_op_genotype(final)
    assert load_genotype(str(tmp_path / "full" / "genotype.json")) == expected == full.genotype
    assert [s["stage"] for s in saved["stages"]] == [0, 1] and saved["step"] == 12
    # ... which the discrete network builds and retrains.
    from experiments.configs import train_quickstart

    tc = train_quickstart.get_config()
    tc.update_from_flattened_dict({"space.C": 4, "epochs": 1, "max_steps": 2, "eval_every": 0,
                                   "batch_size": 16})
    trained = train(tc, str(tmp_path / "full" / "genotype.json"), str(tmp_path / "train"))
    assert int(trained.state.step) == 2 and 0 <= trained.report["test_accuracy"] <= 1
    # P-DARTS's ending instead: the last stage's own derivation (two inputs per node), from the
    # finished stages without running anything again.
    derived = search(_staged_config(final="derive"), str(tmp_path / "full"),
                     allow_changes=("stages.final",))
    last = load_genotype(str(tmp_path / "full" / "stage1" / "genotype.json"))
    assert derived.genotype == last == load_genotype(str(tmp_path / "full" / "genotype.json"))
    assert all(len(last.edges(k)) == 8 for k in ("normal", "reduce"))


def test_single_path_searches_refuse_edges_with_their_own_candidates():
    from jaxnas.spaces.paths import sample_path

    space = DartsSpace(C=4, layers=3, ops=NORMAL, reduce_ops=REDUCE)
    with pytest.raises(ValueError, match="same candidates on every edge"):
        sample_path(space, jax.random.key(0))
