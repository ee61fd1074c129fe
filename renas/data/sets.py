"""The data sets: scikit-learn digits (bundled, the default), MNIST, Fashion-MNIST, CIFAR-10/100
(torchvision), a ``.npz`` file (the CIFAR-10 subset in ``../shared``) and a folder of images."""

from __future__ import annotations

import contextlib
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torchvision.datasets as tvd
from PIL import Image
from torchvision.datasets import ImageFolder

from renas.data.base import HoldoutDataModule, ImageDataModule, Split, as_split, check_memory
from renas.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@contextlib.contextmanager
def downloading(what: str, root: Path):
    """torchvision's download of ``what`` into ``root``: a failure (no network, a server
    down) is one line with the underlying reason (torchvision's message lists every mirror
    tried), and the empty folders the attempt made are removed."""
    missing = [p for p in (root, *root.parents) if not p.exists()]  # deepest first
    before = set(root.rglob("*")) if root.exists() else set()
    try:
        yield
    except DataError:
        raise
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        made = [p for p in root.rglob("*") if p.is_dir() and p not in before] if root.exists() else []
        for folder in [*sorted(made, key=lambda p: len(p.parts), reverse=True), *missing]:
            with contextlib.suppress(OSError):  # only empty ones go: a partial download stays
                folder.rmdir()
        raise DataError(f"could not download {what} to {root} ({lines[-1] if lines else type(e).__name__}): "
                        "put the files there yourself, or try again with a network") from None


class DigitsDataModule(HoldoutDataModule):
    """scikit-learn's bundled 8x8 digits (1,797 images, pixel values 0..16): needs no network."""

    name = "digits"
    scale = 16.0
    _num_classes = 10

    def load_all(self) -> Split:
        # deferred: scikit-learn (~1 s) only for the digits set
        from sklearn.datasets import load_digits

        digits = load_digits()
        return as_split(digits.images.astype(np.uint8), digits.target, channels_last=False)


# --- IDX files (MNIST, Fashion-MNIST) ------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
            raise ValueError("not an unsigned-byte IDX file")
        ndim = raw[3]
        dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(tuple(dims))
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None


