"""The second-order search strategies: one step against its composition by hand (on a toy
supernet, so that the second-order programs compile in seconds), option wiring, and resume of
the iDARTS search (T weight steps per step) on the tiny NB201 supernet."""

import dataclasses
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas import hypergrad as hg
from jaxnas.engine import search
from jaxnas.engine.optim import cosine_by_epoch, weight_optimizer
from jaxnas.engine.search_loop import init_state
from jaxnas.spaces import ops
from jaxnas.strategies import SearchProblem, get_strategy, update_rule


class ToySupernet(nn.Module):
    """x [B, 4, 4, 1] -> dense -> BN -> mixed activation over 3 candidates -> dense [B, 3]."""

    @nn.compact
    def __call__(self, x, arch_weights, train=False):
        h = nn.Dense(8)(x.reshape(x.shape[0], -1))
        h = nn.BatchNorm(use_running_average=not train)(h)
        w = arch_weights["cell"][0]
        h = w[0] * jnp.tanh(h) + w[1] * nn.relu(h) + w[2] * h
        return nn.Dense(3)(h)


class ToySpace:
    def arch_shapes(self):
        return {"cell": (1, 3)}


def _toy_problem(config):
    schedule = cosine_by_epoch(0.1, 0.01, 4, 3)
    return SearchProblem(ToySupernet(), (0.5,), (0.25,), False, 0,
                         weight_optimizer(config.optim_w, schedule), schedule)


def _toy_batches(inner_steps, seed=0):
    rng = np.random.default_rng(seed)
    image = lambda *shape: rng.integers(0, 255, shape + (4, 4, 1), dtype=np.uint8)
    label = lambda *shape: rng.integers(0, 3, shape).astype(np.int32)
    return {"train": {"image": image(inner_steps, 8), "label": label(inner_steps, 8)},
            "val": {"image": image(1, 8), "label": label(1, 8)}}


