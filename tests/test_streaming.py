"""The streaming pipeline (``jaxnas.data.streaming``, ``config.data_pipeline="grain"``): records
read at random from ArrayRecord files written here and from tfds's mock data, each process's rows
of a global batch, the loader's state in the checkpoint, and the retraining and search loops fed
by it."""

import json
import os
import re
import types

import chex
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from arrayrecords import write_mini

from experiments.configs import train_nb201
from jaxnas.data import (BatchStream, StepReader, check_batch_size, loader, local_rows,
                         open_streaming, padded_batches)
from jaxnas.data.streaming import RecordSplit
from jaxnas.engine import build, load_search, search, train

NB201_ARCH = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|"
              "avg_pool_3x3~2|")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_mini(tmp_path_factory.mktemp("arrayrecord") / "mini")


def _as_npz(directory, path) -> str:
    """The ArrayRecord set in ``directory`` written as the npz ``path``: ``npz:PATH``, the same
    images for the in-memory pipeline."""
    data = open_streaming(f"arrayrecord:{directory}")
    arrays = {split: getattr(data, split).read(np.arange(len(getattr(data, split))))
              for split in ("train", "test")}
    np.savez(path, x_train=arrays["train"]["image"], y_train=arrays["train"]["label"],
             x_test=arrays["test"]["image"], y_test=arrays["test"]["label"],
             num_classes=data.num_classes)
    return f"npz:{path}"


def _mesh(processes: int, devices: int = 1):
    """A stand-in for a mesh of ``processes`` processes of ``devices`` devices each."""
    flat = [types.SimpleNamespace(process_index=p) for p in range(processes)
            for _ in range(devices)]
    return types.SimpleNamespace(devices=np.asarray(flat), size=len(flat))


# ------------------------------------------------------------------ records and rows


def test_records_are_read_at_random_with_their_labels(records):
    data = open_streaming(f"arrayrecord:{records}")
    assert (data.name, data.num_classes, data.image_shape) == ("mini", 5, (8, 8, 3))
    assert (len(data.train), len(data.test)) == (40, 10)
    batch = data.train.read(np.array([[7, 3], [39, 0]]))
    assert batch["image"].shape == (2, 2, 8, 8, 3) and batch["image"].dtype == np.uint8
    np.testing.assert_array_equal(batch["image"][..., 0, 0, 0], [[7, 3], [39, 0]])
    np.testing.assert_array_equal(batch["label"], [[2, 3], [4, 0]])
    assert data.test.read(np.array([9]))["image"][0, 0, 0, 0] == 209
    # Pixels i over records 0..39 (the training sample the statistics come from): mean 19.5/255.
    np.testing.assert_allclose(data.mean, [19.5 / 255] * 3, rtol=1e-6)


def test_images_of_other_sizes_are_resized_and_centre_cropped():
    """Fitted to 8x8: an 8x16 image keeps its scale (shorter side 8) and loses 4 columns each
    side; a uniform 4x4 one is scaled up to a uniform 8x8."""
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[:, 4:8], wide[:, 8:12] = 50, 100  # the middle 8 columns, which the crop keeps
    source = [{"image": wide, "label": 0}, {"image": np.full((4, 4, 3), 1, np.uint8), "label": 1}]
    images = RecordSplit(source, (8, 8, 3), True, "set").read(np.arange(2))["image"]
    np.testing.assert_array_equal(images[0, :, :4], np.full((8, 4, 3), 50))
    np.testing.assert_array_equal(images[0, :, 4:], np.full((8, 4, 3), 100))
    np.testing.assert_array_equal(images[1], np.ones((8, 8, 3)))


def test_images_of_several_sizes_need_an_image_size(tmp_path):
    directory = write_mini(tmp_path / "mini", num_train=2, shapes=[(8, 16), (4, 4)])
    fitted = open_streaming(f"arrayrecord:{directory}", image_size=8)
    assert fitted.image_shape == (8, 8, 3)
    np.testing.assert_array_equal(fitted.train.read(np.arange(2))["image"][:, 3, 3, 0], [0, 1])
    with pytest.raises(ValueError, match=r"\(train split\): record 1 is 4x4, not 8x16 like the "
                                         "first; set config.image_size"):
        open_streaming(f"arrayrecord:{directory}").train.read(np.arange(2))


