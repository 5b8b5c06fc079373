"""The synthetic world: a seeded, procedurally generated PASCAL-VOC-like benchmark.

A *world* (:class:`World`, built once from ``SyntheticConfig.world_seed``) fixes what each
class looks like; a *scene* (:func:`render_scene`) is one image drawn from that world.

How a class looks, and which failure mode each part creates:

* **Emblem** (class-specific, small): a disk of two saturated class colours covering
  ``emblem_frac`` of the object, at one end of its long axis like a head. It is the only part
  that names the class on its own, so a
  classifier learns it first and its CAM covers only that part (*partial discriminativeness*).
* **Body** (shared): colour pair + texture + outline taken from a pool of body styles that
  several classes share; ``body_specificity`` mixes in a weak class tint.
* **Sub-types**: each class has ``n_subtypes`` variants with different body styles and
  outlines, so one class prototype does not describe it (*intra-class variation*).
* **Context**: each class has a typical surrounding texture ("sailors" stand on "water");
  with probability ``context_prob`` a context region is painted around the object, and
  sometimes without it (*co-occurring context*, CAMs leak onto it).
* **Boundaries and clutter**: wiggly, soft outlines, unlabelled clutter shapes in body
  colours, illumination gradient and pixel noise.

Every scene returns its dense mask and instance map, and two diagnostic maps no method may
use for training: where the emblems are and where class contexts are painted. The book uses
them to measure *where* a CAM fires.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .annotations import boxes_from_instances, points_from_instances, scribbles_from_instances
from .config import SyntheticConfig
from .textures import colourise, hsv, polar_blob, texture

#: Class names and the names of their typical contexts (first ``n_classes`` are used).
CLASS_NAMES = ("sailor", "grazer", "rover", "flyer", "digger", "skater",
               "glider", "climber", "diver", "runner", "hopper", "crawler")
CONTEXT_NAMES = ("water", "grass", "sand", "sky", "soil", "ice",
                 "cloud", "rock", "reef", "track", "moss", "leaves")
# (texture, hue, saturation range, value range) of each context; fixed so that "water"
# always looks like water whatever the world seed.
_CONTEXT_LOOK = (("waves", 0.58), ("stripes", 0.30), ("dots", 0.11), ("gradient", 0.55),
                 ("noise", 0.07), ("checker", 0.50), ("noise", 0.62), ("checker", 0.08),
                 ("dots", 0.47), ("stripes", 0.00), ("noise", 0.25), ("dots", 0.20))
_BODY_TEXTURES = ("flat", "stripes", "dots", "checker", "noise")
SHAPE_FAMILIES = ("round", "long", "star", "lumpy")
_EMBLEM_PATTERNS = ("rings", "split", "spot", "cross")
SPLITS = ("train", "val", "test")
#: Recipe version of a generated split (this module, :mod:`.textures`, :mod:`.annotations`): bump it
#: when a change alters any generated pixel or label, so cached splits are regenerated.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class BodyStyle:
    """Appearance shared by several classes: two colours ``(2, 3)`` and a texture."""
    colours: tuple[tuple[float, ...], tuple[float, ...]]
    texture: str
    period: float  # fraction of image size
    angle: float


@dataclass(frozen=True)
class SubType:
    """One variant of a class: which body style and which outline family."""
    style: int
    shape: str


@dataclass(frozen=True)
class ClassSpec:
    """Everything that defines one foreground class."""
    name: str
    context_name: str
    tint: tuple[float, ...]
    emblem_colours: tuple[tuple[float, ...], tuple[float, ...]]
    emblem_pattern: str
    context_colours: tuple[tuple[float, ...], tuple[float, ...]]
    context_texture: str
    subtypes: tuple[SubType, ...]


@dataclass(frozen=True)
class World:
    """The fixed class definitions of one synthetic benchmark."""
    classes: tuple[ClassSpec, ...]
    body_styles: tuple[BodyStyle, ...]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names indexed by label: 0 is ``background``."""
        return ("background",) + tuple(c.name for c in self.classes)