CASES = {  # strategy options, the method it must use, T, alpha first
    "darts": ({}, lambda lr: hg.FirstOrder(), 1, True),
    "darts2": ({}, lambda lr: hg.Unrolled(lr, 1), 1, True),
    "darts2_fd": ({"hvp": "finite_difference", "eps": 0.05},
                  lambda lr: hg.Unrolled(lr, 1, "finite_difference", 0.05), 1, True),
    "idarts": ({"inner_steps": 3, "neumann_terms": 2, "gamma_scale": 0.5},
               lambda lr: hg.Neumann(0.5 * lr, 2), 3, False),
    "idarts_jvp": ({"inner_steps": 2, "neumann_terms": 1, "linearize": False},
                   lambda lr: hg.Neumann(lr, 1, linearize=False), 2, False),
    "idarts_loop": ({"inner_steps": 2, "neumann_terms": 2, "neumann_loop": True},
                    lambda lr: hg.Neumann(lr, 2, loop=True), 2, False),
    "amended": ({"eta": 0.3}, lambda lr: hg.Amended(0.3), 1, True),
    "amended_wd": ({"eta": 0.3, "hessian_weight_decay": 0.01}, lambda lr: hg.Amended(0.3), 1,
                   True),
    "darts_weights_first": ({"alpha_first": False}, lambda lr: hg.FirstOrder(), 1, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_step_is_its_composition_by_hand(tiny_config, case):
    options, method, inner_steps, alpha_first = CASES[case]
    config = tiny_config()
    strategy = get_strategy(case.split("_")[0], optim_alpha=config.optim_alpha, **options)
    problem = _toy_problem(config)
    state = init_state(0, strategy, ToySpace(), problem, (4, 4, 1))
    batches = _toy_batches(inner_steps)
    assert strategy.method(0.1) == method(0.1)
    new, metrics = jax.jit(lambda s, b: strategy.step(s, b, problem))(state, batches)

    # By hand: weight steps (before alpha in iDARTS), the method's hypergradient at that point on
    # the prescribed train batch and the val batch, then Adam (with L2 decay) on alpha.
    x = lambda images: (images.astype(np.float32) / 255 - 0.5) / 0.25
    train = [(x(batches["train"]["image"][t]), batches["train"]["label"][t])
             for t in range(inner_steps)]
    val = (x(batches["val"]["image"][0]), batches["val"]["label"][0])
    params, batch_stats, opt_w = state.params, state.batch_stats, state.opt_w
    alpha = state.arch.alpha
    softmax = lambda a: {"cell": jax.nn.softmax(a["cell"], -1)}  # noqa: E731
    if not alpha_first:
        for xt, yt in train:
            params, batch_stats, opt_w = problem.weight_step(
                params, batch_stats, opt_w, softmax(alpha), xt, yt)[:3]
    wd = options.get("hessian_weight_decay", 0.0)

    def outer(w, alpha, batch):
        value, (_, acc) = problem.loss(w, batch_stats, softmax(alpha), *batch)
        return value, acc

    def inner(w, alpha, batch):  # the Hessian's weight decay: the inner loss only
        value, acc = outer(w, alpha, batch)
        l2 = sum(jnp.sum(leaf ** 2) for leaf in jax.tree.leaves(w))
        return value + 0.5 * wd * l2, acc

    grad, _ = hg.hypergradient(method(0.1), inner, outer, params, alpha,
                               train[0] if alpha_first else train[-1], val, has_aux=True)
    adam = update_rule(config.optim_alpha, ("adam",))  # Adam with L2 decay 1e-3
    updates, _ = adam.update(grad, adam.init(alpha), alpha)
    expected = optax.apply_updates(alpha, updates)
    np.testing.assert_allclose(new.arch.alpha["cell"], expected["cell"], rtol=1e-5, atol=1e-8)
    if alpha_first:  # then the weight step(s) at the new alpha
        for xt, yt in train:
            params, batch_stats, opt_w = problem.weight_step(
                params, batch_stats, opt_w, softmax(expected), xt, yt)[:3]
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The first Adam step moves each coordinate by about lr_alpha against the gradient's sign.
    grad_l2 = np.asarray(grad["cell"] + 1e-3 * alpha["cell"])
    moved = np.asarray(new.arch.alpha["cell"] - alpha["cell"])
    assert np.all(np.sign(moved) == -np.sign(grad_l2))
    assert int(new.step) == 1 and float(metrics["lr"]) == pytest.approx(0.1)
    assert int(new.arch.updates) == 1 and float(metrics["arch/alpha_updates"]) == 1


def test_second_order_hypergradients_differ_from_first_order(tiny_config):
    # A "second order" that silently fell back to first order would give the same gradient.
    problem = _toy_problem(tiny_config())
    norms = {}
    for name in ("darts", "darts2", "amended"):
        strategy = get_strategy(name)
        state = init_state(0, strategy, ToySpace(), problem, (4, 4, 1))
        _, metrics = jax.jit(lambda s, b: strategy.step(s, b, problem))(state, _toy_batches(1))
        norms[name] = float(metrics["alpha_grad_norm"])
    for name in ("darts2", "amended"):
        assert abs(norms[name] - norms["darts"]) > 1e-3 * norms["darts"], (name, norms)


def test_hessian_weight_decay_changes_the_inner_loss_only(tiny_config):
    # The outer loss (the val loss reported, and v = grad_w L_outer in the amended term) stays
    # the plain cross-entropy; only the Hessian of the inner loss gets wd * I.
    problem = _toy_problem(tiny_config())
    results = {}
    for wd in (0.0, 0.5):
        strategy = get_strategy("amended", eta=0.3, hessian_weight_decay=wd)
        state = init_state(0, strategy, ToySpace(), problem, (4, 4, 1))
        _, results[wd] = jax.jit(lambda s, b: strategy.step(s, b, problem))(state,
                                                                          _toy_batches(1))
    assert float(results[0.5]["val_loss"]) == float(results[0.0]["val_loss"])
    assert float(results[0.5]["alpha_grad_norm"]) != float(results[0.0]["alpha_grad_norm"])


def test_darts2_virtual_step_as_the_original_code_takes_it(tiny_config):
    # w' = w - xi (momentum * buffer + grad_w L_train(w) + wd * w); the hypergradient is
    # grad_alpha L_val(w') - xi d2 L_train(w) / dalpha dw . grad_w' L_val(w') (DARTS, Eq. 7),
    # written here with jax.grad / jax.jvp directly.
    config = tiny_config()
    problem = dataclasses.replace(_toy_problem(config), w_momentum=0.9, w_weight_decay=3e-4)
    strategy = get_strategy("darts2", optim_alpha=config.optim_alpha, virtual_step="momentum")
    state = init_state(0, strategy, ToySpace(), problem, (4, 4, 1))
    step = jax.jit(lambda s, b: strategy.step(s, b, problem))
    state, _ = step(state, _toy_batches(1, seed=1))  # a first step fills the momentum buffer
    buffer = optax.tree_utils.tree_get(state.opt_w, "trace")
    assert max(float(jnp.abs(b).max()) for b in jax.tree.leaves(buffer)) > 0
    batches = _toy_batches(1, seed=2)
    new, metrics = step(state, batches)

    x = lambda images: (images.astype(np.float32) / 255 - 0.5) / 0.25  # noqa: E731
    train = (x(batches["train"]["image"][0]), batches["train"]["label"][0])
    val = (x(batches["val"]["image"][0]), batches["val"]["label"][0])
    softmax = lambda a: {"cell": jax.nn.softmax(a["cell"], -1)}  # noqa: E731
    loss = lambda w, a, batch: problem.loss(w, state.batch_stats, softmax(a), *batch)[0]  # noqa
    xi, alpha, w = float(metrics["lr"]), state.arch.alpha, state.params
    g = jax.grad(loss)(w, alpha, train)
    w_virtual = jax.tree.map(lambda w_, b, g_: w_ - xi * (0.9 * b + g_ + 3e-4 * w_),
                             w, buffer, g)
    v = jax.grad(loss)(w_virtual, alpha, val)
    mixed = jax.jvp(lambda w_: jax.grad(loss, argnums=1)(w_, alpha, train), (w,), (v,))[1]
    expected = jax.grad(loss, argnums=1)(w_virtual, alpha, val)["cell"] - xi * mixed["cell"]
    sgd = get_strategy("darts2", optim_alpha=config.optim_alpha)
    _, plain = jax.jit(lambda s, b: sgd.step(s, b, problem))(state, batches)
    np.testing.assert_allclose(float(metrics["alpha_grad_norm"]),
                               float(jnp.linalg.norm(expected)), rtol=1e-4)
    assert abs(float(plain["alpha_grad_norm"]) - float(metrics["alpha_grad_norm"])) > 1e-6
    adam = update_rule(config.optim_alpha, ("adam",))
    rule_state = state.arch.rule
    updates, _ = adam.update({"cell": expected}, rule_state, alpha)
    np.testing.assert_allclose(new.arch.alpha["cell"], alpha["cell"] + updates["cell"],
                               rtol=1e-4, atol=1e-7)


def test_drop_path_in_the_weight_steps(tiny_config):
    from jaxnas.spaces import get_space

    config = tiny_config()
    # An operation with weights beside the skip (a 1x1 convolution compiles faster than a
    # separable one): drop-path acts on it, and on the reduction cells' strided skip.
    space = get_space("darts", C=2, layers=3, ops=("skip_connect", "conv_1x1"))
    schedule = cosine_by_epoch(0.1, 0.01, 4, 3)
    problem = SearchProblem(space.supernet(10, drop_path=True), (0.5,), (0.25,), False, 0,
                            weight_optimizer(config.optim_w, schedule), schedule,
                            drop_path=lambda count: 0.5)
    strategy = get_strategy("darts")
    state = init_state(0, strategy, space, problem, (8, 8, 3))
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 8, 8, 3))
    y = jnp.arange(8) % 10
    args = (state.params, state.batch_stats, state.opt_w, strategy.arch_weights(state.arch), x, y)
    step = jax.jit(problem.weight_step)
    plain, dropped = step(*args), step(*args, jax.random.PRNGKey(1))
    again, other = step(*args, jax.random.PRNGKey(1)), step(*args, jax.random.PRNGKey(2))
    assert float(dropped.loss) == float(again.loss)
    assert len({float(plain.loss), float(dropped.loss), float(other.loss)}) == 3
    with pytest.raises(ValueError, match="The NAS-Bench-201 supernet has no drop-path"):
        get_space("nb201", C=4, N=1).supernet(10, drop_path=True)


