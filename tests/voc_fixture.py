"""A tiny PASCAL VOC 2012 tree written into a folder, for the VOC tests and the VOC smoke run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
from PIL import Image

from s2d_core.data.voc import VOID, voc_colour_map

# id -> (H, W, foreground classes). Sizes differ so a shape mix-up shows.
SPECS: Dict[str, Tuple[int, int, Tuple[int, ...]]] = {
    "2007_000032": (24, 32, (1, 15)),   # aeroplane, person
    "2007_000039": (30, 20, (20,)),     # tvmonitor
    "2008_000123": (16, 16, ()),        # background only
    "2009_000456": (20, 28, (8, 12)),   # cat, dog
    "2010_000789": (18, 26, (5,)),      # bottle
    "2011_000010": (22, 14, (3, 7)),    # bird, car
}
TRAIN = ["2007_000032", "2007_000039"]
VAL = ["2008_000123", "2009_000456"]
TRAIN_AUG = ["2007_000032", "2009_000456", "2010_000789", "2011_000010", "2007_000039"]


def _make_mask(h: int, w: int, classes: Tuple[int, ...]) -> np.ndarray:
    """Deterministic label map: one block per class and a 1-px void border."""
    m = np.zeros((h, w), dtype=np.uint8)
    for k, c in enumerate(classes):
        y0, x0 = 2 + 3 * k, 2 + 4 * k
        m[y0 : y0 + 5, x0 : x0 + 6] = c
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = VOID
    return m


@dataclass
class Tree:
    base: Path           # tmp_path, parent of VOCdevkit/
    voc: Path            # .../VOCdevkit/VOC2012
    masks: Dict[str, np.ndarray] = field(default_factory=dict)


def _build(base: Path, with_aug: bool = True, with_official: bool = True) -> Tree:
    voc = base / "VOCdevkit" / "VOC2012"
    (voc / "JPEGImages").mkdir(parents=True)
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    tree = Tree(base=base, voc=voc)
    rng = np.random.default_rng(0)
    for name, (h, w, classes) in SPECS.items():
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(voc / "JPEGImages" / f"{name}.jpg", quality=90)
        tree.masks[name] = _make_mask(h, w, classes)
    if with_aug:
        (voc / "SegmentationClassAug").mkdir()
        for name, m in tree.masks.items():
            Image.fromarray(m).save(voc / "SegmentationClassAug" / f"{name}.png")
    if with_official:
        (voc / "SegmentationClass").mkdir()
        pal = voc_colour_map().flatten().tolist()
        for name in TRAIN + VAL:
            m = tree.masks[name]
            im = Image.frombytes("P", (m.shape[1], m.shape[0]), m.tobytes())
            im.putpalette(pal)
            im.save(voc / "SegmentationClass" / f"{name}.png")
    (lists / "train.txt").write_text("\n".join(TRAIN) + "\n")
    (lists / "val.txt").write_text("\n".join(VAL) + "\n")
    # The two-column format some repos ship, with a trailing blank line.
    (lists / "train_aug.txt").write_text(
        "".join(f"/JPEGImages/{n}.jpg /SegmentationClassAug/{n}.png\n" for n in TRAIN_AUG) + "\n"
    )
    return tree
