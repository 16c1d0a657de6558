"""Scoring single paths of a trained supernet with its inherited weights, for the strategies
that select their final architecture by evaluating candidates (RandomNAS, EN²AS)."""

import jax
import numpy as np

from jaxnas.analysis.supernet_ranking import _batched, make_correct_count


class PathEvaluator:
    """``score(paths, num_batches)``: each path's accuracy (%) on the first ``num_batches``
    batches of the search's val stream, with the supernet's weights in ``state``.

    Batch norm uses each batch's own statistics, as in training, and updates nothing: the
    running statistics of a single-path supernet mix the activations of many paths. One jitted
    program serves every path (paths are operation indices ``{key: int32 [E]}``)."""

    def __init__(self, setup, state):
        problem = setup.problem
        self._net, self._mean, self._std = problem.plain_net, problem.mean, problem.std
        self._count = make_correct_count(self._net, self._mean, self._std, bn="batch")
        self._batch_size = setup.config.batch_size
        self._variables = {"params": state.params, "batch_stats": state.batch_stats}
        self._stream, self._dataset = setup.streams["val"], setup.dataset

    def score(self, paths: list, num_batches: int = 1) -> np.ndarray:
        """float64 [len(paths)]: accuracy in % of each path."""
        idx = np.stack([self._stream.batch(i) for i in range(num_batches)])
        batch = self._dataset.train.read(idx)
        valid = np.ones(idx.shape, bool)
        counts = [self._count(self._variables, path, batch["image"], batch["label"], valid)
                  for path in paths]
        return 100.0 * np.asarray(jax.device_get(counts), np.float64) / idx.size

    def test_score(self, paths: list, bn: str = "running") -> np.ndarray:
        """float64 [len(paths)]: accuracy in % of each path on the whole test split (CADAM's
        preliminary test accuracy), in batches of the search's size; ``bn``: "running" (eval
        mode) or "batch" (each batch's own statistics)."""
        count = make_correct_count(self._net, self._mean, self._std, bn=bn)
        test = self._dataset.test
        split = test.read(np.arange(len(test)))
        batches = jax.device_put(_batched(split["image"], split["label"], self._batch_size))
        counts = [count(self._variables, path, *batches) for path in paths]
        return 100.0 * np.asarray(jax.device_get(counts), np.float64) / len(test)
