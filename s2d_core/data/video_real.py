"""Real video saliency data: DAVIS 2016 (with the DAVIS-S scribbles) and DAVSOD (with DAVSOD-S).

Nothing is downloaded: point the loaders at the folders you unpacked. Layouts, as released:

**DAVIS 2016** (https://davischallenge.org/davis2016/code.html, ``DAVIS-data.zip``, 480p)::

    ROOT/JPEGImages/480p/<sequence>/00000.jpg ...
    ROOT/Annotations/480p/<sequence>/00000.png ...      dense masks (evaluation, upper bound)
    ROOT/ImageSets/480p/train.txt, val.txt              optional; else the official lists below

**DAVSOD** (Fan et al., CVPR 2019, https://github.com/DengPingFan/DAVSOD)::

    ROOT/<split folder>/<sequence>/Imgs/<frame>.{jpg,png}
    ROOT/<split folder>/<sequence>/GT_object_level/<frame>.png   dense masks

with split folders ``Training Set``, ``Validation Set``, ``Easy-35``, ``Normal-25``, ``Difficult-20``
(also accepted with a ``DAVSOD-`` prefix or, for training and validation, ``train`` / ``val``).

**Scribbles** (the WSVSOD release of Zhao et al., CVPR 2021: DAVIS-S and DAVSOD-S)::

    SCRIBBLES/<sequence>/gt/<frame>.png      the FOREGROUND strokes (not a dense mask!)
    SCRIBBLES/<sequence>/mask/<frame>.png    every labelled pixel (foreground and background strokes)

so a frame's scribble labels are ``1`` where ``gt`` > 0, ``2`` where ``mask`` > 0 and ``gt`` is 0,
``0`` elsewhere (the convention of :mod:`s2d_core.data.video`); the dense evaluation masks always
come from DAVIS ``Annotations/`` or DAVSOD ``GT_object_level/``.

An item is one sequence (frames are read when the item is asked for): ``frames`` (T, 3, H, W)
float32 in [0, 1], ``masks`` (T, H, W) int64 {0, 1}, ``scribbles`` (T, H, W) int64 {0, 1, 2} (all
0 without a scribble root), ``annotated`` (T,) bool (frames with any scribble), ``name``,
``frame_names``. Optical flow is estimated by :func:`s2d_core.data.video.estimate_flow` where a
model needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .video import BACKGROUND, FARNEBACK, FOREGROUND, estimate_flow

__all__ = ["DAVIS2016_TRAIN", "DAVIS2016_VAL", "DAVSOD_SPLITS", "VideoClips", "VideoSequences", "davis2016", "davsod"]

DAVIS2016_VAL = ("blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "car-shadow", "cows", "dance-twirl",
                 "dog", "drift-chicane", "drift-straight", "goat", "horsejump-high", "kite-surf", "libby",
                 "motocross-jump", "paragliding-launch", "parkour", "scooter-black", "soapbox")
"""The 20 sequences of the DAVIS 2016 validation set (the VSOD papers' DAVIS test set)."""
DAVIS2016_TRAIN = ("bear", "bmx-bumps", "boat", "breakdance-flare", "bus", "car-turn", "dance-jump", "dog-agility",
                   "drift-turn", "elephant", "flamingo", "hike", "hockey", "horsejump-low", "kite-walk", "lucia",
                   "mallard-fly", "mallard-water", "motocross-bumps", "motorbike", "paragliding", "rhino", "rollerblade",
                   "scooter-gray", "soccerball", "stroller", "surf", "swing", "tennis", "train")
"""The 30 sequences of the DAVIS 2016 training set."""

DAVSOD_SPLITS = {"train": ("Training Set", "DAVSOD-Training Set", "train"),
                 "val": ("Validation Set", "DAVSOD-Validation Set", "val"),
                 "Easy-35": ("Easy-35", "DAVSOD-Easy-35"), "Normal-25": ("Normal-25", "DAVSOD-Normal-25"),
                 "Difficult-20": ("Difficult-20", "DAVSOD-Difficult-20")}
"""DAVSOD's splits and the folder names each is found under; the test set is Easy-35 + Normal-25 + Difficult-20."""
_DAVSOD_COUNTS = {"Easy-35": 35, "Normal-25": 25, "Difficult-20": 20}
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def _frames_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXT) if folder.is_dir() else []


def _binary(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path).convert("L"))
    return a > 127 if a.max() > 1 else a > 0