class ConvToySupernet(nn.Module):
    """ToySupernet with a convolution (``ops.conv``: canonical within ``canonical_convs``) first."""

    @nn.compact
    def __call__(self, x, arch_weights, train=False):
        h = nn.BatchNorm(use_running_average=not train)(ops.conv(4, 3, padding=1)(x))
        w = arch_weights["cell"][0]
        h = w[0] * jnp.tanh(h) + w[1] * nn.relu(h) + w[2] * h
        return nn.Dense(3)(h.reshape(h.shape[0], -1))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's convolution forms")
@pytest.mark.parametrize("wrapped", [True, False], ids=["search", "without_canonical_convs"])
def test_neumann_loop_traces_canonical_convolutions(tiny_config, monkeypatch, wrapped):
    # XLA:CPU compiles convolutions' derivatives in a loop body as slow loop nests unless they are
    # canonical: the search traces Neumann(loop=True)'s products under ops.canonical_convs, and
    # the step's compiled program holds only the canonical form (not so when it does not).
    config = tiny_config()
    if not wrapped:
        monkeypatch.setattr(hg, "products_in_loop", lambda method: False)
    problem = dataclasses.replace(_toy_problem(config), net=ConvToySupernet())
    strategy = get_strategy("idarts", optim_alpha=config.optim_alpha, inner_steps=1,
                            neumann_terms=2, neumann_loop=True)
    state = init_state(0, strategy, ToySpace(), problem, (4, 4, 1))
    hlo = jax.jit(lambda s, b: strategy.step(s, b, problem)).lower(
        state, _toy_batches(1)).compile().as_text()
    forms = set(re.findall(r"convolution\(.*dim_labels=(\S+?),", hlo))
    assert forms and (forms == {"b01f_01io->b01f"}) == wrapped, forms


