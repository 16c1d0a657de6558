"""Hypergradient methods against closed forms, dense formulas and finite differences (float64).

Problems:
- quadratic: `L_in = 0.5 w^T A w - w^T B alpha`, `L_out = 0.5 ||w - c||^2 + lam/2 ||alpha||^2`,
  so `w* = A^-1 B alpha`, `H = A`, `M^T u = -B^T u`, exact `lam alpha + B^T A^-1 (w* - c)`.
- ridge: per-feature penalties `exp(alpha_i)`, validation MSE, closed form derived below.
- logistic: L2 `exp(alpha_i)` logistic regression solved by Newton; reference by central finite
  differences of `alpha -> L_out(w*(alpha))` with the inner problem re-solved.
- amended toy (spec 004 section 7) and the counterexample to the paper's angle claim.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import hypergrad as hg
from matrices import spd_matrix




pytestmark = pytest.mark.usefixtures("x64")




def hypergradient(method, problem, w):
    """`hg.hypergradient` under jit (methods are static) -> numpy gradient, info."""
    fn = jax.jit(hg.hypergradient, static_argnums=(0, 1, 2))
    grad, info = fn(method, problem["inner"], problem["outer"], jnp.asarray(w),
                    jnp.asarray(problem["alpha"]), problem["inner_batch"], problem["outer_batch"])
    return np.asarray(grad), info


# --------------------------------------------------------------------------------- quadratic

LAM = 0.3
CG_TIGHT = hg.ConjugateGradient(maxiter=50, tol=1e-12)


def quadratic_inner(w, alpha, batch):
    return 0.5 * w @ batch["A"] @ w - w @ batch["B"] @ alpha


def quadratic_outer(w, alpha, batch):
    return 0.5 * jnp.sum((w - batch["c"]) ** 2) + 0.5 * LAM * jnp.sum(alpha**2)


@pytest.fixture(scope="module")
def quadratic(x64):
    rng = np.random.default_rng(0)
    eigenvalues = np.linspace(1.0, 8.0, 6)
    a_mat, b_mat = spd_matrix(eigenvalues, seed=1)[0], rng.normal(size=(6, 3))
    c, alpha = rng.normal(size=6), rng.normal(size=3)
    w_star = np.linalg.solve(a_mat, b_mat @ alpha)
    return {
        "inner": quadratic_inner, "outer": quadratic_outer,
        "inner_batch": {"A": jnp.asarray(a_mat), "B": jnp.asarray(b_mat)},
        "outer_batch": {"c": jnp.asarray(c)},
        "A": a_mat, "B": b_mat, "c": c, "alpha": alpha, "w_star": w_star,
        "mu": eigenvalues.min(), "L": eigenvalues.max(),
        "exact": LAM * alpha + b_mat.T @ np.linalg.solve(a_mat, w_star - c),
        "w_off": w_star + rng.normal(size=6),  # a point away from w*
    }


def test_exact_and_cg_match_closed_form_on_quadratic(quadratic):
    grad, info = hypergradient(hg.Exact(), quadratic, quadratic["w_star"])
    np.testing.assert_allclose(grad, quadratic["exact"], rtol=1e-8)
    assert float(info["inner_grad_norm"]) < 1e-12
    grad, info = hypergradient(CG_TIGHT, quadratic, quadratic["w_star"])
    np.testing.assert_allclose(grad, quadratic["exact"], rtol=1e-8)
    assert bool(info["converged"]) and float(info["relative_residual"]) <= 1e-12
    assert int(info["hvps"]) == int(info["iterations"]) + 1 <= 6 + 3


def test_neumann_error_falls_monotonically_within_theorem_1_bound(quadratic):
    lr, mu = 1.0 / quadratic["L"], quadratic["mu"]
    w_star, c = quadratic["w_star"], quadratic["c"]
    constant = np.linalg.norm(quadratic["B"], 2) * np.linalg.norm(w_star - c) / mu
    errors = []
    for terms in (0, 3, 10, 30):
        grad, info = hypergradient(hg.Neumann(lr, terms), quadratic, w_star)
        error = np.linalg.norm(grad - quadratic["exact"])
        assert error <= constant * (1 - lr * mu) ** (terms + 1)
        assert int(info["hvps"]) == terms
        errors.append(error)
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 0.05 * errors[0]


def test_neumann_terms_zero_is_one_step_formula(quadratic):
    # Eq. 6.3 at w: grad_alpha L_out - lr M^T grad_w L_out = lam alpha + lr B^T (w - c).
    lr, w = 0.05, quadratic["w_off"]
    grad, _ = hypergradient(hg.Neumann(lr, 0), quadratic, w)
    expected = LAM * quadratic["alpha"] + lr * quadratic["B"].T @ (w - quadratic["c"])
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


@pytest.mark.parametrize("terms", [0, 3])
def test_unrolled_at_fixed_point_equals_neumann(quadratic, terms):
    # Corollary 2: K + 1 SGD steps started at w* give the Neumann-K hypergradient.
    lr = 0.5 / quadratic["L"]
    unrolled, _ = hypergradient(hg.Unrolled(lr, steps=terms + 1), quadratic, quadratic["w_star"])
    neumann, _ = hypergradient(hg.Neumann(lr, terms), quadratic, quadratic["w_star"])
    np.testing.assert_allclose(unrolled, neumann, rtol=1e-10)


def test_unrolled_one_step_is_darts_second_order(quadratic):
    # DARTS: w' = w - lr (A w - B alpha); grad = grad_alpha L_out(w') - lr M^T grad_w L_out(w').
    lr, w = 0.05, quadratic["w_off"]
    a_mat, b_mat, alpha = quadratic["A"], quadratic["B"], quadratic["alpha"]
    w_prime = w - lr * (a_mat @ w - b_mat @ alpha)
    expected = LAM * alpha + lr * b_mat.T @ (w_prime - quadratic["c"])
    for mode in ("exact", "finite_difference"):
        grad, info = hypergradient(hg.Unrolled(lr, hvp=mode), quadratic, w)
        np.testing.assert_allclose(grad, expected, rtol=1e-10)
        assert float(info["outer_loss"]) == pytest.approx(
            0.5 * np.sum((w_prime - quadratic["c"]) ** 2) + 0.5 * LAM * np.sum(alpha**2))
    assert float(info["eps"]) == pytest.approx(0.01 / np.linalg.norm(w_prime - quadratic["c"]))


def test_unrolled_finite_difference_is_exact_on_quadratic(quadratic):
    # Central differences of a linear gradient are exact up to rounding.
    method = hg.Unrolled(0.1, steps=4)
    exact, _ = hypergradient(method, quadratic, quadratic["w_off"])
    fd, _ = hypergradient(hg.Unrolled(0.1, steps=4, hvp="finite_difference"), quadratic,
                          quadratic["w_off"])
    np.testing.assert_allclose(fd, exact, rtol=1e-10)


@pytest.mark.parametrize("method", [
    hg.Unrolled(0.05), hg.Unrolled(0.05, hvp="finite_difference"), hg.Neumann(0.05, 3),
    CG_TIGHT, hg.Exact(), hg.Amended(0.01)])
def test_second_order_methods_differ_from_first_order(quadratic, method):
    first, _ = hypergradient(hg.FirstOrder(), quadratic, quadratic["w_star"])
    np.testing.assert_allclose(first, LAM * quadratic["alpha"], rtol=1e-12)
    implicit = np.linalg.norm(quadratic["exact"] - first)
    grad, _ = hypergradient(method, quadratic, quadratic["w_star"])
    assert np.linalg.norm(grad - first) > 0.05 * implicit
    assert implicit > 0.5 * np.linalg.norm(first)


# ------------------------------------------------------------------------------------- ridge


def ridge_inner(w, alpha, batch):
    x, y = batch
    return jnp.sum((x @ w - y) ** 2) / (2 * x.shape[0]) + 0.5 * jnp.sum(jnp.exp(alpha) * w**2)


def ridge_outer(w, alpha, batch):
    del alpha
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


def ridge_solution(alpha, x, y):
    return np.linalg.solve(x.T @ x / len(y) + np.diag(np.exp(alpha)), x.T @ y / len(y))


def ridge_closed_form(alpha, x, y, xv, yv):
    # A = X^T X / n + diag(e^alpha), A w* = X^T y / n. Differentiating in alpha_i:
    # A dw*/dalpha_i = -e^{alpha_i} w*_i e_i, so dF/dalpha_i = -e^{alpha_i} w*_i (A^-1 g)_i
    # with g = grad_w MSE_val = 2 Xv^T (Xv w* - yv) / nv (A symmetric).
    a_mat = x.T @ x / len(y) + np.diag(np.exp(alpha))
    w_star = ridge_solution(alpha, x, y)
    g = 2 * xv.T @ (xv @ w_star - yv) / len(yv)
    return -np.exp(alpha) * w_star * np.linalg.solve(a_mat, g)


@pytest.fixture(scope="module")
def ridge(x64):
    rng = np.random.default_rng(2)
    w_true = rng.normal(size=5)
    x, xv = rng.normal(size=(40, 5)), rng.normal(size=(30, 5))
    y, yv = x @ w_true + 0.5 * rng.normal(size=40), xv @ w_true + 0.5 * rng.normal(size=30)
    alpha = rng.normal(size=5) - 1.0
    return {
        "inner": ridge_inner, "outer": ridge_outer,
        "inner_batch": (jnp.asarray(x), jnp.asarray(y)),
        "outer_batch": (jnp.asarray(xv), jnp.asarray(yv)),
        "alpha": alpha, "w_star": ridge_solution(alpha, x, y),
        "exact": ridge_closed_form(alpha, x, y, xv, yv), "data": (x, y, xv, yv),
    }


def test_ridge_closed_form_agrees_with_finite_differences(ridge):
    # Checks the hand derivation of the test itself.
    x, y, xv, yv = ridge["data"]

    def objective(alpha):
        return np.mean((xv @ ridge_solution(alpha, x, y) - yv) ** 2)

    h, alpha = 1e-5, ridge["alpha"]
    fd = np.array([(objective(alpha + h * e) - objective(alpha - h * e)) / (2 * h)
                   for e in np.eye(5)])
    np.testing.assert_allclose(ridge["exact"], fd, rtol=1e-6)


@pytest.mark.parametrize("method", [hg.Exact(), CG_TIGHT])
def test_exact_and_cg_match_closed_form_on_ridge(ridge, method):
    grad, _ = hypergradient(method, ridge, ridge["w_star"])
    np.testing.assert_allclose(grad, ridge["exact"], rtol=1e-8)


# ---------------------------------------------------------------------------------- logistic


def logistic_inner(w, alpha, batch):
    x, y = batch
    z = x @ w
    return jnp.mean(jax.nn.softplus(z) - y * z) + 0.5 * jnp.sum(jnp.exp(alpha) * w**2)


def logistic_outer(w, alpha, batch):
    del alpha
    x, y = batch
    z = x @ w
    return jnp.mean(jax.nn.softplus(z) - y * z)


def logistic_newton(alpha, x, y):
    """`argmin_w` of `logistic_inner` by Newton's method in numpy float64 -> (w*, Hessian)."""
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) / len(y) + np.exp(alpha) * w
        hessian = x.T @ (x * (p * (1 - p))[:, None]) / len(y) + np.diag(np.exp(alpha))
        w = w - np.linalg.solve(hessian, grad)
        if np.linalg.norm(grad) < 1e-15:
            break
    return w, hessian