def test_two_processes_read_disjoint_rows_that_make_the_global_batch(records, monkeypatch):
    """A global batch of 8 over 2 processes of 2 devices: process p reads rows 4p to 4p + 3 of
    each batch of the stream, and nothing else."""
    data = open_streaming(f"arrayrecord:{records}")
    streams = {"train": BatchStream(np.arange(40), 8, seed=3)}
    mesh = _mesh(2, 2)
    steps = {}
    for p in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda p=p: p)
        rows = local_rows(8, mesh)
        assert rows == slice(4 * p, 4 * p + 4)
        read = StepReader(data.train, streams, {"train": 1}, rows)
        steps[p] = [read(j)["train"] for j in range(7)]  # 5 batches an epoch: into epoch 2
    for j in range(7):
        pixels = [steps[p][j]["image"][0, :, 0, 0, 0] for p in (0, 1)]  # record numbers
        assert not set(pixels[0]) & set(pixels[1])
        np.testing.assert_array_equal(np.concatenate(pixels), streams["train"].batch(j))
        np.testing.assert_array_equal(np.concatenate([steps[p][j]["label"][0] for p in (0, 1)]),
                                      streams["train"].batch(j) % 5)


def test_a_batch_that_does_not_divide_across_the_processes_is_refused(monkeypatch):
    monkeypatch.setattr(jax, "process_count", lambda: 3)
    with pytest.raises(ValueError, match="batch size 16 does not divide across the 3 devices "
                                         "of the 3 processes; use a multiple of 3"):
        check_batch_size(16, _mesh(3))


def test_evaluation_batches_cover_the_split_once_with_a_padded_tail():
    """10 examples in batches of 4 over 2 processes: rows 0-1 / 2-3 of [0..3], [4..7], [8, 9,
    pad, pad]."""
    first = padded_batches(10, 4, slice(0, 2))
    second = padded_batches(10, 4, slice(2, 4))
    assert [list(i) for i, _ in first] == [[0, 1], [4, 5], [8, 9]]
    assert [list(i) for i, _ in second] == [[2, 3], [6, 7], [0, 0]]
    assert [list(m) for _, m in second] == [[1, 1], [1, 1], [0, 0]]


# ------------------------------------------------------------------ the loader and its state


def test_a_restored_loader_goes_on_with_the_same_batches(records):
    data = open_streaming(f"arrayrecord:{records}")
    read = StepReader(data.train, {"train": BatchStream(np.arange(40), 8, seed=0)},
                      {"train": 1}, slice(0, 8))
    pipeline = loader(read, 12, threads=2, workers=0)
    whole = list(pipeline)
    assert len(whole) == 12
    for j in (0, 5, 11):  # the loader reads what the in-memory loop would: read(j)
        jax.tree.map(np.testing.assert_array_equal, whole[j], read(j))
    first = iter(pipeline)
    for _ in range(5):
        next(first)
    state = json.loads(json.dumps(first.get_state()))  # as the checkpoint keeps it
    resumed = iter(pipeline)
    resumed.set_state(state)
    for j in range(5, 12):
        jax.tree.map(np.testing.assert_array_equal, next(resumed), whole[j])


def test_a_loader_state_that_does_not_fit_is_a_clear_error():
    """A state saved by a loader with worker processes, restored into one without; and a
    checkpoint past step 0 without any loader state."""
    from jaxnas.engine.loop import step_batches

    config = types.SimpleNamespace(data_pipeline="grain", data_threads=1, data_workers=0)
    two_workers = {"next_index_in_cycle": 1, "next_index_in_datasets": 3,
                   "iterators_in_use_indices": [0, 1], "exhausted": [0, 0], "future_states": {},
                   "iterators_in_use_states": [{"next_index": 2}, {"next_index": 1}]}
    with pytest.raises(ValueError, match="checkpoint of step 3 does not fit this loader .*resume "
                                         "with the config.data_workers the run was saved with"):
        step_batches(lambda j: j, 3, 10, config, two_workers)
    with pytest.raises(ValueError, match="checkpoint of step 3 holds no state of the data loader"):
        step_batches(lambda j: j, 3, 10, config, None)


@pytest.mark.slow
def test_worker_processes_read_the_same_batches(records):
    data = open_streaming(f"arrayrecord:{records}")
    read = StepReader(data.train, {"train": BatchStream(np.arange(40), 8, seed=0)},
                      {"train": 1}, slice(0, 8))
    iterator = iter(loader(read, 6, threads=1, workers=2))
    for j in range(6):
        jax.tree.map(np.testing.assert_array_equal, next(iterator), read(j))


# ------------------------------------------------------------------ the retraining loop


def _nb201(dataset, **overrides):
    config = train_nb201.get_config()
    config.update_from_flattened_dict({
        "dataset": dataset, "space.C": 4, "space.N": 1, "augment": True, "batch_size": 8,
        "log_every": 1, "eval_every": 0, "epochs": 2, "data_threads": 2, **overrides})
    return config


def _leaves(state):
    return jax.tree.leaves(jax.device_get((state.params, state.batch_stats, state.opt_w)))


