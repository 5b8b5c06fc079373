"""Configuration of the synthetic benchmark: one frozen dataclass, validated on creation.

Every knob is a documented field. Each of the four groups of knobs controls one failure
mode of weakly supervised segmentation that a later method in the book exists to fix:

1. partial discriminativeness: ``emblem_frac``, ``body_specificity``, ``n_body_styles``
2. intra-class variation: ``n_subtypes``
3. co-occurring context: ``context_prob``, ``context_scale``, ``context_distractor_prob``
4. irregular soft boundaries and clutter: ``boundary_irregularity``, ``boundary_softness``,
   ``clutter``, ``noise_std``

Named presets (``cpu``, ``gpu``, ``tiny``) live in :mod:`s2d_core.data.presets`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..configbase import Config, at_least, between, check, non_negative


def check_objects(cfg, max_objects: int, radius: tuple[float, float]) -> None:
    """Cross-field checks shared by the worlds: ``min_objects <= max_objects <= max_objects`` (the
    cap) and ``radius[0] <= object_radius[0] <= object_radius[1] <= radius[1]``."""
    name = type(cfg).__name__
    check(cfg.min_objects <= cfg.max_objects <= max_objects,
          f"{name}.max_objects must be in [min_objects={cfg.min_objects}, {max_objects}], got {cfg.max_objects}")
    lo, hi = cfg.object_radius
    check(radius[0] <= lo <= hi <= radius[1],
          f"{name}.object_radius must be (lo, hi) with {radius[0]} <= lo <= hi <= {radius[1]}, got {cfg.object_radius}")


@dataclass(frozen=True)
class SyntheticConfig(Config):
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

    rules = {
        "image_size": at_least(32), "n_classes": between(1, 12), "n_train": non_negative, "n_val": non_negative,
        "n_test": non_negative, "min_objects": at_least(1), "emblem_frac": between(0.01, 0.6),
        "body_specificity": between(0, 1), "n_subtypes": between(1, 6), "context_prob": between(0, 1),
        "context_scale": between(1, 5), "context_distractor_prob": between(0, 1),
        "boundary_irregularity": between(0, 1), "boundary_softness": between(0.05, 5), "clutter": between(0, 30),
        "noise_std": between(0, 0.3), "void_width": non_negative, "scribble_width": at_least(1),
        "scribble_length": between(0.05, 2), "bg_scribbles": non_negative,
    }

    def validate(self) -> None:
        check_objects(self, max_objects=6, radius=(0.03, 0.35))
        check(self.n_subtypes <= self.n_body_styles <= 16,
              f"SyntheticConfig.n_body_styles must be in [n_subtypes={self.n_subtypes}, 16] (each class needs "
              f"distinct styles), got {self.n_body_styles}")

    # ------------------------------------------------------------------------------------
    def split_size(self, split: str) -> int:
        """Number of images in ``split`` (``train``, ``val`` or ``test``)."""
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test or self.n_val}
        if split not in sizes:
            raise ValueError(f"unknown split {split!r}: expected one of {sorted(sizes)}")
        return sizes[split]


@dataclass(frozen=True)
class PretrainWorldConfig(Config):
    """Knobs of the pretraining world (:mod:`s2d_core.data.pretraining`), the stand-in for ImageNet.

    Classes are outlines only: colours, textures, ground and "stuff" are drawn independently
    of the class. Lengths are fractions of ``image_size`` unless the name says otherwise.
    """

    image_size: int = 64
    """Side of every image in pixels: the benchmark's, so the networks see objects at its scale."""
    n_classes: int = 102
    """How many of the world's 102 shape classes to use (the first ``n_classes`` of ``SHAPE_CLASSES``)."""
    n_train: int = 16000
    """Scenes in the ``train`` split (pretraining)."""
    n_test: int = 2000
    """Scenes in the ``test`` split (pretraining accuracy; never trained on)."""
    seed: int = 0
    """Every scene is seeded by (seed, split, index)."""
    min_objects: int = 1
    max_objects: int = 3
    object_radius: tuple[float, float] = (0.2, 0.4)
    """Range of an object's radius (the outline fits a disk of that radius)."""
    max_tilt: float = 30.0
    """Objects are rotated by up to this many degrees either way (upright-ish, like photographs:
    an N tilted by 90 degrees would be a Z)."""
    min_visible: float = 0.5
    """An object is only drawn if every earlier object keeps this fraction of itself visible."""
    max_stuff: int = 1
    """Up to this many amorphous, unlabelled textured regions on the ground."""
    softness: float = 0.7
    """Width of the soft outline ramp in pixels at 64 px."""
    ground_contrast: float = 0.2
    """Contrast of the ground's and the stuff's textures relative to an object's (a calmer ground,
    as in the tiny SAM's object world)."""
    object_contrast: float = 0.3
    """Contrast of an object's texture (1: its two colours as drawn). Low: the outline, not the
    texture, is what the network must learn (RCDB: contours carry the transfer), and a CNN learns
    silhouettes from scratch several times faster without strong texture edges inside them."""
    min_colour_gap: float = 0.3
    """An object's mean colour is at least this far (RGB distance) from the ground's, so that its
    outline can be seen; colours stay independent of the class."""
    noise_std: float = 0.03
    """Pixel noise (image values in [0, 1])."""

    rules = {"image_size": at_least(32), "n_classes": between(2, 102), "n_train": at_least(1), "n_test": at_least(1),
             "min_objects": at_least(1), "min_visible": between(0, 1), "max_stuff": between(0, 5),
             "max_tilt": between(0, 180), "softness": between(0.05, 5), "noise_std": between(0, 0.3),
             "ground_contrast": between(0, 1), "object_contrast": between(0, 1), "min_colour_gap": between(0, 1)}

    def validate(self) -> None:
        check_objects(self, max_objects=5, radius=(0.05, 0.45))


