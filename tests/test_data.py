"""Data modules: splits, subsets, normalisation, the real files in ../shared, image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from helpers import compose
from renas.data import (
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    NPZDataModule,
)
from renas.data.base import random_crop_flip
from renas.errors import ConfigError, DataError


def _rows(split) -> set[bytes]:
    """Each image with its label, as bytes (the 1,797 digits images are all distinct)."""
    return {img.numpy().tobytes() + bytes([int(lab)]) for img, lab in zip(split.images, split.labels)}


def _digits(**kwargs) -> DigitsDataModule:
    dm = DigitsDataModule(**kwargs)
    dm.setup("fit")
    dm.setup("test")
    return dm


def _all_batches(dm, loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for batch in loader:
        x, y = dm.on_after_batch_transfer(batch, 0)
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


# --- digits ----------------------------------------------------------------------------------

def test_digits_as_configured():
    """conf/dataset/digits.yaml: 20 % test, then 20 % of the rest for validation."""
    dm = instantiate(compose("train", []).dataset)
    assert isinstance(dm, DigitsDataModule)
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_split), len(dm.val_split), len(dm.test_split)) == (1150, 287, 360)
    assert dm.in_channels == 1 and dm.num_classes == 10 and dm.input_size == 8


@pytest.mark.parametrize("val_fraction, test_fraction", [(0.1, 0.2), (0.25, 0.3)])
def test_digits_splits_are_disjoint_and_sized(val_fraction, test_fraction):
    dm = _digits(val_fraction=val_fraction, test_fraction=test_fraction)
    train, val, test = _rows(dm.train_split), _rows(dm.val_split), _rows(dm.test_split)
    assert len(train) + len(val) + len(test) == 1797
    assert not (train & val) and not (train & test) and not (val & test)
    n_test = int(np.ceil(1797 * test_fraction))  # scikit-learn rounds the test size up
    assert len(test) == n_test
    assert len(val) == round((1797 - n_test) * val_fraction)
    # stratified test split: every class is there in proportion
    counts = torch.bincount(dm.test_split.labels, minlength=10)
    assert counts.min() >= int(0.08 * n_test)


def test_digits_splits_depend_only_on_split_seed_which_moves_the_validation_split_only():
    """The test split is held out with a seed of its own: a search with another ``split_seed``
    trained on 238 and validated on 54 of the 360 images train.py tests on with split_seed 0
    (digits.yaml's val_fraction 0.2, split_seed 1)."""
    a, b = _digits(split_seed=3, val_fraction=0.2), _digits(split_seed=3, val_fraction=0.2)
    for s in ("train_split", "val_split", "test_split"):
        assert torch.equal(getattr(a, s).images, getattr(b, s).images)
        assert torch.equal(getattr(a, s).labels, getattr(b, s).labels)
    c, d = _digits(split_seed=4, val_fraction=0.2), _digits(split_seed=0, val_fraction=0.2)
    assert _rows(c.val_split) != _rows(a.val_split)
    assert _rows(c.test_split) == _rows(a.test_split) == _rows(d.test_split)
    assert not _rows(c.val_split) & _rows(a.test_split) and not _rows(c.train_split) & _rows(a.test_split)


def test_digits_subset_that_leaves_fewer_images_than_classes_warns(caplog):
    with caplog.at_level("WARNING", logger="renas.data.base"):
        dm = _digits(subset=0.001)
    assert len(dm.train_split) == len(dm.val_split) == 1
    assert "dataset.subset=0.001 leaves 1 training and 1 validation image for 10 classes" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="renas.data.base"):
        _digits(subset=0.5)
    assert not caplog.text