def test_streamed_training_equals_in_memory_training_and_resumes_exactly(records, tmp_path):
    """The same 40 images as an npz (in memory) and as ArrayRecord (streamed): the same 8 steps
    (5 batches an epoch: the epoch boundary is crossed), bit for bit; and a streamed run
    stopped at the checkpoint of step 3 and resumed ends the same."""
    memory = train(_nb201(_as_npz(records, tmp_path / "mini.npz")), NB201_ARCH,
                   str(tmp_path / "memory"))
    streamed = train(_nb201(f"arrayrecord:{records}", data_pipeline="grain"), NB201_ARCH,
                     str(tmp_path / "grain"))
    assert memory.report["steps"] == streamed.report["steps"] == 10
    for a, b in zip(_leaves(memory.state), _leaves(streamed.state)):
        np.testing.assert_array_equal(a, b)
    assert streamed.report["test_accuracy"] == memory.report["test_accuracy"]

    part = str(tmp_path / "part")
    config = _nb201(f"arrayrecord:{records}", data_pipeline="grain", checkpoint_every=3)
    train(_nb201(f"arrayrecord:{records}", data_pipeline="grain", checkpoint_every=3,
                 max_steps=4), NB201_ARCH, part)
    saved = json.loads(open(os.path.join(part, "checkpoints", "3", "data", "metadata")).read())
    assert saved["next_index"] == 3  # the loader's position: the batch of step 3 comes next
    resumed = train(config, NB201_ARCH, part)
    for a, b in zip(_leaves(streamed.state), _leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)


def test_the_imagenet_config_trains_a_few_steps_on_tfds_mock_data(tmp_path, run_script):
    """``python -m experiments.train`` with train_darts_imagenet.py, shrunk, on 24 mock
    ImageNet images of random sizes: 3 streamed steps of 4 images fitted to 32x32, and a test
    evaluation over the 24 mock validation images."""
    workdir = tmp_path / "imagenet"
    with tfds.testing.mock_data(num_examples=24):
        status, _, err = run_script(
            "train", "--genotype=DARTS_V2", "--config=experiments/configs/train_darts_imagenet.py",
            f"--workdir={workdir}", "--config.space.C=4", "--config.space.layers=3",
            "--config.image_size=32", "--config.aux_weight=0", "--config.batch_size=4",
            "--config.max_steps=3", "--config.log_every=1", "--config.eval_every=0",
            "--config.data_threads=2", multi_process=True)
    assert status == 0, err[-3000:]
    report = json.loads((workdir / "report.json").read_text())
    assert (report["steps"], report["batch_size"], report["test_examples"]) == (3, 4, 24)
    assert report["steps_per_epoch"] == 24 // 4
    assert 0 <= report["test_accuracy"] <= 1 and np.isfinite(report["test_loss"])
    assert {"data", "default"} <= set(os.listdir(workdir / "checkpoints" / "3"))


# ------------------------------------------------------------------ the search loop


@pytest.fixture(scope="module")
def search_sets(tmp_path_factory):
    """64 training images as ArrayRecord and as npz: ``(arrayrecord:DIR, npz:PATH)``. Halves of
    32, so 4 batches of 8 an epoch."""
    directory = tmp_path_factory.mktemp("search")
    records = write_mini(directory / "mini", num_train=64)
    return f"arrayrecord:{records}", _as_npz(records, directory / "mini.npz")


def _search(tiny_config, dataset, **overrides):
    """The tiny NB201 search (C=4, 8x8 images) on ``dataset``, in batches of 8 for 2 epochs."""
    return tiny_config(**{"dataset": dataset, "batch_size": 8, "data_threads": 2, **overrides})


def test_a_streamed_search_reads_the_batches_of_the_in_memory_search(search_sets, tiny_config):
    """iDARTS with T=2 takes 2 train batches and 1 val batch a step: step j holds batches 2j and
    2j + 1 of the train stream and batch j of the val stream, the same records streamed as in
    memory (a pixel names its record), also past the end of an epoch (2 steps)."""
    streamed, memory = (build(_search(tiny_config, dataset, data_pipeline=pipeline,
                                      **{"strategy.name": "idarts", "strategy.inner_steps": 2}))
                        for dataset, pipeline in zip(search_sets, ("grain", "memory")))
    assert streamed.per_step == memory.per_step == {"train": 2, "val": 1}
    assert streamed.steps_per_epoch == 2
    reads = [StepReader(setup.dataset.train, setup.streams, setup.per_step, slice(0, 8))
             for setup in (streamed, memory)]
    for step in (0, 1, 2, 5):
        batches = [read(step) for read in reads]
        jax.tree.map(np.testing.assert_array_equal, *batches)
        for name, n in streamed.per_step.items():
            expected = np.stack([streamed.streams[name].batch(n * step + i) for i in range(n)])
            np.testing.assert_array_equal(batches[0][name]["image"][..., 0, 0, 0], expected)
            np.testing.assert_array_equal(batches[0][name]["label"], expected % 5)


