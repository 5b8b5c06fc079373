"""PASCAL VOC 2012 semantic segmentation with the SBD-augmented masks.

This is the real-data counterpart of the synthetic benchmark: same sample
format (a dict with ``image``, ``mask``, ``tags`` and ``name``), so every later
stage (CAMs, densification, pseudo labels, training, evaluation) runs on either.

Expected folder layout
----------------------
``root`` may point at the ``VOC2012`` folder itself or at a parent that holds
``VOCdevkit/VOC2012``::

    <root>/                              (or <root>/VOCdevkit/VOC2012/)
    ├── JPEGImages/
    │   ├── 2007_000032.jpg
    │   └── ...                          (17,125 images)
    ├── SegmentationClassAug/            (SBD-augmented masks, 12,031 PNGs)
    │   ├── 2007_000032.png              (single channel: 0..20, 255 = void)
    │   └── ...
    ├── SegmentationClass/               (optional: official palette PNGs,
    │   └── ...                           2,913 masks for train + val)
    └── ImageSets/
        ├── Segmentation/
        │   ├── train.txt                (1,464 ids)
        │   ├── val.txt                  (1,449 ids)
        │   └── train_aug.txt            (10,582 ids)
        └── SegmentationAug/             (alternative home of train_aug.txt)

``train_aug.txt`` may also sit directly in ``<root>``. Its lines may be plain
ids (``2007_000032``) or the two-column form shipped by DeepLab-style repos
(``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``).

Where to get it
---------------
* ``VOCtrainval_11-May-2012.tar`` from the PASCAL VOC 2012 website
  (http://host.robots.ox.ac.uk/pascal/VOC/voc2012/): images, official masks
  and the ``train``/``val`` lists.
* The SBD-augmented masks ``SegmentationClassAug`` and the list
  ``train_aug.txt``, as used by DeepLab / IRN-style repositories; unpack them
  into the ``VOC2012`` folder.

Switching the book to real data
-------------------------------
``get_dataset("voc", split, root=...)`` (in :mod:`s2d_core.data`) instead of
``get_dataset("synthetic", split, preset="cpu")``, or build
:class:`VOCSegmentation` directly. Nothing downstream changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

__all__ = [
    "VOC_CLASSES",
    "VOID",
    "SPLITS",
    "voc_colour_map",
    "DatasetNotFoundError",
    "VOCSegmentation",
]

VOC_CLASSES: tuple = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 21 class names; index ``k`` is the label value ``k`` in a mask."""

VOID: int = 255
"""Mask value for 'ignore' pixels (object boundaries and ambiguous regions)."""

SPLITS: tuple = ("train_aug", "train", "val")
"""Splits understood by :class:`VOCSegmentation`."""

_NUM_CLASSES = len(VOC_CLASSES)


def voc_colour_map(n: int = 256) -> np.ndarray:
    """The colour map of VOC's palette PNGs, ``(n, 3)`` uint8.

    Label ``c``'s colour spreads the bits of ``c`` over the three channels, most significant
    bit first: 1 -> (128, 0, 0), 2 -> (0, 128, 0), ..., 255 (void) -> (224, 224, 192).
    """
    c = np.arange(n)
    rgb = np.zeros((n, 3), np.int64)
    for j in range(8):
        for ch in range(3):
            rgb[:, ch] |= ((c >> (3 * j + ch)) & 1) << (7 - j)
    return rgb.astype(np.uint8)
_IMAGE_EXT = ".jpg"
_MASK_EXT = ".png"
_AUG_MASKS = "SegmentationClassAug"
_OFFICIAL_MASKS = "SegmentationClass"
# How many missing paths to print: enough to spot a pattern (wrong extension,
# wrong folder) without flooding the terminal with 10k lines.
_SHOW_MISSING = 5

_DOWNLOAD_HELP = (
    "To get the data, download the VOC2012 trainval tarball "
    "'VOCtrainval_11-May-2012.tar' from the PASCAL VOC website "
    "(http://host.robots.ox.ac.uk/pascal/VOC/voc2012/) and the SBD-augmented "
    "masks 'SegmentationClassAug' plus the list 'train_aug.txt' (as used by "
    "DeepLab/IRN-style repos), and unpack both into the VOC2012 folder."
)
_LAYOUT_HELP = (
    "Expected folders inside VOC2012/: JPEGImages/, "
    "SegmentationClassAug/ (or SegmentationClass/ for the train/val splits), "
    "ImageSets/Segmentation/."
)