@pytest.fixture(scope="module")
def logistic(x64):
    rng = np.random.default_rng(3)
    w_true = rng.normal(size=4) * 2
    x, xv = rng.normal(size=(80, 4)), rng.normal(size=(60, 4))
    y = (rng.uniform(size=80) < 1 / (1 + np.exp(-(x @ w_true)))).astype(float)
    yv = (rng.uniform(size=60) < 1 / (1 + np.exp(-(xv @ w_true)))).astype(float)
    alpha = np.log(np.array([0.05, 0.1, 0.2, 0.02]))
    w_star, hessian = logistic_newton(alpha, x, y)

    def objective(a):
        z = xv @ logistic_newton(a, x, y)[0]
        return np.mean(np.logaddexp(0, z) - yv * z)

    h = 1e-4
    fd = np.array([(objective(alpha + h * e) - objective(alpha - h * e)) / (2 * h)
                   for e in np.eye(4)])
    return {
        "inner": logistic_inner, "outer": logistic_outer,
        "inner_batch": (jnp.asarray(x), jnp.asarray(y)),
        "outer_batch": (jnp.asarray(xv), jnp.asarray(yv)),
        "alpha": alpha, "w_star": w_star, "exact": fd,
        "eigenvalues": np.linalg.eigvalsh(hessian),
    }


