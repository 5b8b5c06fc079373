"""ViT track: the classifier with one class token per class, class-token attention, C5 proxies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s2d_core.cam import CAM
from s2d_core.cam.attention import ClassTokenAttention, class_attention_maps, rollout
from s2d_core.config import AttentionConfig, C5Config, CAMConfig, PipelineConfig, ViTConfig
from s2d_core.pipeline import build_method, get_method
from s2d_core.densify.proxies import (C5Objective, ProxyCAM, background_proxy, proxy_contrastive_loss, proxy_maps,
                                      proxy_masses)
from s2d_core.models.vit import ViTClassifier, block_attention, tokens_to_grid

SMALL = ViTConfig(embed_dim=32, depth=2, num_heads=2)


def _vit(seed: int = 0, c: int = 3) -> ViTClassifier:
    torch.manual_seed(seed)
    return ViTClassifier(c, SMALL).eval()


# --- the classifier ------------------------------------------------------------------------

def test_tokens_have_class_tokens_first_and_a_checked_grid():
    m = _vit()
    out = m.tokens(torch.rand(2, 3, 64, 48), attention_layers=2)
    assert out["class"].shape == (2, 3, 32) and out["patch"].shape == (2, 48, 32) and out["grid"] == (8, 6)
    assert len(out["attention"]) == 2 and out["attention"][0].shape == (2, 51, 51)
    with pytest.raises(ValueError, match=r"attention_layers must be in \[0, 2\]"):
        m.tokens(torch.rand(1, 3, 64, 64), attention_layers=3)
    assert m.features(torch.rand(1, 3, 64, 48)).shape == (1, 32, 8, 6)
    # sizes that are not patch multiples are resized to the nearest ones by features(), refused by tokens()
    assert m.features(torch.rand(1, 3, 30, 50)).shape == (1, 32, 4, 6)
    with pytest.raises(ValueError, match="not a multiple of the patch size 8"):
        m.tokens(torch.rand(1, 3, 30, 50))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        m.tokens(torch.rand(3, 64, 64))


def test_tokens_to_grid_lays_tokens_row_major_and_names_a_mismatch():
    tokens = torch.arange(2 * 6 * 3, dtype=torch.float32).view(2, 6, 3)
    g = tokens_to_grid(tokens, (2, 3))
    assert g.shape == (2, 3, 2, 3)
    assert torch.equal(g[1, :, 1, 0], tokens[1, 3])  # token 3 = row 1, column 0
    assert tokens_to_grid(torch.zeros(1, 16, 4)).shape == (1, 4, 4, 4)
    with pytest.raises(ValueError, match="do not form a square grid"):
        tokens_to_grid(torch.zeros(1, 17, 4))
    with pytest.raises(ValueError, match=r"cannot be laid on a 4 x 4 grid"):
        tokens_to_grid(torch.zeros(1, 17, 4), (4, 4))


def test_block_attention_equals_timm_block_output():
    """The recomputed weights reproduce the block's (fused) attention output."""
    m = _vit()
    blk = m.vit.blocks[0]
    x = torch.randn(2, 11, 32)
    w = block_attention(blk, x)  # (B, heads, T, T)
    a = blk.attn
    v = a.qkv(blk.norm1(x)).reshape(2, 11, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)[2]
    mine = a.proj((w @ v).transpose(1, 2).reshape(2, 11, 32))
    assert torch.allclose(mine, a(blk.norm1(x)), atol=1e-5)


