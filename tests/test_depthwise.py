"""Depthwise convolutions as dense ones with a block-diagonal kernel, and as taps
(jaxnas.spaces.depthwise): values, both gradients and a Hessian-vector product against XLA's
native depthwise convolution, through XLA's and the canonical convolutions; other convolutions
pass through untouched; and the canonical ones compiled on the CPU hold no convolution."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxnas.spaces import canonical_conv, depthwise, ops
from jaxnas.spaces.scan_cells import apply_in_loop

C = 6


def _conv(fn, stride, padding, dilation, groups, x, w):
    return fn(x, w, (stride, stride), ((padding, padding),) * 2, None, (dilation, dilation),
              lax.conv_dimension_numbers(x.shape, w.shape, depthwise.NHWC), groups)


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


FORMS = pytest.mark.parametrize("kernel,stride,padding,dilation", [
    (3, 1, 1, 1),  # sep_conv_3x3
    (5, 2, 2, 1),  # sep_conv_5x5, reduction edge
    (3, 2, 2, 2),  # dil_conv_3x3, reduction edge
    (5, 1, 4, 2),  # dil_conv_5x5
])


@pytest.mark.parametrize("inner", [lax.conv_general_dilated, canonical_conv.conv_general_dilated],
                         ids=["xla", "canonical"])
@FORMS
def test_dense_rewrite_equals_native_depthwise(inner, kernel, stride, padding, dilation):
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 9, 10, C))
    w = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, 1, C))
    native = functools.partial(_conv, lax.conv_general_dilated, stride, padding, dilation, C)
    dense = functools.partial(_conv, depthwise.as_dense(inner), stride, padding, dilation, C)

    y_ref, vjp_ref = jax.vjp(native, x, w)
    y, vjp = jax.vjp(dense, x, w)
    _close(y, y_ref)
    dy = jax.random.normal(jax.random.PRNGKey(2), y.shape)
    for got, want in zip(vjp(dy), vjp_ref(dy)):
        _close(got, want)


@pytest.mark.parametrize("channels", [32, 64])
def test_dense_rewrite_compiled_at_the_supernets_widths(channels):
    # Compiled, at the DARTS supernet's wider stages. XLA:CPU (jaxlib 0.10.2) miscompiles this
    # kernel gradient at 32 channels or more when the cotangent is a constant known at compile
    # time (jnp.ones_like inside the jitted function: the gradient of a plain sum); a supernet's
    # cotangents are computed values, the form checked here.
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, channels))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 1, channels))
    dy = jax.random.normal(jax.random.PRNGKey(2), x.shape)

    def gradients(fn):
        conv = functools.partial(_conv, fn, 1, 1, 1, channels)
        return jax.jit(lambda x, w, dy: jax.vjp(conv, x, w)[1](dy))(x, w, dy)

    for got, want in zip(gradients(depthwise.as_dense(lax.conv_general_dilated)),
                         gradients(lax.conv_general_dilated)):
        _close(got, want)


def test_dense_rewrite_hessian_vector_product_equals_native():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, C))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 1, C))
    v = jax.random.normal(jax.random.PRNGKey(2), w.shape)

    def hvp(fn):
        loss = lambda w: jnp.sum(jnp.tanh(_conv(fn, 2, 2, 2, C, x, w)) ** 2)
        return jax.jvp(jax.grad(loss), (w,), (v,))[1]

    _close(hvp(depthwise.as_dense(lax.conv_general_dilated)), hvp(lax.conv_general_dilated))


@pytest.mark.parametrize("groups,in_per_group", [(1, C), (2, C // 2)], ids=["dense", "grouped"])
def test_other_convolutions_pass_through(groups, in_per_group):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 7, C))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, in_per_group, C))
    want = _conv(lax.conv_general_dilated, 1, 1, 1, groups, x, w)
    np.testing.assert_array_equal(
        _conv(depthwise.as_dense(lax.conv_general_dilated), 1, 1, 1, groups, x, w), want)


def _group_counts(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [eqn.params["feature_group_count"] for eqn in jaxpr.eqns
            if eqn.primitive.name == "conv_general_dilated"]


def test_sep_conv_keeps_its_depthwise_parameters_and_runs_dense_on_cpu():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, C))
    op = ops.make_op("sep_conv_3x3", C, 1, affine=False)
    variables = op.init(jax.random.PRNGKey(1), x)
    assert variables["params"]["Conv_0"]["kernel"].shape == (3, 3, 1, C)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(depthwise, "dense_is_faster", lambda: False)
        assert _group_counts(op.apply, variables, x) == [C, 1, C, 1]
        want = op.apply(variables, x)
    assert depthwise.dense_is_faster() == (jax.default_backend() == "cpu")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(depthwise, "dense_is_faster", lambda: True)
        assert _group_counts(op.apply, variables, x) == [1, 1, 1, 1]
        _close(op.apply(variables, x), want)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU backend's lowering")
@FORMS
def test_canonical_depthwise_compiles_to_taps_on_cpu(kernel, stride, padding, dilation):
    # Compiled (not eager), so that XLA:CPU's lowering, the taps, is what runs.
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    x = jax.random.normal(keys[0], (3, 9, 10, C))
    w = jax.random.normal(keys[1], (kernel, kernel, 1, C))
    v = (jax.random.normal(keys[2], x.shape), jax.random.normal(keys[3], w.shape))

    def derivatives(fn):
        conv = functools.partial(_conv, fn, stride, padding, dilation, C)
        ct = jax.random.normal(keys[4], jax.eval_shape(conv, x, w).shape)
        loss = lambda x, w: jnp.sum(jnp.tanh(conv(x, w)) * ct)
        hvp = lambda x, w: jax.jvp(jax.grad(loss, (0, 1)), (x, w), v)[1]
        return jax.jit(lambda x, w: (conv(x, w), *jax.grad(loss, (0, 1))(x, w), *hvp(x, w)))

    for got, want in zip(derivatives(canonical_conv.conv_general_dilated)(x, w),
                         derivatives(lax.conv_general_dilated)(x, w)):
        _close(got, want)
    compiled = derivatives(canonical_conv.conv_general_dilated).lower(x, w).compile()
    assert "convolution(" not in compiled.as_text()


def test_loop_bodies_keep_depthwise_canonical_convolutions():
    # What reaches the CPU lowering above: in a scan body (apply_in_loop) a separable
    # convolution's depthwise halves stay depthwise canonical convolutions, not dense ones.
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, C))
    op = ops.make_op("sep_conv_3x3", C, 1, affine=False)
    variables = op.init(jax.random.PRNGKey(1), x)
    jaxpr = jax.make_jaxpr(lambda v, x: apply_in_loop(op, v, x, update=False)[0])(variables, x)
    groups = [eqn.params["groups"] for eqn in jaxpr.eqns if eqn.primitive is canonical_conv.conv_p]
    assert groups == [C, 1, C, 1]
