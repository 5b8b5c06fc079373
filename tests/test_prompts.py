"""C6 prompt selection on hand-made CAMs and graphs where the right answer is known."""

import numpy as np
import pytest
from scipy import sparse

from s2d_core.config import C6Config
from s2d_core.pseudo.prompts import (affinity_graph, cluster_labels, eigengap, grid_to_xy, laplacian_spectrum,
                                     negative_points, select_prompts)

YY, XX = np.mgrid[0:32, 0:32]


def two_blobs_with_bridge():
    """Two disks (centres x=8 and x=24, row 16) joined by a one-cell bridge."""
    cam = np.zeros((32, 32), np.float32)
    cam[(YY - 16) ** 2 + (XX - 8) ** 2 <= 36] = 1.0
    cam[(YY - 16) ** 2 + (XX - 24) ** 2 <= 36] = 0.8
    cam[16, 8:25] = 0.9
    return cam


def test_bridge_gives_two_clusters_one_point_in_each_blob():
    pr = select_prompts(two_blobs_with_bridge(), 0.5, None, C6Config(graph_size=32))
    assert pr.info["k"] == 2 and pr.info["components"] == 1
    xs = sorted(pr.positives[:, 0])
    assert abs(xs[0] - 8) <= 1 and abs(xs[1] - 24) <= 1
    assert np.allclose(pr.positives[:, 1], 16, atol=1)
    # each cluster is one blob: the left blob's cells share a label different from the right's
    assert pr.clusters[16, 5] == pr.clusters[16, 10] != pr.clusters[16, 26] == pr.clusters[16, 22]
    # the spectrum shows why: one near-zero eigenvalue besides the trivial one, then a jump
    lam = pr.eigenvalues
    assert lam[0] < 1e-9 and lam[1] < 0.01 and lam[2] - lam[1] > 3 * lam[1]


def test_one_blob_gives_one_point_at_its_centre():
    cam = ((YY - 12) ** 2 + (XX - 20) ** 2 <= 49).astype(np.float32)
    pr = select_prompts(cam, 0.5, None, C6Config(graph_size=32))
    assert pr.info["k"] == 1 and len(pr.positives) == 1
    assert np.allclose(pr.positives[0], [20, 12], atol=1)  # (x, y) = (column, row)


def test_features_split_a_connected_square():
    """A square whose two halves differ in feature: the feature affinity cuts it in two."""
    cam = np.zeros((32, 32), np.float32)
    cam[8:24, 4:28] = 1.0
    feats = np.zeros((2, 32, 32), np.float32)
    feats[0, :, :16] = 1.0
    feats[1, :, 16:] = 1.0
    pr = select_prompts(cam, 0.5, feats, C6Config(graph_size=32))
    assert pr.info["k"] == 2
    assert sorted(pr.positives[:, 0] < 16) == [False, True]
    # without features it is one square: one point
    assert select_prompts(cam, 0.5, None, C6Config(graph_size=32)).info["k"] == 1


def test_coordinates_are_x_then_y_on_a_non_square_cam():
    cam = np.zeros((40, 80), np.float32)
    cam[5:15, 60:70] = 1.0  # top right: x ~ 65, y ~ 10
    for strategy in ("spectral", "peak", "kmeans", "random"):
        pr = select_prompts(cam, 0.5, None, C6Config(graph_size=20), rng=np.random.default_rng(0), strategy=strategy)
        x, y = pr.positives.mean(0)
        assert 58 <= x <= 72 and 3 <= y <= 16, (strategy, x, y)
    pr = select_prompts(cam, 0.5, None, C6Config(), strategy="box")
    assert pr.box.tolist() == [60, 5, 69, 14]
    assert grid_to_xy(np.array([0]), np.array([19]), 20, 40, 80).tolist() == [[77.5, 0.5]]


def test_more_pieces_than_k_max_gives_one_point_on_each_largest():
    cam = np.zeros((32, 32), np.float32)
    centres = [(5, 5), (5, 26), (26, 5), (26, 26), (16, 16)]
    for i, (r, c) in enumerate(centres):
        cam[(YY - r) ** 2 + (XX - c) ** 2 <= (9 if i < 4 else 4)] = 1.0
    pr = select_prompts(cam, 0.5, None, C6Config(graph_size=32, k_max=4))
    assert len(pr.positives) == 4
    got = {(int(round(y)), int(round(x))) for x, y in pr.positives}
    assert got == {(5, 5), (5, 26), (26, 5), (26, 26)}  # the small middle piece is left out


