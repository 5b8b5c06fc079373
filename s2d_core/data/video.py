"""The synthetic video world: clips of moving scenes for video saliency from scribbles (C7).

A clip is a stack of layers, each moved by its own transform per frame and painted by a texture
that is a *function of the layer's own coordinates*, so every pixel's true motion is known:

* the **background** pans with the camera: ``x = u - c_t`` (``u``: background coordinates,
  ``c_t``: the camera's offset at frame ``t``);
* **distractors** (object-like shapes with contrasting colours) and the **occluder** (a bar in
  front) are fixed to the background, so they move exactly as it does;
* the **salient object** moves independently: ``x = p_t + s_t R(theta_t) u`` (position, scale,
  rotation per frame) and its outline deforms over the clip.

Salient, operationally: the object that moves independently of the camera. The forward flow
of a pixel ``x`` of frame ``t`` on layer ``L`` is ``T^L_{t+1}(T^L_t^{-1}(x)) - x``; a pixel is
*valid* for it when the same layer is on top at ``x + flow`` in frame ``t + 1`` (else it is
occluded, or leaves the frame, or lies on a deforming outline). The models do not get the exact
flow: they get **flow estimated from the frames** with OpenCV's Farneback method
(:func:`estimate_flow`), as a user of DAVIS would compute it, colour-coded by
:func:`flow_to_rgb` when three channels are wanted.

Scribbles follow the DAVIS-S / DAVSOD-S convention: ``1`` foreground stroke, ``2`` background
strokes, ``0`` unknown, on every ``scribble_every``-th frame. Knobs: :class:`VideoWorldConfig`.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from .. import cache
from .config import VideoWorldConfig
from .dataset import render_all
from .presets import get_video_preset
from .textures import colourise, hsv, polar_blob, texture

__all__ = ["FOREGROUND", "BACKGROUND", "UNKNOWN", "LAYERS", "RECIPE_VERSION", "SyntheticVideo", "estimate_flow",
           "flow_to_rgb", "render_clip", "warp"]

RECIPE_VERSION = 2
"""Version of what :func:`render_clip` produces; bump it when a change alters any clip."""

UNKNOWN, FOREGROUND, BACKGROUND = 0, 1, 2
"""Scribble labels (DAVIS-S / DAVSOD-S): 1 foreground stroke, 2 background stroke, 0 unknown."""
LAYERS = ("background", "distractor", "object", "occluder")
"""Layer ids of the ``layers`` map (a diagnostic: nothing trains on it)."""

_KINDS = ("stripes", "waves", "dots", "checker", "blotches")  # textures that are functions of coordinates


@dataclass(frozen=True)
class _Look:
    """A layer's appearance: texture kind, period (px), angle, colours and the seed of its phase."""

    kind: str
    period: float
    angle: float
    c0: np.ndarray
    c1: np.ndarray
    seed: int

    def paint(self, v: np.ndarray, u: np.ndarray) -> np.ndarray:
        """RGB ``(H, W, 3)`` at layer coordinates ``(v, u)`` (rows, columns): the same point of
        the layer gets the same colour in every frame."""
        rng = np.random.default_rng(self.seed)
        if self.kind == "blotches":  # smooth noise as a sum of plane waves: a function of (v, u)
            k = rng.uniform(0.5, 1.5, 6) * 2 * np.pi / self.period
            a = rng.uniform(0, np.pi, 6)
            ph = rng.uniform(0, 2 * np.pi, 6)
            p = sum(np.sin(kk * (u * np.cos(aa) + v * np.sin(aa)) + pp) for kk, aa, pp in zip(k, a, ph))
            p = 0.5 + 0.5 * np.tanh(p / 2.0)
        elif self.kind == "checker":  # a soft checkerboard: sharp squares would alias under sub-pixel motion
            a, b = u * np.cos(self.angle) + v * np.sin(self.angle), -u * np.sin(self.angle) + v * np.cos(self.angle)
            off = rng.uniform(0, self.period, 2)
            p = 0.5 + 0.5 * np.tanh(3.0 * np.sin(np.pi * (a + off[0]) / self.period) * np.sin(np.pi * (b + off[1]) / self.period))
        else:
            p = texture(self.kind, v, u, self.period, self.angle, rng)
        return colourise(np.clip(p, 0, 1).astype(np.float32), self.c0, self.c1)


