"""jaxnas.hypergrad on pytrees, under jit and vmap, with aux, in float32, and argument validation.

The problem: `w = {"dense": (3, 2), "bias": (2,)}`, `alpha = (log-penalties (2,), (1,))`, a
strongly convex inner loss that is not quadratic (softplus term) and a validation outer loss that
also depends on alpha directly. Dense references: `jax.hessian` / `jax.jacfwd` on flat vectors.
"""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxnas import hypergrad as hg






def inner_loss(w, alpha, batch):
    x, y = batch
    pred = x @ w["dense"] + w["bias"]
    penalty = jnp.sum(jnp.exp(alpha[0]) * jnp.sum(w["dense"] ** 2, axis=0))
    penalty = penalty + jnp.exp(alpha[1][0]) * jnp.sum(w["bias"] ** 2)
    return jnp.mean((pred - y) ** 2) + 0.1 * jnp.mean(jax.nn.softplus(pred)) + 0.5 * penalty


def outer_loss(w, alpha, batch):
    x, y = batch
    return jnp.mean((x @ w["dense"] + w["bias"] - y) ** 2) + 0.01 * jnp.sum(alpha[0] ** 2)


def make_problem(dtype, seed=0):
    rng = np.random.default_rng(seed)

    def array(*shape):
        return jnp.asarray(rng.normal(size=shape), dtype=dtype)

    w = {"dense": array(3, 2), "bias": array(2)}
    alpha = (array(2) * 0.5 - 1.0, array(1) * 0.5 - 1.0)
    return w, alpha, (array(20, 3), array(20, 2)), (array(15, 3), array(15, 2))


FIRST, UNROLLED, NEUMANN, CG, EXACT, AMENDED = METHODS = (
    hg.FirstOrder(),
    hg.Unrolled(0.1, steps=2, hvp="finite_difference"),
    hg.Neumann(0.1, 2),
    hg.ConjugateGradient(maxiter=50, tol=1e-10),
    hg.Exact(),
    hg.Amended(0.1),
)

hypergradient_jit = jax.jit(hg.hypergradient, static_argnums=(0, 1, 2), static_argnames="has_aux")


def flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


def dense_reference(w, alpha, inner_batch, outer_batch):
    """`(g_alpha, g_w, H, J)` with `J = d grad_w L_in / d alpha`, all dense, flat."""
    flat_w, unravel_w = ravel_pytree(w)
    flat_a, unravel_a = ravel_pytree(alpha)

    @jax.jit
    def derivatives(xw, xa):
        def inner(u, a):
            return inner_loss(unravel_w(u), unravel_a(a), inner_batch)

        def outer(u, a):
            return outer_loss(unravel_w(u), unravel_a(a), outer_batch)

        g_w, g_alpha = jax.grad(outer, argnums=(0, 1))(xw, xa)
        return (g_alpha, g_w, jax.hessian(inner)(xw, xa),
                jax.jacfwd(jax.grad(inner), argnums=1)(xw, xa))

    return [np.asarray(x) for x in derivatives(flat_w, flat_a)]


@pytest.mark.parametrize("linearize", [True, False])
def test_pytree_methods_match_dense_formulas(x64, linearize):
    # linearize=False: the implicit methods' products each their own jvp, not one linearization.
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)
    g_alpha, g_w, hessian, jac = dense_reference(w, alpha, inner_batch, outer_batch)
    inner_grad_norm = np.linalg.norm(flat(jax.grad(inner_loss)(w, alpha, inner_batch)))
    implicit = g_alpha - jac.T @ np.linalg.solve(hessian, g_w)
    step = np.eye(len(g_w)) - NEUMANN.lr * hessian
    expected = {
        FIRST: g_alpha,
        EXACT: implicit,
        CG: implicit,
        NEUMANN: g_alpha - NEUMANN.lr * jac.T @ (np.eye(len(g_w)) + step + step @ step) @ g_w,
        AMENDED: g_alpha - AMENDED.eta * jac.T @ hessian @ g_w,
    }
    for method, value in expected.items():
        if method != FIRST:
            method = dataclasses.replace(method, linearize=linearize)
        grad, info = hypergradient_jit(method, inner_loss, outer_loss, w, alpha, inner_batch,
                                       outer_batch)
        assert jax.tree.structure(grad) == jax.tree.structure(alpha)
        assert [g.shape for g in grad] == [a.shape for a in alpha]
        np.testing.assert_allclose(flat(grad), value, rtol=1e-8, err_msg=repr(method))
        if method != FIRST:
            np.testing.assert_allclose(info["inner_grad_norm"], inner_grad_norm, rtol=1e-12)


