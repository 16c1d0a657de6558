"""Shared test settings and fixtures.

The test models are tiny, so XLA compilation dominates the run time: the backend optimizations
are turned off (numerics are unaffected) and compiled programs are cached, before JAX is imported
anywhere.
"""

import importlib
import os
import pathlib
import sys
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_backend_optimization_level=0"
                           + " --xla_llvm_disable_expensive_passes=true").strip()
# Many tests compile the same tiny programs (every search() builds its step anew): share the
# executables through JAX's persistent compilation cache, between tests, pytest-xdist workers and
# the subprocesses tests start (they inherit the environment). JAX keys the entries by version.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "jaxnas-test-compilation-cache"))
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: an end-to-end test that takes long (subprocesses, "
                                       "DARTS-space programs); `-m 'not slow'` skips them locally")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("JAXNAS_SHARED")
                      or pathlib.Path(__file__).resolve().parents[2] / "shared")
NB201_TABLE = SHARED / "data" / "nb201" / "nb201_merged.csv"
CIFAR10_SUBSET = SHARED / "data" / "cifar10_subset" / "cifar10_subset.npz"


@pytest.fixture(scope="session")
def nb201_table_path():
    if not NB201_TABLE.exists():
        pytest.skip(f"the NAS-Bench-201 table is not at {NB201_TABLE}")
    return str(NB201_TABLE)


@pytest.fixture(scope="session")
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
        config.space.C = 4
        config.optim_alpha.lr = 3e-3
        config.batch_size = 16
        config.epochs = 2
        config.log_every = 5
        config.checkpoint_every = 5
        config.update_from_flattened_dict(overrides)
        return config

    return make


@pytest.fixture
def run_script(monkeypatch, capsys):
    """Returns ``run(name, *args, **options) -> (exit status, stdout, stderr)``:
    ``python -m experiments.NAME ARGS`` in this process from the repository root (``options``:
    the script's ``cli.run`` options, such as ``multi_process=True``), absl's flag
    parsing and ``experiments.cli``'s error handling included (errors that ``--verbose`` raises
    propagate). Each script defines its absl flags on import, and ``train`` and ``search`` both
    define ``--config``: so the script is imported afresh for each run, and afterwards its flags,
    with the ``--config.FIELD`` flags ml_collections defines while parsing, are deleted and the
    module is forgotten."""
    from absl import flags

    import experiments
    from experiments import cli

    monkeypatch.chdir(REPO)

    def run(name, *args, **options):
        module_name = f"experiments.{name}"
        assert module_name not in sys.modules, f"{module_name} was imported outside run_script"
        before = set(flags.FLAGS)
        monkeypatch.setattr(sys, "argv", [name, *args])
        try:
            module = importlib.import_module(module_name)
            cli.run(module.main, **options)
            status = 0
        except SystemExit as exit_:
            status = exit_.code or 0
        finally:
            flags.FLAGS.unparse_flags()
            for flag in set(flags.FLAGS) - before:
                delattr(flags.FLAGS, flag)
            sys.modules.pop(module_name, None)
            if hasattr(experiments, name):
                delattr(experiments, name)
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def resumed_search(tmp_path):
    """Returns ``run(config, stop)``: searches ``config`` once straight through (``full/``) and
    once stopped after ``stop`` steps and resumed (``part/``), asserts that every leaf of the two
    final states is bit-identical, and returns ``(full, resumed)`` search results."""
    import chex
    import jax

    from jaxnas.engine import search

    def run(config, stop):
        full = search(config, str(tmp_path / "full"))
        steps = config.max_steps
        config.max_steps = stop
        search(config, str(tmp_path / "part"))
        config.max_steps = steps
        resumed = search(config, str(tmp_path / "part"))
        chex.assert_trees_all_equal(jax.device_get(full.state), jax.device_get(resumed.state))
        return full, resumed

    return run


@pytest.fixture(scope="module")
def x64():
    """Float64 for the tests of a module (``pytestmark = pytest.mark.usefixtures("x64")``)."""
    import jax

    with jax.enable_x64(True):
        yield
