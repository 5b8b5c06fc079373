"""s2d_core: sparse-to-dense (weakly supervised) segmentation, one concept per module.

Stage map (images)::

    data -> models -> cam -> densify -> pseudo labels -> train -> eval

Sub-packages mirror that map: :mod:`s2d_core.data` (synthetic benchmark, PASCAL VOC),
:mod:`s2d_core.eval` (mIoU, CAM-seed evaluation, saliency metrics) and :mod:`s2d_core.viz`
(overlays and figures).
"""

__version__ = "0.1.0"
