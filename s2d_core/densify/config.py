"""Configuration of the densifiers: prototype CAMs, mutual calibration (C3), multi-prototype
optimal transport (C4) and OT-assisted proxies (C5).

Our readings of the papers: every choice a paper leaves open is a documented field here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..configbase import Config, at_least, between, non_negative, one_of, positive

__all__ = ["C3Config", "C4Config", "C5Config", "PrototypeConfig"]


@dataclass(frozen=True)
class PrototypeConfig(Config):
    """Prototype CAM (SIPE, Chen et al. CVPR 2022): cosine similarity to image-specific prototypes."""

    levels: int = 4
    """How many of the backbone's last stages form the hierarchical feature (each L2-normalised,
    resized to the last stage's grid, concatenated). 4 = the four residual stages, as SIPE."""
    temperature: float = 0.1
    """Softmax temperature over [background, tagged classes] of the cosine scores; the seed
    threshold sweep then sweeps a margin between a class and the background."""

    rules = {"levels": at_least(1), "temperature": positive}


@dataclass(frozen=True)
class C3Config(Config):
    """Classifier/prototype mutual calibration (CPMC, TCSVT 2024); our reading, see the chapter."""

    refine: bool = True
    """Step 1: propagate the classifier CAM with a feature affinity before taking seeds."""
    refine_power: float = 8.0
    """Affinity ``ReLU(cos)^power`` between hierarchical features (row-normalised); 8 is the
    power AffinityNet (PSA, Ahn & Kwak CVPR 2018) raises its affinities to."""
    discrepancy_threshold: float = 0.5
    """Both maps are binarised at this value to find where they disagree."""
    min_region: int = 1
    """A discrepancy region needs at least this many feature cells to give a local prototype."""
    use_fn: bool = True
    """False-negative local prototypes join the class (completion)."""
    use_fp: bool = True
    """False-positive local prototypes join the background (suppression)."""
    loss_weight: float = 1.0
    """Weight of the L1 consistency loss next to the classification loss (0: train a plain classifier)."""
    certainty_weighting: bool = True
    """Weight each cell of the consistency loss by ``1 - H_2(target)`` (as C4 does). Our networks
    start from scratch, not from ImageNet as in the paper: early targets are near 0.5 everywhere,
    and an unweighted L1 towards them flattens the CAM for good (measured: seed mIoU 33 instead
    of 50 for the plain CAM). False: the plain L1."""
    output: str = "prototype"
    """What the method returns: the calibrated ``"prototype"`` CAM, the (refined) ``"classifier"``
    CAM, or their ``"mean"``."""

    rules = {"refine_power": positive, "discrepancy_threshold": between(0, 1, open_lo=True, open_hi=True),
             "min_region": at_least(1), "loss_weight": non_negative, "output": one_of("prototype", "classifier", "mean")}


@dataclass(frozen=True)
class C4Config(Config):
    """Several prototypes per class through optimal transport (POT, CVPR 2025); our reading.

    Features are the hierarchical features of :class:`PrototypeConfig` (its ``levels`` and
    ``temperature`` apply)."""

    k: int = 4
    """Prototypes per class. The paper uses 2-4; 1 is SIPE's single prototype."""
    k_background: int = 1
    """Prototypes of the background (SIPE's one by default; K background prototypes also match
    the parts of objects that leak into the background seeds)."""
    scope: str = "image"
    """Where the prototypes come from: each image's own confident cells (``"image"``, as SIPE), or
    confident cells pooled over the whole training set (``"dataset"``: one fixed bank)."""
    epsilon: float = 0.05
    """Entropic regularisation of the Sinkhorn assignment (cost = 1 - cosine)."""
    assignment: str = "ot"
    """How k-means assigns features to prototypes: ``"ot"`` (balanced by Sinkhorn) or ``"nearest"``."""
    capacities: str = "weighted"
    """Prototype capacities of the transport: ``"uniform"`` (1/K each) or ``"weighted"`` (softmax over
    prototypes of the mean CAM score of the cells they hold, at ``capacity_temperature``):
    significant clusters get more mass (the paper's similarity-aware transport)."""
    capacity_temperature: float = 0.25
    """Seed cells have CAM scores in about [0.5, 1]; at 0.25 a prototype of score-1 cells gets at
    most e^2 = 7.4 times the mass of one of score-0.5 cells. Much lower temperatures let one
    prototype take nearly all the mass (the collapse the transport exists to prevent)."""
    kmeans_iters: int = 10
    loss_weight: float = 1.0
    """Weight of the entropy-weighted consistency loss (0: train a plain classifier)."""
    bank_per_class: int = 20000
    """``scope="dataset"``: at most this many confident training cells per class form the bank."""
    output: str = "prototype"
    """``"prototype"`` CAM, the ``"classifier"`` CAM, or their ``"mean"``."""

    rules = {"k": between(1, 16), "k_background": between(1, 16), "scope": one_of("image", "dataset"),
             "epsilon": positive, "assignment": one_of("ot", "nearest"), "capacities": one_of("uniform", "weighted"),
             "capacity_temperature": positive, "kmeans_iters": at_least(1), "loss_weight": non_negative,
             "output": one_of("prototype", "classifier", "mean")}

    def validate(self) -> None:
        if self.bank_per_class < self.k:
            raise ValueError(f"C4Config.bank_per_class must be >= k={self.k}, got {self.bank_per_class}")


@dataclass(frozen=True)
class C5Config(Config):
    """Class token as proxy, OT-assisted (OTPL, ICCV 2025); our reading, see the chapter."""

    mix: float = 0.5
    """Proxy = normalise(mix * class token + (1 - mix) * OT-weighted mean of patch tokens), both
    unit vectors. 1: the class token alone (the token gap); 0: the patch tokens alone."""
    assignment: str = "ot"
    """Which patch tokens join a proxy: ``"ot"`` (the transport plan's row for the class) or
    ``"topk"`` (the ablation without OT in the proxy: mean of the ``topk`` tokens most similar to
    the class token). The contrastive loss takes its confident tokens from the plan either way."""
    topk: int = 8
    epsilon: float = 0.05
    """Entropic regularisation of the plan (cost = 1 - cosine)."""
    capacities: str = "cam"
    """Mass of each proxy in the plan: ``"cam"`` (proportional to the class's patch-token CAM mass;
    the background gets the mass of ``1 - max CAM``) or ``"uniform"`` (1 / (tags + 1) each)."""
    background_fraction: float = 0.3
    """The background proxy is the mean of this fraction of patch tokens with the lowest CAM."""
    confidence: float = 0.7
    """A patch token is a confident member of a proxy when the plan gives that proxy at least this
    share of the token's mass (and no other proxy more)."""
    loss_weight: float = 0.1
    """Weight of the OT-enhanced contrastive loss next to the two classification losses (0: train
    the plain ViT classifier)."""
    temperature: float = 0.1
    """InfoNCE temperature of the contrastive loss."""
    sinkhorn_iters: int = 50

    rules = {"mix": between(0, 1), "assignment": one_of("ot", "topk"), "topk": at_least(1), "epsilon": positive,
             "capacities": one_of("cam", "uniform"), "background_fraction": between(0, 1, open_lo=True, open_hi=True),
             "confidence": between(0, 1, open_lo=True), "loss_weight": non_negative, "temperature": positive,
             "sinkhorn_iters": at_least(1)}
