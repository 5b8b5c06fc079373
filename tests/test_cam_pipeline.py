"""The CAM pipeline: config, models, CAM (vs pytorch-grad-cam), pseudo masks, CRF, training, cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s2d_core.cache import CacheWarning
from s2d_core.cam import CAM, cam_from_features, max_normalise, restrict_to_tags
from s2d_core.config import CAMConfig, CRFConfig, ModelConfig, PipelineConfig, PseudoMaskConfig, TrainConfig
from s2d_core.devices import resolve_device
from s2d_core.models import Classifier, PretrainedWeightsError, Segmenter, create_backbone, last_stage
from s2d_core.pipeline import get_cams, get_classifier, get_segmenter, state_dict_sha256
from s2d_core.presets import PIPELINES, get_pipeline
from s2d_core.pseudo import crf_labels, crf_probs, label_coverage, make_pseudo_masks, pseudo_mask, seeds_from_cam
from s2d_core.train import WithMasks, fit, predict_masks

SINGLE = CAMConfig(scales=(1.0,), flip=False)


# --- configuration ---------------------------------------------------------------------------

def test_pipeline_config_round_trip():
    import json

    import yaml

    for name, cfg in PIPELINES.items():
        assert PipelineConfig.from_dict(cfg.to_dict()) == cfg, name
        assert PipelineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg, name
        assert PipelineConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg, name


@pytest.mark.parametrize("kwargs, match", [
    (dict(output_stride=4), "output_stride"),
    (dict(aspp_rates=()), "aspp_rates"),
    (dict(pretrained_file="w.pth"), "init=.imagenet."),
    (dict(init="random"), "init"),
])
def test_model_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_other_configs_validate():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="scales"):
        CAMConfig(scales=())
    with pytest.raises(ValueError, match="bands"):
        PseudoMaskConfig(bands=(0.5, 0.2))
    with pytest.raises(ValueError, match="gt_prob"):
        CRFConfig(gt_prob=1.0)
    with pytest.raises(ValueError, match="unknown field"):
        PipelineConfig.from_dict({"classifier": {"backbone": "resnet18", "depth": 3}})
    with pytest.raises(ValueError, match="unknown preset"):
        get_pipeline("laptop")


# --- models ----------------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [8, 16])
def test_classifier_shapes_and_gap_commutes(stride):
    torch.manual_seed(0)
    model = Classifier(5, ModelConfig(output_stride=stride)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        f = model.features(x)
        assert f.shape[-2:] == (64 // stride, 64 // stride)
        # GAP and the linear head commute: score = mean of the class map
        torch.testing.assert_close(model(x), model.class_maps(f).mean((2, 3)), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, 64, 64))


def test_unknown_backbone_is_named():
    with pytest.raises(ValueError, match="unknown timm backbone 'resnet_banana'"):
        create_backbone(ModelConfig(backbone="resnet_banana"))


def test_pretrained_missing_file_names_it(tmp_path):
    missing = tmp_path / "resnet10t.safetensors"
    with pytest.raises(PretrainedWeightsError, match="resnet10t.safetensors.*does not exist.*pretrained_file"):
        create_backbone(ModelConfig(init="imagenet", pretrained_file=str(missing)))


def test_pretrained_offline_explains_how(monkeypatch):
    import timm

    def offline(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(PretrainedWeightsError, match="timm/resnet10t.*pretrained_file"):
        create_backbone(ModelConfig(init="imagenet"))


def test_pretrained_from_local_file(tmp_path):
    import timm

    torch.manual_seed(1)
    ref = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "weights.pth"
    torch.save(ref.state_dict(), path)
    net = create_backbone(ModelConfig(init="imagenet", pretrained_file=str(path)))
    torch.testing.assert_close(net.conv1[0].weight, ref.conv1[0].weight)
    torch.testing.assert_close(net.layer4[0].conv1.weight, ref.layer4[0].conv1.weight)


def test_segmenter_output_and_ignore():
    torch.manual_seed(0)
    seg = Segmenter(4)
    x = torch.rand(2, 3, 64, 64)
    logits = seg(x)
    assert logits.shape == (2, 4, 64, 64)
    labels = torch.full((2, 64, 64), 255, dtype=torch.long)
    labels[:, :8, :8] = 1
    expected = torch.nn.functional.cross_entropy(logits[:, :, :8, :8], labels[:, :8, :8])
    torch.testing.assert_close(seg.loss(logits, labels), expected)
    with pytest.raises(ValueError, match="labels must have shape"):
        seg.loss(logits, labels[0])


# --- CAM -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_ish():
    """A classifier whose head is not zero-mean, so CAMs have structure."""
    torch.manual_seed(3)
    model = Classifier(4, ModelConfig()).eval()
    with torch.no_grad():  # mixed-sign weights: maps with both positive and zeroed parts
        model.head.weight.normal_()
    return model


def _minmax(a):
    return (a - a.min()) / (a.max() - a.min())


def test_cam_matches_grad_cam(trained_ish):
    """For a GAP + linear classifier, Grad-CAM at the last stage is the CAM divided by h*w
    (the gradient of s_c w.r.t. F is W_c / hw); after grad-cam's min-max scaling both agree."""
    cv2 = pytest.importorskip("cv2")
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = trained_ish
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        raw = cam_from_features(model.features(x), model.head.weight)
        ours = max_normalise(raw, eps=0)
    compared = with_zeros = 0
    for c in range(model.num_classes):
        with GradCAM(model=model, target_layers=[last_stage(model.backbone)]) as gc:
            ref = gc(input_tensor=x, targets=[ClassifierOutputTarget(c)] * len(x))
        for b in range(len(x)):
            r = raw[b, c].numpy()
            if r.max() == 0:  # both undefined (all zero)
                continue
            # grad-cam min-max scales the low-resolution map, resizes it with cv2, and min-max
            # scales the result once more (when it averages over target layers)
            up = cv2.resize((r - r.min()) / (r.max() - r.min()), (64, 64))
            np.testing.assert_allclose(_minmax(up), ref[b], atol=1e-4)
            compared += 1
            if r.min() == 0:  # ReLU left zeros: grad-cam's first scaling is our max-normalisation
                np.testing.assert_allclose(_minmax(cv2.resize(ours[b, c].numpy(), (64, 64))), ref[b], atol=1e-4)
                with_zeros += 1
    assert compared >= 8 and with_zeros >= 3