def test_stratified_holdout_keeps_single_members_and_stratifies_the_rest():
    """A class of one image made the whole split a plain random draw (a test split of 1 / 5 / 2
    images for classes of 12 / 12 / 12), and could send that image to the held-out part."""
    from renas.data.base import stratified_holdout

    labels = np.array([0] * 12 + [1] * 12 + [2] * 12 + [3])
    for seed in range(10):
        kept, held = stratified_holdout(labels, 0.25, seed)
        assert 36 in kept and sorted(np.bincount(labels[held], minlength=4).tolist()) == [0, 3, 3, 4]  # ceil(9.25)
        assert sorted([*kept, *held]) == list(range(37))
    kept, held = stratified_holdout(np.array([0, 1, 2, 3]), 0.25, 0)  # nothing to stratify: a random draw
    assert len(held) == 1 and len(kept) == 3
    # held-out part too small for every class: a random draw among the others, the lone image kept
    labels = np.r_[np.repeat(np.arange(20), 3), [20]]
    for seed in range(10):
        kept, held = stratified_holdout(labels, 0.1, seed)
        assert 60 in kept and len(held) == 7 and len(kept) == 54
    # a count is exact (a fraction n / N went through scikit-learn's rounding up: 8 of 25 for 7)
    kept, held = stratified_holdout(np.repeat(np.arange(5), 5), 7, 0)
    assert len(held) == 7 and len(kept) == 18
    kept, held = stratified_holdout(np.repeat(np.arange(5), 5), 0.2, 0)
    assert sorted(np.bincount(np.repeat(np.arange(5), 5)[held]).tolist()) == [1] * 5


def test_digits_subset_shrinks_train_and_val_only():
    full, half = _digits(), _digits(subset=0.5)
    assert len(half.train_split) == len(full.train_split) // 2
    assert len(half.val_split) == len(full.val_split) // 2
    assert _rows(half.train_split) <= _rows(full.train_split)
    assert _rows(half.val_split) <= _rows(full.val_split)
    assert torch.equal(half.test_split.images, full.test_split.images)


def test_digits_batches_are_normalised():
    dm = _digits(batch_size=100)
    x, y = _all_batches(dm, dm.train_dataloader())
    assert x.dtype == torch.float32 and x.shape == (len(dm.train_split), 1, 8, 8)
    assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1.0) < 1e-2
    xv, _ = _all_batches(dm, dm.val_dataloader())
    assert abs(float(xv.mean())) < 0.2 and abs(float(xv.std()) - 1.0) < 0.2
    first, _ = next(iter(dm.train_dataloader()))
    assert first.dtype == torch.uint8 and len(first) == 100  # floats are made a batch at a time


@pytest.mark.parametrize("override, message", [
    ("dataset.subset=0", r"dataset.subset=0.0 is out of range: must be a number in \(0.0, 1.0\]"),
    ("dataset.val_fraction=1.0", r"dataset.val_fraction=1.0 is out of range: must be a number in \(0.0, 1.0\)"),
    ("dataset.batch_size=0", "dataset.batch_size=0 is out of range: must be an integer >= 1"),
    ("dataset.augment=2", "dataset.augment=2 must be true or false"),
    ("dataset.split_seed=4294967296", r"dataset.split_seed=4294967296 is out of range: must be an integer in "
                                      r"\[0, 4294967295\]"),
])
def test_bad_data_options_are_config_errors(override, message):
    """The data modules' ranges are the schema's rules (renas/schema.py), checked on the composed config."""
    from helpers import compose
    from renas.config import check_schema

    with pytest.raises(ConfigError, match=message):
        check_schema(compose("search", [override]))


# --- MNIST and Fashion-MNIST test files --------------------------------------------------------

