"""Promptable segmenters (tiny SAM through segment-anything's SamPredictor, random walker) and
the C6 driver that turns CAMs into pseudo masks with them."""

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from s2d_core.config import C6Config, TinySAMConfig
from s2d_core.data.shapes import object_world, render_object_scene
from s2d_core.eval.promptable import central_point, object_ious
from s2d_core.arrays import to_uint8
from s2d_core.models.promptable import RandomWalkerPredictor, load_sam, sam_predictor
from s2d_core.models.tiny_sam import build_tiny_sam, decode
from s2d_core.pseudo.prompted import c6_pseudo_mask, make_c6_masks, mask_agreement
from s2d_core.train.promptable import pretrain_tiny_sam, prompt_batch

SMALL = TinySAMConfig(patch_size=8, embed_dim=64, depth=2, num_heads=2, prompt_dim=32, decoder_mlp_dim=64, decoder_heads=2,
                      n_scenes=200, steps=40, batch_size=8)


def two_squares(h=40, w=60):
    """Grey ground with a red square on the left and a blue one on the right, (H, W, 3) uint8."""
    img = np.full((h, w, 3), 120, np.uint8)
    img[10:30, 5:25] = (220, 30, 30)
    img[10:30, 35:55] = (30, 30, 220)
    return img


def test_decode_batched_equals_sam_decoder_image_by_image():
    torch.manual_seed(0)
    sam = build_tiny_sam(SMALL).eval()
    with torch.no_grad():
        emb = sam.image_encoder(sam.preprocess(torch.rand(3, 3, 64, 64) * 255))
        pts = torch.rand(3, 2, 2) * 64
        lab = torch.tensor([[1, 0], [1, -1], [1, 1]])
        sparse, dense = sam.prompt_encoder(points=(pts, lab), boxes=None, masks=None)
        masks, iou = decode(sam, emb, sparse, dense)
        for b in range(3):
            ref_m, ref_i = sam.mask_decoder.predict_masks(emb[b:b + 1], sam.prompt_encoder.get_dense_pe(),
                                                          sparse[b:b + 1], dense[b:b + 1])
            assert torch.allclose(masks[b], ref_m[0], atol=1e-5) and torch.allclose(iou[b], ref_i[0], atol=1e-5)
    assert masks.shape == (3, 4, 4 * 8, 4 * 8)  # 64 px / 8 px patches = 8 x 8 embedding, 4x finer masks


def test_sam_predictor_runs_on_the_tiny_sam_at_any_image_size():
    """segment-anything's own SamPredictor, unchanged, on our model: resize, prompts, post-processing."""
    predictor = sam_predictor(build_tiny_sam(SMALL))
    assert isinstance(predictor, SamPredictor)
    img = two_squares(40, 60)
    predictor.set_image(img)
    assert predictor.original_size == (40, 60) and predictor.input_size == (43, 64)  # longest side -> 64
    masks, scores, low = predictor.predict(point_coords=np.array([[15.0, 20.0]]), point_labels=np.array([1]))
    assert masks.shape == (3, 40, 60) and masks.dtype == bool and scores.shape == (3,) and low.shape == (3, 32, 32)
    masks, scores, _ = predictor.predict(box=np.array([5, 10, 24, 29]), multimask_output=False)
    assert masks.shape == (1, 40, 60)
    assert predictor.get_image_embedding().shape == (1, SMALL.prompt_dim, 8, 8)
    # the graph's features cover the image only: 43 x 64 input rows/cols -> 6 x 8 cells of 8 px
    from s2d_core.pseudo.prompted import segmenter_features
    emb = predictor.get_image_embedding()[0].detach().numpy()
    np.testing.assert_array_equal(segmenter_features(predictor), emb[:, :6, :8])  # ceil(43 / 8) = 6 rows


