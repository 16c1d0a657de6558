"""NSAS (Zhang thesis ch. 3; spec 002 section 2.5) as a strategy: Eq. 3.6's loss against its
terms computed one by one (linear in beta, plain cross-entropy at beta = 0), the weight step's
support (the current and the constraint paths), the archive filling up to M and staying there,
each constraint-selection variant's paths, resume with the archives, and bad values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.data import data_mesh, replicated, to_global
from jaxnas.engine.search_loop import build, make_step
from jaxnas.spaces import get_space
from jaxnas.spaces.single_path import op_owners
from jaxnas.strategies import get_strategy
from jaxnas.strategies import novelty


def _config(tiny_config, **strategy):
    options = {"strategy.name": "nsas", "max_steps": 8, "log_every": 4, "checkpoint_every": 4,
               "strategy.population": 4, "strategy.sample_size": 2, "strategy.cycles": 2,
               "strategy.size": 3, "strategy.beta": 0.5}
    options.update({f"strategy.{k}": v for k, v in strategy.items()})
    return tiny_config(**options)


def _batches():
    """One train and one val batch of 16 8x8 images, uint8 and int32 as the digits are."""
    x = np.zeros((1, 16, 8, 8, 1), np.uint8) + (np.arange(16, dtype=np.uint8) * 7)[
        None, :, None, None, None]
    batch = {"image": x, "label": (np.arange(16, dtype=np.int32) % 10)[None]}
    return {"train": batch, "val": batch}


def run_steps(options: dict, steps: int):
    """The tiny search of conftest's ``tiny_config`` (the quickstart search at C=4) with
    ``options`` (dotted config keys): its setup, the states after 0..``steps`` steps on
    ``_batches()``, and each step's metrics. The step is the search's own program
    (``make_step`` on sharded batches), which a search of the same config compiles too."""
    from experiments.configs import quickstart

    config = quickstart.get_config()
    config.update_from_flattened_dict({"space.C": 4, "optim_alpha.lr": 3e-3, "batch_size": 16,
                                       "epochs": 2, **options})
    setup = build(config)
    mesh = data_mesh()
    step = make_step(setup.strategy, setup.problem, setup.per_step, mesh)
    batches = to_global({k: v for k, v in _batches().items() if setup.per_step[k]}, mesh, 1)
    state = jax.device_put(setup.initial_state(), replicated(mesh))
    copy = lambda tree: jax.device_put(jax.device_get(tree))  # noqa: E731
    states, metrics = [copy(state)], []
    for _ in range(steps):
        state, m = step(state, batches)  # donates the state it is given: copies are kept
        states.append(copy(state))
        metrics.append(m)
    return setup, states, metrics


@pytest.fixture(scope="module")
def nsas_run():
    """A RandomNAS-NSAS setup (M=3, beta=0.5) and its states after 0..4 steps: the step of the
    search of test_nsas_resumes_bit_exact_with_its_archives."""
    setup, states, _ = run_steps({"strategy.name": "nsas", "strategy.size": 3,
                                  "strategy.beta": 0.5, "strategy.population": 4,
                                  "strategy.sample_size": 2, "strategy.cycles": 2}, 4)
    return setup, states


def test_archive_fills_to_m_then_keeps_its_size(nsas_run):
    _, states = nsas_run
    sizes = [int(s.arch.constraints.size) for s in states]
    assert sizes == [0, 1, 2, 3, 3]
    # The first M sampled paths are the archive's first members, in order.
    for i in range(3):
        np.testing.assert_array_equal(states[3].arch.constraints.paths["cell"][i],
                                      states[i + 1].arch.base.path["cell"])


def test_eq_3_6_loss_is_its_terms_and_linear_in_beta(nsas_run):
    setup, states = nsas_run
    state, problem, strategy = states[4], setup.problem, setup.strategy
    x = problem.images(jax.random.PRNGKey(0), _batches()["train"]["image"][0])
    y = _batches()["train"]["label"][0]
    path = {"cell": jnp.asarray([3, 2, 1, 4, 3, 2], jnp.int32)}
    arch, terms = strategy.weight_terms(state.arch, path, path, jax.random.PRNGKey(1))
    assert len(terms) == 1 + 3
    losses = []
    batch_stats = state.batch_stats
    loss = jax.jit(problem.loss)  # one program for the four terms, not op by op
    for _, weights in terms:  # each term alone, the batch statistics passed on as in training
        value, (batch_stats, _) = loss(state.params, batch_stats, weights, x, y)
        losses.append(float(value))
    for beta in (0.0, 0.3, 1.0):
        coefficients = [1.0 - beta] + [beta / 3] * 3
        combined, _ = problem.combined_loss(coefficients)(
            state.params, state.batch_stats, [w for _, w in terms], x, y)
        want = (1 - beta) * losses[0] + beta / 3 * sum(losses[1:])
        np.testing.assert_allclose(float(combined), want, rtol=1e-6)

    # The terms (paths as op indices) run as one scan; its gradient is the terms' in turn.
    def by_hand(params, coefficients=(0.7, 0.1, 0.1, 0.1)):
        total, stats = 0.0, state.batch_stats
        for c, (_, weights) in zip(coefficients, terms):
            value, (stats, _) = problem.loss(params, stats, weights, x, y)
            total = total + c * value
        return total

    scanned = jax.jit(jax.grad(lambda p: problem.combined_loss([0.7, 0.1, 0.1, 0.1])(
        p, state.batch_stats, [w for _, w in terms], x, y)[0]))(state.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),  # f32
                 scanned, jax.jit(jax.grad(by_hand))(state.params))
    np.testing.assert_allclose([float(c) for c, _ in terms], [0.5] + [0.5 / 3] * 3)
    # The constraint paths are the archive after Algorithm 3 took ``path`` in.
    members = np.asarray(arch.constraints.paths["cell"])
    assert any(np.array_equal(m, path["cell"]) for m in members)
    for (_, weights), member in zip(terms[1:], members):
        np.testing.assert_array_equal(weights["cell"], member)


def test_weight_step_trains_the_current_and_constraint_paths_only(nsas_run):
    setup, states = nsas_run
    before, after = states[3], states[4]  # the archive was full before the fourth step
    used = {(e, int(op)) for member in np.asarray(after.arch.constraints.paths["cell"])
            for e, op in enumerate(member)}
    current = {(e, int(op)) for e, op in enumerate(np.asarray(after.arch.base.path["cell"]))}
    owners = op_owners(setup.space, before.params)
    moved = set()
    for owner, old, new in zip(
            jax.tree.leaves(owners, is_leaf=lambda o: o is None or isinstance(o, tuple)),
            jax.tree.leaves(before.params), jax.tree.leaves(after.params)):
        if owner is not None and not np.array_equal(old, new):
            moved.add((owner[1], owner[2]))
    with_params = {(e, k) for e in range(6) for k in (2, 3)}  # the convolutions own parameters
    assert moved == (used | current) & with_params
    assert moved - current  # a constraint-only operation was trained


@pytest.mark.parametrize("variant,size", [("nsas_g", 3), ("nsas_lg", 3), ("rg", 2), ("low", 2),
                                          ("low_r", 3)])
def test_constraint_selection_variants(variant, size):
    space = get_space("nb201", C=4, N=1)
    strategy = get_strategy("nsas", space, None, size=size, variant=variant)
    arch = strategy.init(jax.random.PRNGKey(0), space.arch_shapes())
    previous = {"cell": jnp.asarray([1, 1, 1, 1, 1, 1], jnp.int32)}
    arch = arch._replace(previous=previous)
    for seed in range(size):  # fill the archive
        path = {"cell": jax.random.randint(jax.random.PRNGKey(10 + seed), (6,), 0, 5)}
        arch, _ = strategy.weight_terms(arch, path, path, jax.random.PRNGKey(seed))
    current = {"cell": jnp.asarray([2, 3, 4, 2, 3, 4], jnp.int32)}
    arch = arch._replace(previous=previous)
    _, terms = strategy.weight_terms(arch, current, current, jax.random.PRNGKey(99))
    constraints = [w for _, w in terms[1:]]
    expected_count = {"low": 1}.get(variant, size)
    assert len(constraints) == expected_count
    if variant in ("low", "low_r", "nsas_lg"):
        np.testing.assert_array_equal(constraints[0]["cell"], previous["cell"])
    if variant in ("nsas_g", "nsas_lg"):  # Assumption 1 holds
        stacked = novelty.Archive({"cell": jnp.stack([c["cell"] for c in constraints])},
                                  jnp.int32(len(constraints)))
        assert bool(novelty.covers(stacked, current))


@pytest.mark.slow
def test_nsas_resumes_bit_exact_with_its_archives(tiny_config, resumed_search):
    full, _ = resumed_search(_config(tiny_config, variant="nsas"), stop=5)
    assert int(full.state.arch.constraints.size) == 3
    assert int(full.state.arch.recent.size) == 8


@pytest.mark.parametrize("options,match", [
    ({"size": 0}, "size"), ({"beta": 1.5}, "beta"), ({"beta": -0.1}, "beta"),
    ({"size": 3, "k": 3}, "k"), ({"variant": "fifo"}, "variant"), ({"base": "darts"}, "base"),
    ({"variant": "nsas_lg", "size": 2}, "size"), ({"recent": 0}, "recent"),
    ({"num_draws": -1}, "num_draws"),
])
def test_bad_nsas_values_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        get_strategy("nsas", get_space("nb201", C=4, N=1), None, **options)
