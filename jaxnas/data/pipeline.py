"""The search split and deterministic batch streams.

DARTS searches on the training set split in two: a *train* half for the weights and a *val* half
for the architecture. ``search_split`` draws that split from a fixed seed. A ``BatchStream``
turns a set of example indices into an endless, deterministic stream of batches: epoch ``e`` is a
permutation drawn from ``(seed, e)`` and a batch never crosses an epoch boundary (the remainder of
an epoch is dropped). Batch number ``position`` is a pure function of ``(indices, seed, position)``,
so a run resumed at a saved position sees exactly the batches it would have seen.
``step_indices`` picks, for one step of a loop, the rows of its batches that this process loads;
``padded_batches`` covers a split in fixed-size batches for evaluation. Both pipelines (in memory
and streaming) read the rows these name.
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
        self._epoch_order = (-1, None)  # one attribute: safe to share between reading threads

    def batch(self, position: int) -> np.ndarray:
        """The ``position``-th batch of the stream: int indices [batch_size]."""
        epoch, offset = divmod(position, self.steps_per_epoch)
        cached, order = self._epoch_order
        if epoch != cached:
            order = (np.random.default_rng([self.seed, epoch]).permutation(self.indices)
                     if self.shuffle else self.indices)
            self._epoch_order = (epoch, order)
        return order[offset * self.batch_size:(offset + 1) * self.batch_size]


def step_indices(streams: dict, positions: dict, per_step: dict, rows: slice) -> dict:
    """The example indices one step reads: ``{stream: int [n, rows]}``, batches ``positions[s]``
    to ``positions[s] + n - 1`` of ``streams[s]`` with n = ``per_step[s]``, cut to this
    process's ``rows`` (``local_rows``); a stream with n = 0 is left out."""
    return {name: np.stack([stream.batch(positions[name] + i)[rows]
                            for i in range(per_step[name])])
            for name, stream in streams.items() if per_step[name]}


def padded_batches(num_examples: int, batch_size: int, rows: slice):
    """``num_examples`` in order, in batches of ``batch_size`` (the last one padded with index
    0), cut to ``rows``: a list of ``(indices int [rows], mask float32 [rows])``, the mask 0 on
    the padding."""
    padded = -(-num_examples // batch_size) * batch_size
    index = np.arange(padded)
    mask = (index < num_examples).astype(np.float32)
    index = np.where(index < num_examples, index, 0)
    return [(index[start:start + batch_size][rows], mask[start:start + batch_size][rows])
            for start in range(0, padded, batch_size)]


class StepReader:
    """The batches of step ``j`` of a loop, for this process: ``{stream: {"image": uint8
    [n, rows, H, W, C], "label": int32 [n, rows]}}`` (``step_indices`` at positions
    ``j * per_step``), read from ``split`` (``ImageDataset.train``, ``RecordSplit``). A class,
    not a closure, so that grain's worker processes can take it."""

    def __init__(self, split, streams: dict, per_step: dict, rows: slice):
        self.split, self.streams, self.per_step, self.rows = split, streams, per_step, rows

    def __call__(self, step: int) -> dict:
        positions = {name: step * n for name, n in self.per_step.items()}
        indices = step_indices(self.streams, positions, self.per_step, self.rows)
        return {name: self.split.read(idx) for name, idx in indices.items()}


class EvalReader:
    """Batch ``j`` of an evaluation: ``padded_batches``'s batch ``j`` read from ``split``,
    ``{"image", "label", "mask"}``."""

    def __init__(self, split, batches: list):
        self.split, self.batches = split, batches

    def __call__(self, j: int) -> dict:
        indices, mask = self.batches[j]
        return {**self.split.read(indices), "mask": mask}
