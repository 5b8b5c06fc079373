"""SPML's segment machinery and loss, checked by hand on tiny batches."""

from __future__ import annotations

import math

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from s2d_core.train.spml import (IGNORE, RELEASED, UNLABELLED, SPMLLoss, annotation_positives, cooccurrence_positives,
                                 grid_init, position_features, segment, segsort_loss, similarity_positives,
                                 spherical_kmeans)


def test_grid_and_positions():
    g = grid_init(4, 6, 2)
    assert g.shape == (4, 6) and set(g.unique().tolist()) == {0, 1, 2, 3}
    assert g[0, 0] == 0 and g[-1, -1] == 3
    pos = position_features(3, 5)
    assert pos.shape == (2, 3, 5) and pos.min() == -0.5 and pos.max() == 0.5


def test_spherical_kmeans_separates_two_directions():
    torch.manual_seed(0)
    a = F.normalize(torch.tensor([1.0, 0.0]) + 0.05 * torch.randn(10, 2), dim=1)
    b = F.normalize(torch.tensor([0.0, 1.0]) + 0.05 * torch.randn(10, 2), dim=1)
    x = torch.cat([a, b])
    init = torch.tensor([0, 1] * 10)                 # a bad start: alternating
    lab = spherical_kmeans(x, init, iterations=10)
    assert len(set(lab[:10].tolist())) == 1 and len(set(lab[10:].tolist())) == 1 and lab[0] != lab[10]


def test_segments_split_by_label_and_region_keep_unlabelled_and_drop_padding():
    e = F.normalize(torch.ones(1, 3, 2, 4), dim=1)   # one direction: k-means cannot split by embedding
    labels = torch.tensor([[[0, 0, UNLABELLED, UNLABELLED], [1, 1, IGNORE, IGNORE]]])
    regions = torch.tensor([[[0, 0, 0, 1], [1, 1, 1, 1]]])
    tags = torch.tensor([[0.0, 1.0]])
    segs, pe, ploc = segment(e, labels, regions, tags, grid=1)
    assert len(pe) == 6                              # 2 padding cells removed, unlabelled kept
    # segments: (label 0, region 0), (UNLABELLED, region 0), (UNLABELLED, region 1), (label 1, region 1)
    assert len(segs.label) == 4
    assert sorted(segs.label.tolist()) == [0, 1, UNLABELLED, UNLABELLED]
    torch.testing.assert_close(segs.prototype.norm(dim=1), torch.ones(4))
    assert segs.tags.shape == (4, 2) and (segs.tags[:, 1] == 1).all()
    assert ploc.shape == (6, 5)


def test_segsort_loss_by_hand():
    anchors = torch.tensor([[1.0, 0.0]])
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])   # own, another positive, a negative
    kappa = 2.0
    positive = torch.tensor([[True, True, False]])
    got = segsort_loss(anchors, torch.tensor([0]), positive, protos, kappa)
    # own segment excluded: num = e^{k*0} (proto 1), den = num + e^{-k} (proto 2)
    expected = -math.log(1.0 / (1.0 + math.exp(-kappa)))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # no other positive: the own segment is the positive
    only_own = segsort_loss(anchors, torch.tensor([0]), torch.tensor([[True, False, False]]), protos, kappa)
    expected = -math.log(math.exp(kappa) / (math.exp(kappa) + 1.0 + math.exp(-kappa)))
    assert only_own.item() == pytest.approx(expected, rel=1e-6)


def test_relations_positives():
    assert annotation_positives(torch.tensor([1, 2]), torch.tensor([1, 1, 2])).tolist() == \
        [[True, True, False], [False, False, True]]
    tags = torch.tensor([[1.0, 0.0], [0.0, 0.0]])                  # image 0 tagged with class 0; image 1 untagged
    assert cooccurrence_positives(tags, torch.tensor([[1.0, 1.0], [0.0, 1.0]])).tolist() == \
        [[True, False], [False, False]]
    assert similarity_positives(torch.tensor([3]), torch.tensor([3, 4])).tolist() == [[True, False]]