class VideoSequences(Dataset):
    """Sequences of frames with dense masks and, optionally, scribbles (see the module docstring).

    ``sequences``: a list of ``(name, frame paths, mask paths)``; ``scribble_root``: the folder of
    the WSVSOD scribbles for these sequences (None: no scribbles); ``dataset``: a label for messages.
    """

    fixed_size = False

    def __init__(self, sequences: list[tuple[str, list[Path], list[Path]]], scribble_root: str | Path | None = None,
                 dataset: str = "video", root: str | Path | None = None) -> None:
        if not sequences:
            raise ValueError(f"{dataset}: no sequences")
        self.sequences, self.dataset = sequences, dataset
        self.root = None if root is None else Path(root).expanduser()
        self.scribble_root = None if scribble_root is None else Path(scribble_root).expanduser()
        if self.scribble_root is not None:
            if not self.scribble_root.is_dir():
                raise FileNotFoundError(f"{dataset}: scribble root {str(self.scribble_root)!r} does not exist; download "
                                        f"the WSVSOD scribbles (DAVIS-S / DAVSOD-S, https://github.com/wangbo-zhao/"
                                        f"2021CVPR-WSVSOD) and pass the folder that holds <sequence>/gt and <sequence>/mask")
            missing = [n for n, _, _ in sequences if not (self.scribble_root / n / "gt").is_dir()
                       or not (self.scribble_root / n / "mask").is_dir()]
            if missing:
                raise FileNotFoundError(f"{dataset}: the scribble root {str(self.scribble_root)!r} lacks <sequence>/gt "
                                        f"and <sequence>/mask for {len(missing)} sequence(s), e.g. {missing[:3]}")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.sequences]

    def _scribbles(self, name: str, frame: Path, shape: tuple[int, int]) -> np.ndarray:
        out = np.zeros(shape, np.int64)
        gt = self.scribble_root / name / "gt" / (frame.stem + ".png")
        lab = self.scribble_root / name / "mask" / (frame.stem + ".png")
        if not gt.is_file() and not lab.is_file():
            return out  # an unannotated frame
        if not gt.is_file() or not lab.is_file():
            raise FileNotFoundError(f"{self.dataset}/{name}: scribble frame {frame.stem} has "
                                    f"{'gt' if gt.is_file() else 'mask'}/ but not {'mask' if gt.is_file() else 'gt'}/")
        fg, labelled = _binary(gt), _binary(lab)
        if fg.shape != shape or labelled.shape != shape:
            raise ValueError(f"{self.dataset}/{name}: scribbles of frame {frame.stem} are {fg.shape}, the frame is {shape}")
        out[labelled] = BACKGROUND
        out[fg] = FOREGROUND
        return out

    def __getitem__(self, i: int) -> dict:
        name, frames, masks = self.sequences[i]
        imgs = [np.asarray(Image.open(p).convert("RGB")) for p in frames]
        shape = imgs[0].shape[:2]
        gts = []
        for f, m in zip(frames, masks):
            g = _binary(m)
            if g.shape != shape:
                raise ValueError(f"{self.dataset}/{name}: mask {m.name} is {g.shape}, frame {f.name} is {shape}")
            gts.append(g)
        scr = np.stack([self._scribbles(name, f, shape) for f in frames]) if self.scribble_root is not None else \
            np.zeros((len(frames), *shape), np.int64)
        return {"frames": torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32) / 255.0),
                "masks": torch.from_numpy(np.stack(gts).astype(np.int64)), "scribbles": torch.from_numpy(scr),
                "annotated": torch.from_numpy((scr > 0).reshape(len(scr), -1).any(1)), "name": name,
                "frame_names": [f.stem for f in frames], "index": int(i)}

    def __repr__(self) -> str:
        return f"VideoSequences({self.dataset!r}, sequences={len(self)}, scribbles={self.scribble_root is not None})"


