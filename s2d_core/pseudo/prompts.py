"""Where to click: prompts for a promptable segmenter from one class's CAM (C6).

A CAM says *roughly where* a class is; a promptable segmenter (SAM) knows *exactly where an
object ends* but not what it is. C6 connects them by choosing prompt points from the CAM. One
point at the CAM's peak finds the emblem-like part that made the classifier decide and SAM
returns that part; several points spread over the CAM's foreground ask for the whole object,
and for every instance. The spectral strategy spreads them where the foreground *falls apart
into pieces*:

1. **Graph.** The CAM is pooled to a ``g x g`` grid; foreground cells (CAM > t) are nodes. Two
   nodes within ``radius`` cells are joined with weight

   .. math:: w_{ij} = \\exp\\!\\Big(-\\frac{1 - \\cos(f_i, f_j)}{\\sigma_f}\\Big)
             \\exp\\!\\Big(-\\frac{\\lVert p_i - p_j \\rVert^2}{2\\sigma_s^2}\\Big)

   (feature similarity times spatial proximity), keeping each node's ``knn`` strongest edges
   (symmetrised).
2. **Spectrum.** The normalised Laplacian :math:`L = I - D^{-1/2} W D^{-1/2}` (Shi & Malik 2000;
   Ng, Jordan & Weiss 2001); its smallest eigenvalues :math:`0 = \\lambda_1 \\le \\lambda_2 \\le \\dots`
   are near 0 for each part that is only weakly tied to the rest.
3. **Eigengap.** The largest :math:`k \\le k_{max}` with a clear gap after the ``k``-th eigenvalue,
   :math:`\\lambda_k \\le \\rho\\,\\lambda_{k+1}` (and at least the number of connected components).
4. **Clusters.** k-means on the rows (normalised to unit length) of the first ``k`` eigenvectors.
5. **Points.** One positive point per cluster: its most central cell (deepest inside it) or its
   CAM peak. Optionally negative points on confident background next to the foreground.

Baselines (same output): ``peak`` (one point at the CAM maximum, S2C-style), ``random``
(``n_points`` random foreground pixels), ``kmeans`` (``n_points`` k-means clusters of features
and positions, no graph), ``box`` (the box around the foreground).

Coordinates follow SAM: a point is ``(x, y)`` = (column, row) in pixels of the CAM/image.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from ..arrays import to_numpy
from ..densify.kmeans import kmeans
from .config import PROMPT_STRATEGIES, C6Config


@dataclass
class Prompts:
    """Prompts for one class of one image (``P`` points)."""
    points: np.ndarray
    """``(P, 2)`` float, ``(x, y)`` in image pixels."""
    labels: np.ndarray
    """``(P,)`` int: 1 object, 0 background (negative)."""
    box: np.ndarray | None = None
    """``(4,)`` ``(x0, y0, x1, y1)`` or None."""
    clusters: np.ndarray | None = None
    """``(g, g)`` int: cluster of each grid cell, -1 outside the graph (for pictures)."""
    eigenvalues: np.ndarray | None = None
    """Smallest eigenvalues of the normalised Laplacian (spectral strategy)."""
    info: dict = field(default_factory=dict)

    @property
    def positives(self) -> np.ndarray:
        return self.points[self.labels == 1]

    @property
    def negatives(self) -> np.ndarray:
        return self.points[self.labels == 0]

    @property
    def empty(self) -> bool:
        return self.box is None and not (self.labels == 1).any()


def _no_prompts(g: int, reason: str) -> Prompts:
    return Prompts(np.zeros((0, 2)), np.zeros(0, np.int64), None, np.full((g, g), -1), None, {"reason": reason})


def pool(x: np.ndarray | torch.Tensor, size: int) -> np.ndarray:
    """Area-pool ``(H, W)`` or ``(D, H, W)`` to ``size x size`` (bilinear when upsampling)."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    squeeze = t.ndim == 2
    t = t[None, None] if squeeze else t[None]
    mode = "area" if t.shape[-1] >= size and t.shape[-2] >= size else "bilinear"
    out = F.interpolate(t, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))
    return out[0, 0].numpy() if squeeze else out[0].numpy()