def test_candidates_are_scored_alike_streamed_and_in_memory(search_sets, tiny_config):
    """The scores of selecting strategies (``PathEvaluator``: RandomNAS's on the val stream's
    first batches, CADAM's on the test split) read the same images streamed as in memory."""
    from jaxnas.engine.evaluate import PathEvaluator

    paths = [{"cell": np.full(6, op, np.int32)} for op in (1, 2, 3)]
    scores = []
    for dataset, pipeline in zip(search_sets, ("grain", "memory")):
        setup = build(_search(tiny_config, dataset, data_pipeline=pipeline,
                              **{"strategy.name": "randomnas"}))
        evaluator = PathEvaluator(setup, setup.initial_state())
        scores.append(np.concatenate([evaluator.score(paths, num_batches=3),
                                      evaluator.test_score(paths)]))
    np.testing.assert_array_equal(*scores)
    assert len(set(scores[0])) > 1


@pytest.mark.slow
def test_streamed_search_equals_in_memory_search_and_resumes_exactly(search_sets, tiny_config,
                                                                    tmp_path):
    """DARTS on the same 64 images streamed and in memory: the same 8 steps (the epoch boundary
    is crossed) and final state, bit for bit; a streamed search stopped at step 5, after the
    checkpoint of step 3, and resumed ends the same; a search saved before the pipeline fields
    existed still resumes."""
    records, npz = search_sets
    memory = search(_search(tiny_config, npz), str(tmp_path / "memory"))
    streamed = search(_search(tiny_config, records, data_pipeline="grain"),
                      str(tmp_path / "grain"))
    assert memory.steps == streamed.steps == 8
    chex.assert_trees_all_equal(jax.device_get(memory.state), jax.device_get(streamed.state))
    assert memory.genotype == streamed.genotype

    part = str(tmp_path / "part")
    search(_search(tiny_config, records, data_pipeline="grain", checkpoint_every=3, max_steps=5),
           part)
    saved = json.loads(open(os.path.join(part, "checkpoints", "3", "data", "metadata")).read())
    assert saved["next_index"] == 3  # the loader's position: the batches of step 3 come next
    resumed = search(_search(tiny_config, records, data_pipeline="grain", checkpoint_every=3),
                     part)
    chex.assert_trees_all_equal(jax.device_get(streamed.state), jax.device_get(resumed.state))
    chex.assert_trees_all_equal(jax.device_get(streamed.state),
                                jax.device_get(load_search(part)[1]))

    path = tmp_path / "memory" / "config.json"
    saved = json.loads(path.read_text())
    for field in ("data_pipeline", "image_size", "data_threads", "data_workers"):
        del saved[field]
    path.write_text(json.dumps(saved))
    again = search(_search(tiny_config, npz), str(tmp_path / "memory"))
    chex.assert_trees_all_equal(jax.device_get(memory.state), jax.device_get(again.state))
    chex.assert_trees_all_equal(jax.device_get(memory.state),
                                jax.device_get(load_search(str(tmp_path / "memory"))[1]))


# ------------------------------------------------------------------ bad input


BAD_PIPELINES = [
    ({"data_pipeline": "disk"}, "Unknown config.data_pipeline 'disk'; use 'memory'"),
    ({"image_size": 32}, "config.image_size=32 resizes streamed images only"),
    ({"data_pipeline": "grain"}, "streams 'tfds:NAME' or 'arrayrecord:DIR'"),
    ({"data_pipeline": "grain", "dataset": "arrayrecord:/nonexistent"},
     "'/nonexistent' is not a tfds dataset directory (no features.json)"),
]


@pytest.mark.parametrize("overrides,message", BAD_PIPELINES)
def test_bad_pipeline_settings_are_one_clear_error(run_script, tmp_path, overrides, message):
    status, _, stderr = run_script(
        "train", f"--genotype={NB201_ARCH}", "--config=experiments/configs/train_nb201.py",
        f"--workdir={tmp_path / 'run'}", "--config.dataset=digits",
        *(f"--config.{field}={value}" for field, value in overrides.items()), multi_process=True)
    assert status == 1
    assert stderr.startswith("error: ") and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides,message", BAD_PIPELINES)
def test_a_search_refuses_bad_pipeline_settings_before_writing(tiny_config, tmp_path, overrides,
                                                              message):
    """The same errors from a search (the command line turns them into its ``error:`` line)."""
    config = tiny_config(**overrides)
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(message)):
        search(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