def _need(path: Path, what: str, hint: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: expected the folder {str(path)!r}. {hint}")


def davis2016(root: str | Path, split: str = "val", scribbles: str | Path | None = None) -> VideoSequences:
    """DAVIS 2016 ``split`` (``"train"``: 30 sequences, ``"val"``: 20) at 480p, with the DAVIS-S
    scribbles when ``scribbles`` is the folder of their sequences."""
    root = Path(root).expanduser()
    hint = ("Download DAVIS-data.zip (480p) from https://davischallenge.org/davis2016/code.html and unpack it so "
            "that ROOT/JPEGImages/480p/<sequence>/00000.jpg and ROOT/Annotations/480p/<sequence>/00000.png exist.")
    if split not in ("train", "val"):
        raise ValueError(f"DAVIS 2016 split must be 'train' or 'val', got {split!r}")
    _need(root, "DAVIS 2016 root", hint)
    _need(root / "JPEGImages" / "480p", "DAVIS 2016 frames", hint)
    _need(root / "Annotations" / "480p", "DAVIS 2016 masks", hint)
    listing = root / "ImageSets" / "480p" / f"{split}.txt"
    if listing.is_file():  # lines "/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png"
        names = list(dict.fromkeys(line.split()[0].strip("/").split("/")[2] for line in listing.read_text().splitlines()
                                   if line.strip()))
    else:
        names = list(DAVIS2016_VAL if split == "val" else DAVIS2016_TRAIN)
    sequences, incomplete = [], []
    for n in names:
        frames = _frames_in(root / "JPEGImages" / "480p" / n)
        masks = [root / "Annotations" / "480p" / n / (f.stem + ".png") for f in frames]
        if not frames or not all(m.is_file() for m in masks):
            incomplete.append(n)
        else:
            sequences.append((n, frames, masks))
    if incomplete:
        raise FileNotFoundError(f"DAVIS 2016 {split}: {len(incomplete)} of {len(names)} sequences have no frames or "
                                f"lack masks under {str(root)!r}, e.g. {incomplete[:3]}. {hint}")
    return VideoSequences(sequences, scribbles, dataset=f"DAVIS-2016/{split}", root=root)


def davsod(root: str | Path, split: str = "Easy-35", scribbles: str | Path | None = None) -> VideoSequences:
    """DAVSOD ``split`` (``"train"``, ``"val"``, ``"Easy-35"``, ``"Normal-25"``, ``"Difficult-20"``, or
    ``"test"`` for the three test splits together), with the DAVSOD-S scribbles when ``scribbles`` is
    the folder of their sequences."""
    root = Path(root).expanduser()
    hint = ("Download DAVSOD from https://github.com/DengPingFan/DAVSOD and unpack it so that "
            "ROOT/<split>/<sequence>/Imgs/ and ROOT/<split>/<sequence>/GT_object_level/ exist, with split folders "
            + ", ".join(repr(v[0]) for v in DAVSOD_SPLITS.values()) + ".")
    if split == "test":
        parts = [davsod(root, s, scribbles) for s in _DAVSOD_COUNTS]
        return VideoSequences([s for p in parts for s in p.sequences], scribbles, dataset="DAVSOD/test", root=root)
    if split not in DAVSOD_SPLITS:
        raise ValueError(f"DAVSOD split must be one of {sorted(DAVSOD_SPLITS) + ['test']}, got {split!r}")
    _need(root, "DAVSOD root", hint)
    folder = next((root / f for f in DAVSOD_SPLITS[split] if (root / f).is_dir()), None)
    if folder is None:
        raise FileNotFoundError(f"DAVSOD {split}: none of the folders {list(DAVSOD_SPLITS[split])} is in {str(root)!r}. "
                                f"{hint}")
    sequences, incomplete = [], []
    for seq in sorted(p for p in folder.iterdir() if p.is_dir()):
        frames = _frames_in(seq / "Imgs")
        masks = [seq / "GT_object_level" / (f.stem + ".png") for f in frames]
        if not frames or not all(m.is_file() for m in masks):
            incomplete.append(seq.name)
        else:
            sequences.append((seq.name, frames, masks))
    if incomplete:
        raise FileNotFoundError(f"DAVSOD {split}: {len(incomplete)} sequence(s) have no Imgs/ or lack GT_object_level/ "
                                f"masks, e.g. {incomplete[:3]}. {hint}")
    expected = _DAVSOD_COUNTS.get(split)
    if expected is not None and len(sequences) != expected:
        raise FileNotFoundError(f"DAVSOD {split}: found {len(sequences)} sequences in {str(folder)!r}, the release has "
                                f"{expected}; an incomplete download? {hint}")
    return VideoSequences(sequences, scribbles, dataset=f"DAVSOD/{split}", root=root)


def _resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scribble labels (T, H, W) {0, 1, 2} at ``size``: a cell carries a label when any of its pixels
    does (area interpolation > 0), foreground winning over background -- so that strokes a few pixels
    wide survive the down-scaling instead of being dropped by a nearest-neighbour sample."""
    out = np.zeros((len(labels), *size), np.int64)
    for value in (BACKGROUND, FOREGROUND):
        hit = torch.from_numpy((labels == value).astype(np.float32))[:, None]
        out[torch.nn.functional.interpolate(hit, size=size, mode="area")[:, 0].numpy() > 0] = value
    return out


class VideoClips(Dataset):
    """Real sequences in the item format of :class:`~s2d_core.data.video.SyntheticVideo`, so the
    training and evaluation code of the synthetic world runs on them unchanged.

    ``sequences``: a :class:`VideoSequences`. Frames are resized to ``size`` (H, W) (bilinear),
    dense masks by nearest neighbour, scribbles so that thin strokes survive (:func:`_resize_labels`),
    and the flow is estimated from the resized frames (:func:`~s2d_core.data.video.estimate_flow`,
    Farneback). ``length``: cut each sequence into clips of this many consecutive frames (training;
    a sequence's frames past the last full clip are dropped, a shorter sequence is skipped) or
    ``None`` for one item per whole sequence (evaluation: the metrics aggregate per sequence).

    Items: ``frames`` (T, 3, H, W) float32 in [0, 1], ``flow`` (T, 2, H, W) float32 (dy, dx) in
    pixels, ``masks``/``scribbles`` (T, H, W) int64, ``annotated`` (T,) bool, ``name`` (sequence name,
    with ``@start`` for clips), ``sequence``, ``start``, ``index``, and ``full_masks`` (T, H0, W0) int64
    at the original resolution (whole-sequence items only: the VSOD toolkits score at the original size). Items are kept in
    memory once read (uint8 frames, float16 flow: about 0.6 MB per frame at 256 x 448).
    """

    version = 1

    def __init__(self, sequences: VideoSequences, size: tuple[int, int] = (256, 448), length: int | None = 12) -> None:
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"size must be (H, W) with both >= 8, got {size!r}")
        if length is not None and length < 1:
            raise ValueError(f"length must be >= 1 or None, got {length!r}")
        self.sequences, self.size, self.length = sequences, (int(size[0]), int(size[1])), length
        self.fixed_size = length is not None  # every clip then has the same shape
        self.items: list[tuple[int, int, int]] = []  # (sequence, start, stop)
        for s, (_, frames, _) in enumerate(sequences.sequences):
            if length is None:
                self.items.append((s, 0, len(frames)))
            else:
                self.items.extend((s, a, a + length) for a in range(0, len(frames) - length + 1, length))
        if not self.items:
            raise ValueError(f"{sequences.dataset}: no sequence has {length} frames; use a shorter clip length")
        self._memo: dict[int, dict] = {}

    def identity(self) -> dict:
        """What identifies these clips in cache keys and benchmark records (JSON-able)."""
        seqs = self.sequences
        scribbles = None if seqs.scribble_root is None else str(seqs.scribble_root.resolve())
        # the version changes with how clips are made (resizing, label scaling, flow), so a changed
        # recipe never reuses a network trained on the old clips
        return {"name": type(self).__name__, "version": self.version, "dataset": seqs.dataset,
                "root": None if seqs.root is None else str(seqs.root.resolve()), "sequences": seqs.names,
                "frames": sum(len(f) for _, f, _ in seqs.sequences), "scribbles": scribbles,
                "size": list(self.size), "length": self.length, "flow": dict(FARNEBACK)}

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, s: int) -> dict:
        if s not in self._memo:
            seq = self.sequences[s]
            frames = torch.nn.functional.interpolate(seq["frames"], size=self.size, mode="bilinear", align_corners=False)
            frames = (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            masks = torch.nn.functional.interpolate(seq["masks"][:, None].float(), size=self.size, mode="nearest")[:, 0]
            self._memo[s] = {"frames": frames, "flow": estimate_flow(frames).astype(np.float16),
                             "masks": masks.to(torch.uint8).numpy(),
                             "scribbles": _resize_labels(seq["scribbles"].numpy(), self.size).astype(np.uint8),
                             # the original resolution is scored, so only whole-sequence items keep it
                             "full_masks": seq["masks"].to(torch.uint8).numpy() if self.length is None else None,
                             "name": seq["name"]}
        return self._memo[s]

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        s, a, b = self.items[i]
        d = self._load(s)
        scr = d["scribbles"][a:b].astype(np.int64)
        return {"frames": torch.from_numpy(d["frames"][a:b].transpose(0, 3, 1, 2).astype(np.float32) / 255.0),
                "flow": torch.from_numpy(d["flow"][a:b].astype(np.float32)),
                "masks": torch.from_numpy(d["masks"][a:b].astype(np.int64)), "scribbles": torch.from_numpy(scr),
                "annotated": torch.from_numpy((scr > 0).reshape(len(scr), -1).any(1)),
                **({} if d["full_masks"] is None else {"full_masks": torch.from_numpy(d["full_masks"][a:b].astype(np.int64))}),
                "name": d["name"] if self.length is None else f"{d['name']}@{a}", "sequence": d["name"], "start": a,
                "index": int(i) % len(self)}

    def __repr__(self) -> str:
        return f"VideoClips({self.sequences.dataset!r}, items={len(self)}, size={self.size}, length={self.length})"
