"""The search split and deterministic batch streams.

DARTS searches on the training set split in two: a *train* half for the weights and a *val* half
for the architecture. ``search_split`` draws that split from a fixed seed. A ``BatchStream``
turns a set of example indices into an endless, deterministic stream of batches: epoch ``e`` is a
permutation drawn from ``(seed, e)`` and a batch never crosses an epoch boundary (the remainder of
an epoch is dropped). Batch number ``position`` is a pure function of ``(indices, seed, position)``,
so a run resumed at a saved position sees exactly the batches it would have seen.
"""

import numpy as np


def search_split(num_examples: int, train_portion: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and val halves of a training set of ``num_examples``."""
    if not 0.0 < train_portion < 1.0:
        raise ValueError(f"train_portion must be in (0, 1), got {train_portion}.")
    order = np.random.default_rng([seed, 0x5EA2C4]).permutation(num_examples)
    cut = int(round(train_portion * num_examples))
    if cut == 0 or cut == num_examples:
        raise ValueError(f"train_portion={train_portion} of {num_examples} examples leaves an "
                         "empty half; use a portion nearer 0.5 or more data.")
    return np.sort(order[:cut]), np.sort(order[cut:])


class BatchStream:
    """Batches of ``batch_size`` indices drawn from ``indices``, epoch after epoch."""

    def __init__(self, indices: np.ndarray, batch_size: int, seed: int, shuffle: bool = True):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        if batch_size > len(indices):
            raise ValueError(f"batch_size {batch_size} exceeds the {len(indices)} examples it "
                             "draws from; lower the batch size or use more data.")
        self.indices = np.asarray(indices)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.steps_per_epoch = len(self.indices) // batch_size
        self._epoch, self._order = -1, None

    def batch(self, position: int) -> np.ndarray:
        """The ``position``-th batch of the stream: int indices [batch_size]."""
        epoch, offset = divmod(position, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = (np.random.default_rng([self.seed, epoch]).permutation(self.indices)
                           if self.shuffle else self.indices)
        return self._order[offset * self.batch_size:(offset + 1) * self.batch_size]
