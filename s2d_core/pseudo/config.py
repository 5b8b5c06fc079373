"""Configuration of the pseudo labels: thresholds and bands, the dense CRF, and C6's prompts.

Frozen dataclasses validated on creation (:mod:`s2d_core.configbase`); preset values are in
:mod:`s2d_core.presets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..configbase import Config, at_least, between, check, non_negative, one_of, positive

__all__ = ["C6Config", "CRFConfig", "PROMPT_STRATEGIES", "PseudoMaskConfig", "SEGMENTERS"]

PROMPT_STRATEGIES = ("spectral", "peak", "random", "kmeans", "box")
"""How C6 chooses prompts from a class's CAM (:func:`s2d_core.pseudo.prompts.select_prompts`);
each is registered as an enhancer (:data:`s2d_core.pseudo.ENHANCERS`)."""
SEGMENTERS = ("tiny_sam", "random_walker", "sam")
"""Who answers C6's prompts."""


@dataclass(frozen=True)
class CRFConfig(Config):
    """Dense CRF (Krähenbühl & Koltun 2011) on a label map; defaults are IRN's."""

    iterations: int = 10
    gt_prob: float = 0.7
    """Confidence given to the input labels in the unary term."""
    sxy_gaussian: float = 3.0
    compat_gaussian: float = 3.0
    sxy_bilateral: float = 50.0
    srgb_bilateral: float = 5.0
    compat_bilateral: float = 10.0

    rules = {"iterations": at_least(1), "gt_prob": between(0, 1, open_lo=True, open_hi=True), "sxy_gaussian": positive,
             "compat_gaussian": positive, "sxy_bilateral": positive, "srgb_bilateral": positive,
             "compat_bilateral": positive}


@dataclass(frozen=True)
class PseudoMaskConfig(Config):
    """How CAMs become pseudo masks for the segmentation network."""

    threshold: float | None = None
    """Background score. ``None``: the best threshold of the seed sweep on the training set
    (the field's protocol, which peeks at training masks; see the chapter)."""
    bands: tuple[float, float] | None = None
    """``(low, high)``: confident background where the best tagged CAM is ``<= low``, confident
    foreground where it is ``> high``, ignore (255) between (the same tie rule as the seed
    threshold). IRN uses (0.05, 0.30). ``None``: no ignore band."""
    crf: bool = False
    """Refine with a dense CRF (IRN-style: CRF on each thresholded label map)."""
    crf_config: CRFConfig = field(default_factory=CRFConfig)

    rules = {"threshold": between(0, 1)}

    def validate(self) -> None:
        if self.bands is not None:
            check(0.0 <= self.bands[0] < self.bands[1] <= 1.0,
                  f"PseudoMaskConfig.bands must be (low, high) with 0 <= low < high <= 1, got {self.bands}")


@dataclass(frozen=True)
class C6Config(Config):
    """Spectral prompts for a promptable segmenter (C6), and the baselines' prompts."""

    strategy: str = "spectral"
    """How prompts are chosen from a class's CAM: ``spectral`` (graph clusters, one point each),
    ``peak`` (the CAM maximum, S2C-style), ``random`` (``n_points`` foreground points),
    ``kmeans`` (``n_points`` clusters of features + position, no graph), ``box`` (the box around
    the CAM foreground)."""
    segmenter: str = "tiny_sam"
    """Who answers the prompts: ``tiny_sam`` (the cached tiny SAM through ``SamPredictor``),
    ``sam`` (a real SAM checkpoint: ``sam_checkpoint``), ``random_walker`` (classical baseline)."""
    sam_model_type: str = "vit_b"
    sam_checkpoint: str | None = None
    """Path of a SAM checkpoint (``sam_vit_b_01ec64.pth`` etc.) for ``segmenter="sam"``."""
    features: str = "segmenter"
    """Node features of the graph: ``segmenter`` (the SAM's image embedding; the tiny SAM's for
    the random walker, so both segmenters get the same prompts) or ``image`` (pixel colours)."""
    graph_size: int = 32
    """The CAM is pooled to a ``graph_size`` x ``graph_size`` grid; its foreground cells are the nodes."""
    knn: int = 8
    """Edges kept per node (the strongest within ``radius`` cells), then symmetrised."""
    radius: int = 3
    feature_sigma: float = 0.1
    """Feature affinity ``exp(-(1 - cos) / feature_sigma)``."""
    spatial_sigma: float = 2.0
    """Spatial affinity ``exp(-d^2 / (2 spatial_sigma^2))``, ``d`` in grid cells."""
    k_max: int = 4
    """Upper bound of the number of clusters (the eigengap picks k in 1..k_max)."""
    eigengap_ratio: float = 0.2
    """A gap after the k-th eigenvalue counts when ``lambda_k <= eigengap_ratio * lambda_{k+1}``."""
    point: str = "central"
    """One point per cluster: ``central`` (deepest inside the cluster) or ``peak`` (highest CAM)."""
    negatives: int = 0
    """Negative points per class, from confident background (max CAM below ``negative_threshold``)
    next to the class's foreground."""
    negative_threshold: float = 0.05
    n_points: int = 3
    """Points of the ``random`` and ``kmeans`` baselines."""
    min_cluster: int = 3
    """Graph components smaller than this (in cells) get no prompt (CAM speckle)."""
    min_agreement: float = 0.1
    """A candidate mask is kept only if its IoU with the CAM foreground is at least this (an answer
    about something else, e.g. the whole image, is dropped)."""
    rw_beta: float = 130.0
    """Edge sharpness of the random walker (scikit-image's default)."""

    rules = {"strategy": one_of(*PROMPT_STRATEGIES), "segmenter": one_of(*SEGMENTERS),
             "sam_model_type": one_of("vit_b", "vit_l", "vit_h"), "features": one_of("segmenter", "image"),
             "graph_size": at_least(4), "knn": at_least(1), "radius": at_least(1), "feature_sigma": positive,
             "spatial_sigma": positive, "k_max": between(1, 16), "eigengap_ratio": between(0, 1, open_lo=True, open_hi=True),
             "point": one_of("central", "peak"), "negatives": non_negative,
             "negative_threshold": between(0, 1, open_hi=True), "n_points": at_least(1), "min_cluster": at_least(1),
             "min_agreement": between(0, 1, open_hi=True), "rw_beta": positive}

    def validate(self) -> None:
        check(self.segmenter != "sam" or bool(self.sam_checkpoint),
              "C6Config.segmenter='sam' needs sam_checkpoint=<path to sam_vit_b_01ec64.pth or similar>")
