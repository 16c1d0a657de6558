"""CADAM on a frozen DARTS supernet and DDAS (issue 13, section 3): the pure pieces against
closed forms, bad options, and tiny end-to-end searches on the digits (resume bit-exact,
genotype and Pareto files)."""

import json
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas.analysis.pareto import best_retrained, fronts, highest_score
from jaxnas.rl import stagnation
from jaxnas.spaces import get_space
from jaxnas.strategies import get_strategy
from jaxnas.strategies import supernet_env as env_lib
from jaxnas.strategies.ddas import reward

DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
             "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def test_stagnation_bursts_for_exactly_patience_steps_then_resets():
    state, patience, bursts, starts = stagnation.init_stagnation(), 4, [], []
    for step in range(20):
        bursts.append(bool(state.burst > 0))  # this step's action is a burst action
        state, started = stagnation.update(state, jnp.bool_(True), patience)
        starts.append(bool(started))
    # 4 similar steps (0-3) start a burst: actions 4-7 are burst actions, the counter paused at
    # 0; then 4 more similar steps (8-11) start the next: actions 12-15.
    assert starts == [s in (3, 11, 19) for s in range(20)]
    assert bursts == [4 <= s < 8 or 12 <= s < 16 for s in range(20)]
    # A dissimilar step resets the counter: 3 similar, 1 not, 3 similar: no burst.
    state = stagnation.init_stagnation()
    for similar in (1, 1, 1, 0, 1, 1, 1):
        state, started = stagnation.update(state, jnp.bool_(similar), patience)
        assert not started
    assert int(state.count) == 3 and int(state.burst) == 0


def test_reward_eq_3_3():
    # Equal losses: half the accuracy gain over the one-shot model.
    assert float(reward(0.70, 0.50, 1.3, 1.3)) == pytest.approx(0.10)
    # (0.6 - 0.5) / 2 + (1.5 - 1.1) / 2 = 0.05 + 0.2
    assert float(reward(0.60, 0.50, 1.1, 1.5)) == pytest.approx(0.25)
    # A worse loss is penalized: (0.5 - 0.5) / 2 + (1.0 - 1.4) / 2
    assert float(reward(0.50, 0.50, 1.4, 1.0)) == pytest.approx(-0.2)


def test_action_space_maps_alg2_cells_to_paths():
    space = get_space("darts", C=2, layers=3)
    without = env_lib.ActionSpace.of(space, include_none=False)
    with_none = env_lib.ActionSpace.of(space, include_none=True)
    assert without.shape == (2, 14, 7) and with_none.shape == (2, 14, 8)
    alpha = np.zeros((2, 14, 7), np.float32)
    alpha[0, 0, 3] = alpha[0, 1, 0] = 0.9  # node 0 of the normal cell: both edges
    alpha[1, 4, 6] = 0.9  # node 1 of the reduce cell: edge 4, op 6, and the next row
    path = without.path(without.discretize(alpha))
    # Op k of the 7 is space op k + 1 (none first); edges off the cell hold none (0).
    assert path["normal"][0] == 4 and path["normal"][1] == 1
    assert path["reduce"][4] == 7
    assert all(int((codes != 0).sum()) == 8 for codes in path.values())
    one_hot = np.zeros((2, 14, 8), np.float32)
    one_hot[0, 0, 0] = 1  # an active none stays none in DDAS's 8-op action
    assert with_none.path(one_hot)["normal"][0] == 0


def test_visited_records_and_looks_up_paths():
    shapes = {"normal": (14, 8), "reduce": (14, 8)}
    visited = env_lib.init_visited(shapes, 2)
    a = {"normal": jnp.arange(14) % 8, "reduce": jnp.zeros(14, jnp.int32)}
    b = {"normal": jnp.zeros(14, jnp.int32), "reduce": jnp.arange(14) % 8}
    assert not bool(env_lib.lookup(visited, a)[0])
    visited = env_lib.record(visited, a, 0.5, 1.0, (10.0, 20.0))
    visited = env_lib.record(visited, b, 0.25, 2.0, (1.0, 2.0))
    hit, row = env_lib.lookup(visited, b)
    assert bool(hit) and int(row) == 1 and float(visited.accuracy[row]) == 0.25
    full = env_lib.record(visited, {"normal": a["reduce"], "reduce": a["reduce"]}, 1.0, 0, (0, 0))
    assert int(full.size) == 2 and not bool(env_lib.lookup(full, {"normal": a["reduce"],
                                                                  "reduce": a["reduce"]})[0])