def test_patch_cam_is_the_cnn_cam_of_the_patch_grid():
    """CAM reads a ViTClassifier like a CNN classifier: ReLU(W^T P); GAP of the map = patch score."""
    m = _vit()
    x = torch.rand(2, 3, 64, 64)
    out = m.tokens(x)
    grid = tokens_to_grid(out["patch"], out["grid"])
    raw = CAM(m, CAMConfig(scales=(1.0,), flip=False)).raw(x)  # bilinear upsampling of ReLU(W^T P)
    ref = F.interpolate(F.relu(m.class_maps(grid)), size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(raw, ref, atol=1e-5)
    _, s_patch = m.scores(out)  # the default pooling is max (ToCo): the score is the map's peak
    assert torch.allclose(m.class_maps(grid).amax((2, 3)), s_patch, atol=1e-5)
    torch.manual_seed(0)
    gap = ViTClassifier(3, SMALL.replace(pooling="avg")).eval()
    out = gap.tokens(x)
    assert torch.allclose(gap.class_maps(tokens_to_grid(out["patch"], out["grid"])).mean((2, 3)), gap.scores(out)[1],
                          atol=1e-5)


def test_scores_and_forward():
    m = _vit()
    x = torch.rand(2, 3, 64, 64)
    out = m.tokens(x)
    s_cls, s_patch = m.scores(out)
    assert torch.allclose(s_cls[1, 2], out["class"][1, 2] @ m.token_head[2], atol=1e-6)
    assert torch.allclose(m(x), (s_cls + s_patch) / 2, atol=1e-6)
    tags = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    assert torch.allclose(m.tag_loss(out, tags), m.loss(s_cls, tags) + m.loss(s_patch, tags))


def test_non_plain_vits_are_refused():
    from s2d_core.models.vit import create_vit

    with pytest.raises(ValueError, match="not a plain ViT"):
        create_vit(ViTConfig(backbone="vit_small_patch16_18x2_224", patch_size=8, embed_dim=32, depth=2, num_heads=2))


def test_vit_config_is_validated():
    with pytest.raises(ValueError, match="timm ViT"):
        ViTConfig(backbone="resnet18")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        ViTConfig(img_size=60, patch_size=8)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        ViTConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="fix the architecture"):
        ViTConfig(init="imagenet")
    with pytest.raises(ValueError, match="pretrained_file is given"):
        ViTConfig(pretrained_file="x.safetensors")


def test_pretrained_vit_without_weights_says_which_file(tmp_path):
    from s2d_core.models.backbones import PretrainedWeightsError

    cfg = ViTConfig(backbone="vit_small_patch16_224", img_size=64, patch_size=None, embed_dim=None, depth=None,
                    num_heads=None, init="imagenet", pretrained_file=str(tmp_path / "missing.safetensors"))
    with pytest.raises(PretrainedWeightsError, match="missing.safetensors"):
        ViTClassifier(3, cfg)


