"""s2d_core: sparse-to-dense (weakly supervised) segmentation, one concept per module.

Stage map (images); each stage imports only the stages before it::

    data -> models -> cam -> densify -> pseudo -> train -> eval

Sub-packages mirror that map: :mod:`s2d_core.data` (synthetic benchmark, PASCAL VOC),
:mod:`s2d_core.models` (timm backbones, CAM classifier, ViT, segmenter, SAM), :mod:`s2d_core.cam`
(the map-method interface and the CAM), :mod:`s2d_core.densify` (methods that complete the CAM),
:mod:`s2d_core.pseudo` (pseudo masks, dense CRF, C6's prompts), :mod:`s2d_core.train` (the
training loop), :mod:`s2d_core.eval` (mIoU, seed evaluation, diagnostics, saliency metrics).
Above them: :mod:`s2d_core.pipeline` (train on demand, cache, run a method) and
:mod:`s2d_core.viz` (figures). Foundations every stage may use: :mod:`~s2d_core.arrays`,
:mod:`~s2d_core.cache`, :mod:`~s2d_core.configbase`, :mod:`~s2d_core.devices`,
:mod:`~s2d_core.progress`, :mod:`~s2d_core.registry`. Configuration: each stage's ``config.py``
(all re-exported by :mod:`s2d_core.config`); named values in :mod:`s2d_core.presets`.

``s2d_core.list_methods()`` and ``s2d_core.build_method(...)`` are the pipeline's (imported on
first use, so ``import s2d_core`` stays light).
"""

__version__ = "0.1.0"

_LAZY = ("build_method", "list_enhancers", "list_methods", "method_table", "enhancer_table")


def __getattr__(name: str):
    if name in _LAZY:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 's2d_core' has no attribute {name!r}")
