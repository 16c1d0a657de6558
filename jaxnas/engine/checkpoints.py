"""Orbax checkpoints of the whole search or training state, with resume, that cannot lie.

Checkpoints go to ``WORKDIR/checkpoints/<step>``. Orbax writes each into a temporary directory and
renames it when complete, so a run killed while writing leaves no half checkpoint behind. Beside
them, ``WORKDIR/checkpoint_digests.json`` records a SHA-256 digest of every saved state's values
(written before the checkpoint is committed). A checkpoint that cannot be restored, whose
restored values do not match its digest (bytes damaged on disk) or whose restored state is not
finite is moved aside to ``WORKDIR/checkpoints_corrupt/`` with a warning, never deleted, and the
previous one is used.

In a multi-process run (``jaxnas.distributed``) every process takes part in saving and restoring
each checkpoint (orbax's multi-process protocol, in the workdir they share); process 0 alone
writes the digests and moves a bad checkpoint aside.

A run that streams its data (``with_data``) saves its loader's iterator state beside the state,
as JSON (the ``data`` item; process 0's, which every process shares, as the loader's position
does not depend on the number of processes), and ``restore_latest`` sets ``restored_data``.
"""

import hashlib
import json
import os
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxnas.distributed import is_chief, on_chief
from jaxnas.files import write_json
from jaxnas.log import logger

DIGESTS = "checkpoint_digests.json"


def state_digest(state) -> str:
    """SHA-256 of every leaf of ``state`` (its path, dtype, shape and bytes), on the host."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(jax.device_get(state)):
        value = np.ascontiguousarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}|{value.dtype}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def nonfinite_leaves(state) -> list[str]:
    """The paths of the floating-point leaves of ``state`` that hold a NaN or an infinity."""
    bad = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(jax.device_get(state)):
        value = np.asarray(leaf)
        if np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value)):
            bad.append(jax.tree_util.keystr(path))
    return bad


class Checkpoints:
    def __init__(self, workdir: str, keep: int = 3, with_data: bool = False):
        if keep < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {keep}.")
        self.workdir = workdir
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        self.digest_path = os.path.join(workdir, DIGESTS)
        self.with_data = with_data
        self.restored_data = None
        self.manager = ocp.CheckpointManager(
            self.directory, item_names=("default", "data") if with_data else None,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

    def _args(self, state_args, data_args):
        """The manager's args: the state's alone, or the state's and the data's."""
        if not self.with_data:
            return state_args
        return ocp.args.Composite(default=state_args, data=data_args)

    def _digests(self) -> dict:
        if not os.path.exists(self.digest_path):
            return {}
        try:
            with open(self.digest_path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            logger.warning("The checkpoint digests %s cannot be read (%s); checkpoints are "
                           "checked for finite values only.", self.digest_path, e)
            return {}

    def save(self, step: int, state, data=None) -> None:
        """Records the digest of ``state`` and starts saving it as checkpoint ``step``
        (asynchronously), with the data loader's state ``data`` (a JSON-able dict) when
        ``with_data``. Refuses a state that is not finite."""
        host = jax.device_get(state)
        bad = nonfinite_leaves(host)
        if bad:
            raise FloatingPointError(f"Refusing to checkpoint step {step}: {bad[0]} (and "
                                     f"{len(bad) - 1} more) is NaN or infinite.")
        if is_chief():
            # Keep the digests of every step from the oldest one still on disk (saves still in
            # flight are not listed yet).
            oldest = min(self.manager.all_steps(), default=0)
            digests = {k: v for k, v in self._digests().items() if int(k) >= oldest}
            write_json(self.digest_path, {**digests, str(step): state_digest(host)},
                       sort_keys=True)
        self.manager.save(step, args=self._args(ocp.args.StandardSave(state),
                                                ocp.args.JsonSave(data)), force=True)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore_latest(self, template):
        """The newest checkpoint that restores into the structure of ``template``, matches its
        digest and is finite, or None; with ``with_data``, its data loader's state is
        ``restored_data``."""
        digests = self._digests()
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                restored = self.manager.restore(step, args=self._args(
                    ocp.args.StandardRestore(template), ocp.args.JsonRestore()))
            except Exception as e:  # orbax raises many types for a damaged checkpoint
                self._move_aside(step, f"{type(e).__name__}: "
                                       f"{str(e).splitlines()[0] if str(e) else ''}")
                continue
            state = restored["default"] if self.with_data else restored
            expected = digests.get(str(step))
            state = jax.device_get(state)
            if expected is not None and state_digest(state) != expected:
                self._move_aside(step, "its values do not match the digest recorded when it "
                                       "was saved (damaged on disk)")
                continue
            bad = nonfinite_leaves(state)
            if bad:
                self._move_aside(step, f"{bad[0]} is NaN or infinite")
                continue
            if expected is None:
                logger.warning("Checkpoint %d in %s has no recorded digest (%s); it is finite "
                               "and is used unchecked.", step, self.directory, self.digest_path)
            if self.with_data:
                self.restored_data = restored["data"]
            return state
        return None

    def _move_aside(self, step: int, reason: str) -> None:
        """Moves checkpoint ``step`` to ``checkpoints_corrupt/`` (process 0 does it; every
        process of a multi-process run finds the same checkpoint bad and then reloads)."""
        self.manager.wait_until_finished()
        on_chief(self._move, step, reason)
        self.manager.reload()

    def _move(self, step: int, reason: str) -> None:
        corrupt = os.path.join(self.workdir, "checkpoints_corrupt",
                               f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
        logger.warning("Checkpoint %d in %s cannot be restored (%s); moved it to %s and trying "
                       "the previous one.", step, self.directory, reason, corrupt)
        os.makedirs(os.path.dirname(corrupt), exist_ok=True)
        os.replace(os.path.join(self.directory, str(step)), corrupt)

    def latest_step(self):
        return self.manager.latest_step()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
