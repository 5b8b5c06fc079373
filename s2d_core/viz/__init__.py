"""Figures: colour maps for labels, overlays of masks and sparse annotations."""

from .cams import cam_decomposition, plot_cam_mass, plot_cam_region_means, show_cams, show_label_maps
from .curves import plot_threshold_curve
from .diagrams import STAGES, stage_map
from .prototypes import compare_maps, plot_assignment, plot_plan, show_clusters, show_steps
from .overlay import (annotation_panel, cam_heatmap, colourise_mask, draw_outline, draw_boxes, draw_points, draw_scribbles,
                      label_palette, legend_handles, overlay_mask, show_sample)

__all__ = ["compare_maps", "plot_assignment", "plot_plan", "show_clusters", "show_steps", "cam_decomposition", "plot_cam_mass", "plot_cam_region_means", "show_cams", "show_label_maps", "STAGES", "plot_threshold_curve", "stage_map", "annotation_panel", "cam_heatmap", "colourise_mask", "draw_outline", "draw_boxes", "draw_points", "draw_scribbles",
           "label_palette", "legend_handles", "overlay_mask", "show_sample"]