def test_pretrained_vit_offline_explains_how(monkeypatch):
    import timm

    from s2d_core.models.backbones import PretrainedWeightsError
    from s2d_core.presets import get_pipeline

    def offline(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(PretrainedWeightsError, match="vit_base_patch16_224.*pretrained_file"):
        ViTClassifier(20, get_pipeline("voc").vit)


def test_gpu_preset_vit_is_vit_small_at_256():
    from s2d_core.presets import get_pipeline

    m = ViTClassifier(6, get_pipeline("gpu").vit).eval()
    assert m.vit.embed_dim == 384 and len(m.vit.blocks) == 12 and m.patch_size == 16
    with torch.no_grad():
        assert m.features(torch.rand(1, 3, 256, 256)).shape == (1, 384, 16, 16)


def test_pretrained_vit_from_a_local_file_initialises_every_class_token(tmp_path):
    """Offline pretrained path: weights of the published architecture from a local file; the
    position embedding is resampled to the book's image size and the one class token seeds all."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    ref = timm.create_model("vit_tiny_patch16_224", num_classes=0)
    with torch.no_grad():  # timm initialises the class token near 0: make it recognisable
        ref.cls_token.copy_(torch.linspace(-3, 3, 192).view(1, 1, 192))
    path = tmp_path / "vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    cfg = ViTConfig(img_size=64, patch_size=None, embed_dim=None, depth=None, num_heads=None,
                    init="imagenet", pretrained_file=str(path))
    m = ViTClassifier(2, cfg)
    assert torch.equal(m.vit.blocks[3].attn.qkv.weight, ref.blocks[3].attn.qkv.weight)
    assert m.vit.pos_embed.shape == (1, 1 + 16, 192)  # 14 x 14 grid resampled to 4 x 4
    assert (m.class_tokens - ref.cls_token).abs().max() < 0.2  # the pretrained token plus small noise
    assert (m.class_tokens.abs().mean(-1) > 1).all()
    assert not torch.equal(m.class_tokens[0, 0], m.class_tokens[0, 1])
    assert not torch.equal(m.normalise.mean, torch.zeros_like(m.normalise.mean))  # the weights' statistics
    assert m.features(torch.rand(1, 3, 64, 64)).shape == (1, 192, 4, 4)


# --- class-token attention -----------------------------------------------------------------

def test_rollout_by_hand():
    a1 = torch.tensor([[[0.5, 0.5], [0.0, 1.0]]])
    a2 = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    r1 = 0.5 * a1 + 0.5 * torch.eye(2)
    r2 = 0.5 * a2 + 0.5 * torch.eye(2)
    assert torch.allclose(rollout([a1, a2]), r2 @ r1)
    assert torch.allclose(rollout([a1, a2]).sum(-1), torch.ones(1, 2))


def test_class_attention_maps_read_the_class_rows():
    m = _vit()
    x = torch.rand(2, 3, 32, 64)
    maps = class_attention_maps(m, x, AttentionConfig(layers=1))
    out = m.tokens(x, attention_layers=1)
    att = out["attention"][-1]
    assert maps.shape == (2, 3, 4, 8)
    assert torch.allclose(maps[1, 2, 1, 5], att[1, 2, 3 + 1 * 8 + 5])
    roll = class_attention_maps(m, x, AttentionConfig(rollout=True))
    assert roll.shape == (2, 3, 4, 8) and (roll >= 0).all()


def test_attention_method_has_the_uniform_signature():
    m = _vit()
    tags = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    out = ClassTokenAttention(m, CAMConfig(scales=(1.0, 0.5), flip=True))(torch.rand(2, 3, 64, 64), tags)
    assert out.shape == (2, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    assert out[0, 1].abs().sum() == 0 and out[1, 0].abs().sum() == 0
    assert torch.allclose(out[0, 0].max(), torch.tensor(1.0), atol=1e-3)
    with pytest.raises(TypeError, match="ViTClassifier"):
        ClassTokenAttention(torch.nn.Linear(2, 2))


# --- C5 ------------------------------------------------------------------------------------

def test_background_proxy_and_masses():
    tokens = F.normalize(torch.tensor([[[1.0, 0], [0, 1], [0, 1], [1, 0]]]), dim=-1)
    cam = torch.tensor([[0.9, 0.0, 0.1, 0.8]])
    bg = background_proxy(tokens, cam, fraction=0.5)
    assert torch.allclose(bg, torch.tensor([[0.0, 1.0]]))
    tags = torch.tensor([[1.0, 0.0]])
    cams = torch.tensor([[[0.9, 0.0, 0.1, 0.8], [0.0, 0.0, 0.0, 0.0]]])
    m = proxy_masses(cams, tags, "cam")
    assert m.shape == (1, 3) and m[0, 2] == 0 and torch.allclose(m.sum(1), torch.ones(1))
    assert torch.allclose(m[0, :2] / m[0, :2].sum(), torch.tensor([2.2 + 1e-3, 1.8 + 1e-3]) / (4 + 2e-3), atol=1e-6)
    assert torch.allclose(proxy_masses(cams, tags, "uniform"), torch.tensor([[0.5, 0.5, 0.0]]))


def _two_part_object(n_side: int = 8):
    """Patch tokens of a hand-made image: an emblem (2 tokens) like the class token, the rest of the
    object (10 tokens) in another direction, background (the remaining tokens) in a third."""
    d = 3
    e = torch.eye(d)
    n = n_side * n_side
    tokens = e[2].repeat(n, 1).clone()  # background
    body = list(range(10, 20))
    emblem = [20, 21]
    tokens[body] = e[1]
    tokens[emblem] = F.normalize(e[0] + 0.1 * e[1], dim=0)
    return tokens[None], body, emblem


def test_ot_proxy_completes_the_object_where_the_class_token_does_not():
    """The token gap by hand: the class token matches the emblem only; the OT proxy takes the
    object tokens the plan assigns to the class and covers the whole object."""
    tokens, body, emblem = _two_part_object()

    class Stub(ViTClassifier):
        def __init__(self):
            torch.nn.Module.__init__(self)
            self.num_classes = 1
            self.head = torch.nn.Conv2d(3, 1, 1, bias=False)
            with torch.no_grad():  # the CAM fires on emblem and body, weakly on the body
                self.head.weight.copy_(torch.tensor([1.0, 0.4, 0.0]).view(1, 3, 1, 1))

    model = Stub()
    out = {"class": torch.tensor([[[1.0, 0.0, 0.0]]]), "patch": tokens, "grid": (8, 8)}
    tags = torch.tensor([[1.0]])
    st = proxy_maps(model, out, tags, C5Config(mix=0.5))
    obj = body + emblem
    bg = [i for i in range(64) if i not in obj]
    class_only = st["class_cam"][0, 0]
    assert class_only[emblem].min() > 0.9 and class_only[body].max() < 0.15   # the gap
    maps = st["maps"][0, 0].flatten()
    assert maps[body].min() > 0.5 and maps[bg].max() < 0.05                   # completed, background off
    plan = st["plan"][0]
    assert torch.allclose(plan.sum(0), torch.full((64,), 1 / 64, dtype=plan.dtype), atol=1e-4)
    assert plan[1, obj].sum() > 0.9 * plan[1].sum()                           # the class row holds the object
    # the class's mass is its CAM mass (about 6 tokens' worth): the emblem is certain, the body shared
    assert st["members"][0, 1, emblem].all() and not st["members"][0, 1, bg].any()
    assert st["members"][0, 0, bg].all()
    # without OT the top-k tokens most similar to the class token are the emblem (and body)
    st_k = proxy_maps(model, out, tags, C5Config(mix=0.5, assignment="topk", topk=2))
    assert st_k["maps"][0, 0].flatten()[body].max() < maps[body].min()
    # mix = 1 is the class token alone
    st_1 = proxy_maps(model, out, tags, C5Config(mix=1.0))
    assert torch.allclose(st_1["similarity"][0, 0].clamp_min(0), class_only, atol=1e-6)


def test_contrastive_loss_by_hand():
    sim = torch.tensor([[[0.9, 0.1, 0.5, 0.0]]])  # one class, 4 tokens
    members = torch.tensor([[[False, False, True, False],    # background: token 2
                             [True, True, False, False]]])   # class: tokens 0, 1 (token 3 unconfident)
    tags = torch.tensor([[1.0]])
    tau = 0.1
    s = sim[0, 0] / tau
    expect = -(torch.log(s[0].exp() / (s[0].exp() + s[2].exp())) + torch.log(s[1].exp() / (s[1].exp() + s[2].exp()))) / 2
    assert torch.allclose(proxy_contrastive_loss(sim, members, tags, tau), expect)
    # untagged classes and classes without confident tokens contribute nothing
    assert proxy_contrastive_loss(sim, members, torch.tensor([[0.0]]), tau) == 0
    with pytest.raises(ValueError, match=r"\(B, 1 \+ C, N\)"):
        proxy_contrastive_loss(sim, members[:, 1:], tags)


def test_contrastive_negatives_include_other_classes_and_empty_sets_are_safe():
    sim = torch.tensor([[[0.9, 0.2, 0.1], [0.3, 0.8, 0.0]]], requires_grad=True)   # 2 classes, 3 tokens
    members = torch.tensor([[[False, False, True],     # background: token 2
                             [True, False, False],     # class 0: token 0
                             [False, True, False]]])   # class 1: token 1
    tags = torch.tensor([[1.0, 1.0]])
    s = sim.detach()[0] / 0.1
    l0 = -(s[0, 0] - torch.logsumexp(torch.stack([s[0, 0], s[0, 1], s[0, 2]]), 0))  # negatives: class 1's and bg's token
    l1 = -(s[1, 1] - torch.logsumexp(torch.stack([s[1, 1], s[1, 0], s[1, 2]]), 0))
    assert torch.allclose(proxy_contrastive_loss(sim, members, tags, 0.1), (l0 + l1) / 2)
    # no negatives at all: the loss is 0 for the positive (log 1) and the gradient stays finite
    only_pos = torch.tensor([[[False, False, False], [True, False, False], [False, False, False]]])
    loss = proxy_contrastive_loss(sim, only_pos, tags, 0.1)
    loss.backward()
    assert loss.item() == pytest.approx(0.0) and torch.isfinite(sim.grad).all()
    # no confident token at all: zero, attached, finite
    sim.grad = None
    none = torch.zeros_like(members)
    loss = proxy_contrastive_loss(sim, none, tags, 0.1)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(sim.grad).all()


def test_c5_objective_reaches_tokens_and_heads():
    m = _vit().train()
    batch = {"image": torch.rand(4, 3, 64, 64), "tags": torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]])}
    obj = C5Objective(C5Config(loss_weight=1.0, confidence=0.3))
    loss = obj(m, batch)
    loss.backward()
    assert torch.isfinite(loss)
    # the contrastive term alone moves the class tokens (through the proxies) and the patch tokens
    m.zero_grad()
    out = m.tokens(batch["image"])
    st = proxy_maps(m, out, batch["tags"], obj.cfg)
    proxy_contrastive_loss(st["similarity"], st["members"], batch["tags"]).backward()
    assert m.class_tokens.grad.abs().sum() > 0 and m.vit.patch_embed.proj.weight.grad.abs().sum() > 0
    assert m.token_head.grad is None or m.token_head.grad.abs().sum() == 0  # not a classification term
    assert obj.config() == {"c5": obj.cfg.to_dict()}


def test_proxy_cam_has_the_uniform_signature_and_plans_have_the_masses():
    m = _vit()
    tags = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    x = torch.rand(2, 3, 64, 64)
    out = ProxyCAM(m, CAMConfig(scales=(1.0, 0.5), flip=True))(x, tags)
    assert out.shape == (2, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    assert out[0, 1].abs().sum() == 0 and out[1, 0].abs().sum() == 0
    with torch.no_grad():
        st = proxy_maps(m, m.tokens(x), tags)
    mass = proxy_masses(st["cam"], tags)
    assert torch.allclose(st["plan"].sum(-1), mass, atol=1e-4)                    # rows: the anchors' masses
    assert torch.allclose(st["plan"].sum(1), torch.full((2, 64), 1 / 64), atol=1e-3)  # columns: 1/N per token
    assert st["plan"][0, 2].abs().sum() == 0  # image 0 is not tagged with class 1 (plan row 2): no mass
    assert st["members"][0, 2].sum() == 0 and st["proxies"][0, 1].abs().sum() == 0
    with pytest.raises(TypeError, match="ViTClassifier"):
        ProxyCAM(torch.nn.Linear(2, 2), CAMConfig())


@pytest.mark.parametrize("kwargs, match", [
    ({"mix": 1.5}, "mix"), ({"assignment": "nearest"}, "assignment"), ({"capacities": "x"}, "capacities"),
    ({"background_fraction": 1.0}, "background_fraction"), ({"confidence": 0.0}, "confidence"),
    ({"loss_weight": -1.0}, "loss_weight"), ({"temperature": 0.0}, "temperature"), ({"topk": 0}, "topk"),
])
def test_c5_config_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        C5Config(**kwargs)


def test_vit_methods_train_cache_and_run(tmp_path, monkeypatch):
    from registry_check import run_registered

    assert get_method("vit_cam").name == "patch_token_cam" and get_method("mctformer").name == "class_token_attention"
    assert get_method("c5") is get_method("otpl") is get_method("ot_proxy")
    keys, train, cfg = run_registered(("patch_token_cam", "class_token_attention", "c5"), tmp_path, monkeypatch)
    assert keys["patch_token_cam"] == keys["class_token_attention"] != keys["c5"]
    _, info = build_method("ot_proxy", train, cfg, seed=0, progress=False)
    assert info["classifier"]["from_cache"]
    assert isinstance(PipelineConfig.from_dict(cfg.to_dict()).c5, C5Config)


# --- diagnostics ---------------------------------------------------------------------------

def test_region_cosines_by_hand():
    from s2d_core.eval.token_diagnostics import region_cosines

    mask = torch.zeros(8, 8, dtype=torch.long)
    mask[:, :4] = 1                       # the object: left half
    emblem = torch.zeros(8, 8, dtype=torch.long)
    emblem[:2, :2] = 1                    # its emblem: the top-left 2 x 2 pixels = one cell of a 4 x 4 grid
    e = torch.eye(3)
    f = e[2].repeat(4, 4, 1).clone()      # (h, w, D): background direction everywhere
    f[:, :2] = e[1]                       # body cells
    f[0, 0] = e[0]                        # emblem cell
    r = region_cosines([f.permute(2, 0, 1)], [{"mask": mask, "emblem": emblem}])
    assert r == pytest.approx({"body-body": 1.0, "body-emblem": 0.0, "body-background": 0.0,
                               "background-background": 1.0})
    with pytest.raises(ValueError, match=r"\(D, h, w\)"):
        region_cosines([f.flatten(0, 1)], [{"mask": mask, "emblem": emblem}])


def test_token_panels_lay_each_map_of_the_first_tagged_class_on_the_grid():
    from s2d_core.data import get_dataset
    from s2d_core.eval.token_diagnostics import token_panels

    item = get_dataset("synthetic", "train", "tiny", progress=False)[0]
    n_cls = item["tags"].numel()
    m = _vit(c=n_cls)
    p = token_panels(m, item)
    k = int(torch.nonzero(item["tags"])[0, 0])
    assert p["class"] == k
    # the same quantities from the model's pieces, token i at row i // 8, column i % 8 of the 8 x 8 grid
    x = item["image"][None]
    with torch.no_grad():
        out = m.tokens(x, attention_layers=2)
        st = proxy_maps(m, out, item["tags"][None])
        cos = F.normalize(out["patch"][0], dim=-1) @ F.normalize(out["class"][0, k], dim=0)
        score = out["patch"][0] @ m.head.weight[k].flatten()
    grid = lambda v: v.reshape(8, 8)  # noqa: E731
    unit = lambda v: (v / v.max()).numpy()  # noqa: E731 - every panel but the proxy CAM is divided by its max
    expected = {
        "class-token attention": unit(grid(out["attention"][-1][0, k, n_cls:])),  # last block, class row k
        "attention rollout": unit(grid(rollout(out["attention"])[0, k, n_cls:])),
        "cosine to class token": unit(grid(cos.clamp_min(0))),
        "patch-token CAM": unit(grid(F.relu(score))),
        "plan: class row": unit(grid(st["plan"][0, 1 + k])),                        # row 0 is the background
        "plan: background row": unit(grid(st["plan"][0, 0])),
        "proxy CAM": st["maps"][0, k].numpy(),
    }
    for name, ref in expected.items():
        np.testing.assert_allclose(p[name], ref, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(p["plan"], st["plan"][0].numpy(), atol=1e-6)