MNIST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(
    "cls, folder, counts, mean_pixel, mean, std",
    [
        pytest.param(MNISTDataModule, "mnist", MNIST_COUNTS, 0.1325, [0.1307], [0.3081],
                     marks=pytest.mark.needs_shared("data/mnist"), id="mnist"),
        pytest.param(FashionMNISTDataModule, "fashion_mnist", [1000] * 10, 0.2868, [0.2860], [0.3530],
                     marks=pytest.mark.needs_shared("data/fashion_mnist"), id="fashion_mnist"),
    ],
)
def test_idx_test_split_loads(shared, cls, folder, counts, mean_pixel, mean, std):
    root = shared / "data" / folder
    dm = cls(root=str(root), download=False, mean=mean, std=std, batch_size=1000)
    dm.prepare_data()  # nothing to fetch: must not try the network
    dm.setup("test")
    test = dm.test_split
    assert test.images.shape == (10_000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert torch.bincount(test.labels, minlength=10).tolist() == counts
    assert float(test.images.float().mean() / 255) == pytest.approx(mean_pixel, abs=5e-4)
    assert dm.in_channels == 1 and dm.num_classes == 10 and dm.input_size == 28
    x, y = _all_batches(dm, dm.test_dataloader())
    assert x.shape == (10_000, 1, 28, 28) and len(y) == 10_000
    assert abs(float(x.mean())) < 0.1  # the published statistics roughly centre the test split


@pytest.mark.parametrize("cls, folder", [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
@pytest.mark.parametrize("stage", ["fit", "test"])
def test_missing_idx_files_say_where_to_put_them(tmp_path, cls, folder, stage):
    dm = cls(root=str(tmp_path), download=False, mean=[0.5], std=[0.5])
    dm.prepare_data()
    with pytest.raises(DataError) as info:
        dm.setup(stage)
    msg = str(info.value)
    assert str(tmp_path) in msg and f"{folder}/raw" in msg
    assert "-ubyte.gz" in msg and "put them there" in msg and "dataset.download=true" in msg


OFFLINE = ("Error downloading train-images-idx3-ubyte.gz:\nTried https://a.example/, got:\n"
           "<urlopen error [Errno -3] Temporary failure in name resolution>\n")


@pytest.mark.parametrize("kind", ["mnist", "cifar10"])
def test_a_failed_download_is_one_line_and_leaves_no_empty_folders(tmp_path, monkeypatch, kind):
    """torchvision's message lists every mirror on several lines; renas gives the reason on one
    line, and removes the empty folders the attempt made (a checkout stays clean)."""
    from renas.data import CIFARDataModule, sets

    def offline(root, train=True, download=False):
        (Path(root) / "raw").mkdir(parents=True)
        raise RuntimeError(OFFLINE)

    root = tmp_path / "data" / kind
    if kind == "mnist":
        dm = MNISTDataModule(root=str(root), download=True, mean=[0.5], std=[0.5])
        monkeypatch.setattr(dm, "_torchvision_class", lambda: offline)
        what = "MNIST"
    else:
        dm = CIFARDataModule(root=str(root), download=True)
        monkeypatch.setattr(sets.tvd, "CIFAR10", offline)
        what = "cifar10"
    with pytest.raises(DataError) as info:
        dm.prepare_data()
    assert str(info.value) == (f"could not download {what} to {root} (<urlopen error [Errno -3] Temporary failure in "
                               "name resolution>): put the files there yourself, or try again with a network")
    assert list(tmp_path.iterdir()) == []



def test_cifar_files_that_do_not_match_their_checksums_are_not_called_missing(tmp_path):
    """torchvision's "Dataset not found or corrupted" for junk in ``cifar-10-batches-py/`` was
    reported as "cifar10 not found in ...": the files were there, damaged."""
    from renas.data import CIFARDataModule

    folder = tmp_path / "cifar-10-batches-py"
    with pytest.raises(DataError, match=r"^cifar10 not found in .*cifar-10-batches-py; put the extracted"):
        CIFARDataModule(root=str(tmp_path)).load_test()
    folder.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"):
        (folder / name).write_bytes(b"junk")
    with pytest.raises(DataError, match=r"^cifar10 in .*cifar-10-batches-py is damaged or incomplete \(its files do "
                                        r"not match torchvision's checksums\); put the extracted python version there "
                                        r"again, or remove it and set dataset.download=true$"):
        CIFARDataModule(root=str(tmp_path)).load_test()

@pytest.mark.needs_shared("data/mnist")
def test_idx_files_in_torchvision_layout(tmp_path, shared):
    src = shared / "data" / "mnist"
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in src.glob("t10k-*.gz"):
        (raw / f.name).symlink_to(f)
    dm = MNISTDataModule(root=str(tmp_path), download=False, normalize=False)
    dm.setup("test")
    assert len(dm.test_split) == 10_000


# --- the CIFAR-10 subset ---------------------------------------------------------------------

@pytest.mark.needs_shared("data/cifar10_subset/cifar10_subset.npz")
def test_cifar10_subset_loads(shared):
    dm = NPZDataModule(path=str(shared / "data/cifar10_subset/cifar10_subset.npz"), val_fraction=0.1)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_split) + len(dm.val_split) == 5000 and len(dm.val_split) == 500
    assert len(dm.test_split) == 1000
    assert dm.in_channels == 3 and dm.input_size == 32 and dm.num_classes == 10
    assert torch.bincount(dm.test_split.labels).tolist() == [100] * 10
    # mean/std computed on the train split: close to the README's (0.4911, 0.4808, 0.4444)
    assert dm.mean == pytest.approx([0.4911, 0.4808, 0.4444], abs=0.005)


@pytest.mark.needs_shared("data/cifar10_subset/cifar10_subset.npz")
def test_cifar10_subset_config():
    dm = instantiate(compose("train", ["dataset=cifar10_subset"]).dataset)
    dm.setup("test")
    assert dm.test_split.images.shape == (1000, 3, 32, 32)


def test_missing_npz_file(tmp_path):
    dm = NPZDataModule(path=str(tmp_path / "nope.npz"))
    with pytest.raises(DataError, match=r"nope.npz not found; set dataset.path to the .npz file$"):
        dm.setup("fit")
    dm = NPZDataModule(path=str(tmp_path / "data" / "cifar10_subset" / "cifar10_subset.npz"))
    with pytest.raises(DataError, match=r"cifar10_subset.npz not found; set dataset.path to the .npz file \(its "
                                        r"default is \$RENAS_SHARED/.*set RENAS_SHARED to the shared folder\)$"):
        dm.setup("fit")


def test_an_image_size_beyond_the_machines_memory_is_refused_before_trying(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.image_size=1000000: 1437 images of 1 x 1000000 x 1000000 need "
                                          r"[\d.]+ GiB of memory, this machine has [\d.]+ GiB; choose a smaller"):
        _digits(image_size=10**6)
    _write_pngs(tmp_path, {"a": 3, "b": 3}, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"dataset.image_size=1000000: 6 images of 3 x 1000000 x 1000000"):
        ImageFolderDataModule(root=str(tmp_path), image_size=10**6).setup("fit")


def test_the_memory_check_stands_aside_where_the_system_cannot_tell(monkeypatch):
    from renas.data import base

    monkeypatch.setattr(base.os, "sysconf", lambda name: -1 if name == "SC_PHYS_PAGES" else 4096)
    base.check_memory(10**6, 3, 10**4)  # sysconf's -1 (indeterminate) refused everything


# --- image folders ---------------------------------------------------------------------------

def _write_pngs(folder, classes: dict[str, int], rng: np.random.Generator) -> None:
    from PIL import Image

    for k, (name, n) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        for i in range(n):
            h, w = int(rng.integers(10, 40)), int(rng.integers(10, 40))
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            img = Image.fromarray(pixels) if i % 2 else Image.fromarray(pixels[:, :, 0], mode="L")
            img.save(folder / name / f"{i:03d}.png")


def test_image_folder_of_class_folders(tmp_path):
    _write_pngs(tmp_path, {"cat": 12, "dog": 8, "fox": 10}, np.random.default_rng(0))
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, test_fraction=0.2, val_fraction=0.2)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.test_split) == 6 and len(dm.train_split) + len(dm.val_split) == 24
    assert dm.in_channels == 3 and dm.input_size == 16 and dm.num_classes == 3
    x, y = _all_batches(dm, dm.train_dataloader())
    assert x.shape[1:] == (3, 16, 16) and torch.isfinite(x).all()