@pytest.mark.parametrize("linearize", [True, False])
@pytest.mark.parametrize("terms", [0, 1, 3])
def test_neumann_in_a_loop_matches_the_dense_series(x64, terms, linearize):
    # loop=True: the series' products in one lax.scan, M^T x summed over its terms.
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)
    g_alpha, g_w, hessian, jac = dense_reference(w, alpha, inner_batch, outer_batch)
    lr = NEUMANN.lr
    step = np.eye(len(g_w)) - lr * hessian
    powers = [np.linalg.matrix_power(step, k) @ g_w for k in range(terms + 1)]
    method = hg.Neumann(lr, terms, linearize=linearize, loop=True)
    assert hg.products_in_loop(method) and hg.products_in_loop(CG)
    assert not any(hg.products_in_loop(m) for m in (hg.Neumann(lr, terms), EXACT, AMENDED))
    grad, info = hypergradient_jit(method, inner_loss, outer_loss, w, alpha, inner_batch,
                                   outer_batch)
    assert jax.tree.structure(grad) == jax.tree.structure(alpha)
    np.testing.assert_allclose(flat(grad), g_alpha - lr * jac.T @ sum(powers), rtol=1e-8)
    np.testing.assert_allclose(info["last_term_norm"], lr * np.linalg.norm(powers[-1]),
                               rtol=1e-10)
    np.testing.assert_allclose(
        info["inner_grad_norm"],
        np.linalg.norm(flat(jax.grad(inner_loss)(w, alpha, inner_batch))), rtol=1e-12)
    assert int(info["hvps"]) == terms


def test_pytree_unrolled_matches_autodiff_through_the_sgd_steps(x64):
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)

    @jax.jit
    @jax.grad
    def unrolled_objective(alpha):
        point = w
        for _ in range(UNROLLED.steps):
            point = jax.tree.map(lambda p, g: p - UNROLLED.lr * g, point,
                                 jax.grad(inner_loss)(point, alpha, inner_batch))
        return outer_loss(point, alpha, outer_batch)

    grad, _ = hypergradient_jit(UNROLLED, inner_loss, outer_loss, w, alpha, inner_batch,
                                outer_batch)
    np.testing.assert_allclose(flat(grad), flat(unrolled_objective(alpha)), rtol=1e-4)


def test_jit_matches_eager(x64):
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)
    for method in (UNROLLED, CG):  # unrolled steps, central differences, while_loop
        eager, eager_info = hg.hypergradient(method, inner_loss, outer_loss, w, alpha,
                                             inner_batch, outer_batch)
        jitted, jitted_info = hypergradient_jit(method, inner_loss, outer_loss, w, alpha,
                                                inner_batch, outer_batch)
        np.testing.assert_allclose(flat(jitted), flat(eager), rtol=1e-10, err_msg=repr(method))
        assert set(jitted_info) == set(eager_info)
        assert int(jitted_info["hvps"]) == int(eager_info["hvps"])


