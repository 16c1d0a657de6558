"""The logits of a supernet whose weights are only read (scoring candidates, RL environments)."""

BN_MODES = ("running", "batch")


def frozen_logits(net, variables, x, arch, bn: str = "running"):
    """``net``'s logits [B, classes] on ``x`` [B, H, W, C] (normalized) for the architecture
    ``arch`` (weights or a path, as ``net`` takes them); nothing is updated. ``bn``: "running"
    (eval mode, the running batch-norm statistics in ``variables``) or "batch" (the batch's own
    statistics, as in training; a training-mode auxiliary head's logits are dropped). The
    callers check ``bn`` against ``BN_MODES`` with their own messages."""
    if bn == "running":
        return net.apply(variables, x, arch, train=False)
    logits, _ = net.apply(variables, x, arch, train=True, mutable=["batch_stats"])
    return logits[0] if isinstance(logits, tuple) else logits
