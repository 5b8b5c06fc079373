"""Class activation maps: the first, coarse answer to "where is the class?"."""

from .cam import CAM, cam_from_features, compute_cams, max_normalise, restrict_to_tags, scale_flip_average

__all__ = ["CAM", "cam_from_features", "compute_cams", "max_normalise", "restrict_to_tags", "scale_flip_average"]
