"""The architecture update rules (``jaxnas.transforms``) against hand computations and closed
forms: the pruning mask under Adam momentum, penalties and their gradients, ADMM's z/u recursion
(Eqs. 9-11 of seed 003), and Variational Adam in both forms (Zhang thesis Eqs. 5.16-5.17; Khan
et al. 2018) with its Bayesian-linear-regression fixed point."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas import transforms


def _run(rule, params, grads, **extra):
    """Applies ``rule`` with each of ``grads`` in turn: the params and states after each."""
    state = rule.init(params)
    history = []
    for g in grads:
        updates, state = rule.update(g, state, params, **extra)
        params = optax.apply_updates(params, updates)
        history.append((params, state))
    return history


def test_pruned_entries_stay_zero_and_lose_their_adam_moments():
    rule = transforms.prune_nonpositive(optax.adam(0.1, b1=0.9))
    params = jnp.array([0.15, 0.5, 0.3])
    # Entry 0 is pushed down for 3 steps (Adam moves it ~0.1 per step: pruned at step 2), then
    # pulled up hard for 5 steps: momentum and the new gradients must not revive it.
    grads = [jnp.array([1.0, 0.0, -1.0])] * 3 + [jnp.array([-10.0, 0.0, -1.0])] * 5
    history = _run(rule, params, grads)
    values = np.array([np.asarray(p) for p, _ in history])
    assert values[0, 0] > 0 and values[1, 0] == 0.0  # 0.15 - 0.1 > 0, then <= 0 -> exactly 0
    assert np.all(values[1:, 0] == 0.0)
    assert np.all(values[:, 1] == 0.5)  # a zero gradient moves nothing
    assert np.all(np.diff(values[:, 2]) > 0)  # the live entry keeps moving
    for _, state in history[1:]:
        assert not bool(state.mask[0]) and bool(state.mask[1]) and bool(state.mask[2])
        adam = state.inner[0]
        assert float(adam.mu[0]) == 0.0 and float(adam.nu[0]) == 0.0
        assert float(adam.nu[2]) > 0.0
    alive = [int(np.sum(np.asarray(s.mask))) for _, s in history]
    assert alive == sorted(alive, reverse=True)  # the number of live entries never grows


def test_penalty_adds_its_weighted_gradient_and_reports_its_value():
    fn = lambda p: jnp.sum(p ** 3)  # noqa: E731
    rule = transforms.penalty(fn, lambda progress: 2.0 * progress, "arch/cubic")
    params = jnp.array([1.0, -2.0])
    updates, state = rule.update(jnp.array([0.5, 0.5]), rule.init(params), params, progress=0.25)
    np.testing.assert_allclose(updates, [0.5 + 0.5 * 3.0, 0.5 + 0.5 * 12.0])
    assert float(state.metrics["arch/cubic"]) == pytest.approx(0.5 * (1.0 - 8.0))
    assert transforms.collect_metrics(optax.chain(rule).init(params)) == {
        "arch/cubic": 0.0}
    with pytest.raises(ValueError, match="needs the extra argument progress"):
        rule.update(params, rule.init(params), params)


def test_safe_norm_is_the_norm_with_value_and_gradient_zero_at_zero():
    tree = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    assert float(transforms.safe_norm(tree)) == pytest.approx(5.0)
    grad = jax.grad(transforms.safe_norm)(tree)
    np.testing.assert_allclose(grad["a"], [0.6, 0.0])
    zero = jax.tree.map(jnp.zeros_like, tree)
    assert float(transforms.safe_norm(zero)) == 0.0
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(
        jax.grad(transforms.safe_norm)(zero)))


def _round(tree):
    """A projection onto the binary vectors (a toy constraint set S)."""
    return jax.tree.map(jnp.round, tree)


def test_admm_at_a_feasible_point_with_zero_dual_changes_nothing():
    rule = transforms.admm(_round, rho=0.1, decay=0.8, period=2)
    params = jnp.array([1.0, 0.0, 1.0])  # in S
    state = rule.init(params)
    for _ in range(5):  # z/u refreshes after updates 2 and 4
        updates, state = rule.update(jnp.zeros(3), state, params)
        np.testing.assert_array_equal(updates, 0.0)
    np.testing.assert_array_equal(state.z, params)
    np.testing.assert_array_equal(state.u, 0.0)
    assert float(state.metrics["arch/admm_penalty"]) == 0.0


def test_admm_follows_eq_11_and_adds_its_gradient():
    rho, decay, period = 0.5, 0.8, 3
    rule = transforms.admm(_round, lambda p: 2.0 * p, rho, decay, period)
    params = jnp.array([0.3])
    state = rule.init(params)
    z, u = 0.6, 0.0  # z0 = a0 = activation(params0), u0 = 0
    for k in range(10):
        a = 2.0 * float(params[0])
        if k > 0 and k % period == 0:  # after every period-th update: Eqs. 9 and 11
            z = round(a + u)
            u = decay * u + a - z
        updates, state = rule.update(jnp.array([0.0]), state, params)
        # d/dp rho/2 (2p - z + u)^2 = 2 rho (2p - z + u)
        assert float(updates[0]) == pytest.approx(2 * rho * (a - z + u), abs=1e-6)
        assert float(state.metrics["arch/admm_penalty"]) == pytest.approx(
            0.5 * rho * (a - z + u) ** 2, abs=1e-6)
        assert float(state.z[0]) == pytest.approx(z)
        assert float(state.u[0]) == pytest.approx(u, abs=1e-6)
        params = params + 0.1  # moves the parameter so that z and u change over the run
    assert u != 0.0  # the recursion was exercised


@pytest.mark.parametrize("kwargs,match", [
    ({"rho": -0.1}, "rho must be >= 0"), ({"decay": 1.5}, r"decay must be in \[0, 1\]"),
    ({"period": 0}, "period must be an integer >= 1")])
def test_admm_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        transforms.admm(_round, **kwargs)


def test_vadam_khan2018_matches_a_hand_computation():
    lr, n, b1, b2, prior, init = 0.1, 10, 0.9, 0.99, 2.0, 4.0
    rule = transforms.vadam(lr, n, b1, b2, prior, init)
    mu = np.array([0.5, -1.0, 2.0])
    grads = [np.array([0.2, -0.4, 1.0]), np.array([-0.1, 0.3, 0.5])]
    delta = prior / n
    m, s = np.zeros(3), np.full(3, (init - prior) / n)
    np.testing.assert_allclose(rule.init(jnp.asarray(mu)).std, 1 / np.sqrt(init), rtol=1e-6)
    state, params = rule.init(jnp.asarray(mu)), jnp.asarray(mu)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * (g + delta * mu)
        s = b2 * s + (1 - b2) * g ** 2
        mu = mu - lr * (m / (1 - b1 ** t)) / (np.sqrt(s / (1 - b2 ** t)) + delta)
        updates, state = rule.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(params, mu, rtol=1e-5)
        std = 1 / np.sqrt(n * s + prior)
        np.testing.assert_allclose(state.std, std, rtol=1e-5)
        metrics = state.metrics
        assert float(metrics["arch/sigma_mean"]) == pytest.approx(std.mean(), rel=1e-5)
        assert float(metrics["arch/sigma_max"]) == pytest.approx(std.max(), rel=1e-5)
        assert float(metrics["arch/hessian_trace_term"]) == pytest.approx(
            0.5 * np.sum(std ** 2 * s), rel=1e-5)


def test_vadam_thesis_form_matches_eqs_5_16_and_5_17():
    lr, n, prior, init, momentum = 0.3, 5, 1.0, 3.0, 0.5
    rule = transforms.vadam(lr, n, prior_precision=prior, init_precision=init,
                            momentum=momentum, form="thesis")
    mu, prev = np.array([1.0, -2.0, 0.5]), np.array([1.0, -2.0, 0.5])
    delta = prior / n
    s = np.full(3, (init - prior) / n)
    state, params = rule.init(jnp.asarray(mu)), jnp.asarray(mu)
    for g in (np.array([0.4, 0.1, -0.3]), np.array([0.2, -0.5, 0.1]), np.array([0.0, 0.3, 0.2])):
        s_new = (1 - lr) * s + lr * g ** 2
        mu_new = (mu - lr * (g + delta * mu) / (s_new + delta)
                  + momentum * (s + delta) / (s_new + delta) * (mu - prev))
        prev, mu, s = mu, mu_new, s_new
        updates, state = rule.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(params, mu, rtol=1e-5)
        np.testing.assert_allclose(state.std, 1 / np.sqrt(n * (s + delta)), rtol=1e-5)


def test_vadam_with_the_exact_hessian_finds_the_bayesian_linear_regression_posterior(x64):
    # Diagonal design: y_i = X_i . theta + noise (unit variance); per-example loss
    # 1/2 (y_i - X_i theta)^2, l(theta) = its mean over N. With prior N(0, I / delta) the exact
    # posterior has precision X^T X + delta I (diagonal) and mean (X^T X + delta)^-1 X^T y. VON's
    # fixed point (Eqs. 5.12-5.13, the thesis form without momentum, curvature = the exact
    # diagonal Hessian of l, gradient at the mean) is that posterior.
    rng = np.random.default_rng(0)
    n, delta = 40, 2.0
    scales = np.array([0.5, 1.0, 2.0])
    x = np.zeros((n, 3))
    x[np.arange(n), np.arange(n) % 3] = rng.normal(size=n) * scales[np.arange(n) % 3]
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=n)
    precision = np.diag(x.T @ x) + delta
    mean = (x.T @ y) / precision
    hessian = jnp.asarray(np.diag(x.T @ x) / n)
    loss = lambda theta: 0.5 * jnp.mean((jnp.asarray(y) - jnp.asarray(x) @ theta) ** 2)  # noqa
    rule = transforms.vadam(0.5, n, prior_precision=delta, init_precision=delta, form="thesis")
    params = jnp.zeros(3)
    state = rule.init(params)
    for _ in range(200):
        updates, state = rule.update(jax.grad(loss)(params), state, params, curvature=hessian)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(params, mean, rtol=1e-8)
    np.testing.assert_allclose(1 / np.asarray(state.std) ** 2, precision, rtol=1e-8)


@pytest.mark.parametrize("kwargs,match", [
    ({"form": "vprop"}, "form must be one of"), ({"num_data": 0}, "num_data must be"),
    ({"b1": 1.0}, r"b1 must be in \[0, 1\)"), ({"prior_precision": 0.0}, "prior_precision"),
    ({"init_precision": 0.5}, "init_precision must be >= prior_precision"),
    ({"learning_rate": -1.0}, "learning_rate must be > 0")])
def test_vadam_option_errors(kwargs, match):
    options = {"learning_rate": 0.1, "num_data": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        transforms.vadam(**options)