Sample = Dict[str, Any]
Transform = Callable[[Sample], Sample]


class DatasetNotFoundError(FileNotFoundError):
    """The VOC tree (root, list file, image or mask folder) is missing or incomplete.

    Subclasses :class:`FileNotFoundError` so generic ``except OSError`` handlers
    still catch it; the message always says what was looked for and where.
    """


def _resolve_root(root: Union[str, os.PathLike]) -> Path:
    """Return the ``VOC2012`` folder given either it or a parent of ``VOCdevkit``.

    Parameters
    ----------
    root : str or os.PathLike
        ``.../VOC2012`` or a folder containing ``VOCdevkit/VOC2012``.

    Returns
    -------
    pathlib.Path
        The folder that contains ``JPEGImages/``.

    Raises
    ------
    DatasetNotFoundError
        If neither candidate holds ``JPEGImages/``.
    """
    given = Path(root).expanduser()
    candidates = [given, given / "VOCdevkit" / "VOC2012", given / "VOC2012"]
    for cand in candidates:
        if (cand / "JPEGImages").is_dir():
            return cand
    if not given.exists():
        problem = f"VOC root '{given}' does not exist."
    else:
        tried = ", ".join(f"'{c / 'JPEGImages'}'" for c in candidates)
        problem = (
            f"VOC root '{given}' does not look like PASCAL VOC 2012: "
            f"no JPEGImages/ folder found (tried {tried})."
        )
    raise DatasetNotFoundError(
        f"{problem} Pass either the VOC2012 folder itself or a parent that "
        f"contains VOCdevkit/VOC2012. {_LAYOUT_HELP} {_DOWNLOAD_HELP}"
    )


def _list_candidates(voc: Path, split: str) -> List[Path]:
    """Paths where the list file for ``split`` may live, in lookup order."""
    if split == "train_aug":
        return [
            voc / "ImageSets" / "Segmentation" / "train_aug.txt",
            voc / "ImageSets" / "SegmentationAug" / "train_aug.txt",
            voc / "train_aug.txt",
        ]
    return [voc / "ImageSets" / "Segmentation" / f"{split}.txt"]


def _parse_id(line: str) -> Optional[str]:
    """Image id from one list line, or ``None`` for blank/comment lines.

    Accepts ``2007_000032`` and ``/JPEGImages/2007_000032.jpg /Seg.../x.png``;
    the first column always names the image, so it alone decides the id.
    """
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    first = line.split()[0]
    name = first.replace("\\", "/").rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(name)
    # Only strip known extensions: a bare id never has one, and splitting on an
    # arbitrary dot would mangle ids from other datasets that contain dots.
    if ext.lower() in (".jpg", ".jpeg", ".png"):
        return stem
    return name


def _read_ids(list_file: Path) -> List[str]:
    """Ids listed in ``list_file``, in file order, duplicates removed."""
    with open(list_file, "r", encoding="utf-8") as fh:
        parsed = (_parse_id(line) for line in fh)
        # dict keeps first-seen order; some circulated lists repeat ids.
        return list(dict.fromkeys(i for i in parsed if i is not None))


def _listdir(folder: Path) -> set:
    """File names in ``folder`` as a set (one syscall instead of one stat per id)."""
    return set(os.listdir(folder))