def test_cam_call_normalises_restricts_and_flips(trained_ish):
    x = torch.rand(2, 3, 64, 64)
    tags = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=torch.float32)
    cams = CAM(trained_ish, CAMConfig(scales=(1.0, 0.5, 1.5), flip=True))(x, tags)
    assert cams.shape == (2, 4, 64, 64)
    assert cams.min() >= 0 and cams.max() <= 1
    assert (cams[0, [1, 3]] == 0).all() and (cams[1, [0, 2, 3]] == 0).all()
    np.testing.assert_allclose(cams[0, 0].max(), 1.0, atol=1e-3)
    # flip averaging makes the CAM equivariant to a horizontal flip of the input
    flipped = CAM(trained_ish, CAMConfig(scales=(1.0, 0.5, 1.5), flip=True))(x.flip(-1), tags)
    torch.testing.assert_close(flipped, cams.flip(-1), rtol=1e-4, atol=1e-5)
    # scale 1 without flip is the upsampled single-scale map
    single = CAM(trained_ish, SINGLE)(x)
    with torch.no_grad():
        raw = cam_from_features(trained_ish.features(x), trained_ish.head.weight)
    up = torch.nn.functional.interpolate(raw, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(single, max_normalise(up), rtol=1e-4, atol=1e-5)


def test_map_method_restores_the_callers_mode_and_takes_a_batch(trained_ish):
    """Inference runs in eval mode without gradients and gives the model back as it was; a batch
    dict and (images, tags) are the same call."""
    x = torch.rand(2, 3, 64, 64)
    tags = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=torch.float32)
    method = CAM(trained_ish, SINGLE)
    trained_ish.train()
    try:
        a = method(x, tags)
        assert trained_ish.training  # the caller's mode is restored
        assert not a.requires_grad
        b = method({"image": x, "tags": tags, "points": [None, None]})
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        trained_ish.eval()
        torch.testing.assert_close(method(x, tags), a, rtol=0, atol=0)  # eval mode inside, either way
        with pytest.raises(RuntimeError, match="boom"):
            with method.evaluating():
                assert not trained_ish.training
                raise RuntimeError("boom")
        assert not trained_ish.training  # restored after an exception too (it was in eval mode)
    finally:
        trained_ish.eval()


