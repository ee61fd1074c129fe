"""In-memory image data modules: uint8 images on the loader side, floats made a batch at a time.

Every data set here fits in memory (the largest, CIFAR, is 150 MB as uint8), so a data module
holds three :class:`Split` s of uint8 ``N x C x H x W`` images and int64 labels. Loaders yield
uint8 batches; :meth:`ImageDataModule.on_after_batch_transfer` turns them into normalised
floats on the training device (and augments them while training), which keeps the loaders
cheap and the same on CPU and GPU.

Splits: the validation split is carved from the training data with a fixed ``split_seed``
(the same for every run, whatever the search seed), so the search never sees test data. A data
set without an official test split holds its test split out with a seed of its own
(:data:`TEST_SPLIT_SEED`), so ``split_seed`` moves the validation split only and a search with
another ``split_seed`` never validates on the test images another command reports.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms.v2.functional import resize

from renas.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: the seed of the test split held out of a data set without an official one (digits, an image
#: folder without ``test/``): fixed, whatever ``dataset.split_seed``
TEST_SPLIT_SEED = 0


@dataclass
class Split:
    """uint8 images ``N x C x H x W`` and int64 labels ``N``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor | np.ndarray) -> "Split":
        index = torch.as_tensor(index, dtype=torch.long)
        return Split(self.images[index], self.labels[index])


def as_split(images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, channels_last: bool) -> Split:
    """Images as uint8 ``N x C x H x W`` (from ``N x H x W x C`` when ``channels_last``, or
    ``N x H x W`` grey), labels as int64."""
    images = np.ascontiguousarray(images)
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise DataError(f"images must be uint8, not {x.dtype}")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif channels_last:
        x = x.permute(0, 3, 1, 2)
    y = torch.as_tensor(np.asarray(labels).astype(np.int64))
    if len(x) != len(y):
        raise DataError(f"{len(x)} images but {len(y)} labels")
    return Split(x.contiguous(), y)


def random_crop_flip(x: torch.Tensor, padding: int | None = None) -> torch.Tensor:
    """Per image: zero-pad by ``padding`` (default: an eighth of the height, at least 1), crop
    back to the original size at a random offset, and flip left-right with probability 1/2.
    The standard CIFAR augmentation, done on a whole batch at once."""
    n, c, h, w = x.shape
    p = max(1, round(h / 8)) if padding is None else int(padding)
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    dev = x.device
    oy = torch.randint(0, 2 * p + 1, (n,), device=dev)
    ox = torch.randint(0, 2 * p + 1, (n,), device=dev)
    rows = oy[:, None] + torch.arange(h, device=dev)  # n x h
    cols = ox[:, None] + torch.arange(w, device=dev)  # n x w
    flip = torch.rand(n, device=dev) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    i = torch.arange(n, device=dev)[:, None, None, None]
    ch = torch.arange(c, device=dev)[None, :, None, None]
    return padded[i, ch, rows[:, None, :, None], cols[:, None, None, :]]