def test_edge_cases_empty_single_pixel_and_tiny_foreground():
    cfg = C6Config(graph_size=32)
    empty = select_prompts(np.zeros((32, 32)), 0.5, None, cfg)
    assert empty.empty and len(empty.points) == 0 and "empty foreground" in empty.info["reason"]
    one = np.zeros((64, 64), np.float32)
    one[40, 10] = 1.0  # one pixel: pooled to a grid cell below threshold, kept as the strongest cell
    for strategy in ("spectral", "kmeans", "peak", "random", "box"):
        pr = select_prompts(one, 0.5, None, cfg, rng=np.random.default_rng(0), strategy=strategy)
        assert not pr.empty, strategy
        pts = pr.positives if pr.box is None else pr.box.reshape(2, 2)
        assert np.allclose(pts.mean(0), [10, 40], atol=1.5), (strategy, pts)
    two = np.zeros((32, 32), np.float32)
    two[3, 3] = two[3, 4] = 1.0  # foreground of 2 cells, fewer than k_max / n_points
    for strategy in ("spectral", "kmeans", "random"):
        pr = select_prompts(two, 0.5, None, C6Config(graph_size=32, n_points=3), rng=np.random.default_rng(0),
                            strategy=strategy)
        # on a 32 x 32 grid of a 32 x 32 CAM cell (r, c) is the point (x, y) = (c, r)
        points = {tuple(p) for p in pr.positives}
        assert 1 <= len(pr.positives) <= 2 and points <= {(3.0, 3.0), (4.0, 3.0)}, strategy


def test_laplacian_spectrum_matches_dense_reference_on_both_paths():
    rng = np.random.default_rng(0)
    for n in (40, 300):  # dense eigh and sparse eigsh
        fg = np.zeros((20, 20), bool)
        fg.flat[rng.choice(400, n, replace=False)] = True
        W, _ = affinity_graph(fg, rng.standard_normal((4, 20, 20)), knn=6, radius=3)
        lam, vec = laplacian_spectrum(W, 5)
        d = np.asarray(W.sum(1)).ravel()
        inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-12)), 0)
        L = np.eye(n) - inv[:, None] * W.toarray() * inv[None]
        L[d == 0, d == 0] = 0.0  # isolated nodes: their own component
        ref = np.sort(np.linalg.eigvalsh(L))[:5]
        assert np.allclose(lam, ref, atol=1e-6), (n, lam, ref)
        Lv = L @ vec
        assert np.allclose(Lv, vec * lam[None], atol=1e-5)


def test_affinity_graph_is_symmetric_sparse_and_follows_features():
    fg = np.ones((10, 10), bool)
    feats = np.zeros((2, 10, 10))
    feats[0, :, :5] = 1
    feats[1, :, 5:] = 1
    W, nodes = affinity_graph(fg, feats, knn=8, radius=2)
    assert abs(W - W.T).max() == 0
    assert (np.diff(W.indptr) <= 16).all()  # knn per node, at most doubled by symmetrisation
    idx = {tuple(p): i for i, p in enumerate(nodes)}
    # weight exp(-d^2 / (2 * 2^2)) * exp(-(1 - cos) / 0.1): neighbours at distance 1 with the same
    # feature get exp(-1/8), the strongest edge of the graph
    within = W[idx[(5, 3)], idx[(5, 4)]]
    assert within == pytest.approx(np.exp(-1 / 8)) and W.max() == pytest.approx(np.exp(-1 / 8))
    # across the feature border (cos 0) the edge would weigh exp(-1/8 - 10); (5, 4) and (5, 5) each have 8
    # same-feature candidates within radius 2 (3 at distance 1, 2 at sqrt 2, 3 at 2), all stronger: dropped
    assert W[idx[(5, 4)], idx[(5, 5)]] == 0