@pytest.mark.parametrize("name,options,match", [
    ("darts2", {"hvp": "forward"}, "hvp must be one of"),
    ("idarts", {"neumann_terms": -1}, "terms must be an integer >= 0"),
    ("idarts", {"inner_steps": 0}, "inner_steps must be >= 1"),
    ("amended", {"eta": -1.0}, "eta must be"),
    ("idarts", {"linearize": "no"}, r"config.strategy \(neumann\).*linearize must be True or "
                                    "False, got 'no'"),
    ("darts", {"eta": 0.1}, r"Unknown option\(s\) \['eta'\]"),
    ("darts2", {"virtual_step": "adam"}, "virtual_step must be one of 'sgd', 'momentum'"),
    ("darts", {"alpha_first": "yes"}, "alpha_first must be True or False"),
])
def test_strategy_option_errors(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_strategy(name, **options)


@pytest.mark.slow
def test_idarts_search_resumes_equal(tmp_path, tiny_config):
    config = tiny_config(**{"strategy.name": "idarts", "strategy.inner_steps": 2,
                            "strategy.neumann_terms": 1, "epochs": 1, "max_steps": 8})
    full = search(config, str(tmp_path / "full"))
    config.max_steps = 5
    search(config, str(tmp_path / "part"))
    config.max_steps = 8
    resumed = search(config, str(tmp_path / "part"))
    assert int(resumed.state.data_position["train"]) == 16  # T = 2 train batches per step
    np.testing.assert_array_equal(resumed.state.arch.alpha["cell"], full.state.arch.alpha["cell"])
    for a, b in zip(jax.tree.leaves(resumed.state.params), jax.tree.leaves(full.state.params)):
        np.testing.assert_array_equal(a, b)
    assert resumed.metrics["hypergrad/hvps"] == 1