def test_spml_loss_runs_backward_uses_unlabelled_pixels_and_fills_its_memory():
    torch.manual_seed(0)
    emb = torch.randn(2, 8, 6, 6, requires_grad=True)
    labels = torch.full((2, 6, 6), UNLABELLED)
    labels[0, 1, 1], labels[0, 4, 4], labels[1, 2, 2] = 1, 0, 1
    regions = torch.zeros(2, 6, 6, dtype=torch.long)
    regions[:, :, 3:] = 1
    tags = torch.tensor([[1.0, 0.0], [1.0, 0.0]])                  # both images share their tag
    loss = SPMLLoss(num_classes=2, **RELEASED["scribbles"], grid=2)
    out = loss(emb, labels, regions, tags)
    assert torch.isfinite(out["loss"]) and out["similarity"] > 0 and out["annotation"] > 0
    out["loss"].backward()
    # unlabelled pixels take part (similarity, co-occurrence): they receive gradients
    assert emb.grad[0, :, 0, 5].abs().sum() > 0
    assert len(loss.memory) == 1
    loss(emb.detach(), labels, regions, tags)
    loss(emb.detach(), labels, regions, tags)
    assert len(loss.memory) == 2                                   # the last two batches
    with pytest.raises(ValueError, match="must give similarity, annotation and cooccurrence"):
        SPMLLoss(2, weights={"annotation": 1.0}, kappas=RELEASED["tags"]["kappas"])


def test_embedding_network_gives_stride_4_maps():
    from s2d_core.models.config import ModelConfig
    from s2d_core.models.embedding import EmbeddingNet

    net = EmbeddingNet(ModelConfig(init="scratch"), dim=16).eval()
    out = net(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 16, 16, 16)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(3, 64, 64))


def test_cell_labels_keep_thin_strokes_and_mark_unlabelled_and_padding():
    from s2d_core.train.spml import cell_labels

    lab = torch.full((1, 8, 8), UNLABELLED)
    lab[0, 1, :4] = 2                  # a 1-px stroke through the top-left cell
    lab[0, 4:, 4:] = IGNORE            # padding fills the bottom-right cell
    lab[0, 0, 7] = 0                   # one background click in the top-right cell
    out = cell_labels(lab, (2, 2), num_classes=3)
    assert out.tolist() == [[[2, 0], [UNLABELLED, IGNORE]]]


def test_spml_trains_a_tiny_network_from_points():
    from torch.utils.data import Dataset

    from s2d_core.data import get_dataset
    from s2d_core.data.labels import point_labels, superpixels
    from s2d_core.models.config import ModelConfig
    from s2d_core.models.embedding import EmbeddingNet
    from s2d_core.train import TrainConfig, fit
    from s2d_core.train.spml import SPMLObjective

    base = get_dataset("synthetic", "train", "tiny", progress=False)

    class Points(Dataset):
        fixed_size = True

        def __len__(self):
            return 8

        def __getitem__(self, i):
            it = base[i]
            return {"image": it["image"], "mask": torch.from_numpy(point_labels(it)),
                    "regions": torch.from_numpy(superpixels(it["image"].numpy().transpose(1, 2, 0))),
                    "tags": it["tags"]}

    torch.manual_seed(0)
    net = EmbeddingNet(ModelConfig(init="scratch"), dim=16)
    obj = SPMLObjective(base.num_classes, **RELEASED["points"], grid=2)
    info = fit(net, Points(), obj, TrainConfig(epochs=2, batch_size=4), progress=False, flip_keys=("mask", "regions"))
    assert len(info["loss"]) == 2 and all(math.isfinite(v) for v in info["loss"])


def test_segment_retrieval_reads_labels_from_the_nearest_memory_segments():
    from s2d_core.train.spml import build_memory, segment_retrieval

    # two directions: left half class 1, right half class 0 (background)
    emb = torch.zeros(2, 8, 8)
    emb[0, :, :4] = 1.0
    emb[1, :, 4:] = 1.0
    lab = torch.full((8, 8), UNLABELLED)
    lab[2, 1], lab[5, 6] = 1, 0                       # one labelled cell per side
    memory, mem_labels = build_memory(emb[None], lab[None], num_classes=2, grid=2)
    assert sorted(mem_labels.tolist()) == [0, 1]
    flipped = emb.flip(-1)                            # the query: class 1 now on the right
    out = segment_retrieval(flipped, memory, mem_labels, num_classes=2, k=1, grid=2)
    assert (out[:, 4:] == 1).all() and (out[:, :4] == 0).all()


