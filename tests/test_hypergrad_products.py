"""Products and eigenvalues of jaxnas.hypergrad against dense Hessians, closed forms (float64)."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxnas import hypergrad as hg
from matrices import spd_matrix




pytestmark = pytest.mark.usefixtures("x64")


def mlp_problem(seed=0):
    """A tanh MLP with per-hidden-unit gates `alpha`; params and alpha are dicts of arrays."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": jnp.asarray(rng.normal(size=(3, 4))),
        "b1": jnp.asarray(rng.normal(size=(4,)) * 0.1),
        "w2": jnp.asarray(rng.normal(size=(4, 2))),
        "b2": jnp.asarray(rng.normal(size=(2,)) * 0.1),
    }
    alpha = {"gate": jnp.asarray(rng.normal(size=(4,))), "temp": jnp.asarray(0.3)}
    batch = (jnp.asarray(rng.normal(size=(16, 3))), jnp.asarray(rng.normal(size=(16, 2))))

    def loss(p, a, b):
        x, y = b
        gates = jax.nn.sigmoid(a["gate"] / (1.0 + a["temp"] ** 2))
        h = jnp.tanh(x @ p["w1"] + p["b1"]) * gates
        return jnp.mean((h @ p["w2"] + p["b2"] - y) ** 2) + 0.01 * jnp.sum(p["w1"] ** 2)

    return loss, params, alpha, batch


def dense_derivatives(loss, params, alpha, batch):
    """Dense `H = d2L/dw2`, `J = d(grad_w L)/dalpha` by jax.hessian / jax.jacfwd on flat vectors."""
    flat_w, unravel_w = ravel_pytree(params)
    flat_a, unravel_a = ravel_pytree(alpha)

    def flat_loss(xw, xa):
        return loss(unravel_w(xw), unravel_a(xa), batch)

    hessian = jax.jit(jax.hessian(flat_loss))(flat_w, flat_a)
    jac = jax.jit(jax.jacfwd(jax.grad(flat_loss, argnums=0), argnums=1))(flat_w, flat_a)
    return np.asarray(hessian), np.asarray(jac)


@pytest.fixture(scope="module")
def mlp(x64):
    """`(loss, params, alpha, batch, hessian, jac)` of `mlp_problem`, computed once per module."""
    loss, params, alpha, batch = mlp_problem()
    return (loss, params, alpha, batch, *dense_derivatives(loss, params, alpha, batch))


def random_like(tree, seed):
    flat, unravel = ravel_pytree(tree)
    return unravel(jnp.asarray(np.random.default_rng(seed).normal(size=flat.shape)))


def flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


def test_hvp_matches_dense_hessian_on_mlp_pytree(mlp):
    loss, params, alpha, batch, hessian, _ = mlp
    v = random_like(params, 1)
    hv = jax.jit(hg.hvp, static_argnums=0)(loss, params, v, alpha, batch)
    assert jax.tree.structure(hv) == jax.tree.structure(params)
    np.testing.assert_allclose(flat(hv), hessian @ flat(v), rtol=1e-10, atol=1e-12)


def test_hvp_ignores_aux(mlp):
    loss, params, alpha, batch, _, _ = mlp
    v = random_like(params, 2)
    with_aux = hg.hvp(lambda p, a, b: (loss(p, a, b), {"n": jnp.arange(3)}), params, v, alpha,
                      batch, has_aux=True)
    np.testing.assert_allclose(flat(with_aux), flat(hg.hvp(loss, params, v, alpha, batch)),
                               rtol=1e-12)


def test_mixed_product_matches_dense_jacobian_contraction(mlp):
    loss, params, alpha, batch, _, jac = mlp
    v = random_like(params, 3)
    mv = jax.jit(hg.mixed_product, static_argnums=0)(loss, params, alpha, v, batch)
    assert jax.tree.structure(mv) == jax.tree.structure(alpha)
    np.testing.assert_allclose(flat(mv), jac.T @ flat(v), rtol=1e-10, atol=1e-12)


