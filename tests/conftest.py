"""Shared test settings and fixtures.

The test models are tiny, so XLA compilation dominates the run time: the backend optimizations
are turned off (numerics are unaffected) before JAX is imported anywhere.
"""

import os
import pathlib

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_backend_optimization_level=0"
                           + " --xla_llvm_disable_expensive_passes=true").strip()

import tempfile  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

# Many tests compile the same tiny programs (every search() builds its step anew): share the
# executables through JAX's persistent compilation cache, per test session.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="jaxnas-test-cache-"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
NB201_TABLE = SHARED / "data" / "nb201" / "nb201_merged.csv"
CIFAR10_SUBSET = SHARED / "data" / "cifar10_subset" / "cifar10_subset.npz"


@pytest.fixture
def nb201_table_path():
    if not NB201_TABLE.exists():
        pytest.skip(f"the NAS-Bench-201 table is not at {NB201_TABLE}")
    return str(NB201_TABLE)


@pytest.fixture
def cifar10_subset_path():
    if not CIFAR10_SUBSET.exists():
        pytest.skip(f"the CIFAR-10 subset is not at {CIFAR10_SUBSET}")
    return str(CIFAR10_SUBSET)


@pytest.fixture
def tiny_config():
    """Returns ``make(**overrides)``: the quickstart config shrunk for tests (NB201 space, C=4,
    N=1, 8x8 digits, batch 16, 2 epochs); dotted override keys, e.g. ``strategy.name``."""
    from experiments.configs import quickstart

    def make(**overrides):
        config = quickstart.get_config()
        config.batch_size = 16
        config.epochs = 2
        config.log_every = 5
        config.checkpoint_every = 5
        for key, value in overrides.items():
            target = config
            *path, last = key.split(".")
            for part in path:
                target = target[part]
            target[last] = value
        return config

    return make