def grid_to_xy(rows: np.ndarray, cols: np.ndarray, grid: int, height: int, width: int) -> np.ndarray:
    """Centres of grid cells in image pixels: ``(n, 2)`` as ``(x, y)``."""
    x = (np.asarray(cols, float) + 0.5) * width / grid - 0.5
    y = (np.asarray(rows, float) + 0.5) * height / grid - 0.5
    return np.stack([x, y], axis=-1).reshape(-1, 2)


def affinity_graph(fg: np.ndarray, features: np.ndarray | None, knn: int = 8, radius: int = 3,
                   feature_sigma: float = 0.1, spatial_sigma: float = 2.0) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse kNN graph over the foreground cells of a grid.

    Parameters
    ----------
    fg : ``(g, g)`` bool, the nodes.
    features : ``(D, g, g)`` node features (cosine similarity), or None for spatial edges only.

    Returns
    -------
    ``W`` ``(n, n)`` symmetric CSR with weights in (0, 1] and ``nodes`` ``(n, 2)`` (row, col),
    in row-major order of the grid.
    """
    g0, g1 = fg.shape
    rows, cols = np.nonzero(fg)
    n = len(rows)
    index = -np.ones(fg.shape, np.int64)
    index[rows, cols] = np.arange(n)
    if n < 2:
        return sparse.csr_matrix((n, n)), np.stack([rows, cols], 1)
    if features is not None:
        f = np.asarray(features, np.float64)
        if f.shape[1:] != fg.shape:
            raise ValueError(f"features must be (D, {g0}, {g1}) to match the grid, got {f.shape}")
        f = f / np.maximum(np.linalg.norm(f, axis=0, keepdims=True), 1e-8)
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
               if (dy, dx) != (0, 0) and dy * dy + dx * dx <= radius * radius]
    weights = np.zeros((len(offsets), n))
    nbr = -np.ones((len(offsets), n), np.int64)
    for o, (dy, dx) in enumerate(offsets):
        r2, c2 = rows + dy, cols + dx
        ok = (r2 >= 0) & (r2 < g0) & (c2 >= 0) & (c2 < g1)
        j = np.full(n, -1)
        j[ok] = index[r2[ok], c2[ok]]
        ok &= j >= 0
        w = np.exp(-(dy * dy + dx * dx) / (2 * spatial_sigma ** 2)) * np.ones(n)
        if features is not None:
            cos = np.einsum("dn,dn->n", f[:, rows[ok], cols[ok]], f[:, r2[ok], c2[ok]])
            w[ok] *= np.exp(-(1 - cos) / feature_sigma)
        weights[o, ok], nbr[o, ok] = w[ok], j[ok]
    k = min(knn, len(offsets))
    top = np.argpartition(-weights, k - 1, axis=0)[:k]  # the k strongest candidate edges per node
    w = np.take_along_axis(weights, top, 0).ravel()
    j = np.take_along_axis(nbr, top, 0).ravel()
    i = np.broadcast_to(np.arange(n), top.shape).ravel()
    keep = (j >= 0) & (w > 0)
    W = sparse.coo_matrix((w[keep], (i[keep], j[keep])), shape=(n, n)).tocsr()
    return W.maximum(W.T).tocsr(), np.stack([rows, cols], 1)


def laplacian_spectrum(W: sparse.spmatrix, n_vectors: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest ``n_vectors`` eigenpairs of the normalised Laplacian ``I - D^{-1/2} W D^{-1/2}``.

    Returns eigenvalues ``(m,)`` ascending in [0, 2] and eigenvectors ``(n, m)``,
    ``m = min(n_vectors, n)``. Nodes without edges count as their own component (eigenvalue 0).
    """
    n = W.shape[0]
    m = min(n_vectors, n)
    if n == 0:
        return np.zeros(0), np.zeros((0, 0))
    d = np.asarray(W.sum(axis=1)).ravel()
    inv = np.where(d > 0, 1.0 / np.sqrt(np.maximum(d, 1e-12)), 0.0)
    A = sparse.diags(inv) @ W @ sparse.diags(inv)
    A = A + sparse.diags((d == 0).astype(float))  # an isolated node: its own component, eigenvalue 0
    if n <= 100 or m >= n - 1:  # dense is faster only for small graphs
        mu, vec = np.linalg.eigh(A.toarray())
        mu, vec = mu[::-1][:m], vec[:, ::-1][:, :m]
    else:  # sparse: the largest of D^{-1/2} W D^{-1/2} are the smallest of L
        try:  # a random (seeded) start: a symmetric one would miss antisymmetric eigenvectors
            mu, vec = eigsh(A, k=m, which="LA", v0=np.random.default_rng(0).standard_normal(n), tol=1e-6)
        except ArpackNoConvergence:
            mu, vec = np.linalg.eigh(A.toarray())
            mu, vec = mu[::-1][:m], vec[:, ::-1][:, :m]
        order = np.argsort(-mu)
        mu, vec = mu[order], vec[:, order]
    return np.clip(1.0 - mu, 0.0, 2.0), vec