def test_image_folder_with_train_and_test(tmp_path):
    rng = np.random.default_rng(1)
    _write_pngs(tmp_path / "train", {"a": 6, "b": 6}, rng)
    _write_pngs(tmp_path / "test", {"a": 2, "b": 3}, rng)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_split) + len(dm.val_split) == 12
    assert dm.test_split.labels.tolist() == [0, 0, 1, 1, 1]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="is not a folder of class folders"):
        ImageFolderDataModule(root=str(tmp_path / "missing")).setup("fit")
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="Found no valid file for the classes a"):
        ImageFolderDataModule(root=str(tmp_path)).setup("fit")
    _write_pngs(tmp_path / "train", {"b": 2}, np.random.default_rng(0))
    (tmp_path / "train" / "a").rmdir()
    with pytest.raises(DataError, match="has train/ but no test/ folder"):
        ImageFolderDataModule(root=str(tmp_path)).setup("fit")
    # the mirror case was read as three classes, one of them "test"
    rng = np.random.default_rng(3)
    _write_pngs(tmp_path / "mirror", {"red": 2, "green": 2}, rng)
    _write_pngs(tmp_path / "mirror" / "test", {"red": 1}, rng)
    with pytest.raises(DataError, match="has test/ but no train/ folder"):
        ImageFolderDataModule(root=str(tmp_path / "mirror")).setup("fit")