@pytest.mark.parametrize("method", [hg.Exact(), CG_TIGHT])
def test_exact_and_cg_match_finite_differences_on_logistic(logistic, method):
    grad, _ = hypergradient(method, logistic, logistic["w_star"])
    np.testing.assert_allclose(grad, logistic["exact"], rtol=1e-6)


def test_neumann_converges_to_exact_on_logistic(logistic):
    lr = 1.0 / logistic["eigenvalues"].max()
    grad, info = hypergradient(hg.Neumann(lr, 400), logistic, logistic["w_star"])
    np.testing.assert_allclose(grad, logistic["exact"], rtol=1e-6)
    assert float(info["last_term_norm"]) < 1e-9


def test_unrolled_equals_autodiff_through_explicit_sgd_steps(logistic):
    lr, steps = 0.5, 4
    w0 = jnp.asarray(logistic["w_star"] + 0.3)
    inner_batch, outer_batch = logistic["inner_batch"], logistic["outer_batch"]

    def unrolled_objective(alpha):
        w = w0
        for _ in range(steps):
            w = w - lr * jax.grad(logistic_inner)(w, alpha, inner_batch)
        return logistic_outer(w, alpha, outer_batch)

    expected = np.asarray(jax.jit(jax.grad(unrolled_objective))(jnp.asarray(logistic["alpha"])))
    grad, info = hypergradient(hg.Unrolled(lr, steps=steps), logistic, w0)
    np.testing.assert_allclose(grad, expected, rtol=1e-10)
    assert int(info["hvps"]) == steps - 1


