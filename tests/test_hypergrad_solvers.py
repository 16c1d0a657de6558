"""CG, Neumann series and dense solve of jaxnas.hypergrad against numpy linear algebra (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import hypergrad as hg
from matrices import spd_matrix


pytestmark = pytest.mark.usefixtures("x64")




def as_pytree_operator(matrix):
    """`matrix` acting on the pytree `(x[:2], {"rest": x[2:]})`, and the conversions."""

    def to_tree(x):
        x = jnp.asarray(x)
        return (x[:2], {"rest": x[2:]})

    def to_flat(tree):
        return np.concatenate([np.asarray(tree[0]), np.asarray(tree[1]["rest"])])

    def matvec(tree):
        return to_tree(jnp.asarray(matrix) @ jnp.concatenate([tree[0], tree[1]["rest"]]))

    return matvec, to_tree, to_flat


def test_cg_solves_spd_system_on_pytree():
    matrix = spd_matrix(np.linspace(0.5, 20.0, 8), seed=0)[0]
    b = np.random.default_rng(1).normal(size=8)
    matvec, to_tree, to_flat = as_pytree_operator(matrix)
    x, info = jax.jit(hg.cg, static_argnums=(0, 2))(matvec, to_tree(b), 50, 1e-12)
    np.testing.assert_allclose(to_flat(x), np.linalg.solve(matrix, b), rtol=1e-10)
    assert bool(info["converged"]) and not bool(info["breakdown"])
    assert 1 <= int(info["iterations"]) <= 8 + 2
    assert int(info["hvps"]) == int(info["iterations"]) + 1
    assert float(info["relative_residual"]) <= 1e-12


def test_cg_reports_non_convergence_honestly():
    matrix = spd_matrix(np.logspace(-3, 2, 20), seed=2)[0]
    b = np.random.default_rng(3).normal(size=20)
    x, info = hg.cg(lambda v: jnp.asarray(matrix) @ v, jnp.asarray(b), 3, 1e-8)
    true_relative = np.linalg.norm(b - matrix @ np.asarray(x)) / np.linalg.norm(b)
    assert not bool(info["converged"])
    assert not bool(info["breakdown"])
    assert int(info["iterations"]) == 3
    assert float(info["relative_residual"]) > 1e-8
    # The reported residual is the one of the returned x, not a placeholder.
    assert float(info["relative_residual"]) == pytest.approx(true_relative, rel=1e-9)
    assert float(info["residual_norm"]) == pytest.approx(
        true_relative * np.linalg.norm(b), rel=1e-9)


def test_cg_converged_flag_is_the_relative_residual_test():
    matrix = jnp.asarray(spd_matrix(np.logspace(-1, 1, 30), seed=12)[0])
    b = jnp.asarray(np.random.default_rng(13).normal(size=30))
    solve = jax.jit(lambda maxiter: hg.cg(lambda v: matrix @ v, b, maxiter, 1e-3)[1])
    iterations = []
    for maxiter in range(1, 31):  # maxiter may be traced: one compilation
        info = solve(maxiter)
        converged = bool(info["converged"])
        assert converged == (float(info["relative_residual"]) <= 1e-3)
        assert converged or int(info["iterations"]) == maxiter
        iterations.append(int(info["iterations"]))
    # It stops at the first iterate that meets the tolerance, and stays there for larger maxiter.
    assert 1 < iterations[-1] < 30 and iterations.count(iterations[-1]) == 31 - iterations[-1]


def test_cg_with_damping_solves_shifted_system():
    matrix = spd_matrix(np.linspace(1.0, 10.0, 6), seed=4)[0]
    b = np.random.default_rng(5).normal(size=6)
    x, info = hg.cg(lambda v: jnp.asarray(matrix) @ v, jnp.asarray(b), 30, 1e-12, damping=0.7)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(matrix + 0.7 * np.eye(6), b),
                               rtol=1e-10)
    assert bool(info["converged"])


def test_cg_damping_makes_indefinite_matrix_solvable():
    matrix = spd_matrix(np.array([-1.0, 2.0, 3.0, 5.0]), seed=6)[0]
    b = np.random.default_rng(7).normal(size=4)
    x, info = hg.cg(lambda v: jnp.asarray(matrix) @ v, jnp.asarray(b), 30, 1e-12, damping=2.0)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(matrix + 2.0 * np.eye(4), b),
                               rtol=1e-10)
    assert bool(info["converged"]) and not bool(info["breakdown"])


def test_cg_flags_breakdown_on_negative_curvature():
    matrix = jnp.diag(jnp.array([1.0, -1.0]))
    x, info = hg.cg(lambda v: matrix @ v, jnp.array([1.0, 2.0]), 10, 1e-10)
    # p = b has p^T A p = 1 - 4 < 0: no step is taken, the flags say so.
    assert bool(info["breakdown"])
    assert not bool(info["converged"])
    assert int(info["iterations"]) == 1
    np.testing.assert_array_equal(np.asarray(x), np.zeros(2))


def test_cg_zero_right_hand_side():
    x, info = hg.cg(lambda v: 3.0 * v, jnp.zeros(4), 10, 1e-10)
    np.testing.assert_array_equal(np.asarray(x), np.zeros(4))
    assert bool(info["converged"]) and int(info["iterations"]) == 0
    assert float(info["residual_norm"]) == 0.0


def test_neumann_series_equals_dense_partial_sum_and_bound():
    eigenvalues = np.linspace(0.5, 4.0, 6)
    matrix = spd_matrix(eigenvalues, seed=8)[0]
    v = np.random.default_rng(9).normal(size=6)
    lr = 1.0 / eigenvalues.max()
    mu = eigenvalues.min()
    exact = np.linalg.solve(matrix, v)
    errors = []
    for terms in (0, 1, 2, 5, 10, 40):
        u, info = hg.neumann_series(lambda x: jnp.asarray(matrix) @ x, jnp.asarray(v), lr, terms)
        step = np.eye(6) - lr * matrix
        partial = lr * sum(np.linalg.matrix_power(step, k) for k in range(terms + 1)) @ v
        np.testing.assert_allclose(np.asarray(u), partial, rtol=1e-10, atol=1e-12)
        assert int(info["hvps"]) == terms
        last = lr * np.linalg.matrix_power(step, terms) @ v
        assert float(info["last_term_norm"]) == pytest.approx(np.linalg.norm(last), rel=1e-10)
        error = np.linalg.norm(np.asarray(u) - exact)
        assert error <= np.linalg.norm(v) * (1 - lr * mu) ** (terms + 1) / mu * (1 + 1e-12)
        errors.append(error)
    assert all(a > b for a, b in zip(errors, errors[1:]))


def test_neumann_series_terms_zero_is_scaled_identity():
    v = jnp.array([1.0, -2.0, 3.0])
    u, _ = hg.neumann_series(lambda x: 100.0 * x, v, 0.25, 0)
    np.testing.assert_array_equal(np.asarray(u), 0.25 * np.asarray(v))


def test_neumann_series_divergence_is_visible():
    matrix = jnp.diag(jnp.array([1.0, 10.0]))
    lr = 0.25  # lr * 10 = 2.5 > 2: the factor |1 - 2.5| = 1.5 makes the series diverge
    for terms in (5, 20):
        _, info = hg.neumann_series(lambda x: matrix @ x, jnp.ones(2), lr, terms)
        expected = lr * np.hypot(0.75**terms, 1.5**terms)
        assert float(info["last_term_norm"]) == pytest.approx(expected, rel=1e-12)
    assert float(info["last_term_norm"]) > 500


def test_dense_solve_on_pytree():
    matrix = spd_matrix(np.linspace(1.0, 5.0, 5), seed=10)[0]
    b = np.random.default_rng(11).normal(size=5)
    matvec, to_tree, to_flat = as_pytree_operator(matrix)
    x, info = hg.dense_solve(matvec, to_tree(b))
    np.testing.assert_allclose(to_flat(x), np.linalg.solve(matrix, b), rtol=1e-12)
    assert int(info["hvps"]) == 5
    assert float(info["residual_norm"]) < 1e-12