def _random_look(rng: np.random.Generator, size: int, avoid: _Look | None = None) -> _Look:
    """A look with its own palette, its mean colour at least 0.35 (RGB) from ``avoid``'s."""
    for _ in range(50):
        h = rng.uniform()
        c0, c1 = hsv(h, rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.6)), hsv(h + rng.uniform(-0.15, 0.15),
                                                                           rng.uniform(0.3, 0.8), rng.uniform(0.6, 0.95))
        if avoid is None or np.linalg.norm((c0 + c1) / 2 - (avoid.c0 + avoid.c1) / 2) >= 0.35:
            break
    return _Look(str(rng.choice(_KINDS)), float(rng.uniform(0.1, 0.2) * size), float(rng.uniform(0, np.pi)),
                 c0, c1, int(rng.integers(2 ** 31)))


def _camouflaged(bg: _Look, rng: np.random.Generator, amount: float, size: int) -> _Look:
    """A look drawn towards the background's: same texture kind, colours ``amount`` of the way
    to the background's, period and angle close to it; only the phase differs."""
    free = _random_look(rng, size)
    return _Look(bg.kind, bg.period * rng.uniform(0.85, 1.15), bg.angle + (1 - amount) * rng.uniform(-1, 1),
                 amount * bg.c0 + (1 - amount) * free.c0, amount * bg.c1 + (1 - amount) * free.c1,
                 int(rng.integers(2 ** 31)))