@functools.lru_cache(maxsize=32)
def make_world(cfg: SyntheticConfig) -> World:
    """Build the class definitions of ``cfg`` (deterministic in ``cfg.world_seed``)."""
    rng = np.random.default_rng([cfg.world_seed, 7919])
    n, s, m = cfg.n_classes, cfg.n_subtypes, cfg.n_body_styles

    # Body styles: muted colours, so that saturated colours stay the emblems' privilege.
    hues = (np.arange(m) / m + rng.uniform(0, 1)) % 1.0
    styles = []
    for i in range(m):
        c0 = hsv(hues[i], rng.uniform(0.4, 0.6), rng.uniform(0.3, 0.45))
        c1 = hsv(hues[i] + rng.uniform(-0.08, 0.08), rng.uniform(0.35, 0.55), rng.uniform(0.7, 0.9))
        styles.append(BodyStyle((tuple(c0), tuple(c1)), _BODY_TEXTURES[i % len(_BODY_TEXTURES)],
                                float(rng.uniform(0.06, 0.1)), float(rng.uniform(0, np.pi))))

    assignment = _deal_styles(n, s, m, rng)
    classes = []
    for c in range(n):
        tex, chue = _CONTEXT_LOOK[c]
        ctx = (tuple(hsv(chue, 0.45, 0.5)), tuple(hsv(chue + 0.03, 0.35, 0.68)))
        ehue = c / n
        emb = (tuple(hsv(ehue, 1.0, 1.0)), tuple(hsv(ehue + 0.5, 0.9, 0.35)))
        subtypes = tuple(SubType(int(assignment[c][k]), SHAPE_FAMILIES[int(rng.integers(len(SHAPE_FAMILIES)))])
                         for k in range(s))
        classes.append(ClassSpec(
            name=CLASS_NAMES[c], context_name=CONTEXT_NAMES[c],
            tint=tuple(hsv(ehue, 0.8, 0.7)), emblem_colours=emb,
            emblem_pattern=_EMBLEM_PATTERNS[c % len(_EMBLEM_PATTERNS)],
            context_colours=ctx, context_texture=tex, subtypes=subtypes))
    return World(tuple(classes), tuple(styles))


