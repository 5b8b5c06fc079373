"""How good is a promptable segmenter on its own? Class-agnostic IoU per object.

Each visible object of each image is asked for once, with the prompt a user would give:

* ``point``: one click at the object's most central pixel (deepest inside it); SAM returns
  three candidates, and the one with the highest *predicted* IoU is kept (no oracle), as
  well as the best of the three (``oracle``: what a perfect chooser, e.g. agreement with a
  CAM, could reach);
* ``box``: the object's tight box, one mask.

The score is the mean over objects of the IoU with the object's mask (class-agnostic: no
labels are involved), so it measures "knows objects and boundaries", the one thing C6 asks
of the segmenter.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from ..arrays import to_uint8
from ..progress import progress as progress_bar


def central_point(mask: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the pixel deepest inside ``mask`` ``(H, W)`` bool."""
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return int(x), int(y)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def object_ious(predictor, images, instances, prompt: str = "point", progress: bool = False) -> dict:
    """IoU of each object's answer.

    Parameters
    ----------
    predictor : anything with ``set_image`` / ``predict`` (``SamPredictor``, random walker).
    images : ``(N, H, W, 3)`` or a sequence of ``(3, H, W)`` / ``(H, W, 3)`` images.
    instances : ``(N, H, W)`` instance maps (0 = none, k = object k).
    prompt : ``"point"`` or ``"box"``.

    Returns
    -------
    ``{"iou": (K,), "oracle": (K,), "miou": float, "oracle_miou": float, "n_objects": K}``
    """
    if prompt not in ("point", "box"):
        raise ValueError(f"prompt must be 'point' or 'box', got {prompt!r}")
    if len(images) != len(instances):
        raise ValueError(f"{len(images)} images but {len(instances)} instance maps")
    ious, oracle = [], []
    for img, inst in progress_bar(list(zip(images, instances)), desc=f"objects ({prompt})", disable=not progress):
        inst = np.asarray(inst)
        predictor.set_image(to_uint8(img))
        for k in np.unique(inst):
            if k == 0:
                continue
            obj = inst == k
            if prompt == "point":
                masks, scores, _ = predictor.predict(point_coords=np.array([central_point(obj)], float),
                                                     point_labels=np.array([1]), multimask_output=True)
            else:
                ys, xs = np.nonzero(obj)
                masks, scores, _ = predictor.predict(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()], float),
                                                     multimask_output=False)
            each = [_iou(m, obj) for m in masks]
            ious.append(each[int(np.argmax(scores))])
            oracle.append(max(each))
    ious, oracle = np.array(ious), np.array(oracle)
    return {"iou": ious, "oracle": oracle, "miou": float(ious.mean()) if len(ious) else float("nan"),
            "oracle_miou": float(oracle.mean()) if len(oracle) else float("nan"), "n_objects": len(ious)}


class InstanceOracle:
    """A "perfect segmenter" for diagnosis: it answers a point with the true object under it
    (nothing on background) and a box with the object that fills most of it.

    Run C6 with it to separate the two halves of the method: what the *prompts* can reach if
    the segmenter were perfect, and what the real segmenter loses. It looks images up by their
    pixels, so it works through the same ``set_image`` / ``predict`` calls as ``SamPredictor``.

    dataset : items with ``image`` and ``instances``; indices : which of them may be asked for.
    """

    def __init__(self, dataset, indices):
        self._lookup = {to_uint8(dataset[int(i)]["image"]).tobytes(): np.asarray(dataset[int(i)]["instances"])
                        for i in indices}
        self.instances: np.ndarray | None = None

    def set_image(self, image) -> None:
        key = to_uint8(image).tobytes()
        if key not in self._lookup:
            raise KeyError("InstanceOracle: this image is not among the indices it was built for")
        self.instances = self._lookup[key]

    def predict(self, point_coords=None, point_labels=None, box=None, multimask_output=True):
        inst = self.instances
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in np.asarray(box).reshape(-1))
            ids, counts = np.unique(inst[y0:y1 + 1, x0:x1 + 1], return_counts=True)
            counts[ids == 0] = 0
            mask = inst == ids[np.argmax(counts)] if counts.max() > 0 else np.zeros(inst.shape, bool)
            return mask[None], np.ones(1), None
        x, y = np.asarray(point_coords, float)[0]
        k = inst[int(round(y)), int(round(x))]
        mask = inst == k if k > 0 else np.zeros(inst.shape, bool)
        n = 3 if multimask_output else 1
        return np.repeat(mask[None], n, 0), np.ones(n), None