@pytest.mark.parametrize("steps", [1, 3])
def test_unrolled_finite_difference_agrees_with_exact_on_logistic(logistic, steps):
    # A cubic alpha-w coupling makes the mixed product non-linear in w, so the central
    # difference has a small, non-zero error (and "finite_difference" is not "exact" in disguise).
    def inner(w, alpha, batch):
        return logistic_inner(w, alpha, batch) + 0.1 * jnp.sum(jnp.sin(alpha) * w**3)

    problem = {**logistic, "inner": inner}
    w0 = logistic["w_star"] + 0.3
    exact, _ = hypergradient(hg.Unrolled(0.5, steps=steps), problem, w0)
    fd, _ = hypergradient(hg.Unrolled(0.5, steps=steps, hvp="finite_difference"), problem, w0)
    relative = np.linalg.norm(fd - exact) / np.linalg.norm(exact)
    assert 1e-12 < relative < 1e-4


# ----------------------------------------------------------------------------- Amended-DARTS


def amended_inner(w, alpha, batch):
    r = w - batch["C"] @ alpha
    return 0.5 * r @ batch["A"] @ r


def amended_outer(w, alpha, batch):
    return 0.5 * jnp.sum((w - batch["t"]) ** 2) + 0.5 * LAM * jnp.sum(alpha**2)