def test_object_world_is_seeded_and_parts_lie_on_their_objects():
    a, b = render_object_scene(5), render_object_scene(5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(render_object_scene(6)["image"], a["image"])
    w = object_world(30, 64, split="test", use_cache=False, progress=False)
    assert w["image"].shape == (30, 64, 64, 3) and w["instances"].shape == (30, 64, 64)
    assert w["image"].dtype == np.uint8  # stored as SamPredictor receives images
    np.testing.assert_array_equal(w["image"][0], to_uint8(render_object_scene(np.random.SeedSequence([0, 104729, 1, 0]))["image"]))
    parts, inst = w["parts"], w["instances"]
    assert ((parts == 0) | (parts == inst)).all()  # a decal belongs to the object it is on
    assert (inst.reshape(30, -1).max(1) >= 1).all()  # every scene has an object
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        object_world(3, split="val")


def test_prompt_batch_targets_and_prompts_agree():
    rng = np.random.default_rng(0)
    w = object_world(16, 64, split="test", use_cache=False, progress=False)
    tgt, pts, lab, boxes = prompt_batch(rng, w["instances"], w["parts"], "points")
    assert tgt.shape == (16, 64, 64) and pts.shape[0] == 16 and boxes is None
    for b in range(16):
        for (x, y), l in zip(pts[b], lab[b]):
            if l == 1:
                assert tgt[b, int(y), int(x)]  # positives inside the target, in (x, y) order
            elif l == 0:
                assert not tgt[b, int(y), int(x)]
    tgt, pts, lab, boxes = prompt_batch(rng, w["instances"], w["parts"], "box")
    assert boxes.shape == (16, 4) and (boxes[:, 2] >= boxes[:, 0]).all()


def test_pretraining_lowers_the_loss_deterministically():
    sam, info = pretrain_tiny_sam(SMALL, seed=0, progress=False)
    _, info2 = pretrain_tiny_sam(SMALL, seed=0, progress=False)
    curve = np.array(info["loss_curve"])
    assert len(curve) == SMALL.steps and np.isfinite(curve).all()
    assert curve[-8:].mean() < curve[:8].mean()
    assert np.allclose(curve, info2["loss_curve"])  # deterministic by seed on CPU
    assert not sam.training


def test_random_walker_follows_colour_edges_and_takes_x_then_y():
    rw = RandomWalkerPredictor()
    rw.set_image(two_squares())
    masks, scores, prob = rw.predict(point_coords=np.array([[15, 20]]), point_labels=np.array([1]))
    left = np.zeros((40, 60), bool)
    left[10:30, 5:25] = True
    assert masks.shape == (1, 40, 60) and (masks[0] & left).sum() / (masks[0] | left).sum() > 0.9
    masks, _, _ = rw.predict(point_coords=np.array([[45, 20], [15, 20]]), point_labels=np.array([1, 0]))
    assert masks[0][10:30, 35:55].mean() > 0.9 and not masks[0][:, :25].any()
    masks, _, _ = rw.predict(box=np.array([3, 8, 27, 32]))
    assert (masks[0] & left).sum() / (masks[0] | left).sum() > 0.9
    with pytest.raises(ValueError, match="at least one positive point"):
        rw.predict(point_coords=np.array([[1, 1]]), point_labels=np.array([0]))
    with pytest.raises(ValueError, match=r"\(N, 2\) in \(x, y\) order"):
        rw.predict(point_coords=np.array([1, 2, 3]), point_labels=np.array([1]))
    with pytest.raises(RuntimeError, match="set_image"):
        RandomWalkerPredictor().predict(point_coords=np.array([[1, 1]]), point_labels=np.array([1]))


def test_object_ious_with_the_random_walker():
    img = two_squares()
    inst = np.zeros((40, 60), np.uint8)
    inst[10:30, 5:25], inst[10:30, 35:55] = 1, 2
    assert central_point(inst == 1) in {(14, 19), (15, 19), (14, 20), (15, 20)}
    for prompt in ("point", "box"):
        r = object_ious(RandomWalkerPredictor(), [img], [inst], prompt)
        assert r["n_objects"] == 2 and r["miou"] > 0.85


def test_load_sam_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="sam_vit_b_01ec64.pth"):
        load_sam("vit_b", tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_sam("vit_b", junk)
    wrong = tmp_path / "tiny.pth"
    torch.save(build_tiny_sam(SMALL).state_dict(), wrong)
    with pytest.raises(ValueError, match="does not fit model_type='vit_b'"):
        load_sam("vit_b", wrong)
    with pytest.raises(ValueError, match="model_type must be one of"):
        load_sam("vit_x", wrong)


class Recorder:
    """A promptable segmenter that answers with fixed candidates and records the questions."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def set_image(self, image):
        self.image = image

    def predict(self, point_coords=None, point_labels=None, box=None, multimask_output=True):
        self.calls.append((None if point_coords is None else np.asarray(point_coords), point_labels, box, multimask_output))
        return self.answers(point_coords, box)


def test_object_ious_by_hand_keeps_the_best_scored_candidate_and_the_oracle():
    h, w = 40, 60
    inst = np.zeros((h, w), np.uint8)
    inst[10:30, 5:25], inst[10:30, 35:55] = 1, 2            # two 20 x 20 objects (400 px)
    left, right = inst == 1, inst == 2
    top_half = left.copy()
    top_half[20:] = False                                     # 200 px of the left object
    both = left | right                                       # 800 px

    def answers(points, box):
        x = points[0][0] if box is None else box[0]
        if box is not None:  # one mask: the left box gets its object, the right one both objects
            return (left if x < 30 else both)[None], np.ones(1), None
        if x < 30:  # the left object's click: the best-scored candidate is half of it
            return np.stack([left, top_half, both]), np.array([0.2, 0.9, 0.1]), None
        return np.stack([right, top_half, both]), np.array([0.9, 0.5, 0.4]), None

    rec = Recorder(answers)
    r = object_ious(rec, [two_squares()], [inst], "point")
    # left: chosen top_half, IoU 200 / 400; best candidate the object itself, 1. right: chosen and best 1.
    np.testing.assert_allclose(r["iou"], [0.5, 1.0])
    np.testing.assert_allclose(r["oracle"], [1.0, 1.0])
    assert r["miou"] == pytest.approx(0.75) and r["oracle_miou"] == pytest.approx(1.0) and r["n_objects"] == 2
    assert [c[0].tolist() for c in rec.calls] == [[list(central_point(left))], [list(central_point(right))]]
    rec.calls.clear()
    r = object_ious(rec, [two_squares()], [inst], "box")
    # boxes are the objects' tight boxes (x0, y0, x1, y1); the right answer covers both: 400 / 800
    assert [c[2].tolist() for c in rec.calls] == [[5, 10, 24, 29], [35, 10, 54, 29]]
    np.testing.assert_allclose(r["iou"], [1.0, 0.5])


def test_c6_driver_chooses_by_agreement_merges_classes_and_skips_empty_ones():
    h = w = 32
    cam = np.zeros((3, h, w), np.float32)
    cam[0, 4:12, 4:12] = 1.0     # class 1: left
    cam[1, 4:12, 14:30] = 1.0    # class 2: right, overlapping class 1's answer
    cam[2] = 0.1                 # class 3: below the threshold everywhere
    sq = lambda y0, y1, x0, x1: np.pad(np.ones((y1 - y0, x1 - x0), bool), ((y0, h - y1), (x0, w - x1)))

    def answers(points, box):
        x, y = points[0] if box is None else box[:2]
        if x < 13:  # class 1's point: a bad candidate, the right one, a too-large one
            return np.stack([sq(0, 2, 0, 2), sq(4, 12, 4, 14), sq(0, 32, 0, 32)]), np.array([0.9, 0.5, 0.8]), None
        return np.stack([sq(4, 12, 12, 30), sq(20, 30, 20, 30), sq(0, 1, 0, 1)]), np.array([0.5, 0.9, 0.1]), None

    rec = Recorder(answers)
    img = np.zeros((h, w, 3), np.uint8)
    out, info = c6_pseudo_mask(rec, img, cam, np.array([1, 1, 1]), 0.5, C6Config(graph_size=16), details=True)
    assert out.dtype == np.uint8 and out.shape == (h, w)
    assert (out[4:12, 4:12] == 1).all()
    # columns 12-13 are claimed by both; class 2's mask agrees better with its CAM (16/18 vs 64/80), so it wins
    assert info[2]["agreement"] > info[1]["agreement"] and (out[4:12, 12:14] == 2).all()
    assert (out[20:30] == 0).all() and out[0:2, 0:2].sum() == 0  # rejected candidates left out
    assert 3 not in out and info[3]["prompts"].empty
    assert len(rec.calls) == 2 and all(c[3] for c in rec.calls)  # one question per point, multimask
    x, y = rec.calls[0][0][0]
    assert 4 <= x <= 12 and 4 <= y <= 12  # points reach the segmenter as (x, y)
    rec.calls.clear()
    c6_pseudo_mask(rec, img, cam, np.array([0, 1, 0]), 0.5, C6Config(graph_size=16, strategy="box"))
    (pts, _, box, multi), = rec.calls
    assert pts is None and not multi and box.tolist() == [14, 4, 29, 11]
    assert mask_agreement(np.stack([sq(0, 4, 0, 4)]), sq(0, 4, 0, 8))[0] == 0.5
    # with negative points each question is unambiguous: one mask (SAM's output 0), negatives attached
    rec.calls.clear()
    bg_cam = cam.copy()
    c6_pseudo_mask(rec, img, bg_cam, np.array([1, 0, 0]), 0.5, C6Config(graph_size=16, negatives=2, negative_threshold=0.5))
    (pts, lab, _, multi), = rec.calls
    assert not multi and list(lab) == [1, 0, 0] and len(pts) == 3
    with pytest.raises(ValueError, match=r"cam must be \(C, H, W\)"):
        c6_pseudo_mask(rec, np.zeros((16, 16, 3), np.uint8), cam, np.ones(3), 0.5)


def test_c6_end_to_end_through_sam_predictor_on_synthetic_images():
    from s2d_core.data import get_dataset

    ds = get_dataset("synthetic", "val", "tiny")
    cams = []
    for i in range(3):
        m = ds[i]["mask"].numpy()
        cams.append(np.stack([(m == c + 1).astype(np.float32) * 0.9 for c in range(ds.num_classes - 1)]))
    predictor = sam_predictor(build_tiny_sam(SMALL))
    for strategy in ("spectral", "peak", "box"):
        masks = make_c6_masks(predictor, ds, cams, 0.5, C6Config(strategy=strategy), indices=[0, 1, 2], progress=False)
        assert masks.shape == (3, *ds[0]["mask"].shape) and masks.dtype == np.uint8
        for i in range(3):
            present = set(np.nonzero(ds[i]["tags"].numpy())[0] + 1) | {0}
            assert set(np.unique(masks[i])) <= present


def test_to_uint8_rounds_and_puts_channels_last():
    levels = torch.tensor([0.0, 0.5, 1.0])[:, None, None].expand(3, 4, 5)  # channel c is the constant c / 2
    rgb = to_uint8(levels)
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
    assert (rgb == [0, 128, 255]).all()  # round(127.5) = 128 (half to even), channels last