def test_restrict_to_tags_checks_shape():
    with pytest.raises(ValueError, match=r"tags must have shape \(2, 3\)"):
        restrict_to_tags(torch.rand(2, 3, 4, 4), torch.ones(2, 4))
    with pytest.raises(ValueError, match="must agree on D"):
        cam_from_features(torch.rand(1, 8, 4, 4), torch.rand(3, 7))


# --- pseudo masks and CRF ----------------------------------------------------------------------

def test_pseudo_mask_threshold_and_bands():
    rng = np.random.default_rng(0)
    cam = rng.random((3, 16, 16)).astype(np.float32)
    tags = np.array([1, 0, 1])
    np.testing.assert_array_equal(pseudo_mask(cam, tags, 0.4), seeds_from_cam(cam, tags, 0.4))
    m = pseudo_mask(cam, tags, 0.4, bands=(0.2, 0.6))
    best = np.where(tags[:, None, None] > 0, cam, -1).max(0)
    assert (m[best < 0.2] == 0).all()
    assert (m[best >= 0.6] > 0).all() and set(np.unique(m[best >= 0.6])) <= {1, 3}
    assert (m[(best >= 0.2) & (best < 0.6)] == 255).all()
    assert 0 < label_coverage([m]) < 1


def _two_tone():
    img = np.zeros((3, 32, 32), np.float32)
    img[:, :, 16:] = 1.0  # left half black, right half white
    labels = np.zeros((32, 32), np.int64)
    labels[:, 12:] = 2  # the label edge is 4 px left of the colour edge
    return img, labels


def test_crf_snaps_labels_to_colour_edges():
    img, labels = _two_tone()
    out = crf_labels(img, labels, CRFConfig(sxy_bilateral=10))
    assert set(np.unique(out)) <= {0, 2}
    assert (out[:, :15] == 0).mean() > 0.95 and (out[:, 17:] == 2).mean() > 0.95
    np.testing.assert_array_equal(crf_labels(img, np.ones((32, 32), np.int64)), np.ones((32, 32)))
    with pytest.raises(ValueError, match="labels shape"):
        crf_labels(img, labels[:8])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        crf_labels(img * 3, labels)


def test_crf_probs_is_a_distribution():
    img, labels = _two_tone()
    p = np.stack([labels == 0, labels == 2]).astype(np.float64) * 0.6 + 0.2
    q = crf_probs(img, p)
    assert q.shape == p.shape
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-4)


def test_make_pseudo_masks_with_crf_needs_images():
    cams = np.random.default_rng(0).random((2, 3, 16, 16))
    tags = np.ones((2, 3))
    with pytest.raises(ValueError, match="needs images"):
        make_pseudo_masks(cams, tags, 0.3, PseudoMaskConfig(crf=True))
    out = make_pseudo_masks(cams, tags, 0.3, progress=False)
    assert out.shape == (2, 16, 16) and out.dtype == np.uint8


# --- training and the cache ----------------------------------------------------------------------

@pytest.fixture()
def tiny_train(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))
    from s2d_core.data import get_dataset

    return get_dataset("synthetic", "train", "tiny", progress=False)