def eigengap(eigenvalues: np.ndarray, k_max: int, k_min: int = 1, ratio: float = 0.2) -> int:
    """Number of clusters from the spectrum's gap, measured relatively.

    ``k`` clusters are clearly there when the first ``k`` eigenvalues are small next to the
    ``(k+1)``-th: :math:`\\lambda_{k} \\le \\rho\\, \\lambda_{k+1}` (1-based). The largest such ``k`` in
    ``[k_min, k_max]`` is returned (``k_min`` when none is). A relative gap, because the absolute
    eigenvalues scale with the object's size: a round blob has ``lambda_2 ~ lambda_3`` and no
    clear gap (one cluster) however large it is, two blobs joined by a bridge have
    ``lambda_2 << lambda_3`` (two clusters).
    """
    lam = np.asarray(eigenvalues, float)
    if len(lam) == 0:
        return 0
    k_min = max(k_min, 1)
    for k in range(min(k_max, len(lam) - 1), k_min, -1):
        if lam[k - 1] <= ratio * lam[k] and lam[k] > 1e-9:
            return k
    return min(k_min, max(k_max, 1))


def cluster_labels(x: np.ndarray, k: int, first: int = 0) -> np.ndarray:
    """Labels ``(n,)`` in ``0..k-1`` of the rows of ``x`` ``(n, d)`` by Euclidean k-means
    (:func:`s2d_core.densify.kmeans.kmeans`, farthest-point start from row ``first``; ``k`` is
    capped at ``n``)."""
    x = np.asarray(x, np.float64)
    k = max(1, min(int(k), len(x)))
    _, _, q = kmeans(torch.from_numpy(x), k, iters=30, assignment="nearest", metric="euclidean", first=first)
    return q.argmax(-1).numpy().astype(np.int64)


def cluster_points(clusters: np.ndarray, cam_grid: np.ndarray, rule: str = "central") -> tuple[np.ndarray, np.ndarray]:
    """One cell per cluster of a ``(g, g)`` label grid (-1 = none): ``rows, cols`` ``(k,)``.

    ``central``: the cell deepest inside its cluster (largest distance to the cluster's
    outside), ties to the higher CAM; ``peak``: the cluster's CAM maximum.
    """
    rows, cols = [], []
    for j in sorted(set(np.unique(clusters)) - {-1}):
        m = clusters == j
        if rule == "peak":
            score = np.where(m, cam_grid, -np.inf)
        else:
            depth = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
            score = np.where(m, depth + 1e-3 * cam_grid, -np.inf)
        r, c = np.unravel_index(int(np.argmax(score)), m.shape)
        rows.append(r), cols.append(c)
    return np.array(rows, np.int64), np.array(cols, np.int64)