def test_random_walk_spreads_scores_within_similar_cells_only():
    from s2d_core.train.spml import random_walk

    emb = torch.zeros(2, 4, 4)
    emb[0, :, :2] = 1.0
    emb[1, :, 2:] = 1.0                                  # two groups of cells, orthogonal
    scores = torch.zeros(1, 4, 4)
    scores[0, 0, 0] = 1.0                                # one seed cell in the left group
    out = random_walk(emb, scores, beta=10.0, steps=8)
    assert out[0, :, :2].min() > 0.05 and out[0, :, 2:].max() < 1e-3
    assert out.max() <= scores.max() + 1e-6              # each cell averages its neighbours' scores
    with pytest.raises(ValueError, match="power of two"):
        random_walk(emb, scores, steps=6)


@pytest.mark.parametrize("kind, method", [("scribbles", "spml"), ("tags", "spml"), ("boxes", "spml"),
                                          ("points", "partial_ce"), ("boxes", "box_fill"), ("boxes", "box_crf"),
                                          ("full", "full")])
def test_spml_run_on_the_tiny_world(kind, method, tmp_path, monkeypatch):
    from s2d_core.pipeline.spml import SPMLConfig, SPMLRun
    from s2d_core.train import TrainConfig

    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))
    cfg = SPMLConfig(dim=16, train=TrainConfig(epochs=1, batch_size=8), grid=2, readout_grid=2, k=5)
    run = SPMLRun(kind=kind, method=method, preset="tiny", cfg=cfg, progress=False)
    run.train()
    pseudo = run.pseudo_labels()
    assert pseudo.shape == (len(run.train_set), 64, 64) and pseudo.dtype == np.uint8
    m = run.final()
    assert 0 <= m["final_miou"] <= 1 and 0 <= m["label_miou"] <= 1
    if method == "spml":
        assert m["labelled_share"] == 1.0          # the walk and the CRF label every pixel
        tags = np.stack([run.train_set[i]["tags"].numpy() > 0 for i in range(len(run.train_set))])
        for i, p in enumerate(pseudo):             # only background and the image's tags
            assert set(np.unique(p).tolist()) <= {0, *(np.flatnonzero(tags[i]) + 1).tolist()}
    with pytest.raises(ValueError, match="takes"):
        SPMLRun(kind="points", method="box_fill", preset="tiny", progress=False)


def test_spml_memory_survives_a_checkpoint():
    obj_a = SPMLLoss(2, **RELEASED["points"], grid=2)
    emb = torch.randn(1, 4, 4, 4)
    lab = torch.zeros(1, 4, 4, dtype=torch.long)
    obj_a(emb, lab, torch.zeros(1, 4, 4, dtype=torch.long), torch.tensor([[1.0, 0.0]]))
    obj_b = SPMLLoss(2, **RELEASED["points"], grid=2)
    obj_b.load_state_dict(obj_a.state_dict())
    assert len(obj_b.memory) == 1
    torch.testing.assert_close(obj_b.memory[0]["prototype"], obj_a.memory[0]["prototype"])


def test_retrieval_vote_is_restricted_to_allowed_classes():
    from s2d_core.train.spml import segment_retrieval

    emb = torch.ones(2, 4, 4)
    memory = F.normalize(torch.ones(3, 2), dim=1)
    labels = torch.tensor([2, 2, 1])
    assert (segment_retrieval(emb, memory, labels, 3, k=3, grid=1) == 2).all()
    allowed = torch.tensor([True, True, False])
    assert (segment_retrieval(emb, memory, labels, 3, k=3, grid=1, allowed=allowed) == 1).all()


def test_spml_run_retrieval_readout_is_the_second_view(tmp_path, monkeypatch):
    from s2d_core.pipeline.spml import SPMLConfig, SPMLRun
    from s2d_core.train import TrainConfig

    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))
    base = SPMLConfig(dim=16, train=TrainConfig(epochs=1, batch_size=8), grid=2, readout_grid=2, k=5)
    walk = SPMLRun(kind="scribbles", preset="tiny", cfg=base, progress=False)
    first = walk.train()
    retr = SPMLRun(kind="scribbles", preset="tiny", cfg=base.replace(readout="retrieval", walk_steps=8, classifier_epochs=2),
                   progress=False)
    again = retr.train()                           # read-out settings do not retrain: the same cached embedding
    assert not first["from_cache"] and again["from_cache"] and again["key"] == first["key"]
    assert retr.pseudo_labels().shape == walk.pseudo_labels().shape