class IDXDataModule(ImageDataModule):
    """MNIST-style IDX files in ``root`` or in torchvision's layout ``root/<folder>/raw``;
    downloaded by torchvision when ``download`` is true."""

    folder = "MNIST"
    _num_classes = 10

    def __init__(self, root: str = "data", download: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not root:
            raise ConfigError("dataset.root must name a folder")
        self.root = Path(root).expanduser()
        self.download = bool(download)

    def _torchvision_class(self):
        return getattr(tvd, self.folder)

    def _find(self, prefix: str) -> tuple[Path, Path] | None:
        names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
        for folder in (self.root, self.root / self.folder / "raw"):
            found = []
            for name in names:
                for candidate in (folder / name, folder / f"{name}.gz"):
                    if candidate.is_file():
                        found.append(candidate)
                        break
            if len(found) == 2:
                return found[0], found[1]
        return None

    def prepare_data(self) -> None:
        if self.download and (self._find("train") is None or self._find("t10k") is None):
            with downloading(self.folder, self.root):
                self._torchvision_class()(str(self.root), train=True, download=True)

    def _load(self, prefix: str) -> Split:
        found = self._find(prefix)
        if found is None:
            raise DataError(
                f"{self.folder} files {prefix}-images-idx3-ubyte.gz and {prefix}-labels-idx1-ubyte.gz not found in "
                f"{self.root} or {self.root / self.folder / 'raw'}; put them there, or set dataset.download=true"
            )
        images, labels = read_idx(found[0]), read_idx(found[1])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{found[0]} and {found[1]} do not match: shapes {images.shape} and {labels.shape}")
        return as_split(images, labels, channels_last=False)

    def load_train(self) -> Split:
        return self._load("train")

    def load_test(self) -> Split:
        return self._load("t10k")


class MNISTDataModule(IDXDataModule):
    name = "mnist"
    folder = "MNIST"


class FashionMNISTDataModule(IDXDataModule):
    name = "fashion_mnist"
    folder = "FashionMNIST"


# --- CIFAR ---------------------------------------------------------------------------------------

class CIFARDataModule(ImageDataModule):
    """CIFAR-10 through torchvision (``root/cifar-10-batches-py``)."""

    name = "cifar10"
    tv_name = "CIFAR10"
    base_folder = "cifar-10-batches-py"
    _num_classes = 10

    def __init__(self, root: str = "data/cifar10", download: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.download = bool(download)

    def _dataset(self, train: bool, download: bool = False):
        if download:
            with downloading(self.name, self.root):
                return getattr(tvd, self.tv_name)(str(self.root), train=train, download=True)
        try:
            return getattr(tvd, self.tv_name)(str(self.root), train=train, download=False)
        except RuntimeError:  # torchvision's "Dataset not found or corrupted" (its files' MD5 do not match)
            folder = self.root / self.base_folder
            if folder.is_dir() and any(folder.iterdir()):
                raise DataError(
                    f"{self.name} in {folder} is damaged or incomplete (its files do not match torchvision's "
                    "checksums); put the extracted python version there again, or remove it and set dataset.download=true"
                ) from None
            raise DataError(
                f"{self.name} not found in {folder}; put the extracted python version there, "
                "or set dataset.download=true"
            ) from None
        except Exception as e:
            raise DataError(f"cannot read {self.name} in {self.root}: {e}") from None

    def prepare_data(self) -> None:
        if self.download and not (self.root / self.base_folder).is_dir():
            self._dataset(train=True, download=True)

    def _load(self, train: bool) -> Split:
        ds = self._dataset(train)
        return as_split(ds.data, ds.targets, channels_last=True)

    def load_train(self) -> Split:
        return self._load(True)

    def load_test(self) -> Split:
        return self._load(False)


class CIFAR100DataModule(CIFARDataModule):
    """CIFAR-100 (fine labels) through torchvision (``root/cifar-100-python``)."""

    name = "cifar100"
    tv_name = "CIFAR100"
    base_folder = "cifar-100-python"
    _num_classes = 100


# --- a .npz file ---------------------------------------------------------------------------------

class NPZDataModule(ImageDataModule):
    """Arrays ``x_train`` / ``y_train`` / ``x_test`` / ``y_test`` (uint8, ``N x H x W x C`` or
    ``N x H x W``) in one ``.npz`` file, e.g. ``../shared/data/cifar10_subset/cifar10_subset.npz``."""

    name = "npz"

    def __init__(self, path: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(str(path)).expanduser()
        self.name = self.path.stem or "npz"
        self._arrays: dict[str, np.ndarray] | None = None

    def _array(self, key: str) -> np.ndarray:
        if self._arrays is None:
            if not self.path.is_file():
                hint = (" (its default is $RENAS_SHARED/data/cifar10_subset/cifar10_subset.npz, RENAS_SHARED "
                        "defaulting to ../shared from the folder you run in: set RENAS_SHARED to the shared folder)"
                        if self.path.name == "cifar10_subset.npz" else "")
                raise DataError(f"{self.path} not found; set dataset.path to the .npz file{hint}")
            try:
                with np.load(self.path, allow_pickle=False) as f:
                    self._arrays = {k: f[k] for k in f.files if k in ("x_train", "y_train", "x_test", "y_test")}
            except Exception as e:
                raise DataError(f"cannot read {self.path}: {e}") from None
        if key not in self._arrays:
            raise DataError(f"{self.path} has no array {key!r} (needs x_train, y_train, x_test, y_test)")
        return self._arrays[key]

    def _load(self, part: str) -> Split:
        x = self._array(f"x_{part}")
        return as_split(x, self._array(f"y_{part}"), channels_last=x.ndim == 4)

    def load_train(self) -> Split:
        return self._load("train")

    def load_test(self) -> Split:
        return self._load("test")


# --- a folder of images --------------------------------------------------------------------------

def _is_image(path: Path, folder: Path) -> bool:
    """``path`` (under ``folder``) has an image's extension and is neither hidden nor inside a
    hidden folder: macOS's ``._x.png``, ``.ipynb_checkpoints/``, ``.git/`` hold no images of the
    class."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not any(p.startswith(".") for p in path.relative_to(folder).parts)


def _image_files(folder: Path) -> list[Path]:
    """The images under ``folder`` (any depth), sorted, hidden ones left out."""
    return sorted(p for p in folder.rglob("*") if _is_image(p, folder) and p.is_file())


def to_rgb(img: Image.Image) -> Image.Image:
    """An image as 8-bit RGB. 16-bit grey (``I;16``) is scaled from 0..65535 to 0..255, which
    Pillow's ``convert`` would clip to white; 32-bit integer grey (``I``) is taken as 8-bit when
    every value is in 0..255, as 16-bit when in 0..65535, and refused beyond; 32-bit float
    images are refused (no range to scale from)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img, dtype=np.float64)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0 or high > 65535:
            raise ValueError(f"32-bit integer pixels from {low:g} to {high:g} are neither 8- nor 16-bit")
        if img.mode.startswith("I;16") or high > 255:
            values = values / 257.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if img.mode == "F":
        raise ValueError("32-bit float pixels have no fixed range; save it with 8 or 16 bits per pixel")
    return img.convert("RGB")


def _class_folders(folder: Path) -> list[str]:
    """The class folders in ``folder``, sorted; hidden ones (``.ipynb_checkpoints``, ``.git``) are
    not classes."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _find_classes(directory: str) -> tuple[list[str], dict[str, int]]:
    """torchvision's ``find_classes`` without hidden folders."""
    classes = _class_folders(Path(directory))
    if not classes:  # torchvision's words
        raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
    return classes, {c: i for i, c in enumerate(classes)}


class _ImageFolder(ImageFolder):
    """torchvision's listing without hidden class folders or hidden files and folders inside
    a class."""

    def __init__(self, root: str, **kwargs: Any) -> None:
        folder = Path(root)
        super().__init__(root, is_valid_file=lambda p: _is_image(Path(p), folder), **kwargs)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return _find_classes(directory)


class ImageFolderDataModule(HoldoutDataModule):
    """``root/<class>/*.png`` (``test_fraction`` held out as the test split) or
    ``root/train/<class>`` with ``root/test/<class>``. Images are converted to RGB, resized to
    ``image_size`` x ``image_size`` and kept in memory."""

    name = "image_folder"
    stratify_validation = True

    def __init__(self, root: str = "", image_size: int = 32, **kwargs: Any) -> None:
        if image_size is None:
            raise ConfigError("dataset.image_size must be a number for image folders (images are resized to it)")
        super().__init__(image_size=image_size, **kwargs)
        self.root = Path(str(root)).expanduser()
        self.classes: list[str] = []

    def _read(self, folder: Path, class_to_idx: dict[str, int] | None = None) -> Split:
        listing = self._list(folder) if class_to_idx is None else None
        if listing is not None:
            samples, self.classes = listing.samples, self._two_or_more(folder, list(listing.classes))
        else:
            samples = []
            for name in _class_folders(folder):
                if name not in class_to_idx:
                    raise DataError(f"{folder / name}: class {name!r} is not among the training classes")
                samples += [(str(p), class_to_idx[name]) for p in _image_files(folder / name)]
            if not samples:
                raise DataError(f"{folder} holds no images")
        size = int(self.image_size)
        check_memory(len(samples), 3, size)
        images = np.empty((len(samples), size, size, 3), dtype=np.uint8)
        for i, (path, _) in enumerate(samples):
            try:
                with Image.open(path) as img:
                    images[i] = np.asarray(to_rgb(img).resize((size, size), Image.BILINEAR))
            except Exception as e:
                raise DataError(f"cannot read image {path}: {e}") from None
        return as_split(images, np.array([label for _, label in samples]), channels_last=True)

    def _layout(self) -> tuple[Path, Path | None]:
        if not self.root.is_dir() or not any(p.is_dir() for p in self.root.iterdir()):
            raise DataError(f"dataset.root={self.root} is not a folder of class folders")
        train, test = self.root / "train", self.root / "test"
        if train.is_dir() and test.is_dir():
            return train, test
        if train.is_dir():
            self._list(train)  # problems inside train/ are reported first
            raise DataError(f"{self.root} has train/ but no test/ folder; add test/<class>/ or use one folder per class")
        if test.is_dir():  # it would be read as a class named "test"
            raise DataError(f"{self.root} has test/ but no train/ folder; move the class folders into train/, "
                            f"or the test images into the class folders (dataset.test_fraction holds some out)")
        return self.root, None

    def load_all(self) -> Split:
        return self._read(self._layout()[0])

    def load_train(self) -> Split:
        train, test = self._layout()
        if test is None:
            return super().load_train()
        split = self._read(train)
        self._check_test_classes()
        return split

    def load_test(self) -> Split:
        train, test = self._layout()
        if test is None:
            return super().load_test()
        if not self.classes:
            self.classes = self._class_names(train)  # the class order comes from the training folder
        return self._read(test, {c: i for i, c in enumerate(self.classes)})

    @staticmethod
    def _list(folder: Path):
        """torchvision's listing of a class-per-folder tree (files not read)."""
        try:
            return _ImageFolder(str(folder), loader=lambda p: p)
        except FileNotFoundError as e:
            raise DataError(f"{folder}: {e}") from None

    def _class_names(self, folder: Path, training: bool = True) -> list[str]:
        try:
            names = list(_find_classes(str(folder))[0])
        except FileNotFoundError as e:
            raise DataError(f"{folder}: {e}") from None
        return self._two_or_more(folder, names) if training else names

    @staticmethod
    def _two_or_more(folder: Path, names: list[str]) -> list[str]:
        """The training classes ``names`` of ``folder``; one class is refused (a classifier needs two)."""
        if len(names) < 2:
            raise DataError(f"{folder}: one class ({', '.join(names)}); a classifier needs at least 2 "
                            f"(one sub-folder of images per class)")
        return names

    def _check_test_classes(self) -> None:
        """The test split's classes are training classes: checked with the training split, before a
        search that never reads the test split starts (train.py and ``report_test`` read it)."""
        test = self._layout()[1]
        if test is not None:
            names = self._class_names(test, training=False)
            extra = sorted(set(names) - set(self.classes))
            if extra:
                raise DataError(f"{test / extra[0]}: class {extra[0]!r} is not among the training classes "
                                f"({', '.join(self.classes)})")
            if not any(_image_files(test / name) for name in names):
                raise DataError(f"{test} holds no images")

    def class_name(self, label: int) -> str:
        return repr(self.classes[label]) if 0 <= label < len(self.classes) else str(label)

    @property
    def num_classes(self) -> int:
        if not self.classes:
            self.classes = self._class_names(self._layout()[0])
            self._check_test_classes()
        return len(self.classes)
