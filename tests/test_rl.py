"""jaxnas.rl: the RL pieces of DDAS and CADAM (spec 001 sections 2.0, 2.1, 2.3, 7, 8).

Reference values come from closed forms (OU moments, the cosine schedule, soft-update
recursions, hand-written linear critics) or from brute force in numpy over the definitions (the
best pair of rows per DARTS node, sorted top-K lists, the argmin of the check loss over a grid).
Each function under test is jitted once here.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import rl
from jaxnas.rl import history, replay

NODE_OFFSETS = (0, 2, 5, 9, 14)

darts = jax.jit(rl.discretize_darts)
nb201 = jax.jit(rl.discretize_nb201)
op_indices = jax.jit(rl.op_indices, static_argnames="inactive")
add = jax.jit(replay.add)
sample = jax.jit(replay.sample, static_argnames="batch_size")
insert = jax.jit(history.insert)
state_of = jax.jit(rl.history_state, static_argnames="over")


# --- numpy references -------------------------------------------------------------------------

def brute_force_darts(alpha):
    """Alg. 2 by search: per node, the pair of distinct rows with the largest sum of row maxima
    (for tie-free inputs, the two rows holding the two largest row maxima), each with its argmax."""
    out = np.zeros_like(alpha)
    for start, end in zip(NODE_OFFSETS[:-1], NODE_OFFSETS[1:]):
        block = alpha[start:end]
        best = max(itertools.combinations(range(end - start), 2),
                   key=lambda pair: block[pair[0]].max() + block[pair[1]].max())
        for row in best:
            out[start + row, block[row].argmax()] = 1
    return out


def random_actions(seed):
    """Joint DARTS actions float32[32, 2, 14, 8] (one shape: one compiled program)."""
    return np.random.default_rng(seed).normal(size=(32, 2, 14, 8)).astype(np.float32)


# --- discretization (Alg. 2, Alg. 3) ----------------------------------------------------------

def test_darts_equals_brute_force_over_pairs():
    alpha = random_actions(0)
    got = np.asarray(darts(alpha))
    want = np.array([[brute_force_darts(cell) for cell in pair] for pair in alpha])
    np.testing.assert_array_equal(got, want)


def test_darts_structure_and_spec_worked_details():
    alpha = random_actions(1)
    ad = np.asarray(darts(alpha))
    assert set(np.unique(ad)) == {0.0, 1.0}
    assert (ad.sum(axis=(-2, -1)) == 8).all()  # 8 active pairs per cell, 16 in all
    assert (ad.sum(axis=-1) <= 1).all()  # at most one op per edge
    for start, end in zip(NODE_OFFSETS[:-1], NODE_OFFSETS[1:]):
        assert (ad[..., start:end, :].sum(axis=(-2, -1)) == 2).all()  # two distinct rows a node
    # The spec's hand example: node 0 rows [.1, .9, ...] and [.8, ...] -> (0, 1) and (1, 0).
    cell = np.zeros((14, 8), np.float32)
    cell[0, :2] = [.1, .9]
    cell[1, 0] = .8
    ad = np.asarray(darts(cell))
    assert ad[0, 1] == 1 and ad[1, 0] == 1 and ad[:2].sum() == 2
    # The inclusive slices: rows 1 (node 0's last) and 13 (node 3's last) can be selected.
    cell = np.zeros((14, 8), np.float32)
    cell[1, 5] = cell[13, 6] = 1.0
    ad = np.asarray(darts(cell))
    assert ad[1, 5] == 1 and ad[13, 6] == 1
    # Ties go to the lower index: all zeros -> each node's first two rows, op 0.
    ad = np.asarray(darts(np.zeros((14, 8), np.float32)))
    want = np.zeros((14, 8))
    want[[0, 1, 2, 3, 5, 6, 9, 10], 0] = 1
    np.testing.assert_array_equal(ad, want)


def test_darts_invariances_and_none_not_excluded():
    alpha = random_actions(2)
    ad = np.asarray(darts(alpha))
    for increasing in (np.exp, lambda x: x ** 3 + x, lambda x: 3 * x - 7):
        np.testing.assert_array_equal(np.asarray(darts(increasing(alpha))), ad)
    np.testing.assert_array_equal(np.asarray(darts(ad)), ad)  # idempotent
    favour_none = alpha.copy()
    favour_none[..., 0] = 10.0
    ad = np.asarray(darts(favour_none))
    assert (ad[..., 0].sum(axis=-1) == 8).all()  # every active edge carries none (ambiguity 2)


def test_darts_reaches_exactly_180_cells_with_one_op():
    # (1 * 3 * 6 * 10) pairs of rows, one op: every iid input lands on one of 180 cells, all
    # equally likely, so 20,000 draws hit all of them (P(miss one) < 180 e^-111).
    alpha = jax.random.normal(jax.random.key(0), (20000, 14, 1))
    cells = np.asarray(darts(alpha))[..., 0]
    assert len(np.unique(cells, axis=0)) == 180


def test_nb201_row_argmax_and_all_codes_round_trip():
    rng = np.random.default_rng(3)
    alpha = rng.normal(size=(50, 6, 5)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(nb201(alpha)), np.eye(5)[alpha.argmax(-1)])
    codes = np.array(list(itertools.product(range(5), repeat=6)))
    assert len(codes) == 5 ** 6 == 15625
    noisy = np.eye(5)[codes] + rng.uniform(0, 0.5, (15625, 6, 5))
    ad = np.asarray(nb201(noisy.astype(np.float32)))
    np.testing.assert_array_equal(ad, np.eye(5)[codes])
    np.testing.assert_array_equal(np.asarray(op_indices(ad, inactive=-1)), codes)


def test_op_indices_and_differing_pairs():
    a, b = np.asarray(darts(random_actions(4)))[:2]
    idx = np.asarray(op_indices(a, inactive=-1))
    np.testing.assert_array_equal(idx, np.where(a.any(-1), a.argmax(-1), -1))
    assert (idx >= 0).sum() == 16
    pairs = lambda x: set(zip(*np.nonzero(x)))  # noqa: E731
    assert int(rl.num_differing_pairs(a, b)) == len(pairs(a) - pairs(b))
    assert int(rl.num_differing_pairs(a, a)) == 0
    with pytest.raises(ValueError, match=r"\[2, 14, 8\] and \[14, 8\]"):
        rl.num_differing_pairs(a, a[0])


@pytest.mark.parametrize("fn, shape", [(rl.discretize_darts, (13, 8)),
                                       (rl.discretize_darts, (2, 14, 0)),
                                       (rl.discretize_nb201, (5, 5)),
                                       (rl.discretize_nb201, (30,))])
def test_discretize_rejects_wrong_shapes(fn, shape):
    with pytest.raises(ValueError, match=r"must have shape \[\.\.\., (14|6), K\].*got "
                                         + str(list(shape)).replace("[", r"\[")):
        fn(np.zeros(shape, np.float32))


# --- replay -----------------------------------------------------------------------------------

def filled(capacity, count):
    buffer = replay.init_replay({"i": jnp.zeros((), jnp.int32), "x": jnp.zeros((2,))}, capacity)
    for i in range(count):
        buffer = add(buffer, {"i": jnp.int32(i), "x": jnp.full((2,), float(i))})
    return buffer


def frequencies(buffer, newest=None, draws=20000):
    got = sample(jax.random.key(7), buffer, draws, newest)
    np.testing.assert_array_equal(np.asarray(got["x"]), np.asarray(got["i"])[:, None] * [1, 1])
    return np.bincount(np.asarray(got["i"]), minlength=10) / draws


def assert_uniform_over(freq, items, draws=20000):
    p = 1 / len(items)
    band = 5 * np.sqrt(p * (1 - p) / draws)  # 5 binomial standard deviations
    np.testing.assert_allclose(freq[items], p, atol=band)
    assert freq[np.setdiff1d(np.arange(len(freq)), items)].sum() == 0


def test_replay_ring_keeps_the_newest():
    buffer = filled(5, 8)
    assert int(buffer.size) == 5 and int(buffer.next) == 3
    np.testing.assert_array_equal(np.asarray(buffer.items["i"]), [5, 6, 7, 3, 4])


def test_replay_sampling_frequencies_and_truncation():
    assert_uniform_over(frequencies(filled(10, 4)), [0, 1, 2, 3])  # not full: the 4 written
    full = filled(5, 8)
    assert_uniform_over(frequencies(full), [3, 4, 5, 6, 7])
    assert_uniform_over(frequencies(full, newest=2), [6, 7])  # truncated to the newest 2
    assert_uniform_over(frequencies(full, newest=3), [5, 6, 7])  # traced under jit
    assert_uniform_over(frequencies(full, newest=50), [3, 4, 5, 6, 7])  # window > size: all


def test_replay_stores_transitions_and_rejects_bad_input():
    example = rl.Transition(jnp.zeros((6, 5)), jnp.zeros((6, 5)), jnp.zeros(()))
    buffer = add(replay.init_replay(example, 3), example._replace(reward=jnp.float32(2.5)))
    batch = sample(jax.random.key(0), buffer, 4)
    assert batch.action.shape == (4, 6, 5) and batch.next_state is None
    np.testing.assert_array_equal(np.asarray(batch.reward), [2.5] * 4)
    with pytest.raises(ValueError, match="replay capacity must be an integer >= 1.*got 0"):
        replay.init_replay(example, 0)
    with pytest.raises(ValueError, match=r"batch size \|B_R\| must be an integer >= 1.*got 0"):
        replay.sample(jax.random.key(0), buffer, 0)
    with pytest.raises(ValueError, match="newest.*must be an integer >= 1.*got 0"):
        replay.sample(jax.random.key(0), buffer, 2, newest=0)
    with pytest.raises(ValueError, match=r"leaf shapes \[\[6, 5\], \[6, 5\], \[\]\].*"
                                         r"got \[\[6, 5\], \[2, 14, 8\], \[\]\]"):
        replay.add(buffer, example._replace(action=jnp.zeros((2, 14, 8))))


# --- noise and schedules ----------------------------------------------------------------------

def test_uniform_and_gaussian_noise_moments():
    u = np.asarray(rl.uniform_noise(jax.random.key(1), (200000,), 1e-4), np.float64)
    assert np.abs(u).max() <= 1e-4
    np.testing.assert_allclose(u.var(), 1e-8 / 3, rtol=0.02)  # Var U(-a, a) = a^2 / 3
    assert abs(u.mean()) < 5 * np.sqrt(1e-8 / 3 / u.size)
    g = np.asarray(rl.gaussian_noise(jax.random.key(2), (200000,), 0.05), np.float64)
    np.testing.assert_allclose(g.std(), 0.05, rtol=0.01)
    assert abs(g.mean()) < 5 * 0.05 / np.sqrt(g.size)


def test_ou_step_arithmetic_and_moments_against_closed_form():
    theta, dt, sigma, mu = 1.0, 0.1, 0.5, 0.3
    state = rl.ou_init((3,), x0=2.0)
    key = jax.random.key(3)
    x, new = rl.ou_step(key, state, sigma=sigma, theta=theta, dt=dt, mu=mu)
    z = np.asarray(jax.random.normal(key, (3,)))
    np.testing.assert_allclose(np.asarray(x), 2.0 + theta * (mu - 2.0) * dt
                               + sigma * np.sqrt(dt) * z, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(new.x), np.asarray(x))

    @jax.jit
    def run(key):
        def body(state, k):
            x, state = rl.ou_step(k, state, sigma=sigma, theta=theta, dt=dt, mu=mu)
            return state, x
        return jax.lax.scan(body, rl.ou_init((40000,), x0=2.0), jax.random.split(key, 100))[1]

    xs = np.asarray(run(jax.random.key(4)), np.float64)  # [100 steps, 40000 chains]
    a = 1 - theta * dt
    for k in (5, 20, 100):
        mean = mu + a ** k * (2.0 - mu)
        var = sigma ** 2 * dt * (1 - a ** (2 * k)) / (1 - a ** 2)
        np.testing.assert_allclose(xs[k - 1].mean(), mean, atol=5 * np.sqrt(var / 40000))
        np.testing.assert_allclose(xs[k - 1].var(), var, rtol=0.03)
    # Mean reversion: by step 100 the chains sit at the stationary law N(mu, s^2 dt / (1 - a^2)).
    np.testing.assert_allclose(xs[-1].var(), sigma ** 2 * dt / (1 - a ** 2), rtol=0.03)


def test_cosine_epsilon_endpoints_midpoint_and_monotone():
    eps = jax.jit(rl.cosine_epsilon)
    values = np.asarray(jax.vmap(eps)(jnp.arange(400)))
    assert values[0] == pytest.approx(1.0) and values[175] == pytest.approx(0.05)
    assert (values[175:] == values[175]).all()
    assert (np.diff(values) <= 0).all() and (np.diff(values[:176]) < 0).all()
    assert float(eps(87.5)) == pytest.approx(0.05 + 0.95 / 2)  # cos(pi / 2) = 0
    assert float(eps(35)) == pytest.approx(0.05 + 0.95 * (1 + np.cos(np.pi / 5)) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="final epsilon must be a number in \\[0, 1\\].*1.5"):
        rl.cosine_epsilon(0, end=1.5)
    with pytest.raises(ValueError, match="annealing steps must be an integer >= 1.*got 0"):
        rl.cosine_epsilon(0, steps=0)


def test_epsilon_greedy():
    action = jnp.full((6, 5), 7.0)
    epsilon = np.repeat([0.0, 1.0, 0.3], [100, 100, 20000]).astype(np.float32)
    keys = jax.random.split(jax.random.key(0), len(epsilon))
    out, flags = jax.jit(jax.vmap(rl.epsilon_greedy, (0, None, 0)))(keys, action, epsilon)
    out, flags = np.asarray(out), np.asarray(flags)
    assert not flags[:100].any() and (out[:100] == 7.0).all()  # epsilon 0: the actor's action
    assert flags[100:200].all() and ((out[100:200] >= 0) & (out[100:200] < 1)).all()
    assert len(np.unique(out[100:200, 0, 0])) == 100  # fresh U(0, 1) draws
    assert abs(flags[200:].mean() - 0.3) < 5 * np.sqrt(0.21 / 20000)
    np.testing.assert_array_equal(out[200:][flags[200:]] == 7.0, False)
    assert (out[200:][~flags[200:]] == 7.0).all()


def test_noise_rejects_bad_parameters():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="uniform noise scale must be .*got -1"):
        rl.uniform_noise(key, (2,), -1)
    with pytest.raises(ValueError, match="Gaussian noise std must be .*got -0.05"):
        rl.gaussian_noise(key, (2,), -0.05)
    with pytest.raises(ValueError, match="OU dt must be a number in \\(0, inf\\).*got 0"):
        rl.ou_step(key, rl.ou_init((2,)), dt=0)


# --- losses -----------------------------------------------------------------------------------

def test_check_loss_definition_and_quantile_minimizer():
    rng = np.random.default_rng(5)
    u = rng.normal(size=1000)
    for tau in (0.1, 0.5, 0.9, 0.95):
        got = np.asarray(rl.check_loss(u, tau))
        np.testing.assert_allclose(got, np.where(u >= 0, tau * u, (tau - 1) * u), rtol=1e-6)
        assert (got >= 0).all()
    np.testing.assert_allclose(np.asarray(rl.check_loss(u, 0.5)), 0.5 * np.abs(u), rtol=1e-6)
    rewards = rng.lognormal(size=101)
    grid = np.linspace(rewards.min(), rewards.max(), 4001)
    for tau in (0.9, 0.95, 0.3):
        loss = jax.vmap(lambda c: jnp.mean(rl.check_loss(rewards - c, tau)))(grid)
        minimizer = grid[int(np.argmin(np.asarray(loss)))]
        # n tau is not an integer: the unique minimizer is the ceil(n tau)-th order statistic.
        quantile = np.quantile(rewards, tau, method="inverted_cdf")
        assert quantile == np.sort(rewards)[int(np.ceil(101 * tau)) - 1]
        assert abs(minimizer - quantile) <= grid[1] - grid[0]
        # The sample points beat every other one: the objective is piecewise linear.
        at_points = [np.mean(np.where(rewards - c >= 0, tau, tau - 1) * (rewards - c))
                     for c in rewards]
        assert rewards[int(np.argmin(at_points))] == quantile


def test_quantile_critic_loss_value_and_gradient():
    tau = 0.9
    rewards = np.array([1.0, 3.0, -2.0, 0.5], np.float32)
    batch = rl.Transition(None, np.zeros((4, 6, 5), np.float32), rewards)
    q = np.array([0.0, 4.0, -3.0, 1.5], np.float32)  # u = [1, -1, 1, -1]
    critic = lambda p, a: p + 0 * a.sum(axis=(-2, -1))  # noqa: E731; Q(a_i) = p_i
    loss, grad = jax.value_and_grad(rl.quantile_critic_loss)(
        q, batch, critic_apply=critic, tau=tau)
    assert float(loss) == pytest.approx((tau + (1 - tau) + tau + (1 - tau)) / 4)
    np.testing.assert_allclose(np.asarray(grad), np.array([-tau, 1 - tau, -tau, 1 - tau]) / 4,
                               rtol=1e-6)


def linear_critic(p, s, a):
    return s @ p["ws"] + a @ p["wa"] + p["b"]


def linear_actor(p, s):
    return s @ p["m"]


def test_td_critic_loss_by_hand_on_a_linear_critic():
    rng = np.random.default_rng(6)
    b, ds, da = 5, 3, 2
    s, s2 = rng.normal(size=(2, b, ds))
    a, r = rng.normal(size=(b, da)), rng.normal(size=b)
    params = {"ws": rng.normal(size=ds), "wa": rng.normal(size=da), "b": np.array(0.3)}
    target = {"ws": rng.normal(size=ds), "wa": rng.normal(size=da), "b": np.array(-0.2)}
    actor_target = {"m": rng.normal(size=(ds, da))}
    gamma = 0.99
    batch = rl.Transition(s, a, r, s2)
    loss = jax.jit(rl.td_critic_loss, static_argnames=("critic_apply", "actor_apply", "gamma"))
    kwargs = dict(critic_apply=linear_critic, actor_apply=linear_actor, gamma=gamma)
    y = r + gamma * (s2 @ target["ws"] + (s2 @ actor_target["m"]) @ target["wa"] + target["b"])
    delta = y - (s @ params["ws"] + a @ params["wa"] + params["b"])
    assert float(loss(params, target, actor_target, batch, **kwargs)) == pytest.approx(
        np.mean(delta ** 2), rel=1e-5)
    # The target is a constant: with target = online parameters, the gradient is still
    # -2/B sum_i delta_i dQ(s_i, a_i) (no term through Q').
    y = r + gamma * (s2 @ params["ws"] + (s2 @ actor_target["m"]) @ params["wa"] + params["b"])
    delta = y - (s @ params["ws"] + a @ params["wa"] + params["b"])
    grad = jax.grad(rl.td_critic_loss)(params, params, actor_target, batch, **kwargs)
    np.testing.assert_allclose(np.asarray(grad["ws"]), -2 / b * delta @ s, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad["wa"]), -2 / b * delta @ a, rtol=1e-5)
    np.testing.assert_allclose(float(grad["b"]), -2 / b * delta.sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="bootstraps from next_state"):
        rl.td_critic_loss(params, target, actor_target, batch._replace(next_state=None),
                          **kwargs)
    with pytest.raises(ValueError, match=r"gamma \(the discount\) must be .*\[0, 1\].*1.5"):
        rl.td_critic_loss(params, target, actor_target, batch, critic_apply=linear_critic,
                          actor_apply=linear_actor, gamma=1.5)


def test_actor_loss_is_minus_mean_q_with_its_gradient():
    rng = np.random.default_rng(7)
    s = rng.normal(size=(4, 3))
    critic = {"ws": rng.normal(size=3), "wa": rng.normal(size=2), "b": np.array(0.1)}
    actor = {"m": rng.normal(size=(3, 2))}
    q = lambda states, actions: linear_critic(critic, states, actions)  # noqa: E731
    loss, grad = jax.value_and_grad(rl.actor_loss)(actor, s, actor_apply=linear_actor, q=q)
    assert float(loss) == pytest.approx(-np.mean(s @ critic["ws"] + s @ actor["m"]
                                                 @ critic["wa"] + 0.1))
    # d/dm of -mean_i s_i^T m w_a = -mean_i outer(s_i, w_a)
    np.testing.assert_allclose(np.asarray(grad["m"]), -np.outer(s.mean(0), critic["wa"]),
                               rtol=1e-6)


def test_soft_update_arithmetic():
    params = {"w": np.array([1.0, 2.0]), "b": np.array(-4.0)}
    target = {"w": np.array([3.0, 0.0]), "b": np.array(8.0)}
    mixed = rl.soft_update(params, target, 0.25)
    np.testing.assert_allclose(np.asarray(mixed["w"]), [2.5, 0.5])  # .25 * 1 + .75 * 3
    assert float(mixed["b"]) == pytest.approx(5.0)
    copied = rl.soft_update(params, target, 1.0)
    np.testing.assert_array_equal(np.asarray(copied["w"]), params["w"])
    update = jax.jit(rl.soft_update)
    for _ in range(50):  # theta'_n = theta + (1 - tau)^n (theta'_0 - theta)
        target = update(params, target)
    np.testing.assert_allclose(np.asarray(target["w"]),
                               [1 + 0.999 ** 50 * 2, 2 - 0.999 ** 50 * 2], rtol=1e-6)
    for tau in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match=rf"tau \(the target mixing rate\) must be a number "
                                             rf"in \(0, 1\].*got {tau}"):
            rl.soft_update(params, target, tau)


def test_num_cycles():
    assert int(rl.num_cycles(7, 8, 10)) == 0
    assert int(rl.num_cycles(8, 8, 10)) == 1
    assert int(rl.num_cycles(1000, 8, 10)) == 10
    assert int(rl.num_cycles(10 ** 4, 64, 1)) == 1
    assert int(jax.jit(rl.num_cycles, static_argnums=(1, 2))(jnp.int32(23), 8, 10)) == 2
    with pytest.raises(ValueError, match=r"C_max .* must be an integer >= 1.*got 0"):
        rl.num_cycles(8, 8, 0)


@pytest.mark.parametrize("tau", [0, 1, 1.5, -0.1, "0.9"])
def test_check_loss_rejects_tau_outside_the_open_interval(tau):
    with pytest.raises(ValueError, match=rf"tau \(the quantile level\) must be a number in "
                                         rf"\(0, 1\).*got {tau!r}"):
        rl.check_loss(np.ones(3), tau)


# --- networks ---------------------------------------------------------------------------------

def mlp_by_hand(params, x):
    layers = [params[f"Dense_{i}"] for i in range(len(params))]
    for layer in layers[:-1]:
        x = np.maximum(x @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]), 0)
    return x @ np.asarray(layers[-1]["kernel"]) + np.asarray(layers[-1]["bias"])


def test_actor_and_critics_against_a_hand_forward_pass():
    rng = np.random.default_rng(8)
    shape = (2, 14, 8)
    states = rng.uniform(size=(3,) + shape).astype(np.float32)
    actions = rng.uniform(size=(3,) + shape).astype(np.float32)
    actor = rl.Actor(shape, hidden=(16, 8))
    critic = rl.StateActionCritic(shape, shape, hidden=(16,))
    nb = rl.ActionCritic((6, 5))  # CADAM's (128, 256, 128)

    @jax.jit
    def forward(states, actions):  # one program: every init and apply
        keys = jax.random.split(jax.random.key(0), 3)
        ap = actor.init(keys[0], states[0])
        cp = critic.init(keys[1], states, actions)
        np_ = nb.init(keys[2], actions[:, 0, :6, :5])
        return (ap, cp, np_), (actor.apply(ap, states), actor.apply(ap, states[1]),
                               critic.apply(cp, states, actions),
                               nb.apply(np_, actions[:, 0, :6, :5]))

    (ap, cp, np_), (mu, mu1, q, q_nb) = jax.tree.map(np.asarray, forward(states, actions))
    assert mu.shape == (3,) + shape and ((mu > 0) & (mu < 1)).all()
    want = 1 / (1 + np.exp(-mlp_by_hand(ap["params"]["MLP_0"], states.reshape(3, -1))))
    np.testing.assert_allclose(mu, want.reshape(mu.shape), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mu1, mu[1], rtol=1e-5, atol=1e-7)  # no batch dimension

    assert q.shape == (3,)
    x = np.concatenate([states.reshape(3, -1), actions.reshape(3, -1)], axis=-1)
    np.testing.assert_allclose(q, mlp_by_hand(cp["params"]["MLP_0"], x)[:, 0], rtol=1e-4)

    widths = [np_["params"]["MLP_0"][f"Dense_{i}"]["kernel"].shape[1] for i in range(4)]
    assert widths == [128, 256, 128, 1]
    a = actions[:, 0, :6, :5].reshape(3, -1)
    np.testing.assert_allclose(q_nb, mlp_by_hand(np_["params"]["MLP_0"], a)[:, 0], rtol=1e-4,
                               atol=1e-6)


def test_networks_reject_bad_shapes_and_widths():
    actor = rl.Actor((6, 5), hidden=(4,))
    with pytest.raises(ValueError, match=r"actor's state must have shape \[\.\.\., 6, 5\].*"
                                         r"got \[2, 14, 8\]"):
        actor.init(jax.random.key(0), jnp.zeros((2, 14, 8)))
    with pytest.raises(ValueError, match=r"hidden\[1\] \(an MLP width\) must be an integer >= 1"
                                         r".*got 0"):
        rl.Actor((6, 5), hidden=(4, 0)).init(jax.random.key(0), jnp.zeros((6, 5)))
    critic = rl.StateActionCritic((6, 5), (6, 5), hidden=(4,))
    with pytest.raises(ValueError, match=r"same batch dimensions, got \[3\] and \[2\]"):
        critic.init(jax.random.key(0), jnp.zeros((3, 6, 5)), jnp.zeros((2, 6, 5)))


# --- top-K history ----------------------------------------------------------------------------

def brute_force_top_k(archs, scores, k):
    """The K best distinct architectures of a prefix, first-seen winning ties."""
    first = {}
    for t, (arch, score) in enumerate(zip(archs, scores)):
        first.setdefault(arch.tobytes(), (t, arch, score))
    ranked = sorted(first.values(), key=lambda e: (-e[2], e[0]))[:k]
    return [e[1] for e in ranked], [e[2] for e in ranked]


def test_top_k_history_equals_sorted_brute_force():
    rng = np.random.default_rng(9)
    k, codes = 5, rng.integers(0, 3, size=(80, 3))  # 27 archs [3, 3]: repeats happen
    archs = np.eye(3, dtype=np.float32)[codes]
    oracle = np.round(rng.uniform(size=27), 1).astype(np.float32)  # rounded: ties happen
    scores = oracle[codes @ [9, 3, 1]]
    h = history.init_history((3, 3), k)
    np.testing.assert_array_equal(np.asarray(state_of(h)), 0)  # s_0 = 0
    for t in range(len(archs)):
        h = insert(h, archs[t], scores[t])
        want_archs, want_scores = brute_force_top_k(archs[:t + 1], scores[:t + 1], k)
        n = len(want_archs)
        assert int(h.size) == n
        np.testing.assert_array_equal(np.asarray(h.archs[:n]), want_archs)
        np.testing.assert_array_equal(np.asarray(h.scores[:n]), want_scores)
        assert (np.asarray(h.scores[n:]) == np.finfo(np.float32).min).all()
        np.testing.assert_allclose(np.asarray(state_of(h)), np.mean(want_archs, axis=0),
                                   rtol=1e-6)
        np.testing.assert_allclose(np.asarray(state_of(h, over="capacity")),
                                   np.sum(want_archs, axis=0) / k, rtol=1e-6)
    assert len(np.unique(np.asarray(h.archs), axis=0)) == k  # full, distinct
    assert (np.diff(np.asarray(h.scores)) <= 0).all()


def test_history_state_of_darts_and_nb201_architectures():
    rng = np.random.default_rng(10)
    h = history.init_history((2, 14, 8), 4)
    for arch in darts(random_actions(10))[:6]:
        h = insert(h, arch, rng.uniform())
    s = np.asarray(state_of(h))
    assert ((s >= 0) & (s <= 1)).all()
    for start, end in zip(NODE_OFFSETS[:-1], NODE_OFFSETS[1:]):
        np.testing.assert_allclose(s[:, start:end].sum(axis=(-2, -1)), 2, rtol=1e-6)
    h = history.init_history((6, 5), 3)
    for arch in nb201(rng.uniform(size=(50, 6, 5)).astype(np.float32))[:4]:
        h = insert(h, arch, rng.uniform())
    np.testing.assert_allclose(np.asarray(state_of(h)).sum(-1), 1, rtol=1e-6)


def test_nan_score_never_enters_and_steps_compile_once():
    traces = []

    def counted(fn):
        def traced(*args):
            traces.append(fn.__name__)
            return fn(*args)
        return jax.jit(traced)

    step_insert, step_add = counted(history.insert), counted(replay.add)
    h = history.init_history((6, 5), 2)
    buffer = replay.init_replay(rl.Transition(jnp.zeros((6, 5)), jnp.zeros((6, 5)),
                                              jnp.zeros(())), 4)
    for t, score in enumerate([0.5, np.nan, 0.7, np.nan]):
        arch = jax.nn.one_hot(jnp.full((6,), t), 5)
        h = step_insert(h, arch, jnp.float32(score))
        buffer = step_add(buffer, rl.Transition(arch, arch, jnp.float32(score)))
    np.testing.assert_array_equal(np.asarray(h.scores), np.float32([0.7, 0.5]))
    assert int(buffer.size) == 4 and traces == ["insert", "add"]


def test_history_rejects_bad_input():
    with pytest.raises(ValueError, match=r"K \(the top-K history size\) must be an integer >= 1"
                                         r".*got 0"):
        history.init_history((6, 5), 0)
    h = history.init_history((6, 5), 2)
    with pytest.raises(ValueError, match=r"history's shape \[6, 5\], got \[14, 8\]"):
        history.insert(h, jnp.zeros((14, 8)), 1.0)
    with pytest.raises(ValueError, match="over must be 'members'.*got 'k'"):
        history.history_state(h, over="k")