def test_the_first_val_batches_are_collected_once_and_kept():
    @flax.struct.dataclass
    class State:
        step: jax.Array
        arch: NamedTuple

    class Arch(NamedTuple):
        eval_set: env_lib.EvalSet

    state = State(jnp.int32(0), Arch(env_lib.init_eval_set(2, (3, 1, 1, 1))))
    for step in range(4):
        val = {"image": jnp.full((1, 3, 1, 1, 1), 10 + step, jnp.uint8),
               "label": jnp.full((1, 3), step, jnp.int32)}
        state = env_lib.collect_eval_batch(state, val, 4, "warm-up").replace(step=step + 1)
    np.testing.assert_array_equal(state.arch.eval_set.label, [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(state.arch.eval_set.image[:, 0, 0, 0, 0], [10, 11])
    with pytest.raises(ValueError, match=r"eval_batches \(2\) exceeds the 1 warm-up steps"):
        env_lib.collect_eval_batch(state, val, 1, "warm-up")


def test_pareto_selectors():
    points = [{"genotype": g, "val_accuracy": acc, "flops": f, "params": p}
              for g, acc, f, p in [("a", 90, 5, 3), ("b", 80, 1, 1), ("c", 85, 6, 0.5),
                                   ("d", 90, 4, 4)]]
    found = fronts(points)
    assert found["flops"] == [1, 3]  # a has d's accuracy at a higher cost
    assert found["params"] == [2, 0]  # c cheapest; a beats d at fewer params; b dominated by c
    assert highest_score(points) == 0  # the first of the ties
    assert best_retrained(points, found["flops"], {"b": 95.0, "d": 96.0}) == 3
    with pytest.raises(ValueError, match="re-trained"):
        best_retrained(points, found["flops"], {"a": 99.0})


@pytest.mark.parametrize("name, options, match", [
    ("cadam", {"k": 0}, "k must be an integer >= 1"),
    ("cadam", {"tau": 1.5}, r"tau must be a number in \(0, 1\)"),
    ("cadam", {"tau": 0.0}, r"tau must be a number in \(0, 1\)"),
    ("cadam", {"queries": 0}, "queries"),
    ("cadam", {"bn": "eval"}, "bn"),
    ("ddas", {"variant": "4x"}, "variant"),
    ("ddas", {"tau": 1.0}, r"tau.*\(0, 1\)"),
    ("ddas", {"variant": "nl", "phases": (1, 1, 1)}, "Phase 4"),
    ("ddas", {"phases": (0, 0, 0)}, "phases"),
])
def test_bad_options_are_named(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_strategy(name, get_space("darts", C=2, layers=3), **options)


def test_nb201_space_is_refused():
    for name in ("cadam", "ddas"):
        with pytest.raises(ValueError, match="DARTS space"):
            get_strategy(name, get_space("nb201"))


def test_config_variants_are_checked():
    from experiments.configs import cadam_cnn, ddas_cnn
    with pytest.raises(ValueError, match="VARIANT"):
        ddas_cnn.get_config("5s")
    with pytest.raises(ValueError, match="tiny"):
        cadam_cnn.get_config("huge")
    full = cadam_cnn.get_config()
    assert (full.strategy.k, full.strategy.tau, full.strategy.batch_size, full.strategy.xi,
            full.strategy.max_cycles, full.strategy.warmup, full.strategy.replay,
            tuple(full.strategy.hidden)) == (500, 0.95, 64, 5e-5, 1, 3000, 5000, (256,) * 3)
    ddas = ddas_cnn.get_config("4s")
    assert (ddas.strategy.tau, ddas.strategy.gamma, ddas.strategy.replay,
            ddas.strategy.inner_steps, ddas.space.layers) == (1e-3, 0.99, 10 ** 6, 25, 6)


def _tiny(config):
    """A CPU-sized search: digits, C=2, 3 cells, and four candidates on every edge (``none``, a
    pooling with its BN, the identity, a separable convolution): the mechanics under test do not
    depend on the number of candidates, and with the eight DARTS operations (a switch branch
    each on every edge) the DDAS step took 107 s instead of 30 to compile on a 2-core CPU."""
    config.dataset = "digits"
    config.batch_size = 16
    config.space.C = 2
    config.space.layers = 3
    config.space.ops = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3")
    config.cutout = 0
    return config


@pytest.fixture(scope="module")
def cadam_config():
    from experiments.configs import cadam_cnn
    config = _tiny(cadam_cnn.get_config("tiny"))
    config.epochs, config.epoch_steps = 1, 4
    config.strategy.update(queries=6, k=3, batch_size=2, warmup=2, hidden=(8,), replay=4,
                           eval_batches=2)
    config.log_every = config.checkpoint_every = 3
    return config


@pytest.mark.slow
def test_cadam_searches_the_frozen_supernet_and_resumes_bit_exact(cadam_config,
                                                                   resumed_search, tmp_path):
    full, resumed = resumed_search(cadam_config, stop=5)  # stopped inside the queries
    state = jax.device_get(full.state)
    visited, history = state.arch.visited, state.arch.agent.history
    assert int(state.step) == 10 and int(state.arch.agent.step) == 6
    assert 1 <= int(visited.size) <= 6 and int(history.size) <= 3
    # The cache holds distinct cells, the top-K their best accuracies, sorted.
    scores = np.asarray(history.scores[:int(history.size)])
    assert np.all(np.diff(scores) <= 0)
    np.testing.assert_allclose(scores[0], 100 * visited.accuracy[:int(visited.size)].max(),
                               rtol=1e-6)
    record = json.loads((tmp_path / "full" / "genotype.json").read_text())
    assert record["strategy"] == "cadam" and "test_accuracy" in record["selection"]
    pareto = json.loads((tmp_path / "full" / "pareto.json").read_text())
    assert len(pareto["points"]) == int(visited.size)
    assert (tmp_path / "full" / "pareto_flops.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["4s"])
def test_ddas_searches_and_resumes_bit_exact(variant, resumed_search, tmp_path):
    full, _ = resumed_search(_ddas_config(variant), stop=4)  # stopped inside the search
    state = jax.device_get(full.state)
    visited = state.arch.visited
    assert int(visited.size) == 8  # one row per search step
    assert np.all(np.asarray([int((visited.paths[k][:8] != 0).sum(-1).max()) <= 8
                              for k in visited.paths]))
    pareto = json.loads((tmp_path / "full" / "pareto.json").read_text())
    best = pareto["selectors"]["highest_val_accuracy"]
    assert pareto["points"][best]["val_accuracy"] == pytest.approx(
        100 * float(visited.accuracy[:8].max()), rel=1e-6)
    for cost in ("flops", "params"):
        front = pareto["fronts"][cost]
        assert best in front or any(pareto["points"][i]["val_accuracy"] >=
                                    pareto["points"][best]["val_accuracy"] for i in front)


def _ddas_config(variant):
    from experiments.configs import ddas_cnn
    config = _tiny(ddas_cnn.get_config(f"{variant}-tiny"))
    config.strategy.update(hidden=(8,), phases=(2, 1, 5), patience=2, batch_size=2)
    return config


@pytest.mark.slow
def test_a_ddas_search_step_moves_only_the_chosen_cell():
    from jaxnas.data import data_mesh, replicated, to_global
    from jaxnas.engine.search_loop import build, make_step
    from jaxnas.spaces.single_path import op_owners
    setup = build(_ddas_config("4s"))
    mesh = data_mesh()
    state = setup.initial_state()
    state = jax.device_put(state.replace(step=jnp.asarray(setup.problem.planned_steps,
                                                          jnp.int32)), replicated(mesh))
    m, b = setup.strategy.inner_steps, setup.config.batch_size
    shape = tuple(setup.dataset.image_shape)
    x = (np.arange(m * b, dtype=np.uint8).reshape(m, b, 1, 1, 1) * 7
         + np.zeros((m, b) + shape, np.uint8))
    y = (np.arange(m * b, dtype=np.int32) % 10).reshape(m, b)
    batches = {"train": {"image": x, "label": y}, "val": {"image": x[:1], "label": y[:1]}}
    before = jax.device_get(state)
    new, metrics = make_step(setup.strategy, setup.problem, setup.per_step, mesh)(
        state, to_global(batches, mesh, 1))
    new = jax.device_get(new)
    path = new.arch.path
    assert int((path["normal"] != 0).sum()) <= 8  # Alg. 2: 8 active pairs, none selectable
    trace = lambda opt: optax.tree_utils.tree_get(opt, "trace")  # noqa: E731  momentum
    moved = {"chosen": 0, "unchosen": 0}
    for old_tree, new_tree in ((before.params, new.params),
                               (before.batch_stats, new.batch_stats),
                               (trace(before.opt_w), trace(new.opt_w))):
        owners = op_owners(setup.space, old_tree)
        for owner, old, after in zip(
                jax.tree.leaves(owners, is_leaf=lambda o: o is None or isinstance(o, tuple)),
                jax.tree.leaves(old_tree), jax.tree.leaves(new_tree)):
            if owner is not None:
                chosen = int(path[owner[0]][owner[1]]) == owner[2]
                moved["chosen" if chosen else "unchosen"] += int(not np.array_equal(old, after))
    assert moved["chosen"] > 0 and moved["unchosen"] == 0
    # The first search step explores and does not update the agent; its reward is Eq. 3.3
    # against the alpha = 1 supernet evaluated on the same (first) val batch.
    assert float(metrics["explored"]) == 1.0 and float(metrics["critic_loss"]) == 0.0
    same = jax.tree.map(np.array_equal, before.arch.agent, new.arch.agent)
    assert all(jax.tree.leaves(same))
    expected = float(reward(new.arch.visited.accuracy[0], new.arch.base_accuracy,
                            new.arch.visited.loss[0], new.arch.base_loss))
    assert float(new.arch.replay.items.reward[0]) == pytest.approx(expected, rel=1e-6)
