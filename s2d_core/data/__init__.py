"""Data: the synthetic benchmark (the default) and PASCAL VOC 2012 (real data).

Switching the book to real data is one argument: ``get_dataset("voc", split, root=...)``
instead of ``get_dataset("synthetic", split, preset="cpu")``. Both return items with the same
keys for what they share: ``image`` (3, H, W) in [0, 1], ``mask`` (H, W) with 255 void, and
``tags`` (N,) multi-hot; both have ``class_names``, ``num_classes`` and ``fixed_size`` (whether
all images share one size).
"""

from __future__ import annotations

from torch.utils.data import Dataset

from .config import SyntheticConfig
from .dataset import SyntheticSegmentation, collate, generate_split
from .presets import PRESETS, get_preset
from .synthetic import CLASS_NAMES, World, make_world, render_scene
from .voc import VOC_CLASSES, DatasetNotFoundError, VOCSegmentation

DATASETS = ("synthetic", "voc")


def get_dataset(name: str = "synthetic", split: str = "train", preset: str | SyntheticConfig = "cpu",
                root: str | None = None, **kwargs) -> Dataset:
    """The one switch between the synthetic default and real data.

    Parameters
    ----------
    name : ``"synthetic"`` (uses ``preset``) or ``"voc"`` (needs ``root``).
    split : ``train``/``val``/``test`` for synthetic; ``train_aug``/``train``/``val`` for VOC.
    preset : preset name or a :class:`SyntheticConfig` (synthetic only).
    root : folder of PASCAL VOC 2012 (VOC only).
    """
    if name == "synthetic":
        if root is not None:
            raise ValueError("root is only used with name='voc'; the synthetic data needs no files")
        return SyntheticSegmentation(preset, split, **kwargs)
    if name == "voc":
        if root is None:
            raise ValueError("get_dataset('voc') needs root=<folder containing VOC2012 or VOCdevkit/VOC2012>")
        return VOCSegmentation(root, split, **kwargs)
    raise ValueError(f"unknown dataset {name!r}: expected one of {DATASETS}")


__all__ = ["CLASS_NAMES", "DATASETS", "PRESETS", "VOC_CLASSES", "DatasetNotFoundError", "SyntheticConfig",
           "SyntheticSegmentation", "VOCSegmentation", "World", "collate", "fixed_size", "generate_split",
           "get_dataset", "get_preset", "make_world", "render_scene"]


def fixed_size(dataset: Dataset) -> bool:
    """Whether every image of ``dataset`` has one size (its ``fixed_size`` attribute; a wrapper such
    as :class:`~s2d_core.train.WithMasks` forwards its base's). A data set that does not say is
    treated as varying in size, the safe assumption."""
    return bool(getattr(dataset, "fixed_size", False))