def test_eigengap_and_kmeans_by_hand():
    assert eigengap(np.array([0, 0.01, 0.5, 0.55, 0.6]), k_max=4) == 2  # bridge-like
    assert eigengap(np.array([0, 0.03, 0.031, 0.09, 0.091]), k_max=4) == 1  # disk-like: no clear gap
    assert eigengap(np.array([0, 0.01, 0.011, 0.012, 0.1]), k_max=4) == 4
    assert eigengap(np.array([0, 0.01, 0.011, 0.012, 0.1]), k_max=3) == 1  # bounded: no clear gap within k_max
    assert eigengap(np.array([0, 0, 0, 0.2, 0.9]), k_max=4, k_min=3) == 3
    assert eigengap(np.array([0.0]), k_max=4) == 1
    x = np.array([[0, 0], [0.1, 0], [5, 5], [5.1, 5], [0, 0.1]])
    lab = cluster_labels(x, 2)
    assert lab[0] == lab[1] == lab[4] != lab[2] == lab[3]
    assert cluster_labels(x, 10).max() <= 4  # k capped at n
    # Euclidean, not cosine: two groups on one ray from the origin are two clusters
    ray = np.array([[1.0, 1.0], [1.1, 1.1], [9.0, 9.0], [9.2, 9.2]])
    assert cluster_labels(ray, 2).tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])


def test_negative_points_sit_on_confident_background_near_the_object():
    fg = np.zeros((20, 20), bool)
    fg[5:10, 5:10] = True
    bg = ~fg
    bg[:, 15:] = False  # not confident there
    r, c = negative_points(fg, bg, 3)
    # confident background at distance >= 1.5 from the square: the nearest cells are at distance 2 (rows
    # 3 and 11, columns 3 and 11, along the square). In row-major order, each at least 4 from the ones
    # picked before: (3, 5), then (3, 9), then (7, 3) ((5, 3), (5, 11), (6, 3), (6, 11) are too close).
    assert r.tolist() == [3, 3, 7] and c.tolist() == [5, 9, 3]
    pr = select_prompts(fg.astype(np.float32), 0.5, None, C6Config(graph_size=20, negatives=2), background=bg)
    assert (pr.labels == 0).sum() == 2 and (pr.labels == 1).sum() >= 1


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"one class's CAM \(H, W\)"):
        select_prompts(np.zeros((2, 8, 8)), 0.5)
    with pytest.raises(ValueError, match="unknown prompt strategy"):
        select_prompts(np.ones((8, 8)), 0.5, strategy="clicks")
    with pytest.raises(ValueError, match="features must be"):
        affinity_graph(np.ones((4, 4), bool), np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="segmenter='sam' needs sam_checkpoint"):
        C6Config(segmenter="sam")
    with pytest.raises(ValueError, match="strategy must be one of"):
        C6Config(strategy="corners")
    W, nodes = affinity_graph(np.zeros((4, 4), bool), None)
    assert isinstance(W, sparse.csr_matrix) and W.shape == (0, 0) and nodes.shape == (0, 2)


@pytest.mark.parametrize("cam, threshold, match", [
    (np.full((8, 8), np.nan), 0.5, "NaN or infinite"),
    (np.ones((8, 8)), 1.5, r"threshold must be a background score in \[0, 1\]"),
    (np.ones((8, 8)), -0.1, "threshold must be"),
    (np.ones((8, 8)) * 7.0, 0.5, r"CAM values must lie in \[0, 1\]"),
])
def test_bad_cams_and_thresholds_are_refused_not_answered_with_empty_prompts(cam, threshold, match):
    """Before, a NaN CAM or a threshold above 1 silently gave no prompts."""
    for strategy in ("spectral", "peak", "box"):
        with pytest.raises(ValueError, match=match):
            select_prompts(cam, threshold, strategy=strategy)


def test_mirror_symmetric_blobs_on_the_sparse_eigensolver_path():
    """Two equal blobs joined by a bridge, mirror-symmetric, over 100 nodes (the eigsh path): the
    antisymmetric second eigenvector must be found (a symmetric start vector would miss it)."""
    cam = np.zeros((32, 32), np.float32)
    cam[(YY - 16) ** 2 + (XX - 8) ** 2 <= 42] = 1.0
    cam[(YY - 16) ** 2 + (XX - 23) ** 2 <= 42] = 1.0
    cam[15:17, 8:24] = 1.0
    pr = select_prompts(cam, 0.5, None, C6Config(graph_size=32))
    assert pr.info["nodes"] > 100 and pr.info["k"] == 2
    assert sorted(np.round(pr.positives[:, 0]).astype(int).tolist())[0] <= 9
    assert sorted(np.round(pr.positives[:, 0]).astype(int).tolist())[1] >= 22
