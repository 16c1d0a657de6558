"""The TND-NAS strategy's step against a dense reference: the M sampled cells scored by the mixed
supernet with one-hot weights, priced by their real evaluation networks, rewarded by Eq. 9 and
moved by one REINFORCE update; the logits frozen in the weight-only epochs; bad options
(spec 000, sections 2, 7 and 8)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.data.augment import normalize
from jaxnas.engine import build
from jaxnas.engine.search_loop import init_state
from jaxnas.engine.train_loop import network_size
from jaxnas.spaces import DartsSpace, NB201Space
from jaxnas.strategies import get_strategy, reinforce, step_key
from jaxnas.strategies.shrinking import single_op_genotype

NORMAL = ("none", "skip_connect", "conv_1x1", "avg_pool_3x3")
REDUCE = ("none", "skip_connect", "max_pool_3x3")
P, BETA = 2e4, -0.6


@pytest.fixture(scope="module")
def tnd():
    """``(setup, state, batches, step)``: a tiny TND-NAS search on the digits (3 cells, C=4),
    its step jitted once, one epoch of 2 steps of weight training before the logits move."""
    from experiments.configs import tnd_nas_cnn

    c = tnd_nas_cnn.get_config()
    c.stages = {}
    c.update_from_flattened_dict({
        "dataset": "digits", "batch_size": 16, "epochs": 3, "epoch_steps": 2, "space.C": 4,
        "space.layers": 3, "space.ops": NORMAL, "space.reduce_ops": REDUCE,
        "strategy.num_samples": 4, "strategy.warmup_epochs": 1, "strategy.eval_C": 4,
        "strategy.eval_layers": 3, "strategy.param_target": P, "strategy.beta": BETA})
    setup = build(c)
    state = init_state(c.seed, setup.strategy, setup.space, setup.problem,
                       setup.dataset.image_shape)
    data = setup.dataset
    rows = lambda stream: setup.streams[stream].batch(0)[None]  # noqa: E731  [1, B]
    batches = {s: {"image": data.x_train[rows(s)], "label": data.y_train[rows(s)]}
               for s in ("train", "val")}
    return setup, state, batches, jax.jit(lambda s, b: setup.strategy.step(s, b, setup.problem))


def test_a_step_in_the_warmup_epochs_trains_the_weights_alone(tnd):
    setup, state, batches, step = tnd
    new, metrics = step(state, batches)
    assert int(new.step) == 1 and int(new.arch.updates) == 0
    jax.tree.map(np.testing.assert_array_equal, new.arch.policy, state.arch.policy)
    assert metrics["reward_mean"] == 0 and metrics["arch/updates"] == 0
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.params, state.params)
    assert any(jax.tree.leaves(moved))


def test_an_architecture_step_equals_the_dense_reference(tnd):
    setup, state, batches, step = tnd
    state = state.replace(step=jnp.asarray(2, jnp.int32))  # epoch 1: the logits move
    new, metrics = step(state, batches)
    strategy, problem, space = setup.strategy, setup.problem, setup.space
    logits = state.arch.policy.logits
    paths = reinforce.sample_paths(step_key(state, 2), logits, 4)
    # Each sampled cell: the mixed supernet with its one-hot weights, batch norm on the batch.
    x = normalize(batches["val"]["image"][0], problem.mean, problem.std)
    labels = np.asarray(batches["val"]["label"][0])
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    evaluation = DartsSpace(C=4, layers=3, ops=NORMAL, reduce_ops=REDUCE)
    accuracy, params = [], []
    forward = jax.jit(lambda onehot: problem.net.apply(  # one program, not op by op
        variables, x, onehot, train=True, mutable=["batch_stats"])[0])
    for m in range(4):
        path = {k: np.asarray(p[m]) for k, p in paths.items()}
        onehot = {k: jax.nn.one_hot(p, logits[k].shape[-1]) for k, p in path.items()}
        out = forward(onehot)
        accuracy.append(np.mean(np.argmax(out, -1) == labels))
        cell_ops = space.cell_ops()
        genotype = single_op_genotype({k: tuple((cell_ops[k][e][i],) for e, i in enumerate(p))
                                       for k, p in path.items()})
        params.append(network_size(evaluation.network(genotype, 10),
                                   setup.dataset.image_shape)[0])
    accuracy, params = np.array(accuracy), np.array(params, float)
    rewards = accuracy * (params / P) ** BETA  # Eq. 9
    expected, _ = reinforce.reinforce_update(state.arch.policy, paths, rewards, tx=strategy.rule)
    for kind in logits:
        np.testing.assert_allclose(new.arch.policy.logits[kind], expected.logits[kind],
                                   rtol=1e-6, atol=1e-7)
    assert int(new.arch.updates) == 1
    np.testing.assert_allclose(metrics["reward_mean"], rewards.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["params_mean"], params.mean() / 1e6, rtol=1e-6)
    np.testing.assert_allclose(metrics["sample_accuracy_max"], accuracy.max())
    np.testing.assert_allclose(metrics["baseline"], rewards.mean(), rtol=1e-5)  # first update
    # Algorithm 2 moves the logits (i), then trains the weights with the moved ones (ii).
    weights = strategy.arch_weights(new.arch)
    xt = problem.images(step_key(state, 0), batches["train"]["image"][0])
    result = jax.jit(problem.weight_step)(state.params, state.batch_stats, state.opt_w, weights,
                                          xt, batches["train"]["label"][0], step_key(state, 3))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 new.params, result.params)


@pytest.mark.parametrize("options, match", [
    ({"beta": 0.3}, "penalties, <= 0"),
    ({"num_samples": 0}, "num_samples must be an integer >= 1"),
    ({"param_target": 0.0}, "must be > 0"),
    ({"macs_weight": 1.0}, r"macs_weight .* \[0, 1\)"),
    ({"baseline": "mean"}, "baseline must be one of"),
    ({"baseline_decay": 1.5}, r"baseline_decay must be in \(0, 1\]"),
])
def test_tnd_option_errors(options, match):
    with pytest.raises(ValueError, match=match):
        get_strategy("tnd", DartsSpace(), **options)


def test_tnd_searches_the_darts_space_only():
    with pytest.raises(ValueError, match="searches the DARTS space"):
        get_strategy("tnd", NB201Space())


def test_eq10_mixes_the_multiply_adds_in():
    strategy = get_strategy("tnd", DartsSpace(), macs_weight=0.25, macs_target=1e8,
                            macs_exponent=-0.5)
    costs = {"params": jnp.asarray(8.8e6), "macs": jnp.asarray(4e8)}
    assert float(strategy.reward(0.5, costs)) == pytest.approx(
        0.5 * (0.75 * 2.0 ** -0.6 + 0.25 * 4.0 ** -0.5), rel=1e-6)


def test_the_rewards_figure_starts_at_the_first_architecture_step(tmp_path):
    import json

    strategy = get_strategy("tnd", DartsSpace())
    metrics = tmp_path / "metrics.jsonl"
    fields = ("reward_mean", "reward_max", "params_mean", "sample_accuracy_max",
              "argmax_accuracy")
    warmup = [{"step": s, "arch/updates": 0, **dict.fromkeys(fields, 0.0)} for s in (1, 2)]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in warmup))
    assert strategy.write_figures(str(metrics), str(tmp_path)) == []  # nothing moved yet
    moved = [{"step": s, "arch/updates": s - 2, **dict.fromkeys(fields, 0.1 * s)} for s in (3, 4)]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in warmup + moved))
    assert strategy.write_figures(str(metrics), str(tmp_path)) == [str(tmp_path / "rewards.png")]
    assert (tmp_path / "rewards.png").stat().st_size > 1000


def test_the_step_traces_again_in_a_new_program(tnd):
    # The cost tables are cached across traces (a resumed search, a second search in the same
    # process): they must be concrete arrays, not the first trace's tracers.
    setup, state, batches, _ = tnd
    for _ in range(2):
        shapes = jax.eval_shape(lambda s, b: setup.strategy.step(s, b, setup.problem), state,
                                batches)
        assert shapes[0].step.shape == ()
