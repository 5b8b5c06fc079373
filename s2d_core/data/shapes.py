"""The *object world*: class-agnostic scenes for pre-training a promptable segmenter.

The benchmark's segmenter of choice is SAM, trained on a billion masks of everything. It knows
what an object and a boundary are, but none of our labels. No checkpoint can be downloaded
here, so :mod:`s2d_core.models.promptable` pre-trains a tiny SAM on scenes from this module,
and this module is built to be **disjoint from the benchmark** (:mod:`.synthetic`):

* other outlines: convex polygons, superellipses (rounded boxes), crescents and capsules,
  never the benchmark's star-shaped polar blobs;
* other textures: plaid, concentric rings, cross-hatching and marble, never the benchmark's
  stripes, dots, checkers, waves or noise;
* random colours, no classes, no emblems and no class contexts: nothing to learn about
  "sailors" or "grazers";
* what SAM's data does have and a promptable model needs: objects on cluttered, textured
  ground, occluding each other, large unlabelled "stuff" regions behind them, and **parts**:
  a decal of another colour on half of the objects, so a point on it is ambiguous between
  the part and the whole (SAM's reason for returning three masks).

A scene returns the image, the visible instance map and the part map. Everything is a plain
NumPy function of a seed, like the benchmark. A stored world holds its images as uint8, the
form in which SAM's predictor receives every image (and a quarter of the memory of float32).
"""

from __future__ import annotations

import io

import numpy as np
from scipy import ndimage

from .. import cache
from ..arrays import to_uint8
from ..progress import progress as progress_bar
from .textures import colourise, hsv

SHAPES = ("polygon", "superellipse", "crescent", "capsule")
TEXTURES = ("plain", "plaid", "rings", "hatch", "marble")
#: Recipe version of a stored object world (2: images stored as uint8).
RECIPE_VERSION = 2


