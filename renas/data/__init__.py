"""Data modules (LightningDataModule) for the data sets of ``conf/dataset``."""

from renas.data.base import ImageDataModule, Split, random_crop_flip
from renas.data.sets import (
    CIFAR100DataModule,
    CIFARDataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    NPZDataModule,
)

__all__ = [
    "CIFAR100DataModule",
    "CIFARDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "NPZDataModule",
    "Split",
    "random_crop_flip",
]
