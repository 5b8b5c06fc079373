"""Class activation maps (CAM) from a trained classifier: the book's baseline.

Zhou et al., CVPR 2016. For class ``c`` and pixel ``p`` of the last feature map ``F``:

.. math:: \\mathrm{CAM}_c(p) = \\mathrm{ReLU}(W_c^\\top F(p))

upsampled to the image size, optionally averaged over input scales and a horizontal flip
(as IRN and most later work do), then divided by its maximum over the image (plus a small
``eps``) so every class map peaks at 1, and zeroed for classes the image is not tagged with.

The same read-out of a ViT classifier's patch tokens is the ViT track's baseline
(``patch_token_cam``): :class:`~s2d_core.models.vit.ViTClassifier` offers the same
``features`` and ``head`` as the CNN classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import MapMethod, register_method, scale_flip_average
from .config import CAMConfig

__all__ = ["CAM", "cam_from_features"]


def cam_from_features(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``ReLU(W^T F)``: features (B, D, h, w), weight (C, D) or (C, D, 1, 1) -> (B, C, h, w) >= 0."""
    if weight.ndim == 4:
        weight = weight.flatten(1)
    if features.ndim != 4 or weight.ndim != 2 or features.shape[1] != weight.shape[1]:
        raise ValueError(f"features (B, D, h, w) and weight (C, D) must agree on D; got "
                         f"{tuple(features.shape)} and {tuple(weight.shape)}")
    return F.relu(torch.einsum("bdhw,cd->bchw", features, weight))


class CAM(MapMethod):
    """Classifier CAM, multi-scale and flip averaged, max-normalised, restricted to tags.

    >>> cam = CAM(classifier, CAMConfig(scales=(1.0, 0.5, 1.5), flip=True))
    >>> cams = cam(images, tags)          # (B, C, H, W) in [0, 1]; tags may be None

    The average is taken over un-normalised maps (resized to the input size), then each
    class map is divided by its maximum (as IRN does): a scale with stronger activations
    weighs more in the average.
    """

    name = "cam"
    needs = ()  # tags only restrict the maps; without them every class's map is returned
    normalise = "max"

    def single(self, images: torch.Tensor, tags: torch.Tensor | None) -> torch.Tensor:
        return cam_from_features(self.model.features(images), self.model.head.weight)

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """Scale/flip-averaged ``ReLU(W^T F)`` at input size, before normalisation: (B, C, H, W),
        with gradients and in the model's current mode."""
        return scale_flip_average(self.single, images, None, self.cam_cfg.scales, self.cam_cfg.flip)


register_method(
    "cam", "class activation map of a classifier trained on image tags: the baseline",
    lambda model, cfg, model_key=None, **_: CAM(model, cfg.cam, model_key),
    paper="CAM, CVPR 2016", record_name="cam")

register_method(
    "patch_token_cam", "the CAM read from a ViT classifier's patch tokens: the ViT track's baseline",
    lambda model, cfg, model_key=None, **_: CAM(model, cfg.cam, model_key),
    classifier="vit", aliases=("vit_cam",), paper="MCTformer-style ViT, CVPR 2022", record_name="vit_cam")