TINY = TrainConfig(epochs=2, batch_size=8)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_fit_is_deterministic_and_resumes(tiny_train, tmp_path):
    calls = {"n": 0}

    def run(ckpt=None, fail_at=None):
        torch.manual_seed(0)
        model = Classifier(6)
        calls["n"] = 0

        def loss(m, b):
            calls["n"] += 1
            if fail_at is not None and calls["n"] == fail_at:
                raise KeyboardInterrupt
            return m.loss(m(b["image"]), b["tags"])

        fit(model, tiny_train, loss, TINY, seed=0, progress=False, checkpoint=ckpt)
        return model

    a, b = run(), run()
    torch.testing.assert_close(_weights(a), _weights(b), rtol=0, atol=0)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run(ckpt, fail_at=6)  # 4 steps per epoch: interrupted during epoch 2
    assert ckpt.exists()
    resumed = run(ckpt)
    assert calls["n"] == 4  # only the second epoch ran again
    torch.testing.assert_close(_weights(resumed), _weights(a), rtol=0, atol=0)


def test_fit_rejects_small_datasets(tiny_train):
    with pytest.raises(ValueError, match="fewer than batch_size=64"):
        fit(Classifier(6), tiny_train, lambda m, b: m(b["image"]).sum(), TrainConfig(batch_size=64), progress=False)


def test_artifacts_are_cached_by_config(tiny_train):
    m1, i1 = get_classifier(tiny_train, train_cfg=TINY, seed=0, progress=False)
    m2, i2 = get_classifier(tiny_train, train_cfg=TINY, seed=0, progress=False)
    assert not i1["from_cache"] and i2["from_cache"]
    torch.testing.assert_close(_weights(m1), _weights(m2), rtol=0, atol=0)
    m3, i3 = get_classifier(tiny_train, train_cfg=TINY, seed=1, progress=False)
    assert not i3["from_cache"] and not torch.equal(_weights(m1), _weights(m3))
    cams = get_cams(CAM(m1, SINGLE, model_key=i1["key"]), tiny_train, progress=False)
    assert cams.shape == (len(tiny_train), 6, 64, 64) and cams.dtype == np.float16
    masks = make_pseudo_masks(cams, [tiny_train[i]["tags"] for i in range(len(tiny_train))], 0.3, progress=False)
    seg, si = get_segmenter(tiny_train, masks, train_cfg=TINY, progress=False)
    _, si2 = get_segmenter(tiny_train, masks, train_cfg=TINY, progress=False)
    _, gt = get_segmenter(tiny_train, None, train_cfg=TINY, progress=False)
    assert not si["from_cache"] and si2["from_cache"] and not gt["from_cache"]
    pred = predict_masks(seg, tiny_train, progress=False)
    assert pred.shape == (len(tiny_train), 64, 64) and pred.max() < 7


def test_cams_are_cached_per_configuration(tiny_train, monkeypatch):
    import s2d_core.pipeline.artifacts as artifacts

    torch.manual_seed(0)
    model = Classifier(6).eval()
    with torch.no_grad():
        model.head.weight.normal_()  # CAMs with structure, without training
    cams = get_cams(CAM(model, SINGLE, model_key="test-model"), tiny_train, progress=False)
    assert cams.max() > 0.9
    with monkeypatch.context() as m:
        m.setattr(artifacts, "compute_cams", None)  # a cache hit must not compute
        np.testing.assert_array_equal(get_cams(CAM(model, SINGLE, model_key="test-model"), tiny_train,
                                               progress=False), cams)
    other_cfg = CAMConfig(scales=(1.0, 0.5), flip=True)
    other = get_cams(CAM(model, other_cfg, model_key="test-model"), tiny_train, progress=False)
    assert not np.array_equal(other, cams)  # another CAM configuration, another entry
    np.testing.assert_array_equal(other, CAM(model, other_cfg)(
        torch.stack([tiny_train[i]["image"] for i in range(len(tiny_train))]),
        torch.stack([tiny_train[i]["tags"] for i in range(len(tiny_train))])).numpy().astype(np.float16))