def test_jitted_step_compiles_once_and_methods_are_static(x64):
    traces = []

    @jax.jit
    def step(w, alpha, inner_batch, outer_batch):
        traces.append(None)  # runs only while tracing
        grad, info = hg.hypergradient(NEUMANN, inner_loss, outer_loss, w, alpha, inner_batch,
                                      outer_batch)
        return jax.tree.map(lambda a, g: a - 0.1 * g, alpha, grad), info["outer_loss"]

    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)
    for seed in range(3):
        new_w, _, new_inner, new_outer = make_problem(jnp.float64, seed=seed + 1)
        alpha, _ = step(new_w, alpha, new_inner, new_outer)
    assert len(traces) == 1

    # Equal method instances are equal static arguments: no retrace; a different one retraces.
    counted = []

    def counted_hypergradient(method, w, alpha):
        counted.append(None)
        return hg.hypergradient(method, inner_loss, outer_loss, w, alpha, inner_batch,
                                outer_batch)[0]

    fn = jax.jit(counted_hypergradient, static_argnums=0)
    assert hg.Neumann(0.1, 3) == hg.Neumann(0.1, 3)
    assert hash(hg.Neumann(0.1, 3)) == hash(hg.Neumann(0.1, 3))
    fn(hg.Neumann(0.1, 3), w, alpha)
    fn(hg.Neumann(0.1, 3), w, alpha)
    assert len(counted) == 1
    fn(hg.Neumann(0.1, 4), w, alpha)
    assert len(counted) == 2


@pytest.mark.parametrize("method", [CG, UNROLLED])
def test_vmap_over_alphas_equals_loop(x64, method):
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)
    alphas = (alpha[0] + jnp.array([[0.0, 0.0], [1.0, -0.5], [-2.0, 0.5]]),
              alpha[1] + jnp.array([[0.0], [2.0], [-1.0]]))

    def one(a):
        return hg.hypergradient(method, inner_loss, outer_loss, w, a, inner_batch, outer_batch)

    batched, batched_info = jax.jit(jax.vmap(one))(alphas)
    for i in range(3):
        single, single_info = jax.jit(one)(jax.tree.map(lambda x: x[i], alphas))
        np.testing.assert_allclose(flat(jax.tree.map(lambda x: x[i], batched)), flat(single),
                                   rtol=1e-10)
        for key in single_info:
            np.testing.assert_allclose(np.asarray(batched_info[key][i]),
                                       np.asarray(single_info[key]), rtol=1e-10, atol=1e-14)
    if isinstance(method, hg.ConjugateGradient):  # the solves needed different iteration counts
        assert bool(jnp.all(batched_info["converged"]))


def test_has_aux_returns_outer_aux_and_same_gradients(x64):
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)

    def inner_with_aux(w, alpha, batch):
        return inner_loss(w, alpha, batch), {"ignored": jnp.arange(3)}

    def outer_with_aux(w, alpha, batch):
        x, _ = batch
        pred = x @ w["dense"] + w["bias"]
        return outer_loss(w, alpha, batch), {"pred_mean": jnp.mean(pred, axis=0),
                                             "count": jnp.int32(x.shape[0])}

    for method in (FIRST, UNROLLED, NEUMANN, hg.Amended(0.1, linearize=False)):
        grad, info = hypergradient_jit(method, inner_with_aux, outer_with_aux, w, alpha,
                                       inner_batch, outer_batch, has_aux=True)
        plain, plain_info = hypergradient_jit(method, inner_loss, outer_loss, w, alpha,
                                              inner_batch, outer_batch)
        np.testing.assert_allclose(flat(grad), flat(plain), rtol=1e-12, err_msg=repr(method))
        assert "aux" not in plain_info
        # The aux comes from the point where the outer loss was evaluated: w, or the last SGD
        # iterate for Unrolled (written out here).
        point = w
        if isinstance(method, hg.Unrolled):
            for _ in range(method.steps):
                point = jax.tree.map(lambda p, g: p - method.lr * g, point,
                                     jax.grad(inner_loss)(point, alpha, inner_batch))
        _, expected_aux = outer_with_aux(point, alpha, outer_batch)
        np.testing.assert_allclose(np.asarray(info["aux"]["pred_mean"]),
                                   np.asarray(expected_aux["pred_mean"]), rtol=1e-10)
        assert int(info["aux"]["count"]) == 15
        assert float(info["outer_loss"]) == pytest.approx(
            float(outer_loss(point, alpha, outer_batch)), rel=1e-12)


@jax.jit
def all_methods(w, alpha, inner_batch, outer_batch):
    """Every method in one program (one compilation per dtype)."""
    return [hg.hypergradient(m, inner_loss, outer_loss, w, alpha, inner_batch, outer_batch)
            for m in METHODS]