def test_linearize_inner_matches_gradients_and_dense_products(mlp):
    loss, params, alpha, batch, hessian, jac = mlp
    lin = hg.linearize_inner(loss, params, alpha, batch)
    grad_w, grad_alpha = jax.grad(loss, argnums=(0, 1))(params, alpha, batch)
    np.testing.assert_allclose(flat(lin.grad_w), flat(grad_w), rtol=1e-12)
    np.testing.assert_allclose(flat(lin.grad_alpha), flat(grad_alpha), rtol=1e-12)
    for seed in (4, 5):
        u = random_like(params, seed)
        np.testing.assert_allclose(flat(lin.hvp(u)), hessian @ flat(u), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(flat(lin.mixed(u)), jac.T @ flat(u), rtol=1e-10, atol=1e-12)


def test_central_difference_radius_and_accuracy(mlp):
    loss, params, alpha, batch, hessian, jac = mlp
    v = random_like(params, 6)
    joint = jax.grad(loss, argnums=(0, 1))
    (hv, mv), radius = hg.central_difference(lambda w: joint(w, alpha, batch), params, v, 1e-4)
    assert float(radius) == pytest.approx(1e-4 / np.linalg.norm(flat(v)), rel=1e-12)
    np.testing.assert_allclose(flat(hv), hessian @ flat(v), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(flat(mv), jac.T @ flat(v), rtol=1e-6, atol=1e-8)
    # DARTS's radius 0.01 / ||v||: second-order accurate, error about 1e-4 relative here.
    (hv_coarse, _), _ = hg.central_difference(lambda w: joint(w, alpha, batch), params, v, 1e-2)
    error = np.linalg.norm(flat(hv_coarse) - hessian @ flat(v)) / np.linalg.norm(hessian @ flat(v))
    assert 1e-9 < error < 1e-3


def test_central_difference_of_zero_direction_is_zero():
    derivative, radius = hg.central_difference(jnp.sin, jnp.ones(3), jnp.zeros(3), 0.01)
    np.testing.assert_array_equal(np.asarray(derivative), np.zeros(3))
    assert float(radius) == pytest.approx(0.01)


def test_power_iteration_finds_known_top_eigenpair_on_pytree():
    matrix, q = spd_matrix([10.0, 6.0, 3.0, 1.0, 0.5], seed=7)

    def matvec(tree):  # the same matrix acting on a pytree split (2, 3)
        y = matrix @ jnp.concatenate([tree["a"], tree["b"]])
        return {"a": y[:2], "b": y[2:]}

    v0 = {"a": jnp.ones(2), "b": jnp.ones(3)}
    eigenvalue, vector, info = hg.power_iteration(matvec, v0, 100)
    assert float(eigenvalue) == pytest.approx(10.0, rel=1e-12)
    assert abs(np.dot(flat(vector), q[:, 0])) == pytest.approx(1.0, rel=1e-10)
    assert float(info["residual_norm"]) < 1e-8
    assert int(info["hvps"]) == 101


def test_power_iteration_keeps_sign_of_dominant_negative_eigenvalue():
    matrix = jnp.diag(jnp.array([-5.0, 2.0, 1.0]))
    eigenvalue, _, _ = hg.power_iteration(lambda v: matrix @ v, jnp.ones(3), 200)
    assert float(eigenvalue) == pytest.approx(-5.0, rel=1e-12)


top_hessian_eigenvalue = jax.jit(hg.top_hessian_eigenvalue, static_argnums=0, static_argnames="iters")


def test_top_hessian_eigenvalue_of_mlp_matches_eigvalsh(mlp):
    loss, params, alpha, batch, hessian, _ = mlp
    eigenvalues = np.linalg.eigvalsh(hessian)
    dominant = eigenvalues[np.argmax(np.abs(eigenvalues))]
    eigenvalue, vector, info = top_hessian_eigenvalue(
        loss, params, alpha, batch, key=jax.random.PRNGKey(0), iters=300)
    assert float(eigenvalue) == pytest.approx(dominant, rel=1e-8)
    np.testing.assert_allclose(hessian @ flat(vector), dominant * flat(vector), atol=1e-5)
    assert int(info["hvps"]) == 301


def test_top_hessian_eigenvalue_in_alpha(mlp):
    # The alpha-Hessian of the loss (the NAS use): params=alpha, the weights passed as an argument.
    loss, params, alpha, batch, _, _ = mlp

    def alpha_loss(a, w, b):
        return loss(w, a, b)

    flat_a, unravel_a = ravel_pytree(alpha)
    hessian = jax.jit(jax.hessian(lambda xa: loss(params, unravel_a(xa), batch)))(flat_a)
    eigenvalues = np.linalg.eigvalsh(np.asarray(hessian))
    dominant = eigenvalues[np.argmax(np.abs(eigenvalues))]
    eigenvalue, _, _ = top_hessian_eigenvalue(
        alpha_loss, alpha, params, batch, key=jax.random.PRNGKey(1), iters=300)
    assert float(eigenvalue) == pytest.approx(dominant, rel=1e-8)