def smooth_field(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise ``shape`` rescaled to [0, 1] (wrapping at the edges)."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=max(sigma, 0.5), mode="wrap")
    return (n - n.min()) / (np.ptp(n) + 1e-8)


def object_texture(kind: str, yy: np.ndarray, xx: np.ndarray, period: float, angle: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Pattern ``(H, W)`` in ``[0, 1]`` of one of :data:`TEXTURES` (period in pixels)."""
    period = max(float(period), 2.5)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    ph = rng.uniform(0, 2 * np.pi, size=2)
    if kind == "plain":
        return 0.5 + 0.15 * (smooth_field(yy.shape, 2 * period, rng) - 0.5)
    if kind == "plaid":
        return 0.25 + 0.25 * np.sin(2 * np.pi * u / period + ph[0]) ** 2 + 0.25 * np.sin(2 * np.pi * v / (1.7 * period) + ph[1]) ** 2
    if kind == "rings":
        cy, cx = rng.uniform(0, yy.shape[0], size=2)
        return 0.5 + 0.5 * np.sin(2 * np.pi * np.hypot(yy - cy, xx - cx) / period + ph[0])
    if kind == "hatch":
        a = np.abs(np.sin(np.pi * u / period + ph[0])) < 0.35
        b = np.abs(np.sin(np.pi * v / period + ph[1])) < 0.35
        return (a | b).astype(np.float32)
    if kind == "marble":
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / (2 * period) + 6.0 * smooth_field(yy.shape, period, rng))
    raise ValueError(f"unknown object texture {kind!r}: expected one of {TEXTURES}")


def shape_alpha(kind: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius: float,
                angle: float, rng: np.random.Generator, softness: float = 0.7) -> np.ndarray:
    """Soft alpha ``(H, W)`` in [0, 1] of one of :data:`SHAPES`, from a signed distance."""
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    if kind == "polygon":  # convex: intersection of half-planes at random angles
        n = int(rng.integers(3, 8))
        th = np.sort(rng.uniform(0, 2 * np.pi, n)) if n > 3 else np.array([0, 2.1, 4.2]) + rng.uniform(0, 0.4, 3)
        sd = np.full(yy.shape, -np.inf)
        for t in th:
            sd = np.maximum(sd, u * np.cos(t) + v * np.sin(t) - radius * rng.uniform(0.75, 1.0))
        sd = -sd
    elif kind == "superellipse":
        p, asp = rng.uniform(2.5, 6.0), rng.uniform(1.0, 2.2)
        r = (np.abs(u / radius) ** p + np.abs(v * asp / radius) ** p) ** (1 / p)
        sd = (1 - r) * radius / asp
    elif kind == "crescent":
        off = rng.uniform(0.45, 0.8) * radius
        sd = np.minimum(radius - np.hypot(u, v), np.hypot(u - off, v) - rng.uniform(0.7, 0.95) * radius)
    elif kind == "capsule":
        half, w = radius * rng.uniform(0.8, 1.1), radius * rng.uniform(0.3, 0.5)
        sd = w - np.hypot(np.clip(np.abs(u) - half, 0, None), v)
    else:
        raise ValueError(f"unknown shape {kind!r}: expected one of {SHAPES}")
    return 1.0 / (1.0 + np.exp(-np.clip(sd / softness, -30, 30)))


def random_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB colours ``(3,)`` of nearby hue, any saturation and value: no class owns a colour."""
    h = rng.uniform(0, 1)
    c0 = hsv(h, rng.uniform(0.0, 1.0), rng.uniform(0.15, 0.95))
    c1 = hsv(h + rng.uniform(-0.15, 0.15), rng.uniform(0.0, 1.0), rng.uniform(0.15, 0.95))
    return c0, c1


def render_object_scene(seed: int | np.random.SeedSequence, size: int = 64,
                        max_objects: int = 4) -> dict[str, np.ndarray]:
    """One object-world scene.

    Returns ``image`` ``(H, W, 3)`` float32 in [0, 1], ``instances`` ``(H, W)`` uint8 (0 none,
    k for visible object k), and ``parts`` ``(H, W)`` uint8 (k where object k's decal is visible).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    px = size / 64.0
    c0, c1 = random_colours(rng)
    img = colourise(object_texture(str(rng.choice(TEXTURES)), yy, xx, size * rng.uniform(0.1, 0.3),
                                   rng.uniform(0, np.pi), rng), c0, 0.5 * (c0 + c1))  # a calmer ground
    for _ in range(int(rng.integers(0, 3))):  # unlabelled "stuff" behind the objects
        a = ndimage.gaussian_filter((smooth_field((size, size), 6 * px, rng) > rng.uniform(0.5, 0.7)).astype(np.float32), 1.5 * px)
        s0, s1 = random_colours(rng)
        tex = colourise(object_texture(str(rng.choice(TEXTURES)), yy, xx, 6 * px, rng.uniform(0, np.pi), rng), s0, s1)
        img = img * (1 - a[..., None]) + tex * a[..., None]
    inst = np.zeros((size, size), np.uint8)
    parts = np.zeros((size, size), np.uint8)
    k = 0
    for _ in range(int(rng.integers(1, max_objects + 1))):
        r = size * rng.uniform(0.1, 0.3)
        cy, cx = rng.uniform(0.5 * r, size - 0.5 * r, size=2)
        ang = rng.uniform(0, np.pi)
        alpha = shape_alpha(str(rng.choice(SHAPES)), yy, xx, cy, cx, r, ang, rng, 0.7 * px)
        hard = alpha > 0.5
        if hard.sum() < 16:
            continue
        o0, o1 = random_colours(rng)
        tex = colourise(object_texture(str(rng.choice(TEXTURES)), yy, xx, size * rng.uniform(0.05, 0.12),
                                       rng.uniform(0, np.pi), rng), o0, o1)
        part = np.zeros((size, size), bool)
        if rng.random() < 0.5:  # a decal: a part of another colour, somewhere on the object
            ys, xs = np.nonzero(hard)
            j = int(rng.integers(len(ys)))
            pa = shape_alpha(str(rng.choice(("polygon", "superellipse"))), yy, xx, ys[j], xs[j],
                             r * rng.uniform(0.25, 0.45), rng.uniform(0, np.pi), rng, 0.5 * px) * alpha
            d0, _ = random_colours(rng)
            tex = tex * (1 - pa[..., None]) + d0 * pa[..., None]
            part = pa > 0.5
        img = img * (1 - alpha[..., None]) + tex * alpha[..., None]
        k += 1
        inst[hard] = k
        parts[hard] = 0
        parts[part & hard] = k
    # drop objects occluded to (almost) nothing, renumber the rest 1..K
    out_i, out_p = np.zeros_like(inst), np.zeros_like(parts)
    n = 0
    for j in range(1, k + 1):
        if (inst == j).sum() >= 16:
            n += 1
            out_i[inst == j] = n
            out_p[(parts == j) & (inst == j)] = n if (parts == j).sum() >= 6 else 0
    a = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.2) * ((xx * np.cos(a) + yy * np.sin(a)) / size - 0.5)
    img = np.clip(img * light[..., None] + 0.03 * rng.standard_normal(img.shape), 0, 1)
    return {"image": img.astype(np.float32), "instances": out_i, "parts": out_p}


def object_world(n: int, size: int = 64, seed: int = 0, split: str = "train",
                 use_cache: bool = True, progress: bool = True) -> dict[str, np.ndarray]:
    """``n`` object-world scenes stacked: ``image`` ``(n, H, W, 3)`` uint8, ``instances`` and ``parts``
    ``(n, H, W)`` uint8. ``split`` ``"train"``/``"test"`` seeds disjoint scenes. Cached like the benchmark."""
    if split not in ("train", "test"):
        raise ValueError(f"object_world split must be 'train' or 'test', got {split!r}")
    if n < 1 or size < 32:
        raise ValueError(f"object_world needs n >= 1 and size >= 32, got n={n}, size={size}")
    key = cache.artifact_key("object-world", RECIPE_VERSION, {"n": n, "size": size, "seed": seed, "split": split})
    path = cache.cache_dir() / "objects" / f"objects-{split}-{key}.npz"
    if use_cache:
        out = cache.load_cached(path, _read_world, f"object world ({n} scenes, {split})")
        if out is not None:
            return out
    tag = 0 if split == "train" else 1
    scenes = [render_object_scene(np.random.SeedSequence([seed, 104729, tag, i]), size)
              for i in progress_bar(range(n), desc=f"object world/{split}", disable=not progress)]
    out = {"image": np.stack([to_uint8(s["image"]) for s in scenes]),
           **{k: np.stack([s[k] for s in scenes]) for k in ("instances", "parts")}}
    if use_cache:
        buf = io.BytesIO()
        np.savez_compressed(buf, **out)
        cache.atomic_write_bytes(path, buf.getvalue())
    return out


def _read_world(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        out = dict(z)
    if set(out) != {"image", "instances", "parts"} or out["image"].dtype != np.uint8:
        raise ValueError(f"not an object world: arrays {sorted(out)}")
    return out