def negative_points(fg: np.ndarray, background: np.ndarray, n: int, min_dist: float = 1.5,
                    spacing: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` grid cells of confident ``background`` closest to the foreground ``fg`` (both
    ``(g, g)`` bool), at least ``min_dist`` cells away from it and ``spacing`` from each other."""
    if n <= 0 or not fg.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dist = ndimage.distance_transform_edt(~fg)
    rows, cols = np.nonzero(background & (dist >= min_dist))
    order = np.argsort(dist[rows, cols], kind="stable")
    picked: list[tuple[int, int]] = []
    for i in order:
        r, c = rows[i], cols[i]
        if all((r - a) ** 2 + (c - b) ** 2 >= spacing ** 2 for a, b in picked):
            picked.append((r, c))
            if len(picked) == n:
                break
    return np.array([p[0] for p in picked], np.int64), np.array([p[1] for p in picked], np.int64)


def select_prompts(cam: np.ndarray | torch.Tensor, threshold: float, features: np.ndarray | None = None,
                   cfg: C6Config = C6Config(), background: np.ndarray | None = None,
                   rng: np.random.Generator | None = None, strategy: str | None = None) -> Prompts:
    """Prompts for one class from its CAM.

    Parameters
    ----------
    cam : ``(H, W)`` CAM of the class, values in [0, 1].
    threshold : foreground is ``cam > threshold`` (the pipeline's background score).
    features : ``(D, h, w)`` image features for the graph (any ``h, w``: resampled to the grid);
        None uses spatial proximity alone.
    cfg : :class:`~s2d_core.pseudo.config.C6Config` (``strategy`` overrides ``cfg.strategy``).
    background : ``(H, W)`` bool confident background, where negative points may go.
    rng : random source of the ``random`` strategy.
    """
    strategy = strategy or cfg.strategy
    if strategy not in PROMPT_STRATEGIES:
        raise ValueError(f"unknown prompt strategy {strategy!r}: expected one of {', '.join(PROMPT_STRATEGIES)}")
    cam = to_numpy(cam)
    if cam.ndim != 2:
        raise ValueError(f"select_prompts takes one class's CAM (H, W), got shape {cam.shape}")
    if not np.isfinite(cam).all():
        raise ValueError(f"select_prompts: the CAM has {int((~np.isfinite(cam)).sum())} NaN or infinite values "
                         f"(a CAM of a class with no activation divided by zero?); CAM values must be in [0, 1]")
    if cam.size and (cam.min() < -1e-3 or cam.max() > 1 + 1e-3):
        raise ValueError(f"select_prompts: CAM values must lie in [0, 1] (a normalised map), got range "
                         f"[{cam.min():.3g}, {cam.max():.3g}]")
    if isinstance(threshold, bool) or not (isinstance(threshold, numbers.Real) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"select_prompts: threshold must be a background score in [0, 1] (foreground is "
                         f"cam > threshold), got {threshold!r}")
    cam = cam.astype(np.float32)
    H, W = cam.shape
    g = min(cfg.graph_size, H, W)
    fg_full = cam > threshold
    if not fg_full.any():
        return _no_prompts(g, f"empty foreground: max CAM {cam.max():.2f} <= threshold {threshold:.2f}")
    if strategy == "peak":
        y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
        pr = Prompts(np.array([[x, y]], float), np.ones(1, np.int64), info={"k": 1})
    elif strategy == "random":
        rng = rng if rng is not None else np.random.default_rng(0)
        ys, xs = np.nonzero(fg_full)
        pick = rng.choice(len(ys), size=min(cfg.n_points, len(ys)), replace=False)
        pr = Prompts(np.stack([xs[pick], ys[pick]], 1).astype(float), np.ones(len(pick), np.int64), info={"k": len(pick)})
    elif strategy == "box":
        ys, xs = np.nonzero(fg_full)
        pr = Prompts(np.zeros((0, 2)), np.zeros(0, np.int64), np.array([xs.min(), ys.min(), xs.max(), ys.max()], float),
                     info={"k": 1})
    else:  # "spectral" or "kmeans"
        pr = _cluster_prompts(cam, threshold, features, cfg, g, strategy)
        if pr.empty:
            return pr
    if cfg.negatives > 0 and background is not None:
        bg = np.asarray(background, bool)
        if bg.shape != cam.shape:
            raise ValueError(f"background must be (H, W) = {cam.shape} like the CAM, got {bg.shape}")
        r, c = negative_points(pool(fg_full.astype(np.float32), g) > 0.5, pool(bg.astype(np.float32), g) > 0.99,
                               cfg.negatives)
        if len(r):
            pr.points = np.concatenate([pr.points, grid_to_xy(r, c, g, H, W)])
            pr.labels = np.concatenate([pr.labels, np.zeros(len(r), np.int64)])
    return pr


def _cluster_prompts(cam: np.ndarray, threshold: float, features, cfg: C6Config, g: int, strategy: str) -> Prompts:
    H, W = cam.shape
    cam_g = pool(cam, g)
    fg = cam_g > threshold
    if not fg.any():  # foreground thinner than a grid cell: keep its strongest cell
        fg = np.zeros_like(fg)
        fg[np.unravel_index(int(np.argmax(cam_g)), fg.shape)] = True
    feats = None if features is None else pool(features, g)
    Wm, nodes = affinity_graph(fg, feats, cfg.knn, cfg.radius, cfg.feature_sigma, cfg.spatial_sigma)
    n = len(nodes)
    clusters = np.full((g, g), -1, np.int64)
    info: dict = {"nodes": n}
    # graph components: speckle smaller than min_cluster gets no prompt
    n_comp, comp = connected_components(Wm, directed=False) if n > 1 else (1, np.zeros(n, np.int64))
    sizes = np.bincount(comp, minlength=n_comp)
    keep_comp = np.nonzero(sizes >= min(cfg.min_cluster, sizes.max()))[0]
    keep_comp = keep_comp[np.argsort(-sizes[keep_comp], kind="stable")]
    eig = None
    if strategy == "kmeans":
        keep = np.isin(comp, keep_comp)
        x = np.concatenate([feats[:, nodes[keep, 0], nodes[keep, 1]].T / np.maximum(
            np.linalg.norm(feats[:, nodes[keep, 0], nodes[keep, 1]], axis=0)[:, None], 1e-8)
            if feats is not None else np.zeros((keep.sum(), 0)), nodes[keep] / g], axis=1)
        first = int(np.argmax(cam_g[nodes[keep, 0], nodes[keep, 1]]))
        lab = cluster_labels(x, cfg.n_points, first=first)
        clusters[nodes[keep, 0], nodes[keep, 1]] = lab
        k = int(lab.max()) + 1
    elif len(keep_comp) >= cfg.k_max:  # more pieces than k_max: one point on each of the largest
        k = cfg.k_max
        for j, cc in enumerate(keep_comp[:k]):
            sel = comp == cc
            clusters[nodes[sel, 0], nodes[sel, 1]] = j
    else:
        # each component on its own (Lanczos finds one vector per repeated eigenvalue, and a
        # component is its own cluster anyway); the budget of k_max clusters is shared, largest first
        budget, k, spectra = cfg.k_max - len(keep_comp), 0, []
        for cc in keep_comp:
            sel = comp == cc
            nk = nodes[sel]
            lam, vec = laplacian_spectrum(Wm[sel][:, sel], budget + 2)
            kc = eigengap(lam, budget + 1, ratio=cfg.eigengap_ratio) if len(lam) > 1 else 1
            budget -= kc - 1
            spectra.append(lam)
            emb = vec[:, :kc] / np.maximum(np.linalg.norm(vec[:, :kc], axis=1, keepdims=True), 1e-12)
            lab = cluster_labels(emb, kc, first=int(np.argmax(cam_g[nk[:, 0], nk[:, 1]])))
            clusters[nk[:, 0], nk[:, 1]] = k + lab
            k += int(lab.max()) + 1
        eig = spectra[0]  # the largest component's spectrum, for pictures
        info["spectra"] = spectra
    r, c = cluster_points(clusters, cam_g, cfg.point)
    info.update(k=len(r), components=int(n_comp))
    return Prompts(grid_to_xy(r, c, g, H, W), np.ones(len(r), np.int64), None, clusters, eig, info)


def spectral_view(cam: np.ndarray, threshold: float, features: np.ndarray | None = None,
                  cfg: C6Config = C6Config()) -> dict:
    """The graph and spectrum :func:`select_prompts` works on, for pictures: the largest kept
    component of the foreground graph of one class's CAM ``(H, W)``.

    Returns ``{"W": (n, n) CSR, "nodes": (n, 2) (row, col), "eigenvalues": (m,), "vectors": (n, m),
    "grid": g}`` (``m = k_max + 1``).
    """
    H, W_ = np.asarray(cam).shape
    g = min(cfg.graph_size, H, W_)
    fg = pool(cam, g) > threshold
    if not fg.any():
        raise ValueError(f"spectral_view: empty foreground (max CAM {np.max(cam):.2f} <= threshold {threshold:.2f})")
    Wm, nodes = affinity_graph(fg, None if features is None else pool(features, g), cfg.knn, cfg.radius,
                               cfg.feature_sigma, cfg.spatial_sigma)
    _, comp = connected_components(Wm, directed=False) if len(nodes) > 1 else (1, np.zeros(len(nodes), np.int64))
    sel = comp == np.argmax(np.bincount(comp))
    sub = Wm[sel][:, sel]
    lam, vec = laplacian_spectrum(sub, cfg.k_max + 1)
    return {"W": sub, "nodes": nodes[sel], "eigenvalues": lam, "vectors": vec, "grid": g}