def _deal_styles(n: int, s: int, m: int, rng: np.random.Generator) -> list[list[int]]:
    """Give each of ``n`` classes ``s`` distinct styles out of ``m``, using every style about
    equally often, so that a body style is shared by several classes (never a class cue)."""
    for _ in range(1000):
        deck = np.concatenate([rng.permutation(m) for _ in range(-(-n * s // m))])[: n * s]
        hands = deck.reshape(n, s)
        if all(len(set(h)) == s for h in hands):
            return hands.tolist()
    # Latin-square fallback: always distinct within a class.
    return [[(c + k * max(1, m // s)) % m for k in range(s)] for c in range(n)]


def scene_seed(cfg: SyntheticConfig, split: str, index: int) -> np.random.SeedSequence:
    """The seed of image ``index`` of ``split``: independent of every other image."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLITS}")
    return np.random.SeedSequence([cfg.world_seed, zlib.crc32(split.encode()), int(index)])


def render_scene(cfg: SyntheticConfig, split: str = "train", index: int = 0) -> dict[str, np.ndarray]:
    """Render image ``index`` of ``split``, with every annotation.

    Returns
    -------
    dict with NumPy arrays (``H = W = cfg.image_size``, ``K`` = objects, ``N`` = classes):

    ``image``      ``(H, W, 3)`` float32 in [0, 1]
    ``mask``       ``(H, W)`` uint8: 0 background, 1..N classes, 255 void
    ``instances``  ``(H, W)`` uint8: 0 none, k+1 for object k (visible part)
    ``classes``    ``(K,)`` int64 class label (1..N) of each object
    ``subtypes``   ``(K,)`` int64 sub-type of each object
    ``tags``       ``(N,)`` float32 multi-hot; ``tags[c-1]`` is class ``c``
    ``points``     ``(K, 3)`` int64 rows ``(y, x, class)``, one click inside each object
    ``scribbles``  ``(H, W)`` uint8: class on stroke pixels (0 = background stroke), 255 unlabelled
    ``boxes``      ``(K, 5)`` int64 rows ``(x0, y0, x1, y1, class)``, tight and inclusive
    ``emblem``     ``(H, W)`` uint8 diagnostic: class id where its emblem is visible
    ``context``    ``(H, W)`` uint8 diagnostic: class id whose context texture is painted there
    """
    world = make_world(cfg)
    rng = np.random.default_rng(scene_seed(cfg, split, index))
    size = cfg.image_size
    px = size / 64.0  # knobs given "in pixels at 64 px" scale with the image
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    img = _ground(yy, xx, size, rng)
    context = np.zeros((size, size), np.uint8)

    # Decide the objects first, so that contexts can be painted under them.
    n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objs = [_sample_object(cfg, world, size, px, rng) for _ in range(n_obj)]

    for o in objs:
        if rng.random() < cfg.context_prob:
            _paint_context(img, context, world, o["cls"], o["cy"], o["cx"],
                           o["radius"] * cfg.context_scale, yy, xx, px, rng)
    if cfg.n_classes > 1 and rng.random() < cfg.context_distractor_prob:
        absent = [c for c in range(1, cfg.n_classes + 1) if c not in {o["cls"] for o in objs}]
        if absent:
            c = int(rng.choice(absent))
            r = size * rng.uniform(*cfg.object_radius) * cfg.context_scale
            _paint_context(img, context, world, c, rng.uniform(0, size), rng.uniform(0, size),
                           r, yy, xx, px, rng)

    for _ in range(rng.poisson(cfg.clutter)):
        _paint_clutter(img, cfg, world, yy, xx, size, px, rng)

    label = np.zeros((size, size), np.uint8)
    inst = np.zeros((size, size), np.uint8)
    emblem = np.zeros((size, size), np.uint8)
    kept: list[dict] = []
    for o in objs:
        alpha = polar_blob(yy, xx, o["cy"], o["cx"], o["radius"], o["aspect"], o["angle"],
                           o["harmonics"], cfg.boundary_softness * px)
        hard = alpha > 0.5
        if hard.sum() < 12:
            continue
        # Keep earlier objects at least 40% visible; otherwise this object is skipped.
        if any((inst == k + 1).sum() - ((inst == k + 1) & hard).sum() < 0.4 * kk["area"]
               for k, kk in enumerate(kept)):
            continue
        body, emb_alpha = _object_appearance(cfg, world, o, yy, xx, size, px, rng)
        img[:] = img * (1 - alpha[..., None]) + body * alpha[..., None]
        k = len(kept) + 1
        label[hard] = o["cls"]
        inst[hard] = k
        emblem[hard] = 0
        emblem[hard & (emb_alpha > 0.5)] = o["cls"]
        kept.append({"cls": o["cls"], "sub": o["sub"], "area": int(hard.sum())})

    # Objects may be overlapped away completely by later ones; renumber visible ones.
    inst, kept = _compact_instances(inst, kept)

    img = _photometric(img, yy, xx, size, cfg.noise_std, rng)
    mask = label.copy()
    if cfg.void_width > 0:
        mask[_boundary_band(label, cfg.void_width)] = 255

    classes = np.array([k["cls"] for k in kept], dtype=np.int64)
    tags = np.zeros(cfg.n_classes, np.float32)
    tags[classes - 1] = 1.0
    return {
        "image": img.astype(np.float32),
        "mask": mask,
        "instances": inst,
        "classes": classes,
        "subtypes": np.array([k["sub"] for k in kept], dtype=np.int64),
        "tags": tags,
        "points": points_from_instances(inst, classes, rng),
        "scribbles": scribbles_from_instances(inst, classes, rng, width=cfg.scribble_width,
                                              length=cfg.scribble_length, n_background=cfg.bg_scribbles),
        "boxes": boxes_from_instances(inst, classes),
        "emblem": emblem,
        "context": context,
    }


# --------------------------------------------------------------------------- pieces
def _sample_object(cfg: SyntheticConfig, world: World, size: int, px: float,
                   rng: np.random.Generator) -> dict:
    cls = int(rng.integers(1, cfg.n_classes + 1))
    sub = int(rng.integers(cfg.n_subtypes))
    shape = world.classes[cls - 1].subtypes[sub].shape
    radius = size * rng.uniform(*cfg.object_radius)
    margin = 0.6 * radius
    cy, cx = rng.uniform(margin, size - margin, size=2)
    aspect, harmonics = outline_harmonics(shape, cfg.boundary_irregularity, rng)
    return {"cls": cls, "sub": sub, "radius": radius, "cy": cy, "cx": cx, "aspect": aspect,
            "angle": rng.uniform(0, np.pi), "harmonics": harmonics}


def outline_harmonics(shape: str, irregularity: float, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """Aspect ratio and harmonics ``(K, 3)`` of an outline family."""
    rows = []
    if shape == "round":
        aspect = rng.uniform(1.2, 1.5)
        rows.append((2, rng.uniform(0.03, 0.08), rng.uniform(0, 2 * np.pi)))
    elif shape == "long":
        aspect = rng.uniform(1.8, 2.4)
        rows.append((3, rng.uniform(0.03, 0.08), rng.uniform(0, 2 * np.pi)))
    elif shape == "star":
        aspect = rng.uniform(1.0, 1.2)
        rows.append((int(rng.integers(4, 6)), rng.uniform(0.18, 0.26), rng.uniform(0, 2 * np.pi)))
    else:  # lumpy
        aspect = rng.uniform(1.3, 1.8)
        for k in (2, 3):
            rows.append((k, rng.uniform(0.08, 0.14), rng.uniform(0, 2 * np.pi)))
    # High-frequency wiggles: irregular outlines that a coarse CAM cannot follow.
    for k in (7, 11):
        rows.append((k, irregularity * rng.uniform(0.02, 0.05), rng.uniform(0, 2 * np.pi)))
    return float(aspect), np.array(rows, dtype=np.float64)


def _ground(yy: np.ndarray, xx: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Generic low-saturation ground shared by every class (no class information)."""
    hue = rng.uniform(0, 1)
    c0 = hsv(hue, rng.uniform(0.03, 0.12), rng.uniform(0.4, 0.5))
    c1 = hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.03, 0.12), rng.uniform(0.5, 0.6))
    p = texture("noise", yy, xx, period=size * rng.uniform(0.15, 0.4), angle=0.0, rng=rng)
    return colourise(p, c0, c1)


def _paint_context(img: np.ndarray, context: np.ndarray, world: World, cls: int, cy: float, cx: float,
                   radius: float, yy: np.ndarray, xx: np.ndarray, px: float, rng: np.random.Generator) -> None:
    spec = world.classes[cls - 1]
    harmonics = np.array([(2, rng.uniform(0.05, 0.15), rng.uniform(0, 2 * np.pi)),
                          (3, rng.uniform(0.05, 0.12), rng.uniform(0, 2 * np.pi))])
    alpha = polar_blob(yy, xx, cy, cx, radius, rng.uniform(1.0, 1.6), rng.uniform(0, np.pi),
                       harmonics, softness=2.5 * px)
    p = texture(spec.context_texture, yy, xx, period=7 * px, angle=rng.uniform(-0.3, 0.3), rng=rng)
    tex = colourise(p, np.array(spec.context_colours[0]), np.array(spec.context_colours[1]))
    img[:] = img * (1 - alpha[..., None]) + tex * alpha[..., None]
    context[alpha > 0.5] = cls


def _paint_clutter(img: np.ndarray, cfg: SyntheticConfig, world: World, yy: np.ndarray, xx: np.ndarray,
                   size: int, px: float, rng: np.random.Generator) -> None:
    """A small unlabelled shape in a body style: looks like object stuff but is background."""
    style = world.body_styles[int(rng.integers(len(world.body_styles)))]
    radius = size * cfg.object_radius[0] * rng.uniform(0.25, 0.6)
    cy, cx = rng.uniform(0, size, size=2)
    if rng.random() < 0.3:  # a thin bar
        aspect, harm = rng.uniform(3.0, 5.0), np.zeros((0, 3))
        radius *= 1.8
    else:
        aspect, harm = outline_harmonics(SHAPE_FAMILIES[int(rng.integers(4))], cfg.boundary_irregularity, rng)
    alpha = polar_blob(yy, xx, cy, cx, radius, aspect, rng.uniform(0, np.pi), harm,
                       cfg.boundary_softness * px)
    p = texture(style.texture, yy, xx, style.period * size, style.angle, rng)
    tex = colourise(p, np.array(style.colours[0]), np.array(style.colours[1]))
    img[:] = img * (1 - alpha[..., None]) + tex * alpha[..., None]


def _object_appearance(cfg: SyntheticConfig, world: World, o: dict, yy: np.ndarray, xx: np.ndarray,
                       size: int, px: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``(H, W, 3)`` of the object's body with its emblem, and the emblem's alpha."""
    spec = world.classes[o["cls"] - 1]
    style = world.body_styles[spec.subtypes[o["sub"]].style]
    p = texture(style.texture, yy, xx, style.period * size, style.angle + o["angle"], rng)
    tint = np.array(spec.tint)
    b = cfg.body_specificity
    c0 = (1 - b) * np.array(style.colours[0]) + b * tint
    c1 = (1 - b) * np.array(style.colours[1]) + b * tint
    rgb = colourise(p, c0, c1)

    # Emblem: area emblem_frac of the object's disk.
    r_e = max(np.sqrt(cfg.emblem_frac) * o["radius"], 1.2 * px)
    # The emblem is the object's "head": towards one end of its major axis, as a face is on a
    # person or an animal, so a CAM centred on it misses the far end of the body.
    t = o["angle"] + (np.pi if rng.random() < 0.5 else 0.0) + rng.normal(0.0, 0.15)
    rho = float(np.clip(rng.uniform(0.45, 0.65) * o["radius"], 0.0, max(0.0, 0.85 * o["radius"] - r_e)))
    ey, ex = o["cy"] + rho * np.sin(t), o["cx"] + rho * np.cos(t)
    emb_alpha = polar_blob(yy, xx, ey, ex, r_e, 1.0, 0.0, np.zeros((0, 3)), 0.5 * px)
    d = np.hypot(yy - ey, xx - ex) / r_e
    ang = np.arctan2(yy - ey, xx - ex)
    pat = {"rings": (d < 0.5) | (d > 0.8),
           "split": np.cos(ang - t) > 0,
           "spot": d < 0.55,
           "cross": (np.abs(np.sin(ang - t)) < 0.45) | (np.abs(np.cos(ang - t)) < 0.45)}[spec.emblem_pattern]
    erg = colourise(pat.astype(np.float32), np.array(spec.emblem_colours[1]), np.array(spec.emblem_colours[0]))
    rgb = rgb * (1 - emb_alpha[..., None]) + erg * emb_alpha[..., None]
    return rgb, emb_alpha


def _photometric(img: np.ndarray, yy: np.ndarray, xx: np.ndarray, size: int, noise_std: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Illumination gradient and sensor noise, so no pixel colour is exactly repeatable."""
    a = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.15) * ((xx * np.cos(a) + yy * np.sin(a)) / size - 0.5)
    img = img * light[..., None] + noise_std * rng.standard_normal(img.shape)
    return np.clip(img, 0.0, 1.0)


def _compact_instances(inst: np.ndarray, kept: list[dict]) -> tuple[np.ndarray, list[dict]]:
    out = np.zeros_like(inst)
    new = []
    for k, info in enumerate(kept, start=1):
        m = inst == k
        if m.sum() >= 4:
            new.append(info)
            out[m] = len(new)
    return out, new


def _boundary_band(label: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of a change of label (the VOC-style void band)."""
    edge = np.zeros(label.shape, bool)
    edge[:-1] |= label[:-1] != label[1:]
    edge[1:] |= label[:-1] != label[1:]
    edge[:, :-1] |= label[:, :-1] != label[:, 1:]
    edge[:, 1:] |= label[:, :-1] != label[:, 1:]
    return ndimage.binary_dilation(edge, iterations=max(width - 1, 0)) if width > 1 else edge
