"""Evaluation: segmentation mIoU, CAM-seed evaluation, saliency metrics."""