def _rot(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def _harmonics(rng: np.random.Generator) -> np.ndarray:
    ks = rng.choice([2, 3, 4, 5], size=3, replace=False)
    return np.stack([ks, rng.uniform(0.03, 0.12, 3) * 2.0 / ks, rng.uniform(0, 2 * np.pi, 3)], axis=1)


def _bar_alpha(yy, xx, cy, cx, angle, half_len, half_width, soft=0.5):
    dy, dx = yy - cy, xx - cx
    a = dx * np.cos(angle) + dy * np.sin(angle)
    b = -dx * np.sin(angle) + dy * np.cos(angle)
    d = np.maximum(np.abs(a) - half_len, np.abs(b) - half_width)
    return 1.0 / (1.0 + np.exp(np.clip(d / soft, -30, 30)))


class _Clip:
    """The geometry and looks of one clip, drawn from ``rng`` (everything :func:`render_clip` needs)."""

    def __init__(self, cfg: VideoWorldConfig, rng: np.random.Generator) -> None:
        n, T = cfg.image_size, cfg.n_frames
        self.cfg, self.n, self.T = cfg, n, T
        # camera: a pan of constant velocity plus a gentle sway
        ang = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0, cfg.camera_px)
        cv = speed * np.array([np.sin(ang), np.cos(ang)])
        sway = rng.uniform(0, 0.3 * cfg.camera_px) * np.array([np.sin(ang + 1.3), np.cos(ang + 1.3)])
        t = np.arange(T)
        self.cam = cv[None] * t[:, None] + sway[None] * np.sin(t / max(T - 1, 1) * np.pi)[:, None]  # (T, 2) offsets (y, x)
        # object: velocity relative to the background, image velocity = relative - camera
        rel_ang = rng.uniform(0, 2 * np.pi)
        rel = rng.uniform(*cfg.speed_px) * np.array([np.sin(rel_ang), np.cos(rel_ang)])
        img_vel = rel - np.diff(self.cam, axis=0).mean(0) if T > 1 else rel
        self.radius = rng.uniform(*cfg.object_radius) * n
        curve = rng.uniform(-0.05, 0.05, 2)
        mid = rng.uniform(0.3 * n, 0.7 * n, 2)
        tc = t - (T - 1) / 2
        path = mid[None] + img_vel[None] * tc[:, None] + curve[None] * tc[:, None] ** 2
        self.enters_or_leaves = bool(rng.uniform() < cfg.enter_leave_prob)
        if self.enters_or_leaves:  # push the path so its first or last frame is half out of the frame
            end = 0 if rng.uniform() < 0.5 else T - 1
            centre = (n - 1) / 2  # pixel centres run 0 .. n - 1; the frame's edges are at -0.5 and n - 0.5
            d = path[end] - centre
            d = d / (np.abs(d).max() + 1e-6)  # the max norm: the end point lies beyond the nearest edge in any direction
            target = centre + d * (n / 2 + 0.2 * self.radius)
            path = path + (target - path[end])[None]
        self.pos = path
        grow = rng.uniform(-1, 1) * cfg.scale_change
        self.scale = 1 + grow * (t / max(T - 1, 1) - 0.5)
        self.theta = rng.uniform(-np.pi, np.pi) + np.deg2rad(rng.uniform(-1, 1) * cfg.rotation_deg) * t
        self.aspect = rng.uniform(1.0, 1.6)
        self.harm = _harmonics(rng)
        self.deform_phase = rng.uniform(0, 2 * np.pi, len(self.harm))
        # looks
        self.bg = _random_look(rng, n)
        self.camouflaged = bool(rng.uniform() < cfg.camouflage_prob)
        self.obj = _camouflaged(self.bg, rng, cfg.camouflage, n) if self.camouflaged else _random_look(rng, n, self.bg)
        # distractors and the occluder, in background coordinates (u = x + cam)
        self.distractors = []
        for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
            centre = rng.uniform(0.15 * n, 0.85 * n, 2) + self.cam[T // 2]
            self.distractors.append((centre, rng.uniform(*cfg.object_radius) * n, rng.uniform(1.0, 1.6),
                                     rng.uniform(0, np.pi), _harmonics(rng), _random_look(rng, n, self.bg)))
        self.occluder = None
        if rng.uniform() < cfg.occluder_prob:  # across the object's path at mid-clip
            k = T // 2
            centre = self.pos[k] + self.cam[k]
            ang = rel_ang + np.pi / 2 + rng.uniform(-0.4, 0.4)
            self.occluder = (centre, ang, 0.9 * n, rng.uniform(0.04, 0.07) * n, _random_look(rng, n, self.bg))

    # --- transforms --------------------------------------------------------------------------
    def object_coords(self, t: int, yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Object coordinates ``(v, u)`` of image points ``(yy, xx)`` at frame ``t``."""
        r = _rot(-self.theta[t]) / self.scale[t]
        dy, dx = yy - self.pos[t][0], xx - self.pos[t][1]
        return r[0, 0] * dy + r[0, 1] * dx, r[1, 0] * dy + r[1, 1] * dx

    def object_image(self, t: int, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates of object points ``(v, u)`` at frame ``t``."""
        r = _rot(self.theta[t]) * self.scale[t]
        return self.pos[t][0] + r[0, 0] * v + r[0, 1] * u, self.pos[t][1] + r[1, 0] * v + r[1, 1] * u

    def object_alpha(self, t: int, v: np.ndarray, u: np.ndarray) -> np.ndarray:
        h = self.harm.copy()
        h[:, 1] = h[:, 1] + self.cfg.deformation * np.sin(2 * np.pi * t / self.T + self.deform_phase) / h[:, 0]
        return polar_blob(v, u, 0.0, 0.0, self.radius, self.aspect, 0.0, h, 0.6)

    # --- one frame ---------------------------------------------------------------------------
    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(image (H, W, 3) in [0, 1] without noise, object visibility (H, W) in [0, 1], layer ids (H, W))``."""
        n = self.n
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
        by, bx = yy + self.cam[t][0], xx + self.cam[t][1]  # background coordinates
        img = self.bg.paint(by, bx)
        layer = np.zeros((n, n), np.uint8)
        for centre, rad, aspect, angle, harm, look in self.distractors:
            a = polar_blob(by, bx, centre[0], centre[1], rad, aspect, angle, harm, 0.6)
            img = img * (1 - a[..., None]) + look.paint(by, bx) * a[..., None]
            layer[a > 0.5] = 1
        v, u = self.object_coords(t, yy, xx)
        a_obj = self.object_alpha(t, v, u)
        img = img * (1 - a_obj[..., None]) + self.obj.paint(v, u) * a_obj[..., None]
        layer[a_obj > 0.5] = 2
        visible = a_obj
        if self.occluder is not None:
            centre, ang, half_len, half_w, look = self.occluder
            a = _bar_alpha(by, bx, centre[0], centre[1], ang, half_len, half_w)
            img = img * (1 - a[..., None]) + look.paint(by, bx) * a[..., None]
            layer[a > 0.5] = 3
            visible = a_obj * (1 - a)
        return img.astype(np.float32), visible.astype(np.float32), layer

    def true_flow(self, t: int, layer: np.ndarray) -> np.ndarray:
        """Forward flow ``(2, H, W)`` (dy, dx) from frame ``t`` to ``t + 1`` of every pixel's top layer."""
        n = self.n
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
        cam_step = self.cam[t + 1] - self.cam[t]
        flow = np.empty((2, n, n))
        flow[0], flow[1] = -cam_step[0], -cam_step[1]  # everything fixed to the background
        v, u = self.object_coords(t, yy, xx)
        y1, x1 = self.object_image(t + 1, v, u)
        on = layer == 2
        flow[0][on], flow[1][on] = (y1 - yy)[on], (x1 - xx)[on]
        return flow.astype(np.float32)


def _polyline(points: np.ndarray, n: int) -> np.ndarray:
    """Raster ``(n, n)`` bool of a polyline through ``points`` ``(K, 2)`` (y, x)."""
    out = np.zeros((n, n), bool)
    for p, q in zip(points[:-1], points[1:]):
        steps = int(np.ceil(np.abs(q - p).max() * 2)) + 1
        s = np.linspace(0, 1, steps)[:, None]
        pts = np.rint(p[None] * (1 - s) + q[None] * s).astype(int)
        ok = (pts >= 0).all(1) & (pts < n).all(1)
        out[pts[ok, 0], pts[ok, 1]] = True
    return out


def _stroke(start: np.ndarray, direction: np.ndarray, length: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """A gently wavy stroke from ``start`` along ``direction`` of ``length`` px."""
    s = np.linspace(0, 1, 12)
    normal = np.array([-direction[1], direction[0]])
    wobble = rng.uniform(0.03, 0.12) * length * np.sin(2 * np.pi * rng.uniform(0.5, 1.2) * s + rng.uniform(0, 6.3))
    pts = start[None] + direction[None] * (s * length)[:, None] + normal[None] * wobble[:, None]
    return _polyline(pts, n)


def scribble_frame(visible: np.ndarray, cfg: VideoWorldConfig, rng: np.random.Generator) -> np.ndarray:
    """DAVIS-S style scribbles of one frame ``(H, W)`` uint8: a foreground stroke along the salient
    object's main axis (inside it, away from its outline) and ``cfg.bg_strokes`` background strokes
    away from it. ``visible``: the object's visibility ``(H, W)`` in [0, 1]."""
    n = visible.shape[0]
    fg = visible > 0.5
    out = np.zeros((n, n), np.uint8)
    disk = ndimage.generate_binary_structure(2, 1)
    thick = (lambda m: ndimage.binary_dilation(m, disk, iterations=cfg.scribble_width_px - 1)
             if cfg.scribble_width_px > 1 else m)
    if fg.sum() >= 4:
        inner = fg
        for it in (2, 1):  # the deepest erosion that leaves something to draw on
            e = ndimage.binary_erosion(fg, disk, iterations=it)
            if e.sum() >= 3:
                inner = e
                break
        ys, xs = np.nonzero(inner)
        c = np.array([ys.mean(), xs.mean()])
        pts = np.stack([ys, xs], 1) - c
        w, vecs = np.linalg.eigh(pts.T @ pts / len(pts))
        axis = vecs[:, -1]
        proj = pts @ axis
        length = cfg.scribble_length * (proj.max() - proj.min())
        stroke = _stroke(c - axis * length / 2, axis, length, rng, n) & inner
        if stroke.sum() < 2:  # a tiny or thin object: a dot at its deepest point
            d = ndimage.distance_transform_edt(fg)
            stroke = np.zeros_like(fg)
            stroke[np.unravel_index(np.argmax(d), d.shape)] = True
        out[thick(stroke) & fg] = FOREGROUND
    away = ~ndimage.binary_dilation(fg, disk, iterations=3)
    cand = np.argwhere(away)
    for _ in range(cfg.bg_strokes if len(cand) else 0):
        start = cand[rng.integers(len(cand))].astype(float)
        ang = rng.uniform(0, 2 * np.pi)
        stroke = _stroke(start, np.array([np.sin(ang), np.cos(ang)]), rng.uniform(0.2, 0.45) * n, rng, n)
        out[thick(stroke) & away & (out == UNKNOWN)] = BACKGROUND
    return out


def _interior(layer: np.ndarray, margin: int = 2) -> np.ndarray:
    """Pixels at least ``margin`` steps (4-neighbourhood) inside their layer's region: their colour
    is the layer's alone (outlines are soft)."""
    keep = np.ones(layer.shape, bool)
    for _ in range(margin):
        pad = np.pad(layer, 1, mode="edge")
        k = np.pad(keep, 1, mode="edge")
        c = pad[1:-1, 1:-1]
        keep = keep & (pad[:-2, 1:-1] == c) & (pad[2:, 1:-1] == c) & (pad[1:-1, :-2] == c) & (pad[1:-1, 2:] == c) & \
            k[:-2, 1:-1] & k[2:, 1:-1] & k[1:-1, :-2] & k[1:-1, 2:]
    return keep


def render_clip(cfg: VideoWorldConfig, split: str, index: int) -> dict[str, np.ndarray]:
    """Clip ``index`` of ``split``, seeded by ``(cfg.world_seed, split, index)``.

    Returns ``frames`` (T, H, W, 3) uint8; ``masks`` (T, H, W) uint8 {0, 1} (the visible salient
    object); ``scribbles`` (T, H, W) uint8 {0, 1, 2}; ``annotated`` (T,) bool; ``true_flow``
    (T, 2, H, W) float32 forward flow (dy, dx) in px, zero on the last frame; ``valid`` (T, H, W)
    bool (pixels whose true flow lands on the same layer, away from soft outlines; none on the last
    frame); ``layers`` (T, H, W) uint8 (:data:`LAYERS`); ``camouflaged`` bool; ``n_distractors``
    int; ``occluder`` bool; ``enters_or_leaves`` bool.
    """
    split_code = {"train": 0, "test": 1}[split]
    rng = np.random.default_rng([cfg.world_seed, split_code, int(index), 7])
    clip = _Clip(cfg, rng)
    T, n = cfg.n_frames, cfg.image_size
    frames, masks, layers, visibles = [], [], [], []
    for t in range(T):
        img, vis, layer = clip.frame(t)
        img = img + rng.normal(0, cfg.noise_std, img.shape) if cfg.noise_std > 0 else img
        frames.append(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8))
        masks.append((vis > 0.5).astype(np.uint8))
        layers.append(layer)
        visibles.append(vis)
    flows = np.zeros((T, 2, n, n), np.float32)
    valid = np.zeros((T, n, n), bool)
    for t in range(T - 1):
        flows[t] = clip.true_flow(t, layers[t])
        ty = np.rint(np.arange(n)[:, None] + flows[t][0]).astype(int)
        tx = np.rint(np.arange(n)[None, :] + flows[t][1]).astype(int)
        inside = (ty >= 0) & (ty < n) & (tx >= 0) & (tx < n)
        nxt, core_n = layers[t + 1], _interior(layers[t + 1])
        same = np.zeros((n, n), bool)
        same[inside] = (nxt[ty[inside], tx[inside]] == layers[t][inside]) & core_n[ty[inside], tx[inside]]
        valid[t] = same & _interior(layers[t])
    annotated = (np.arange(T) % cfg.scribble_every) == 0
    srng = np.random.default_rng([cfg.world_seed, split_code, int(index), 8])  # own stream: noise does not move it
    scribbles = np.stack([scribble_frame(visibles[t], cfg, srng) if annotated[t] else np.zeros((n, n), np.uint8)
                          for t in range(T)])
    return {"frames": np.stack(frames), "masks": np.stack(masks), "scribbles": scribbles, "annotated": annotated,
            "true_flow": flows, "valid": valid, "layers": np.stack(layers), "camouflaged": np.bool_(clip.camouflaged),
            "n_distractors": np.int64(len(clip.distractors)), "occluder": np.bool_(clip.occluder is not None),
            "enters_or_leaves": np.bool_(clip.enters_or_leaves)}


# --- flow ------------------------------------------------------------------------------------

#: OpenCV Farneback parameters for 64-px frames (pyramid of 3 levels, 9 px windows); a user of
#: DAVIS at 480 p would take the OpenCV defaults' larger windows.
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=9, iterations=3, poly_n=5, poly_sigma=1.1, flags=0)


def estimate_flow(frames: np.ndarray) -> np.ndarray:
    """Forward optical flow of a clip estimated from its frames (OpenCV Farneback, :data:`FARNEBACK`).

    ``frames``: (T, H, W, 3) uint8. Returns (T, 2, H, W) float32 (dy, dx) in pixels: frame ``t``
    to ``t + 1``; the last frame repeats the flow of the one before (no later frame to look at).
    """
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    T, H, W = len(frames), frames.shape[1], frames.shape[2]
    out = np.zeros((T, 2, H, W), np.float32)
    for t in range(T - 1):
        f = cv2.calcOpticalFlowFarneback(grey[t], grey[t + 1], None, **FARNEBACK)  # (H, W, 2) as (dx, dy)
        out[t, 0], out[t, 1] = f[..., 1], f[..., 0]
    if T > 1:
        out[-1] = out[-2]
    return out


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """The usual colour coding of a flow field: hue = direction, saturation = speed (white = still).

    ``flow``: (2, H, W) (dy, dx). ``max_magnitude``: the speed shown fully saturated (None: this
    field's largest). Returns (H, W, 3) float32 in [0, 1].
    """
    import matplotlib.colors as mcolors

    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be (2, H, W), got {flow.shape}")
    mag = np.hypot(flow[0], flow[1])
    top = max_magnitude if max_magnitude is not None else max(float(mag.max()), 1e-6)
    h = (np.arctan2(flow[0], flow[1]) / (2 * np.pi)) % 1.0
    s = np.clip(mag / top, 0, 1)
    return mcolors.hsv_to_rgb(np.stack([h, s, np.ones_like(h)], -1)).astype(np.float32)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))`` with bilinear interpolation (edges clamped).

    ``image``: (H, W) or (H, W, C); ``flow``: (2, H, W) (dy, dx). Warping frame ``t + 1`` by the
    forward flow of frame ``t`` gives frame ``t`` wherever nothing is occluded.
    """
    image = np.asarray(image, np.float64)
    H, W = image.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    coords = [yy + flow[0], xx + flow[1]]
    if image.ndim == 2:
        return ndimage.map_coordinates(image, coords, order=1, mode="nearest")
    return np.stack([ndimage.map_coordinates(image[..., c], coords, order=1, mode="nearest")
                     for c in range(image.shape[2])], -1)


# --- the data set ----------------------------------------------------------------------------

_FIELDS = ("frames", "masks", "scribbles", "annotated", "true_flow", "valid", "layers", "camouflaged", "n_distractors",
           "occluder", "enters_or_leaves", "flow")


def _render_with_flow(cfg: VideoWorldConfig, split: str, index: int) -> dict[str, np.ndarray]:
    c = render_clip(cfg, split, index)
    c["flow"] = estimate_flow(c["frames"]).astype(np.float16)
    c["true_flow"] = c["true_flow"].astype(np.float16)
    return c


def generate_clips(cfg: VideoWorldConfig, split: str, use_cache: bool = True, progress: bool = True,
                   workers: int | None = None) -> dict[str, np.ndarray]:
    """Every clip of ``split`` stacked (leading axis N), with the estimated ``flow``; cached by config
    and :data:`RECIPE_VERSION` (``video-world`` in the artifact recipes)."""
    n = cfg.split_size(split)
    path = None
    if use_cache:
        import cv2

        key = cache.artifact_key("video-world", RECIPE_VERSION, {"cfg": cfg.to_dict(), "split": split,
                                                                  "flow": {**FARNEBACK, "opencv": cv2.__version__}})
        path = cache.cache_dir() / "video" / f"{cfg.name or 'custom'}-{split}-{key}.npz"

        def read(p):
            with np.load(p, allow_pickle=False) as z:
                d = {k: z[k] for k in _FIELDS}
            if len(d["frames"]) != n:
                raise ValueError(f"holds {len(d['frames'])} clips, expected {n}")
            return d
        data = cache.load_cached(path, read, f"video world {cfg.name or 'custom'}/{split}")
        if data is not None:
            return data
    clips = render_all(functools.partial(_render_with_flow, cfg, split), n,
                       f"generating video {cfg.name or 'custom'}/{split}", progress, workers, parallel_from=50, chunksize=4)
    data = {k: np.stack([c[k] for c in clips]) for k in _FIELDS}
    if path is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **data)
        cache.atomic_write_bytes(path, buf.getvalue())
    return data


class SyntheticVideo(Dataset):
    """One split of the synthetic video world; an item is a whole clip.

    Item (``T`` frames of ``H = W = image_size``): ``frames`` (T, 3, H, W) float32 in [0, 1];
    ``masks`` (T, H, W) int64 {0, 1}; ``scribbles`` (T, H, W) int64 {0 unknown, 1 fg, 2 bg};
    ``annotated`` (T,) bool; ``flow`` (T, 2, H, W) float32 estimated (Farneback, what models get);
    ``true_flow`` and ``valid`` (diagnostics and tests); ``camouflaged`` (bool); ``name``; ``index``.
    """

    fixed_size = True

    def __init__(self, config: VideoWorldConfig | str = "video_cpu", split: str = "train", use_cache: bool = True,
                 progress: bool = True, workers: int | None = None) -> None:
        if isinstance(config, str):
            config = get_video_preset(config)
        if not isinstance(config, VideoWorldConfig):
            raise TypeError(f"config must be a VideoWorldConfig or a preset name, got {type(config).__name__}")
        self.config, self.split = config, split
        self.data = generate_clips(config, split, use_cache=use_cache, progress=progress, workers=workers)

    def __len__(self) -> int:
        return len(self.data["frames"])

    def identity(self) -> dict:
        """What identifies this split in cache keys and benchmark records."""
        return {"name": "synthetic-video", "config": self.config.to_dict(), "split": self.split,
                "version": RECIPE_VERSION}

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for the {self.split} split of {len(self)} clips")
        d = self.data
        return {
            "frames": torch.from_numpy(d["frames"][i].transpose(0, 3, 1, 2).astype(np.float32) / 255.0),
            "masks": torch.from_numpy(d["masks"][i].astype(np.int64)),
            "scribbles": torch.from_numpy(d["scribbles"][i].astype(np.int64)),
            "annotated": torch.from_numpy(d["annotated"][i].copy()),
            "flow": torch.from_numpy(d["flow"][i].astype(np.float32)),
            "true_flow": torch.from_numpy(d["true_flow"][i].astype(np.float32)),
            "valid": torch.from_numpy(d["valid"][i].copy()),
            "camouflaged": bool(d["camouflaged"][i]),
            "name": f"{self.split}-{int(i) % len(self):04d}",
            "index": int(i) % len(self),
        }

    def __repr__(self) -> str:
        c = self.config
        return (f"SyntheticVideo(preset={c.name or 'custom'!r}, split={self.split!r}, clips={len(self)}, "
                f"frames={c.n_frames}, size={c.image_size})")
