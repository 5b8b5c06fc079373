"""Evaluation: segmentation mIoU, CAM-seed sweeps and method comparisons, saliency metrics, and
diagnostics of CAMs, prototypes, tokens and promptable segmenters."""