def test_spml_config_rejects_bad_readouts():
    from s2d_core.pipeline.spml import SPMLConfig

    with pytest.raises(ValueError, match="readout"):
        SPMLConfig(readout="nearest")
    with pytest.raises(ValueError, match="power of two"):
        SPMLConfig(walk_steps=48)


def test_classifier_learns_from_labelled_pixels_only():
    from s2d_core.train.spml import fit_classifier

    emb = torch.zeros(8, 2, 4, 4)
    emb[:, 0, :, :2] = 1.0
    emb[:, 1, :, 2:] = 1.0                         # left cells point one way, right cells the other
    labels = torch.full((8, 8, 8), UNLABELLED)
    labels[:, :, 1] = 1                            # a stroke per image on the left ...
    labels[:, :, 6] = 0                            # ... and one on the right; the rest is unlabelled
    head = fit_classifier(emb, labels, num_classes=2, epochs=60, batch_size=4, lr=0.05, progress=False)
    pred = F.interpolate(head(emb), size=(8, 8), mode="bilinear", align_corners=False).argmax(1)
    assert (pred[:, :, :3] == 1).all() and (pred[:, :, 5:] == 0).all()
    with pytest.raises(ValueError, match="no labelled pixel"):
        fit_classifier(emb, torch.full((8, 8, 8), UNLABELLED), num_classes=2, progress=False)
    with pytest.raises(ValueError, match="same N"):
        fit_classifier(emb, labels[:3], num_classes=2, progress=False)


def test_propagate_labels_spreads_a_seed_within_its_group_and_keeps_to_the_tags():
    from s2d_core.train.spml import propagate_labels

    emb = torch.zeros(2, 4, 4)
    emb[0, :, :2] = 1.0
    emb[1, :, 2:] = 1.0                            # two groups of cells, orthogonal
    probs = torch.zeros(3, 4, 4)
    probs[0, :, :2], probs[0, :, 2:] = 0.05, 0.9   # background: sure on the right, unsure on the left
    probs[1, 1, 0] = 0.9                           # class 1: one confident cell of the left group
    probs[2] = 0.05                                # class 2 is weak everywhere but, scaled to its peak, strong
    image = torch.zeros(3, 8, 8)
    allowed = torch.tensor([True, True, False])
    out = propagate_labels(emb, probs, image, allowed, crf=None, beta=10.0, steps=8)
    assert out.shape == (8, 8) and out.dtype == np.int64
    assert (out[:, :3] == 1).all() and (out[:, 5:] == 0).all()   # (columns 3-4 blend the two groups)
    assert (propagate_labels(emb, probs, image, torch.tensor([True, True, True]), crf=None, beta=10.0, steps=8)
            == 2).any()                            # allowed, the scaled-up weak class takes cells
    crf_out = propagate_labels(emb, probs, image, allowed, beta=10.0, steps=8)
    assert set(np.unique(crf_out).tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="embedding's grid"):
        propagate_labels(emb, probs[:, :2], image, allowed)


def test_box_crf_shrinks_a_box_to_its_object_and_leaves_the_outside_alone():
    from s2d_core.pipeline.spml import box_crf_labels

    image = torch.full((3, 32, 32), 0.5)
    image[:, 8:20, 8:20] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]   # the object
    truth = np.zeros((32, 32), bool)
    truth[8:20, 8:20] = True
    item = {"image": image, "mask": torch.from_numpy(truth.astype(np.int64)),
            "boxes": torch.tensor([[4, 4, 23, 23, 1]])}                 # a loose box (x0, y0, x1, y1, class)
    out = box_crf_labels(item)
    filled = np.zeros((32, 32), bool)
    filled[4:24, 4:24] = True

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    assert iou(out == 1, truth) > iou(filled, truth) + 0.2
    item["boxes"] = torch.tensor([[4, 4, 23, 23, 1], [0, 0, 31, 31, 2]])   # a box of another class around all
    both = box_crf_labels(item)
    assert (both[filled == 0] != 1).all()          # class 1 never leaves its box, even where it looks alike