def test_image_folder_leaves_hidden_folders_out(tmp_path):
    """A hidden folder (a notebook's ``.ipynb_checkpoints`` with an image in it) was a class."""
    rng = np.random.default_rng(4)
    _write_pngs(tmp_path / "flat", {"a": 5, "b": 5, ".ipynb_checkpoints": 1}, rng)
    dm = ImageFolderDataModule(root=str(tmp_path / "flat"), image_size=8, test_fraction=0.2)
    dm.setup("fit")
    assert dm.classes == ["a", "b"] and dm.num_classes == 2
    _write_pngs(tmp_path / "split" / "train", {"a": 4, "b": 4, ".hidden": 1}, rng)
    _write_pngs(tmp_path / "split" / "test", {"a": 2, ".hidden": 1}, rng)
    dm = ImageFolderDataModule(root=str(tmp_path / "split"), image_size=8)
    dm.setup("fit")
    dm.setup("test")
    assert dm.classes == ["a", "b"] and dm.test_split.labels.tolist() == [0, 0]
    _write_pngs(tmp_path / "none", {".x": 2}, rng)
    with pytest.raises(DataError, match="Couldn't find any class folder"):
        ImageFolderDataModule(root=str(tmp_path / "none"), image_size=8).setup("fit")


def test_image_folder_leaves_hidden_files_inside_classes_out(tmp_path):
    """macOS's ``._0.png`` (not an image) stopped the run; a notebook's checkpoint copy inside a
    class was read twice, once in the training and once in the test split."""
    rng = np.random.default_rng(5)
    for root in (tmp_path / "flat", tmp_path / "split" / "train", tmp_path / "split" / "test"):
        _write_pngs(root, {"a": 5, "b": 5}, rng)
        (root / "a" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (root / "a" / ".ipynb_checkpoints").mkdir()
        (root / "a" / "000.png").rename(root / "a" / ".ipynb_checkpoints" / "000-checkpoint.png")
    dm = ImageFolderDataModule(root=str(tmp_path / "flat"), image_size=8, test_fraction=0.2)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_split) + len(dm.val_split) + len(dm.test_split) == 9
    dm = ImageFolderDataModule(root=str(tmp_path / "split"), image_size=8)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_split) + len(dm.val_split) == 9 and dm.test_split.labels.tolist() == [0] * 4 + [1] * 5


def test_image_folder_16_bit_grey_is_scaled_not_white(tmp_path):
    """Pillow's ``convert("RGB")`` clips 16-bit grey to 255: every image was white."""
    from PIL import Image

    rng = np.random.default_rng(6)
    for name, low in (("dark", 1000), ("light", 40000)):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(low, low + 20000, (12, 12)).astype(np.uint16)).save(tmp_path / name / f"{i}.png")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=12, test_fraction=0.2, val_fraction=0.25)
    dm.setup("fit")
    dm.setup("test")
    x, y = torch.cat([dm.train_split.images, dm.val_split.images]), torch.cat([dm.train_split.labels,
                                                                                 dm.val_split.labels])
    dark, light = x[y == 0].float().mean(), x[y == 1].float().mean()
    assert 3 < dark < 45 and 155 < light < 240 and min(dm.std) > 0.1
    from renas.data.sets import to_rgb

    # 32-bit integer grey: 8-bit values stay, 16-bit ones are scaled, others refused
    assert np.asarray(to_rgb(Image.fromarray(np.full((2, 2), 200, np.int32))))[0, 0].tolist() == [200] * 3
    assert np.asarray(to_rgb(Image.fromarray(np.full((2, 2), 51400, np.int32))))[0, 0].tolist() == [200] * 3
    with pytest.raises(ValueError, match="32-bit integer pixels from 70000 to 70000 are neither 8- nor 16-bit"):
        to_rgb(Image.fromarray(np.full((2, 2), 70000, np.int32)))
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "dark" / "float.tif")
    with pytest.raises(DataError, match=r"cannot read image .*float.tif: 32-bit float pixels have no fixed range"):
        ImageFolderDataModule(root=str(tmp_path), image_size=12).setup("fit")