def test_with_masks_checks_lengths_and_shapes(tiny_train):
    with pytest.raises(ValueError, match="3 masks for a data set of 32"):
        WithMasks(tiny_train, np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="mask 0 has shape"):
        WithMasks(tiny_train, np.zeros((32, 8, 8), np.uint8))[0]


@pytest.mark.parametrize("bad", ["gpu0", "cuda:7" if torch.cuda.is_available() else "cuda"])
def test_resolve_device_errors(bad):
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)
    assert resolve_device("cpu").type == "cpu"


def test_pretrained_models_normalise_their_input(tmp_path):
    import timm

    path = tmp_path / "w.pth"
    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), path)
    model = Classifier(3, ModelConfig(init="imagenet", pretrained_file=str(path)))
    mean = timm.models.get_pretrained_cfg("resnet10t").mean
    torch.testing.assert_close(model.normalise.mean.flatten(), torch.tensor(mean))
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(Classifier(3).normalise(x), x, rtol=0, atol=0)  # from scratch: identity


def test_resume_refuses_a_checkpoint_of_another_run(tiny_train, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    loss = lambda m, b: m.loss(m(b["image"]), b["tags"])  # noqa: E731
    fit(Classifier(6), tiny_train, loss, TrainConfig(epochs=1, batch_size=8), progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match="another configuration or seed"):
        fit(Classifier(6), tiny_train, loss, TrainConfig(epochs=2, batch_size=8), progress=False, checkpoint=ckpt)


def test_real_data_needs_a_crop_size(tmp_path):
    from voc_fixture import _build

    from s2d_core.data import get_dataset

    voc = get_dataset("voc", "train_aug", root=str(_build(tmp_path).voc))
    with pytest.raises(ValueError, match="crop_size"):
        fit(Classifier(20), voc, lambda m, b: m(b["image"]).sum(), TrainConfig(batch_size=2), progress=False)


def test_a_corrupt_cached_model_is_named_and_rebuilt(tiny_train):
    """A truncated file in the cache warns with its path and is trained again, to the same network."""
    from s2d_core.cache import cache_dir

    m1, i1 = get_classifier(tiny_train, train_cfg=TINY, seed=0, progress=False)
    (path,) = [p for p in (cache_dir() / "models").glob(f"*{i1['key']}.pt")]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(CacheWarning, match=rf"{path.name}.*could not be read"):
        m2, i2 = get_classifier(tiny_train, train_cfg=TINY, seed=0, progress=False)
    assert not i2["from_cache"] and path.is_file() and path.with_name(path.name + ".corrupt").is_file()
    assert state_dict_sha256(m2) == state_dict_sha256(m1)  # rebuilt from the seed, not from half a file


def test_a_corrupt_cached_split_is_named_and_regenerated(tmp_path, monkeypatch):
    from s2d_core.data import get_dataset

    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path / "cache"))
    first = get_dataset("synthetic", "val", "tiny", progress=False)
    (path,) = (tmp_path / "cache" / "synthetic").glob("tiny-val-*.npz")
    path.write_bytes(b"not a zip file")
    with pytest.warns(CacheWarning, match=rf"synthetic split tiny/val.*{path.name}"):
        again = get_dataset("synthetic", "val", "tiny", progress=False)
    torch.testing.assert_close(again[3]["image"], first[3]["image"], rtol=0, atol=0)
    np.testing.assert_array_equal(again[3]["mask"], first[3]["mask"])


def test_state_dict_digest_sees_one_changed_bit():
    torch.manual_seed(0)
    model = Classifier(3)
    digest = state_dict_sha256(model)
    assert digest == state_dict_sha256(model.state_dict())
    with torch.no_grad():
        w = model.head.weight
        w.view(-1)[0] = torch.nextafter(w.view(-1)[0], torch.tensor(1e9))
    assert state_dict_sha256(model) != digest
