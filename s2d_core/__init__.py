"""s2d_core: sparse-to-dense (weakly supervised) segmentation, one concept per module.

Stage map (images)::

    data -> models -> cam -> densify -> pseudo labels -> train -> eval

Sub-packages mirror that map: :mod:`s2d_core.data` (synthetic benchmark, PASCAL VOC),
:mod:`s2d_core.models` (timm backbones, CAM classifier, segmenter), :mod:`s2d_core.cam`
(class activation maps), :mod:`s2d_core.densify` (the registry of densification methods),
:mod:`s2d_core.pseudo` (pseudo masks, dense CRF), :mod:`s2d_core.train` (training loop and
cached artifacts), :mod:`s2d_core.eval` (mIoU, CAM-seed evaluation, CAM diagnostics, saliency
metrics) and :mod:`s2d_core.viz` (overlays and figures). Configuration: :mod:`s2d_core.config`
(dataclasses) and :mod:`s2d_core.presets` (their named values).
"""

__version__ = "0.1.0"