def test_image_folder_splits_are_stratified_and_a_lone_image_trains(tmp_path, caplog):
    """The validation split of an image folder is stratified (it was a random draw: three
    images of one class); a class of one image stays in the training split and the splits
    without it say so."""
    _write_pngs(tmp_path, {"a": 12, "b": 12, "c": 12, "d": 1}, np.random.default_rng(7))
    vals = set()
    for seed in range(5):
        caplog.clear()
        with caplog.at_level("WARNING", logger="renas.data.base"):
            dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, split_seed=seed)
            dm.setup("fit")
            dm.setup("test")
        counts = [torch.bincount(s.labels, minlength=4).tolist() for s in (dm.train_split, dm.val_split,
                                                                           dm.test_split)]
        assert counts[0][3] == 1 and counts[1] == [1, 1, 1, 0], counts
        assert counts[2][3] == 0 and sorted(counts[2][:3]) == [2, 3, 3], counts  # ceil(0.2 x 37) = 8, stratified
        assert ("image_folder: the validation split has no image of class 'd' (1 image of it in training and "
                "validation): add images") in caplog.text
        assert "image_folder: the test split (dataset.test_fraction=0.2) has no image of class 'd'" in caplog.text
        assert "training split" not in caplog.text and "training data" not in caplog.text
        vals.add(frozenset(_rows(dm.val_split)))
    assert len(vals) > 1  # split_seed still draws which images of each class validate


def test_image_folder_test_folder_without_images_is_refused_before_a_search(tmp_path):
    rng = np.random.default_rng(8)
    _write_pngs(tmp_path / "train", {"a": 4, "b": 4}, rng)
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "test" / "a" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"test holds no images$"):
        ImageFolderDataModule(root=str(tmp_path), image_size=8).setup("fit")


def test_image_folder_needs_two_classes_and_test_classes_among_the_training_ones(tmp_path):
    """Checked when the training split is read (before a search starts; it failed in every
    child, or after the whole search in train.py)."""
    rng = np.random.default_rng(2)
    _write_pngs(tmp_path / "one", {"cat": 4}, rng)
    with pytest.raises(DataError, match=r"one: one class \(cat\); a classifier needs at least 2"):
        ImageFolderDataModule(root=str(tmp_path / "one")).setup("fit")
    with pytest.raises(DataError, match="one class"):
        _ = ImageFolderDataModule(root=str(tmp_path / "one")).num_classes
    _write_pngs(tmp_path / "bad" / "train", {"a": 4, "b": 4}, rng)
    _write_pngs(tmp_path / "bad" / "test", {"a": 2, "c": 2}, rng)
    for how in ("setup", "num_classes"):
        dm = ImageFolderDataModule(root=str(tmp_path / "bad"), image_size=8)
        with pytest.raises(DataError, match=r"test/c: class 'c' is not among the training classes \(a, b\)"):
            dm.setup("fit") if how == "setup" else dm.num_classes
    _write_pngs(tmp_path / "some" / "train", {"a": 4, "b": 4}, rng)
    _write_pngs(tmp_path / "some" / "test", {"b": 3}, rng)  # a test split of some classes only is fine
    dm = ImageFolderDataModule(root=str(tmp_path / "some"), image_size=8)
    dm.setup("fit")
    dm.setup("test")
    assert dm.num_classes == 2 and dm.test_split.labels.tolist() == [1, 1, 1]


# --- augmentation ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 3, 32, 32), (4, 1, 8, 8), (2, 3, 10, 14)])
def test_random_crop_flip_keeps_shape(shape):
    torch.manual_seed(0)
    x = torch.rand(shape) + 0.5  # all > 0, so padding shows as exact zeros
    y = random_crop_flip(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    # every output pixel is an input pixel of the same image and channel, or padding
    for i in range(shape[0]):
        for c in range(shape[1]):
            values = set(x[i, c].flatten().tolist()) | {0.0}
            assert set(y[i, c].flatten().tolist()) <= values


def test_augmentation_only_while_training():
    dm = _digits(augment=True)
    batch = dm.train_split.images[:64]
    assert torch.equal(dm.transform(batch, train=False), dm.transform(batch, train=False))
    torch.manual_seed(0)
    augmented = dm.transform(batch, train=True)
    assert augmented.shape == (64, 1, 8, 8)
    assert not torch.equal(augmented, dm.transform(batch, train=False))