def test_float32_runs_and_stays_close_to_float64():
    with jax.enable_x64(True):
        reference = [flat(grad) for grad, _ in all_methods(*make_problem(jnp.float64))]
    results = all_methods(*make_problem(jnp.float32))
    for method, (grad, info), grad64 in zip(METHODS, results, reference):
        assert all(g.dtype == jnp.float32 for g in grad), repr(method)
        assert np.all(np.isfinite(flat(grad)))
        np.testing.assert_allclose(flat(grad), grad64, rtol=2e-4, atol=1e-5,
                                   err_msg=repr(method))
        if method is CG:  # tol 1e-10 is below float32 precision,
            assert not bool(info["converged"])  # and the recomputed residual says so
            assert 1e-10 < float(info["relative_residual"]) < 1e-4


def test_unknown_method_is_a_type_error():
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float32)
    with pytest.raises(TypeError, match="Neumann"):
        hg.hypergradient("neumann", inner_loss, outer_loss, w, alpha, inner_batch, outer_batch)


@pytest.mark.parametrize("build, name, value", [
    (lambda: hg.Unrolled(0.0), "lr", 0.0),
    (lambda: hg.Unrolled(-0.1), "lr", -0.1),
    (lambda: hg.Unrolled("0.1"), "lr", "0.1"),
    (lambda: hg.Unrolled(0.1, steps=0), "steps", 0),
    (lambda: hg.Unrolled(0.1, steps=1.5), "steps", 1.5),
    (lambda: hg.Unrolled(0.1, hvp="fd"), "hvp", "fd"),
    (lambda: hg.Unrolled(0.1, eps=0.0), "eps", 0.0),
    (lambda: hg.Neumann(float("nan"), 2), "lr", float("nan")),
    (lambda: hg.Neumann(0.1, -1), "terms", -1),
    (lambda: hg.Neumann(0.1, True), "terms", True),
    (lambda: hg.ConjugateGradient(0, 1e-5), "maxiter", 0),
    (lambda: hg.ConjugateGradient(10, -1e-5), "tol", -1e-5),
    (lambda: hg.ConjugateGradient(10, 1e-5, damping=-1.0), "damping", -1.0),
    (lambda: hg.Amended(-0.1), "eta", -0.1),
    (lambda: hg.Amended(float("inf")), "eta", float("inf")),
    (lambda: hg.Neumann(0.1, 2, linearize=1), "linearize", 1),
    (lambda: hg.ConjugateGradient(10, 1e-5, linearize="yes"), "linearize", "yes"),
    (lambda: hg.Exact(linearize=None), "linearize", None),
    (lambda: hg.Amended(0.1, linearize=0), "linearize", 0),
    (lambda: hg.Neumann(0.1, 2, loop="yes"), "loop", "yes"),
])
def test_method_validation_names_the_bad_value(build, name, value):
    with pytest.raises(ValueError, match=rf"\b{name}\b.*{re.escape(repr(value))}"):
        build()


def test_valid_methods_normalize_numbers():
    method = hg.Unrolled(np.float32(0.5), steps=np.int64(2))
    assert method == hg.Unrolled(0.5, steps=2)
    assert isinstance(method.lr, float) and isinstance(method.steps, int)
    assert hg.ConjugateGradient(5, 0) == hg.ConjugateGradient(5, 0.0, damping=0)


def test_a_traced_learning_rate_equals_the_static_one(x64):
    # A scheduled learning rate builds the method inside jit with a traced scalar.
    w, alpha, inner_batch, outer_batch = make_problem(jnp.float64)

    @jax.jit
    def scheduled(lr):
        return hg.hypergradient(hg.Neumann(lr, 2), inner_loss, outer_loss, w, alpha,
                                inner_batch, outer_batch)[0]

    static, _ = hypergradient_jit(hg.Neumann(0.05, 2), inner_loss, outer_loss, w, alpha,
                                  inner_batch, outer_batch)
    np.testing.assert_allclose(flat(scheduled(0.05)), flat(static), rtol=1e-12)
    assert not np.allclose(flat(scheduled(0.1)), flat(static))