def channel_stats(images: torch.Tensor, scale: float, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images divided by ``scale``."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].to(torch.float64) / scale
        total += block.sum(dim=(0, 2, 3))
        squares += (block * block).sum(dim=(0, 2, 3))
    count = len(images) * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def check_memory(count: int, channels: int, size: int) -> None:
    """Refuse an ``image_size`` whose ``count`` uint8 images of ``channels`` x ``size`` x ``size``
    alone would need more than this machine's memory, before trying (one line naming the key,
    not numpy's or torch's allocation error). A size that passes may still need more: loading
    holds a copy or two beside them."""
    need = count * channels * size * size
    try:
        page, pages = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: let the allocation say it
        return
    if page <= 0 or pages <= 0:  # the system cannot tell (sysconf returns -1)
        return
    if need > page * pages:
        raise ConfigError(f"dataset.image_size={size}: {count} images of {channels} x {size} x {size} need "
                          f"{need / 2**30:.1f} GiB of memory, this machine has {page * pages / 2**30:.1f} GiB; "
                          "choose a smaller image_size")


def resize_split(split: Split, size: int) -> Split:
    if split.images.shape[-2:] == (size, size):
        return split
    check_memory(len(split), int(split.images.shape[1]), size)
    return Split(resize(split.images, [size, size], antialias=True), split.labels)


def stratified_holdout(labels: np.ndarray, size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)``: ``size`` images held out (a fraction, rounded up as
    scikit-learn's ``train_test_split`` does, or a count), stratified by class. A class with a
    single member stays in the kept part (it cannot be in both); where the held-out part is too
    small to hold every class, it is a plain random draw among the other images."""
    # deferred: scikit-learn (~1 s) only for a held-out split
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    index = np.arange(len(labels))
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    split = counts[inverse] >= 2  # the members of classes that can be split
    if not split.any():  # every class a single image: some must be held out
        split[:] = True
    single, pool = index[~split], index[split]
    if single.size and isinstance(size, float):  # a fraction of all the images, as a count of the pool
        size = math.ceil(size * len(labels))
    try:
        try:
            kept, held = train_test_split(pool, test_size=size, stratify=labels[pool], random_state=seed)
        except ValueError:  # too few held out for every class, or one class only
            kept, held = train_test_split(pool, test_size=size, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot hold out {size} of {len(labels)} images: {e}") from None
    return np.sort(np.concatenate([kept, single])), np.sort(held)


def missing_classes(part: torch.Tensor, whole: torch.Tensor) -> list[int]:
    """The labels of ``whole`` that ``part`` lacks."""
    return sorted(set(whole.unique().tolist()) - set(part.unique().tolist()))


class ImageDataModule(pl.LightningDataModule):
    """Base of the data modules: splits, subsets, normalisation, augmentation, loaders.

    Subclasses set ``name``, ``scale`` (the largest pixel value) and implement
    :meth:`load_train` (training data: train + validation) and :meth:`load_test`.
    """

    name = "images"
    scale = 255.0
    #: the validation split stratified by class (image folders: small and unbalanced); the
    #: built-in sets, large and balanced, draw it at random
    stratify_validation = False

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        subset: float = 1.0,
        split_seed: int = 0,
        image_size: int | None = None,
        normalize: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        augment: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.subset = subset
        self.split_seed = split_seed
        self.image_size = image_size
        self.normalize = bool(normalize)
        self.augment = bool(augment)
        self.mean = self._stats("dataset.mean", mean)
        self.std = self._stats("dataset.std", std)
        if self.std is not None and min(self.std) <= 0:
            raise ConfigError(f"dataset.std={list(self.std)} must be positive")
        if (self.mean is None) != (self.std is None):
            raise ConfigError("dataset.mean and dataset.std must both be given or both be null")
        self.train_split: Split | None = None
        self.val_split: Split | None = None
        self.test_split: Split | None = None
        self._norm: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def _stats(key: str, value: Any) -> list[float] | None:
        if value is None:
            return None
        try:
            values = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r} must be a list of numbers, one per channel, or null") from None
        if not values:
            raise ConfigError(f"{key} must not be empty")
        return values

    # --- what subclasses provide ---------------------------------------------------------

    def load_train(self) -> Split:
        raise NotImplementedError

    def load_test(self) -> Split:
        raise NotImplementedError

    # --- shape ---------------------------------------------------------------------------

    def _any_split(self) -> Split:
        for split in (self.train_split, self.test_split, self.val_split):
            if split is not None:
                return split
        raise RuntimeError(f"{type(self).__name__}.setup() has not been called")

    @property
    def in_channels(self) -> int:
        return int(self._any_split().images.shape[1])

    @property
    def input_size(self) -> int:
        return int(self._any_split().images.shape[-1])

    @property
    def num_classes(self) -> int:
        return int(getattr(self, "_num_classes", 0)) or int(
            max(int(s.labels.max()) for s in (self.train_split, self.val_split, self.test_split) if s is not None) + 1
        )

    # --- set-up --------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_split is None:
            self._setup_fit()
        if stage in (None, "test", "predict") and self.test_split is None:
            test = self.load_test()
            self.test_split = resize_split(test, self.image_size) if self.image_size else test
        if self.normalize and self.mean is None and self.train_split is None:
            self._setup_fit()  # the statistics come from the training split
        self._check_channels()

    def _setup_fit(self) -> None:
        data = self.load_train()
        if self.image_size:
            data = resize_split(data, self.image_size)
        n = len(data)
        n_val = round(n * self.val_fraction)
        if n_val < 1 or n - n_val < 1:
            raise DataError(f"dataset.val_fraction={self.val_fraction} of {n} training images leaves an empty "
                            f"{'validation' if n_val < 1 else 'training'} split")
        generator = torch.Generator().manual_seed(self.split_seed)
        order = torch.randperm(n, generator=generator)
        val, train = order[:n_val], order[n_val:]
        if self.stratify_validation:
            kept, held = stratified_holdout(data.labels.numpy(), n_val, self.split_seed)
            train, val = (torch.as_tensor(i)[torch.randperm(len(i), generator=generator)] for i in (kept, held))
        if self.subset < 1:
            train = train[: max(1, int(len(train) * self.subset))]
            val = val[: max(1, int(len(val) * self.subset))]
        self.train_split, self.val_split = data.take(train), data.take(val)
        self._warn_small(data)
        if self.normalize and self.mean is None:
            self.mean, self.std = channel_stats(self.train_split.images, self.scale)
            self.std = [max(s, 1e-6) for s in self.std]

    def _warn_small(self, data: Split) -> None:
        """A warning when a ``subset`` leaves fewer training or validation images than classes,
        and, without a subset, when the training or validation split lacks a class (a class of
        one or two images in an image folder): a fitness measured without it, or a network that
        never sees it. (A small subset of a built-in set missing a class by chance says nothing.)"""
        classes = len(data.labels.unique())
        train, val = len(self.train_split), len(self.val_split)
        if self.subset < 1:
            if min(train, val) < classes:
                log.warning("dataset.subset=%s leaves %d training and %d validation image%s for %d classes: the "
                            "fitness is measured on fewer images than there are classes", self.subset, train, val,
                            "" if val == 1 else "s", classes)
            return
        counts = data.labels.bincount()
        for split, what in ((self.train_split, "training"), (self.val_split, "validation")):
            if lacking := missing_classes(split.labels, data.labels):
                log.warning("%s: the %s split has no image of class%s %s (%s image%s of %s in training and "
                            "validation): add images", self.name, what, "" if len(lacking) == 1 else "es",
                            ", ".join(self.class_name(c) for c in lacking),
                            ", ".join(str(int(counts[c])) for c in lacking),
                            "" if len(lacking) == 1 and int(counts[lacking[0]]) == 1 else "s",
                            "it" if len(lacking) == 1 else "them")

    def class_name(self, label: int) -> str:
        return str(label)

    def _check_channels(self) -> None:
        if not self.normalize:
            return
        c = self.in_channels
        for key, values in (("dataset.mean", self.mean), ("dataset.std", self.std)):
            if values is not None and len(values) not in (1, c):
                raise ConfigError(f"{key}={list(values)} has {len(values)} values but the images have {c} channels")

    # --- batches -------------------------------------------------------------------------

    def transform(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 images to normalised floats; augmented (random crop and flip) when ``train``
        and ``dataset.augment``."""
        x = x.to(torch.float32) / self.scale
        if self.normalize:
            if self._norm is None or self._norm[0].device != x.device:
                shape = (1, -1, 1, 1)
                self._norm = (torch.tensor(self.mean, device=x.device).view(shape),
                              torch.tensor(self.std, device=x.device).view(shape))
            mean, std = self._norm
            x = (x - mean) / std
        if train and self.augment:
            x = random_crop_flip(x)
        return x

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, y = batch
        trainer = getattr(self, "trainer", None)
        return self.transform(x, train=bool(trainer is not None and trainer.training)), y

    def _loader(self, split: Split | None, shuffle: bool) -> DataLoader:
        if split is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not been called for this split")
        return DataLoader(
            TensorDataset(split.images, split.labels),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_split, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, shuffle=False)


class HoldoutDataModule(ImageDataModule):
    """A data set without an official test split: ``test_fraction`` of it is held out as the
    test split (stratified, fixed by :data:`TEST_SPLIT_SEED` whatever ``split_seed``), the rest
    is the training data."""

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test_fraction = test_fraction
        self._parts: tuple[Split, Split] | None = None

    def load_all(self) -> Split:
        raise NotImplementedError

    def _holdout(self) -> tuple[Split, Split]:
        if self._parts is None:
            data = self.load_all()
            kept, held = stratified_holdout(data.labels.numpy(), self.test_fraction, TEST_SPLIT_SEED)
            self._parts = (data.take(kept), data.take(held))
            for part, what, then in ((self._parts[1], "test", "its accuracy there is not measured"),
                                     (self._parts[0], "training data", "the network never sees it")):
                if lacking := missing_classes(part.labels, data.labels):
                    log.warning("%s: the %s (dataset.test_fraction=%s) has no image of class%s %s: %s", self.name,
                                what if what != "test" else "test split", self.test_fraction,
                                "" if len(lacking) == 1 else "es", ", ".join(self.class_name(c) for c in lacking),
                                then)
        return self._parts

    def load_train(self) -> Split:
        return self._holdout()[0]

    def load_test(self) -> Split:
        return self._holdout()[1]