@dataclass(frozen=True)
class VideoWorldConfig(Config):
    """Knobs of the synthetic video world (:mod:`s2d_core.data.video`): clips of moving scenes for
    saliency from scribbles.

    **Salient** means, operationally: the object(s) that move *independently of the camera*. The
    background pans with the camera; distractors look like objects (contrasting colours, an
    outline) but are fixed to the background, so they move exactly as it does; an occluder in front
    also moves with the camera. Each group of knobs is one failure mode that video methods exist
    to fix. Lengths are fractions of ``image_size`` unless the name says ``px``.
    """

    # --- size of the world -------------------------------------------------------------
    image_size: int = 64
    """Height = width of every frame in pixels (>= 32)."""
    n_frames: int = 12
    """Frames per clip (>= 2)."""
    n_train: int = 150
    """Clips in the ``train`` split."""
    n_test: int = 40
    """Clips in the ``test`` split."""
    world_seed: int = 0
    """Every clip is seeded by (world_seed, split, index)."""

    # --- 1. sparse scribbles -------------------------------------------------------------
    scribble_every: int = 1
    """Frames with scribbles: every ``scribble_every``-th frame from the first (1 = every frame)."""
    scribble_width_px: int = 1
    """Thickness of the strokes in pixels."""
    scribble_length: float = 0.7
    """Length of the foreground stroke as a fraction of the salient object's extent along its axis."""
    bg_strokes: int = 1
    """Background strokes per annotated frame. One, as in every example of the WSVSOD scribble
    release's figure (benchmarks/published/wsvsod_scribbles.md); the first world had three, and its
    scribble baseline came within 0.046 S of full supervision (the world's bar is 0.05)."""

    # --- 2. appearance is not enough ---------------------------------------------------------
    camouflage_prob: float = 0.5
    """Share of clips in which the salient object is camouflaged (the rest are not)."""
    camouflage: float = 0.8
    """0..1: in a camouflaged clip, how close the object's colours and texture come to the
    background's (1: the same palette and texture kind, only the phase and the motion differ)."""
    max_distractors: int = 2
    """Up to this many distractors per clip: object-like shapes fixed to the background."""

    # --- 3. temporal change -----------------------------------------------------------------
    object_radius: tuple[float, float] = (0.14, 0.24)
    """Range of the salient object's mean radius."""
    speed_px: tuple[float, float] = (1.0, 2.5)
    """Range of the salient object's speed relative to the background, pixels per frame."""
    camera_px: float = 1.5
    """Largest camera pan speed, pixels per frame (the background and everything fixed to it move by it)."""
    deformation: float = 0.15
    """Amplitude of the outline's change over a clip, a fraction of the radius."""
    scale_change: float = 0.25
    """Largest relative change of the object's size over a clip (approach or recede)."""
    rotation_deg: float = 3.0
    """Largest rotation of the object per frame, degrees."""
    occluder_prob: float = 0.3
    """Probability of an occluding bar in front (fixed to the background) that the object passes behind."""
    enter_leave_prob: float = 0.2
    """Probability that the object's path starts or ends partly outside the frame."""
    noise_std: float = 0.02
    """Pixel noise per frame (values in [0, 1])."""

    name: str = ""
    """Label of the configuration (a preset's name); used in cache file names, not a knob."""

    rules = {"image_size": at_least(32), "n_frames": at_least(2), "n_train": non_negative, "n_test": non_negative,
             "scribble_every": at_least(1), "scribble_width_px": between(1, 5), "scribble_length": between(0.1, 1),
             "bg_strokes": between(0, 10), "camouflage_prob": between(0, 1), "camouflage": between(0, 1),
             "max_distractors": between(0, 4), "camera_px": between(0, 6), "deformation": between(0, 0.4),
             "scale_change": between(0, 0.6), "rotation_deg": between(0, 15), "occluder_prob": between(0, 1),
             "enter_leave_prob": between(0, 1), "noise_std": between(0, 0.2)}

    def validate(self) -> None:
        lo, hi = self.object_radius
        check(0.05 <= lo <= hi <= 0.35, f"VideoWorldConfig.object_radius must be (lo, hi) with 0.05 <= lo <= hi <= 0.35, "
                                        f"got {self.object_radius}")
        lo, hi = self.speed_px
        check(0 < lo <= hi <= 8, f"VideoWorldConfig.speed_px must be (lo, hi) with 0 < lo <= hi <= 8, got {self.speed_px}")

    def split_size(self, split: str) -> int:
        """Clips in ``split`` (``train`` or ``test``)."""
        sizes = {"train": self.n_train, "test": self.n_test}
        if split not in sizes:
            raise ValueError(f"unknown split {split!r}: expected one of {sorted(sizes)}")
        return sizes[split]