class VOCSegmentation(Dataset):
    """PASCAL VOC 2012 segmentation, optionally with SBD-augmented masks.

    Parameters
    ----------
    root : str or os.PathLike
        The ``VOC2012`` folder (containing ``JPEGImages/``) or a parent folder
        containing ``VOCdevkit/VOC2012/``.
    split : {"train_aug", "train", "val"}, default "train_aug"
        ``train_aug`` is the 10,582-image SBD-augmented training list and needs
        ``SegmentationClassAug/``. ``train`` (1,464) and ``val`` (1,449) use
        ``SegmentationClassAug/`` if present, else the official
        ``SegmentationClass/`` palette PNGs.
    transform : callable, optional
        Called as ``transform(sample) -> sample`` on the full sample dict after
        loading (so geometric augmentations can move image and mask together).
        ``tags`` are computed before the transform, from the whole mask: they
        are image-level labels and should not change with a random crop.
    mask_dir : str, optional
        Mask folder name inside ``VOC2012/`` overriding the default choice,
        e.g. a folder of pseudo labels with the same file naming.

    Attributes
    ----------
    root : pathlib.Path
        The resolved ``VOC2012`` folder.
    split : str
        The split name.
    ids : list of str
        Image ids in list-file order; ``dataset[i]`` loads ``ids[i]``.
    image_dir, mask_dir : pathlib.Path
        Folders the images (``<id>.jpg``) and masks (``<id>.png``) are read from.
    class_names : tuple of str
        :data:`VOC_CLASSES` (21 names, background first).
    num_classes : int
        21, including background.

    Raises
    ------
    ValueError
        If ``split`` is unknown.
    DatasetNotFoundError
        If the root, list file or mask folder is missing, or some listed ids
        have no image or no mask.

    Notes
    -----
    Each item is a dict:

    * ``image``: ``torch.float32``, shape ``(3, H, W)``, values in ``[0, 1]``.
    * ``mask``: ``torch.int64``, shape ``(H, W)``, values in ``0..20`` or
      :data:`VOID` (255).
    * ``tags``: ``torch.float32``, shape ``(20,)``, multi-hot; ``tags[k] == 1``
      iff foreground class ``k + 1`` occurs in the mask (background and void
      are not tags).
    * ``name``: ``str``, the image id.

    Masks are validated on load: values outside ``{0..20, 255}`` or an
    image/mask size mismatch raise :class:`ValueError` naming the file.
    """

    class_names: tuple = VOC_CLASSES
    num_classes: int = _NUM_CLASSES
    fixed_size = False
    """VOC images differ in size: processed one at a time, or cropped for training."""

    def __init__(
        self,
        root: Union[str, os.PathLike],
        split: str = "train_aug",
        transform: Optional[Transform] = None,
        mask_dir: Optional[str] = None,
    ) -> None:
        # Check the split before touching the disk: a typo should not surface
        # as a confusing "file not found".
        if split not in SPLITS:
            raise ValueError(
                f"Unknown VOC split {split!r}; valid splits are: "
                f"{', '.join(repr(s) for s in SPLITS)}."
            )
        self.split = split
        self.transform = transform
        self.root = _resolve_root(root)
        self.image_dir = self.root / "JPEGImages"
        self.mask_dir = self._pick_mask_dir(mask_dir)
        self.ids: List[str] = self._load_ids()
        self._check_complete()

    # ------------------------------------------------------------------ setup
    def _pick_mask_dir(self, override: Optional[str]) -> Path:
        """Resolve the mask folder, raising a helpful error if it is absent."""
        if override is not None:
            folder = self.root / override
            if not folder.is_dir():
                raise DatasetNotFoundError(
                    f"Mask folder '{folder}' (from mask_dir={override!r}) does not exist."
                )
            return folder
        aug = self.root / _AUG_MASKS
        if aug.is_dir():
            return aug
        if self.split == "train_aug":
            # The official masks cover only 2,913 images, so falling back would
            # silently fail on ~8k ids; say what is missing instead.
            raise DatasetNotFoundError(
                f"Split 'train_aug' needs the SBD-augmented masks, but '{aug}' "
                f"does not exist. Download 'SegmentationClassAug' (as used by "
                f"DeepLab/IRN-style repos) and unpack it into '{self.root}', "
                f"or use split='train'/'val' with the official masks."
            )
        official = self.root / _OFFICIAL_MASKS
        if official.is_dir():
            return official
        raise DatasetNotFoundError(
            f"No mask folder found in '{self.root}': looked for '{aug}' and "
            f"'{official}'. {_LAYOUT_HELP} {_DOWNLOAD_HELP}"
        )

    def _load_ids(self) -> List[str]:
        """Read the split's list file from the first candidate path that exists."""
        candidates = _list_candidates(self.root, self.split)
        for path in candidates:
            if path.is_file():
                ids = _read_ids(path)
                if not ids:
                    raise DatasetNotFoundError(f"List file '{path}' contains no image ids.")
                return ids
        tried = "\n  ".join(str(p) for p in candidates)
        hint = (
            " 'train_aug.txt' ships with the SBD-augmented masks (DeepLab/IRN-style repos)."
            if self.split == "train_aug"
            else " It ships with 'VOCtrainval_11-May-2012.tar'."
        )
        raise DatasetNotFoundError(
            f"List file for split {self.split!r} not found. Tried:\n  {tried}\n{hint.strip()}"
        )

    def _check_complete(self) -> None:
        """Fail now, not mid-epoch, if any listed id lacks its image or mask."""
        images = _listdir(self.image_dir)
        masks = _listdir(self.mask_dir)
        missing: List[Path] = []
        for i in self.ids:
            if i + _IMAGE_EXT not in images:
                missing.append(self.image_dir / (i + _IMAGE_EXT))
            if i + _MASK_EXT not in masks:
                missing.append(self.mask_dir / (i + _MASK_EXT))
        if missing:
            shown = "\n  ".join(str(p) for p in missing[:_SHOW_MISSING])
            more = len(missing) - _SHOW_MISSING
            tail = f"\n  ... and {more} more" if more > 0 else ""
            raise DatasetNotFoundError(
                f"Incomplete VOC tree for split {self.split!r}: {len(missing)} "
                f"file(s) listed in the split are missing "
                f"(of {len(self.ids)} ids). First missing:\n  {shown}{tail}\n"
                f"Check that the images and the '{self.mask_dir.name}' masks "
                f"were fully extracted into '{self.root}'."
            )

    # --------------------------------------------------------------- loading
    def identity(self) -> dict:
        """What identifies this split in cache keys and benchmark records (JSON-able)."""
        if self.transform is not None:
            raise ValueError("a VOCSegmentation with a transform cannot be identified for the cache; "
                             "pass use_cache=False or a data set without a transform")
        return {"name": type(self).__name__, "root": str(Path(self.root).resolve()), "split": self.split,
                "mask_dir": str(Path(self.mask_dir).resolve()), "n": len(self)}

    def __len__(self) -> int:
        return len(self.ids)

    def _load_mask(self, path: Path) -> np.ndarray:
        """Label indices of one mask PNG, shape ``(H, W)``, validated.

        Palette ('P') PNGs store indices plus a colour table; ``np.array`` on the
        un-converted image yields the indices, which is what we want. Converting
        to RGB first would return colours (e.g. 128 for aeroplane), not labels.
        """
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA"):
                raise ValueError(
                    f"Mask '{path}' is a colour image (mode {im.mode}); expected "
                    f"single-channel label indices or a palette PNG."
                )
            mask = np.array(im)
        if mask.ndim != 2:
            raise ValueError(f"Mask '{path}' has shape {mask.shape}; expected (H, W).")
        values = np.unique(mask)
        # 32-bit ('I') PNGs can hold negatives, hence the lower bound too.
        bad = values[((values < 0) | (values >= _NUM_CLASSES)) & (values != VOID)]
        if bad.size:
            raise ValueError(
                f"Mask '{path}' contains invalid label value(s) {bad.tolist()}; "
                f"expected 0..{_NUM_CLASSES - 1} or {VOID} (void)."
            )
        return mask.astype(np.int64)

    def __getitem__(self, index: int) -> Sample:
        """Load sample ``index``.

        Returns
        -------
        dict
            ``image`` (3, H, W) float32 in [0, 1]; ``mask`` (H, W) int64 in
            0..20 or 255; ``tags`` (20,) float32 multi-hot; ``name`` str.
            If a ``transform`` was given, its return value instead.
        """
        name = self.ids[index]
        img_path = self.image_dir / (name + _IMAGE_EXT)
        mask_path = self.mask_dir / (name + _MASK_EXT)

        with Image.open(img_path) as im:
            image = np.array(im.convert("RGB"), dtype=np.uint8)
        mask = self._load_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise ValueError(
                f"Size mismatch for '{name}': image '{img_path}' is "
                f"{image.shape[0]}x{image.shape[1]} (HxW) but mask '{mask_path}' "
                f"is {mask.shape[0]}x{mask.shape[1]}."
            )

        tags = np.zeros(_NUM_CLASSES - 1, dtype=np.float32)
        present = np.unique(mask)
        present = present[(present > 0) & (present != VOID)]
        tags[present - 1] = 1.0

        sample: Sample = {
            "image": torch.from_numpy(
                np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
            ),
            "mask": torch.from_numpy(mask),
            "tags": torch.from_numpy(tags),
            "name": name,
        }
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root='{self.root}', split={self.split!r}, "
            f"n={len(self)}, masks='{self.mask_dir.name}')"
        )
