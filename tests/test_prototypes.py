"""Prototype densifiers: SIPE-style prototype CAM, C3 calibration, C4 multi-prototype OT."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from s2d_core.config import C3Config, C4Config, CAMConfig, PipelineConfig, PrototypeConfig
from s2d_core.densify.calibration import (C3Objective, CalibratedCAM, calibrate, calibrated_scores, context_refine,
                                          discrepancy)
from s2d_core.densify.kmeans import kmeans as cosine_kmeans
from s2d_core.densify.multiproto import (C4Objective, MultiPrototypeCAM, entropy_weight, image_prototypes,
                                         multi_prototype_scores, prototype_bank)
from s2d_core.pipeline import build_method, get_method, list_methods
from s2d_core.densify.prototypes import (PrototypeCAM, consistency_l1, cosine_maps, hierarchical_features,
                                         prototype_probs, region_prototypes, seed_masks, with_background)
from s2d_core.models import Classifier


def _model(seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(3).eval()


# --- building blocks -------------------------------------------------------------------------

def test_hierarchical_features_mean_the_stage_cosines():
    torch.manual_seed(0)
    stages = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4), torch.randn(2, 5, 4, 4)]
    h = hierarchical_features(stages, levels=2)
    assert h.shape == (2, 11, 4, 4)
    a, b = h[0, :, 0, 0], h[0, :, 1, 2]
    per_stage = [F.cosine_similarity(s[0, :, 0, 0], s[0, :, 1, 2], dim=0) for s in stages[1:]]
    assert torch.allclose(F.cosine_similarity(a, b, dim=0), torch.stack(per_stage).mean(), atol=1e-6)
    with pytest.raises(ValueError, match="levels must be in"):
        hierarchical_features(stages, levels=4)


def test_seed_masks_follow_the_sipe_background_rule():
    cams = torch.zeros(1, 3, 4, 4)
    cams[0, 0, :, :2] = 0.8          # class 1 confident on the left half
    cams[0, 0, 0, 2] = 0.3           # weak: 1 - 0.3 > 0.3, background
    cams[0, 2, 3, 3] = 0.2           # class 3 tagged but never above the background: keeps its peak
    cams[0, 1] = 0.9                 # class 2 untagged: ignored
    tags = torch.tensor([[1.0, 0.0, 1.0]])
    s = seed_masks(cams, tags)
    assert s.shape == (1, 4, 4, 4)
    assert s[0, 1, :, :2].all() and s[0, 1, :, 2:].sum() == 0
    assert s[0, 2].sum() == 0                        # untagged
    assert s[0, 3, 3, 3] == 1 and s[0, 3].sum() == 1  # peak cell kept
    assert s[0, 0, :, 2:].sum() == 8                  # right half is background (class 3's peak cell too)
    assert s[0, 0, 0, 2] == 1


def test_region_prototypes_are_masked_means():
    torch.manual_seed(0)
    f = torch.randn(2, 5, 3, 3)
    w = (torch.rand(2, 2, 3, 3) > 0.5).float()
    w[1, 1] = 0
    p, mass = region_prototypes(f, w)
    for b in range(2):
        for k in range(2):
            m = w[b, k].bool()
            expected = f[b][:, m].mean(1) if m.any() else torch.zeros(5)
            assert torch.allclose(p[b, k], expected, atol=1e-5)
    assert mass[1, 1] == 0


def test_prototype_probs_threshold_is_a_margin():
    torch.manual_seed(0)
    scores = torch.rand(1, 3, 5, 5) * 2 - 1
    tags = torch.tensor([[1.0, 0.0]])
    tau, t = 0.1, 0.7
    p = prototype_probs(scores, tags, tau)
    assert (p[:, 1] == 0).all()
    margin = scores[:, 1] - scores[:, 0]
    assert torch.equal(p[:, 0] > t, margin > tau * math.log(t / (1 - t)))


def test_prototype_cam_completes_an_object_the_cam_only_touches():
    # an object of 6 cells with one feature, background with another; the CAM fires on one cell
    feats = torch.zeros(1, 2, 4, 4)
    feats[0, 1] = 1.0
    obj = torch.zeros(4, 4, dtype=torch.bool)
    obj[1:3, 0:3] = True
    feats[0, :, obj] = torch.tensor([1.0, 0.2])[:, None]
    cams = torch.zeros(1, 1, 4, 4)
    cams[0, 0, 1, 0] = 1.0
    tags = torch.ones(1, 1)
    protos, _ = region_prototypes(feats, seed_masks(cams, tags))
    probs = prototype_probs(cosine_maps(feats, protos), tags)
    assert torch.equal(probs[0, 0] > 0.5, obj)


def test_context_refine_propagates_only_to_similar_cells():
    feats = torch.zeros(1, 2, 1, 4)
    feats[0, 0, 0, :2] = 1       # cells 0, 1 alike
    feats[0, 1, 0, 2:] = 1       # cells 2, 3 alike, orthogonal to 0, 1
    cams = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])
    out = context_refine(cams, feats)
    assert torch.allclose(out[0, 0, 0], torch.tensor([1.0, 1.0, 0.0, 0.0]), atol=1e-4)
    const = torch.full((1, 1, 1, 4), 0.5)
    assert torch.allclose(context_refine(const, torch.rand(1, 2, 1, 4)), torch.ones(1, 1, 1, 4), atol=1e-4)


def test_discrepancy_regions():
    cams = torch.tensor([[[[0.9, 0.9, 0.1, 0.1]]]])
    probs = torch.tensor([[[[0.9, 0.1, 0.9, 0.1]]]])
    fn, fp = discrepancy(cams, probs, torch.ones(1, 1))
    assert fn.flatten().tolist() == [0, 0, 1, 0] and fp.flatten().tolist() == [0, 1, 0, 0]
    fn, fp = discrepancy(cams, probs, torch.zeros(1, 1))
    assert fn.sum() == 0 and fp.sum() == 0


def test_local_prototypes_complete_and_suppress():
    # one class, 5 cells in a row: 0 = seed (prototype), 1 = an FN cell, 2 = a cell like the FN
    # cell elsewhere, 3 = an FP cell, 4 = a cell like the FP cell
    f = torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0], [0.6, 0.8, 0], [0.6, 0, 0.8], [0.6, 0, 0.8]]).T[None, :, None, :]
    sims = cosine_maps(f, torch.tensor([[[0.0, 0, 1.0], [1.0, 0, 0]]]))   # background prototype, class prototype
    fn = torch.tensor([[[[0.0, 1, 0, 0, 0]]]])
    fp = torch.tensor([[[[0.0, 0, 0, 1, 0]]]])
    none = calibrated_scores(sims, f, fn, fp, C3Config(use_fn=False, use_fp=False))
    assert torch.equal(none, sims)
    with_fn = calibrated_scores(sims, f, fn, fp, C3Config(use_fp=False))
    assert with_fn[0, 1, 0, 2] == pytest.approx(1.0) and sims[0, 1, 0, 2] == pytest.approx(0.6)  # completion
    assert torch.equal(with_fn[:, 0], sims[:, 0])
    with_fp = calibrated_scores(sims, f, fn, fp, C3Config(use_fn=False))
    assert with_fp[0, 0, 0, 4] == pytest.approx(1.0) and sims[0, 0, 0, 4] == pytest.approx(0.8)  # suppression
    assert torch.equal(with_fp[:, 1], sims[:, 1])
    # regions below min_region give no local prototype
    small = calibrated_scores(sims, f, fn, fp, C3Config(min_region=2))
    assert torch.equal(small, sims)


def test_calibrate_maps_and_regions_are_consistent():
    model = _model()
    images, tags = torch.rand(4, 3, 32, 32), torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]])
    out = calibrate(model, model.stages(images), tags)
    assert out["cam"].requires_grad and not out["calibrated"].requires_grad
    on_cls, on_proto = out["cam"] > 0.5, out["proto"] > 0.5
    assert torch.equal(out["fn"].bool(), on_proto & ~on_cls) and torch.equal(out["fp"].bool(), on_cls & ~on_proto)
    untagged = (tags == 0)[..., None, None].expand_as(out["calibrated"])
    assert (out["calibrated"][untagged] == 0).all() and (out["fn"][untagged] == 0).all()


def test_consistency_counts_background_and_tagged_channels_only():
    pred, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    target[:, 2] = 1.0               # an untagged channel: ignored
    tags = torch.tensor([[1.0, 0.0]])
    assert consistency_l1(pred, target, tags) == 0
    target[:, 1] = 1.0
    assert consistency_l1(pred, target, tags) == pytest.approx(0.5)
    w = torch.zeros(1, 3, 2, 2)
    w[:, 1] = 0.5
    # weights scale entries; the mean is over the entries that count (background + tag: 8)
    assert consistency_l1(pred, target, tags, w) == pytest.approx(0.5 * 4 / 8)
    assert consistency_l1(pred, target, tags, torch.zeros_like(w)) == 0


def test_entropy_weight():
    w = entropy_weight(torch.tensor([0.0, 0.5, 1.0, 0.11]))
    assert w[0] == pytest.approx(1, abs=1e-4) and w[1] == pytest.approx(0, abs=1e-6)
    # H_2(0.11) = 0.11 log2(1 / 0.11) + 0.89 log2(1 / 0.89) = 0.3503 + 0.1496 = 0.4999: weight 1 - H_2 = 0.5
    assert w[2] == pytest.approx(1, abs=1e-4) and w[3] == pytest.approx(0.5, abs=1e-3)


# --- cosine k-means with optimal transport ----------------------------------------------------

def _clusters(sizes, d=8, spread=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(len(sizes), d, generator=g), dim=1)
    x = torch.cat([c + spread * torch.randn(n, d, generator=g) for c, n in zip(centres, sizes)])
    labels = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    return x.double(), labels, centres.double()


@pytest.mark.parametrize("assignment", ["ot", "nearest"])
def test_cosine_kmeans_recovers_separated_clusters(assignment):
    x, labels, centres = _clusters([30, 30, 30])
    protos, valid, q = cosine_kmeans(x, 3, assignment=assignment)
    assert valid.all() and torch.allclose(q.sum(1), torch.ones(len(x), dtype=x.dtype), atol=1e-6)
    match = (protos @ centres.T).argmax(1)
    assert sorted(match.tolist()) == [0, 1, 2]
    assert (match[q.argmax(1)] == labels).all()


def test_ot_assignment_balances_prototype_mass():
    # one prototype would swallow a dominant cluster; the plan gives each prototype its capacity
    x, _, _ = _clusters([90, 10], spread=0.1)
    _, _, q_ot = cosine_kmeans(x, 2, assignment="ot", epsilon=0.05)
    _, _, q_nn = cosine_kmeans(x, 2, assignment="nearest")
    assert torch.allclose(q_ot.sum(0) / len(x), torch.full((2,), 0.5, dtype=x.dtype), atol=1e-3)
    assert sorted((q_nn.sum(0) / len(x)).tolist())[0] < 0.2
    # similarity-aware capacities: the cluster with the higher score gets more mass
    scores = torch.cat([torch.full((90,), 0.9), torch.full((10,), 0.1)]).double()
    _, _, q_w = cosine_kmeans(x, 2, assignment="ot", scores=scores, capacity_temperature=0.2)
    big = q_w[:90].sum(0).argmax()
    assert q_w.sum(0)[big] / len(x) > 0.8


def test_cosine_kmeans_groups_equal_separate_calls_and_ignore_padding():
    xa, _, _ = _clusters([12, 9], seed=1)
    xb, _, _ = _clusters([5, 6, 4], seed=2)
    x = torch.zeros(2, 21, xa.shape[1], dtype=torch.float64)
    x[0], x[1, :15] = xa, xb
    x[1, 15:] = 7.0                                   # padding garbage
    mask = torch.zeros(2, 21, dtype=torch.bool)
    mask[0], mask[1, :15] = True, True
    k = torch.tensor([2, 3])
    p, v, _ = cosine_kmeans(x, k, mask=mask)
    pa, va, _ = cosine_kmeans(xa, 2)
    pb, vb, _ = cosine_kmeans(xb, 3)
    assert v[0].tolist() == [True, True, False] and v[1].all()
    assert torch.allclose(p[0, :2], pa, atol=1e-6) and torch.allclose(p[1], pb, atol=1e-6)
    few, v_few, _ = cosine_kmeans(xa[:2], 4)          # fewer features than k
    assert v_few.tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match="non-empty"):
        cosine_kmeans(torch.zeros(0, 3), 2)
    with pytest.raises(ValueError, match="assignment"):
        cosine_kmeans(xa, 2, assignment="greedy")


def test_single_prototype_c4_equals_the_prototype_cam():
    model = _model()
    images, tags = torch.rand(3, 3, 32, 32), torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 1, 0]])
    cam_cfg = CAMConfig(scales=(1.0, 0.5), flip=True)
    proto = PrototypeCAM(model, cam_cfg, PrototypeConfig())(images, tags)
    c4 = MultiPrototypeCAM(model, cam_cfg, C4Config(k=1, k_background=1))(images, tags)
    assert torch.allclose(proto, c4, atol=1e-4)


def test_multi_prototype_scores_take_the_best_prototype():
    torch.manual_seed(0)
    f = torch.randn(2, 4, 3, 3)
    protos = torch.randn(2, 2, 3, 4)
    valid = torch.tensor([[[True, True, False], [True, False, False]]] * 2)
    s = multi_prototype_scores(f, protos, valid)
    for c in range(2):
        expected = cosine_maps(f, protos[:, c, valid[0, c]]).amax(1)
        assert torch.allclose(s[:, c], expected, atol=1e-6)
    shared = multi_prototype_scores(f, protos[0], valid[0])
    assert torch.allclose(shared[0], s[0])


def test_image_prototypes_respect_k_background():
    torch.manual_seed(0)
    model = _model()
    stages = model.stages(torch.rand(2, 3, 32, 32))
    tags = torch.tensor([[1.0, 1, 0], [0, 0, 1]])
    cams = torch.rand(2, 3, 4, 4) * tags[..., None, None]
    feats = hierarchical_features(stages, 4)
    seeds = seed_masks(cams, tags)
    protos, valid = image_prototypes(feats, seeds, with_background(cams), C4Config(k=3, k_background=1))
    assert protos.shape == (2, 4, 3, feats.shape[1])
    assert (valid[:, 0].sum(1) == 1).all()                      # background: one prototype
    assert not valid[0, 3].any() and not valid[1, 1:3].any()    # untagged classes: none
    n_cells = seeds.flatten(2).sum(2)
    assert (valid[:, 1:].sum(2) == torch.minimum(n_cells[:, 1:], torch.tensor(3.0))).all()


# --- methods and objectives ------------------------------------------------------------------

@pytest.mark.parametrize("objective", [C3Objective(), C4Objective(),
                                       C4Objective(cfg=C4Config(assignment="nearest", capacities="uniform"))])
def test_objectives_train_through_the_cam(objective):
    model = _model().train()
    batch = {"image": torch.rand(4, 3, 32, 32), "tags": torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]])}
    loss = objective(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and model.head.weight.grad.abs().sum() > 0
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad()
    plain = model.loss(model(batch["image"]), batch["tags"])
    extra = objective(model, batch) - plain            # the consistency term alone
    extra.backward()
    assert extra > 0 and model.head.weight.grad.abs().sum() > 0  # it trains the classifier through its CAM
    cfg_name = "c3" if isinstance(objective, C3Objective) else "c4"
    zero = type(objective)(cfg=getattr(objective, "cfg").replace(loss_weight=0.0))
    assert cfg_name in objective.config() and torch.allclose(zero(model, batch), plain)
    assert "output" not in objective.config()[cfg_name]  # read-out settings do not retrain
    assert objective.identity() == {"name": cfg_name, "version": objective.version, "config": objective.config()}


@pytest.mark.parametrize("method", [PrototypeCAM, CalibratedCAM, MultiPrototypeCAM])
def test_methods_have_the_uniform_signature(method):
    model = _model().train()
    cfg = {PrototypeCAM: PrototypeConfig(), CalibratedCAM: C3Config(), MultiPrototypeCAM: C4Config()}[method]
    m = method(model, CAMConfig(scales=(1.0, 0.5), flip=True), cfg)
    images, tags = torch.rand(2, 3, 32, 40), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    out = m(images, tags)
    assert out.shape == (2, 3, 32, 40) and out.min() >= 0 and out.max() <= 1
    assert (out[0, 1] == 0).all() and (out[1, 0] == 0).all() and (out[1, 2] == 0).all()
    assert model.training  # the caller's mode is restored
    with pytest.raises(ValueError, match=r"needs \['tags'\] in the batch"):
        m(images, None)
    with pytest.raises(ValueError, match=r"needs \['tags'\] in the batch.*got keys \['image'\]"):
        m({"image": images})
    assert m.cache_key is None  # not a cached model


def test_dataset_scope_needs_a_bank():
    from s2d_core.data import get_dataset

    model = _model()
    with pytest.raises(ValueError, match="bank is required"):
        MultiPrototypeCAM(model, CAMConfig(), C4Config(scope="dataset"))
    ds = get_dataset("synthetic", "val", "tiny")
    model = Classifier(ds.num_classes - 1).eval()
    bank = prototype_bank(model, ds, PrototypeConfig(), C4Config(k=2))
    assert bank[0].shape[:2] == (ds.num_classes, 2) and bank[1][:, 0].all()
    out = MultiPrototypeCAM(model, CAMConfig(scales=(1.0,)), C4Config(k=2, scope="dataset"), bank=bank)(
        ds[0]["image"][None], ds[0]["tags"][None])
    assert out.shape == (1, ds.num_classes - 1, *ds[0]["image"].shape[-2:])
    with pytest.raises(ValueError, match="only used with scope=dataset"):
        MultiPrototypeCAM(model, CAMConfig(), C4Config(), bank=bank)


@pytest.mark.parametrize("kwargs, cls, match", [
    (dict(levels=0), PrototypeConfig, "levels"),
    (dict(temperature=0), PrototypeConfig, "temperature"),
    (dict(discrepancy_threshold=1.0), C3Config, "discrepancy_threshold"),
    (dict(output="both"), C3Config, "output"),
    (dict(k=0), C4Config, "k must be"),
    (dict(scope="batch"), C4Config, "scope"),
    (dict(assignment="greedy"), C4Config, "assignment"),
    (dict(epsilon="0.05"), C4Config, "epsilon must be a number"),
])
def test_densifier_configs_are_validated(kwargs, cls, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_registered_methods_train_cache_and_run(tmp_path, monkeypatch):
    from registry_check import run_registered

    assert {"cam", "prototype_cam", "mutual_calibration", "multi_prototype_ot"} <= set(list_methods())
    # thesis labels and paper acronyms are aliases of the descriptive names
    assert get_method("c3") is get_method("cpmc") is get_method("mutual_calibration")
    assert get_method("proto").name == "prototype_cam" and get_method("C4").name == "multi_prototype_ot"
    keys, train, cfg = run_registered(("proto", "c3", "c4"), tmp_path, monkeypatch)
    for name, canonical in (("proto", "prototype_cam"), ("c3", "mutual_calibration"), ("c4", "multi_prototype_ot")):
        method, info = build_method(name, train, cfg, seed=0, progress=False)  # from the cache now
        assert info["classifier"]["from_cache"] and method.cache_key["method"] == canonical
    # proto reads the baseline classifier; c3 and c4 train their own, and a second call loads them
    assert keys["proto"] == build_method("cam", train, cfg, progress=False)[1]["classifier"]["key"]
    assert len({keys["proto"], keys["c3"], keys["c4"]}) == 3
    other = cfg.replace(c4=cfg.c4.replace(loss_weight=0.5))
    assert build_method("c4", train, other, seed=0, progress=False)[1]["classifier"]["key"] != keys["c4"]
    readout = cfg.replace(c4=cfg.c4.replace(output="mean"))  # a read-out setting reuses the network
    assert build_method("c4", train, readout, seed=0, progress=False)[1]["classifier"]["key"] == keys["c4"]
    assert isinstance(PipelineConfig.from_dict(cfg.to_dict()).c4, C4Config)
    with pytest.raises(ValueError, match="unknown method 'c9'.*mutual_calibration \\(c3, cpmc\\)"):
        build_method("c9", train, cfg)
