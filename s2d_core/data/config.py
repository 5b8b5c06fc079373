"""Configuration of the synthetic benchmark: one frozen dataclass, validated on creation.

Every knob is a documented field. Each of the four groups of knobs controls one failure
mode of weakly supervised segmentation that a later method in the book exists to fix:

1. partial discriminativeness: ``emblem_frac``, ``body_specificity``, ``n_body_styles``
2. intra-class variation: ``n_subtypes``
3. co-occurring context: ``context_prob``, ``context_scale``, ``context_distractor_prob``
4. irregular soft boundaries and clutter: ``boundary_irregularity``, ``boundary_softness``,
   ``clutter``, ``noise_std``

Named presets (``cpu``, ``gpu``, ...) live in :mod:`s2d_core.presets`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class SyntheticConfig:
    """All knobs of the procedural scene generator.

    Lengths are fractions of ``image_size`` unless the name says ``px``, so a preset looks
    alike at 64 and at 256 pixels.
    """

    # --- size of the world -------------------------------------------------------------
    image_size: int = 64
    """Height = width of every image, in pixels (>= 32)."""
    n_classes: int = 6
    """Number of foreground classes (1..12); class 0 is background."""
    n_train: int = 2000
    """Images in the ``train`` split."""
    n_val: int = 500
    """Images in the ``val`` split (also used for ``test`` unless ``n_test`` is set)."""
    n_test: int = 0
    """Images in the ``test`` split; 0 means the same count as ``n_val``."""
    world_seed: int = 0
    """Seed of the *world*: class appearances, emblems, contexts. Images are seeded by
    (world_seed, split, index), so any image can be regenerated on its own."""
    min_objects: int = 1
    max_objects: int = 3
    object_radius: tuple[float, float] = (0.20, 0.32)
    """Range of an object's mean radius, as a fraction of ``image_size``."""

    # --- 1. partial discriminativeness ---------------------------------------------------
    emblem_frac: float = 0.08
    """Area of the class emblem (the only fully class-specific part) relative to the disk of the
    object's radius; elongated objects are smaller than that disk, so the emblem's share of the
    visible object is about 1.5x this (see ``emblem_share`` in the class statistics). Small
    values make the classifier, and hence its CAM, look at a small part."""
    body_specificity: float = 0.05
    """0..1: how much of an object's body colour comes from a class-specific tint. At 0 the
    body carries no class information; at 1 the body alone identifies the class."""
    n_body_styles: int = 4
    """Size of the pool of body styles (colour pair + texture) shared by all classes.
    Each style is used by several classes, so a body style does not identify the class."""

    # --- 2. intra-class variation --------------------------------------------------------
    n_subtypes: int = 3
    """Sub-types per class, each with its own body style and shape family (1 = none)."""

    # --- 3. co-occurring context ---------------------------------------------------------
    context_prob: float = 0.8
    """Probability that an object stands on its class's typical context (boats on water)."""
    context_scale: float = 1.9
    """Radius of the context region relative to the object's radius."""
    context_distractor_prob: float = 0.2
    """Probability that an image shows the context of a class that is *not* in the image,
    so context is a strong but imperfect cue."""

    # --- 4. boundaries and clutter -------------------------------------------------------
    boundary_irregularity: float = 0.5
    """0..1: amplitude of high-frequency wiggles of object outlines."""
    boundary_softness: float = 0.8
    """Width (in pixels at 64 px, scaled with the image) of the soft alpha ramp at object
    boundaries."""
    clutter: float = 4.0
    """Mean number of unlabelled clutter shapes (body-like colours, no emblem) per image."""
    noise_std: float = 0.03
    """Standard deviation of additive pixel noise (image values are in [0, 1])."""
    void_width: int = 0
    """Pixels within this distance of a label boundary get the void label 255 (VOC uses a
    5-pixel band at 500 px). 0 disables it."""

    # --- sparse annotations ----------------------------------------------------------------
    scribble_width: int = 1
    """Thickness of scribble strokes in pixels (1 = one-pixel line)."""
    scribble_length: float = 0.8
    """Length of an object's scribble as a fraction of its diameter."""
    bg_scribbles: int = 2
    """Number of background strokes per image."""

    name: str = ""
    """Label of the configuration (a preset's name); used in cache file names, not a knob."""

    def __post_init__(self) -> None:
        _check(isinstance(self.image_size, int) and self.image_size >= 32,
               "image_size", self.image_size, "an int >= 32")
        _check(isinstance(self.n_classes, int) and 1 <= self.n_classes <= 12,
               "n_classes", self.n_classes, "an int in [1, 12]")
        for name in ("n_train", "n_val", "n_test"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 0, name, v, "an int >= 0")
        _check(isinstance(self.min_objects, int) and self.min_objects >= 1,
               "min_objects", self.min_objects, "an int >= 1")
        _check(isinstance(self.max_objects, int) and self.min_objects <= self.max_objects <= 6,
               "max_objects", self.max_objects, f"an int in [min_objects={self.min_objects}, 6]")
        r = self.object_radius
        _check(isinstance(r, (tuple, list)) and len(r) == 2 and 0.03 <= r[0] <= r[1] <= 0.35,
               "object_radius", r, "a pair (lo, hi) with 0.03 <= lo <= hi <= 0.35")
        for name, lo, hi in (("emblem_frac", 0.01, 0.6), ("body_specificity", 0.0, 1.0),
                             ("context_prob", 0.0, 1.0), ("context_distractor_prob", 0.0, 1.0),
                             ("boundary_irregularity", 0.0, 1.0), ("noise_std", 0.0, 0.3),
                             ("scribble_length", 0.05, 2.0)):
            v = getattr(self, name)
            _check(isinstance(v, (int, float)) and lo <= v <= hi, name, v, f"a number in [{lo}, {hi}]")
        _check(isinstance(self.context_scale, (int, float)) and 1.0 <= self.context_scale <= 5.0,
               "context_scale", self.context_scale, "a number in [1, 5]")
        _check(isinstance(self.boundary_softness, (int, float)) and 0.05 <= self.boundary_softness <= 5.0,
               "boundary_softness", self.boundary_softness, "a number in [0.05, 5]")
        _check(isinstance(self.clutter, (int, float)) and 0.0 <= self.clutter <= 30.0,
               "clutter", self.clutter, "a number in [0, 30]")
        _check(isinstance(self.n_subtypes, int) and 1 <= self.n_subtypes <= 6,
               "n_subtypes", self.n_subtypes, "an int in [1, 6]")
        _check(isinstance(self.n_body_styles, int) and self.n_subtypes <= self.n_body_styles <= 16,
               "n_body_styles", self.n_body_styles,
               f"an int in [n_subtypes={self.n_subtypes}, 16] (each class needs distinct styles)")
        for name, lo in (("void_width", 0), ("scribble_width", 1), ("bg_scribbles", 0)):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= lo, name, v, f"an int >= {lo}")
        # tuples survive YAML/JSON as lists; normalise so equal configs hash equally
        object.__setattr__(self, "object_radius", (float(r[0]), float(r[1])))

    # ------------------------------------------------------------------------------------
    def split_size(self, split: str) -> int:
        """Number of images in ``split`` (``train``, ``val`` or ``test``)."""
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test or self.n_val}
        if split not in sizes:
            raise ValueError(f"unknown split {split!r}: expected one of {sorted(sizes)}")
        return sizes[split]

    def replace(self, **changes: Any) -> "SyntheticConfig":
        """A copy with some knobs changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown SyntheticConfig knob(s) {sorted(unknown)}; "
                            f"valid knobs: {sorted(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SyntheticConfig":
        """Build from a plain mapping (e.g. loaded from YAML), rejecting unknown keys."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - valid
        if unknown:
            raise ValueError(f"unknown SyntheticConfig key(s) {sorted(unknown)}; valid keys: {sorted(valid)}")
        data = dict(data)
        if "object_radius" in data:
            data["object_radius"] = tuple(data["object_radius"])
        return cls(**data)


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"SyntheticConfig.{name} = {value!r} is invalid: expected {expected}")
