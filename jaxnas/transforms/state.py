"""Reading a rule's state: the metrics its transforms keep."""

import optax


def collect_metrics(rule_state) -> dict:
    """The union of the ``metrics`` dicts of every transform state in ``rule_state`` (a chain's
    state included); {} when none keeps metrics."""
    merged = {}
    for _, metrics in optax.tree_utils.tree_get_all_with_path(rule_state, "metrics"):
        merged.update(metrics)
    return merged
