"""Orbax checkpoints of the whole search or training state, with resume.

Checkpoints go to ``WORKDIR/checkpoints/<step>``. Orbax writes each into a temporary directory and
renames it when complete, so a run killed while writing leaves no half checkpoint behind. A
checkpoint that cannot be restored (corrupted later) is moved aside to
``WORKDIR/checkpoints_corrupt/`` with a warning, never deleted, and the previous one is used.
"""

import os
import time

import orbax.checkpoint as ocp

from jaxnas.log import logger


class Checkpoints:
    def __init__(self, workdir: str, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {keep}.")
        self.workdir = workdir
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

    def save(self, step: int, state) -> None:
        """Starts saving ``state`` as checkpoint ``step`` (asynchronously)."""
        self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore_latest(self, template):
        """The newest checkpoint that restores into the structure of ``template``, or None."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                return self.manager.restore(step, args=ocp.args.StandardRestore(template))
            except Exception as e:  # orbax raises many types for a damaged checkpoint
                corrupt = os.path.join(self.workdir, "checkpoints_corrupt",
                                       f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
                logger.warning("Checkpoint %d in %s cannot be restored (%s: %s); moved it to %s "
                                "and trying the previous one.", step, self.directory,
                                type(e).__name__, str(e).splitlines()[0] if str(e) else "", corrupt)
                self.manager.wait_until_finished()
                os.makedirs(os.path.dirname(corrupt), exist_ok=True)
                os.replace(os.path.join(self.directory, str(step)), corrupt)
                self.manager.reload()
        return None

    def latest_step(self):
        return self.manager.latest_step()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
