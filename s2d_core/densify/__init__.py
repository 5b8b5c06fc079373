"""Densification: map methods that complete the CAM, and the tools they share.

Each method is registered where it is defined (:data:`s2d_core.cam.METHODS`), under a name
that says what it does, with its thesis label and paper acronym as aliases:

========================  ===============  ==================================================
name                      aliases          what it does
========================  ===============  ==================================================
``prototype_cam``         proto, sipe      cosine similarity to each class's seed prototype
``mutual_calibration``    c3, cpmc         classifier and prototype CAMs correct each other
``multi_prototype_ot``    c4, pot          K prototypes per class, balanced by optimal transport
``ot_proxy``              c5, otpl         ViT class tokens moved towards their patch tokens by OT
========================  ===============  ==================================================

The baselines ``cam``, ``patch_token_cam`` and ``class_token_attention`` are in
:mod:`s2d_core.cam`; C6 (``spectral_prompts``), which enhances any method's maps with a
promptable segmenter, is in :mod:`s2d_core.pseudo`. ``s2d_core.pipeline.list_methods()``
lists them all, and ``s2d_core.pipeline.build_method(name, train_set, cfg)`` trains what a
method needs.

Shared tools: entropic optimal transport (:mod:`.ot`), k-means (:mod:`.kmeans`).
"""

from . import calibration, multiproto, prototypes, proxies
from .calibration import C3Objective, CalibratedCAM
from .config import C3Config, C4Config, C5Config, PrototypeConfig
from .kmeans import kmeans
from .multiproto import C4Objective, MultiPrototypeCAM, prototype_bank
from .ot import cosine_cost, sinkhorn
from .prototypes import PrototypeCAM
from .proxies import C5Objective, ProxyCAM

__all__ = ["C3Config", "C3Objective", "C4Config", "C4Objective", "C5Config", "C5Objective", "CalibratedCAM",
           "MultiPrototypeCAM", "PrototypeCAM", "PrototypeConfig", "ProxyCAM", "calibration", "cosine_cost", "kmeans",
           "multiproto", "prototype_bank", "prototypes", "proxies", "sinkhorn"]