def amended_toy(a_mat, seed):
    rng = np.random.default_rng(seed)
    c_mat, t, alpha = rng.normal(size=(4, 2)), rng.normal(size=4), rng.normal(size=2)
    return {
        "inner": amended_inner, "outer": amended_outer,
        "inner_batch": {"A": jnp.asarray(a_mat), "C": jnp.asarray(c_mat)},
        "outer_batch": {"t": jnp.asarray(t)},
        "A": a_mat, "C": c_mat, "t": t, "alpha": alpha, "w_star": c_mat @ alpha,
        "w_off": c_mat @ alpha + rng.normal(size=4),
    }


def test_amended_closed_form_linear_in_eta_and_first_order_at_zero(x64):
    toy = amended_toy(spd_matrix(np.array([0.5, 1.0, 2.0, 3.0]), seed=4)[0], seed=5)
    w, a_mat = toy["w_off"], toy["A"]
    first, _ = hypergradient(hg.FirstOrder(), toy, w)
    np.testing.assert_allclose(first, LAM * toy["alpha"], rtol=1e-12)
    terms = {}
    for eta in (0.1, 0.2):
        grad, info = hypergradient(hg.Amended(eta), toy, w)
        expected_term = eta * toy["C"].T @ a_mat @ a_mat @ (w - toy["t"])
        np.testing.assert_allclose(grad - first, expected_term, rtol=1e-10)
        assert int(info["hvps"]) == 1
        terms[eta] = grad - first
    np.testing.assert_allclose(terms[0.2], 2 * terms[0.1], rtol=1e-10)
    zero, _ = hypergradient(hg.Amended(0.0), toy, w)
    np.testing.assert_array_equal(zero, first)


def test_amended_equals_exact_when_hessian_is_scaled_identity(x64):
    toy = amended_toy(2.0 * np.eye(4), seed=6)
    exact, _ = hypergradient(hg.Exact(), toy, toy["w_star"])
    closed = LAM * toy["alpha"] + toy["C"].T @ (toy["w_star"] - toy["t"])
    np.testing.assert_allclose(exact, closed, rtol=1e-10)
    amended, _ = hypergradient(hg.Amended(1 / 2.0**2), toy, toy["w_star"])
    np.testing.assert_allclose(amended, exact, rtol=1e-10)


def test_amended_term_can_point_against_exact_implicit_term(x64):
    # Spec 004 section 2.3: H = diag(1, 0.5), B = [1, 1], v = (1, -1), eta = 0.1. The exact
    # implicit term -B H^-1 v = 1 and the amended term -eta B H v = -0.05: their inner product is
    # negative, so the paper's Eq. 8 claim (angle below 90 degrees) does not hold in general.
    def inner(w, alpha, batch):
        return 0.5 * w @ jnp.diag(jnp.array([1.0, 0.5])) @ w + alpha[0] * (w[0] + w[1])

    def outer(w, alpha, batch):
        return jnp.dot(jnp.array([1.0, -1.0]), w) + 0.0 * alpha[0]

    toy = {"inner": inner, "outer": outer, "inner_batch": None, "outer_batch": None,
           "alpha": np.zeros(1)}
    first, _ = hypergradient(hg.FirstOrder(), toy, np.zeros(2))
    exact_term = hypergradient(hg.Exact(), toy, np.zeros(2))[0] - first
    amended_term = hypergradient(hg.Amended(0.1), toy, np.zeros(2))[0] - first
    np.testing.assert_allclose(exact_term, [1.0], rtol=1e-12)
    np.testing.assert_allclose(amended_term, [-0.05], rtol=1e-12)
    assert float(exact_term @ amended_term) == pytest.approx(-0.05, rel=1e-12)
