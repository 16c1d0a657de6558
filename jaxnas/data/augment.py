"""On-device preprocessing: normalization and the standard CIFAR augmentation.

Images travel to the device as uint8 and are augmented inside the jitted step with an explicit
key, so augmentation is deterministic given the step and identical however the batch is sharded.
Order as in the reference code: pad-and-crop and flip on pixels, then normalize, then cutout.
"""

import jax
import jax.numpy as jnp


def normalize(images, mean, std):
    """uint8 [..., H, W, C] -> float32, per-channel standardized."""
    x = images.astype(jnp.float32) / 255.0
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def _crop_flip(key, image, pad: int, flip: bool):
    """One image [H, W, C]: zero-pad by ``pad``, crop back at a random offset, maybe flip."""
    h, w, _ = image.shape
    k_crop, k_flip = jax.random.split(key)
    if pad:
        padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
        dy, dx = jax.random.randint(k_crop, (2,), 0, 2 * pad + 1)
        image = jax.lax.dynamic_slice(padded, (dy, dx, 0), image.shape)
    if flip:
        image = jnp.where(jax.random.bernoulli(k_flip), image[:, ::-1, :], image)
    return image


def _cutout(key, image, length: int):
    """Zeroes a ``length`` x ``length`` square (clipped at the borders) at a random centre."""
    h, w, _ = image.shape
    cy, cx = jax.random.randint(key, (2,), 0, jnp.array([h, w]))
    ys, xs = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    inside = ((ys >= cy - length // 2) & (ys < cy + length // 2)
              & (xs >= cx - length // 2) & (xs < cx + length // 2))
    return jnp.where(inside[..., None], 0.0, image)


def preprocess(key, images, mean, std, *, augment: bool, pad: int = 4, flip: bool = True,
               cutout: int = 0):
    """uint8 images [B, H, W, C] -> float32 [B, H, W, C], augmented when ``augment``.

    ``key`` is used only when augmenting; each example gets its own key by ``fold_in``.
    """
    if not augment:
        return normalize(images, mean, std)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(images.shape[0]))
    crop_keys, cut_keys = jnp.split(jax.vmap(lambda k: jax.random.split(k))(keys), 2, axis=1)
    x = jax.vmap(lambda k, im: _crop_flip(k, im, pad, flip))(crop_keys[:, 0], images)
    x = normalize(x, mean, std)
    if cutout:
        x = jax.vmap(lambda k, im: _cutout(k, im, cutout))(cut_keys[:, 0], x)
    return x
