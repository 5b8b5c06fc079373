"""Sparse labels of PASCAL VOC 2012 as the papers use them: ScribbleSup scribbles, and points and
boxes from VOC's own annotations.

* **ScribbleSup** (Lin et al., CVPR 2016) ships one XML per image: ``<polygon>`` elements, each a
  ``<tag>`` (a VOC class name or ``background``) and its ``<point><X>..</X><Y>..</Y></point>`` list
  (0-based pixel coordinates). :func:`scribblesup_to_labels` draws each polyline with a given width
  on a canvas of :data:`~s2d_core.data.labels.UNLABELLED` (0 = background, 1-20 = classes), as the
  usual PNG conversion does (3 px lines).
* **Boxes**: ``Annotations/<id>.xml`` (``<object><name>``, ``<bndbox>`` with 1-based inclusive
  ``xmin ymin xmax ymax``), :func:`voc_boxes`.
* **Points**: one click per object instance, at the instance's most interior pixel, from
  ``SegmentationObject/<id>.png`` and ``SegmentationClass/<id>.png`` (:func:`voc_points`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .labels import UNLABELLED
from .voc import VOC_CLASSES

__all__ = ["scribblesup_to_labels", "voc_boxes", "voc_points"]


def _class_index(name: str, where: str) -> int:
    name = name.strip().lower()
    if name in ("background", "bg"):
        return 0
    names = [c.lower() for c in VOC_CLASSES]
    if name not in names:
        raise ValueError(f"{where}: unknown class {name!r}; expected background or one of {list(VOC_CLASSES[1:])}")
    return names.index(name)


def scribblesup_to_labels(xml_path: str | Path, shape: tuple[int, int], width: int = 3) -> np.ndarray:
    """A ScribbleSup XML as a label map (H, W) int64: class on the strokes, :data:`UNLABELLED` elsewhere."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise ValueError(f"{xml_path}: not a readable ScribbleSup XML ({e})") from e
    canvas = Image.new("I", (shape[1], shape[0]), UNLABELLED)
    draw = ImageDraw.Draw(canvas)
    polygons = root.findall(".//polygon")
    if not polygons:
        raise ValueError(f"{xml_path}: no <polygon> element; expected ScribbleSup's format")
    for poly in polygons:
        tag = poly.find("tag")
        if tag is None or tag.text is None:
            raise ValueError(f"{xml_path}: a <polygon> without <tag>")
        c = _class_index(tag.text, str(xml_path))
        pts = [(float(p.find("X").text), float(p.find("Y").text)) for p in poly.findall("point")]
        if len(pts) == 1:
            x, y = pts[0]
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=c)
        elif pts:
            draw.line(pts, fill=c, width=width)
    return np.asarray(canvas, dtype=np.int64)


def voc_boxes(annotation_xml: str | Path) -> np.ndarray:
    """Boxes of a VOC ``Annotations/<id>.xml``: (K, 5) int64 rows ``(x0, y0, x1, y1, class)``, 0-based
    and inclusive (the synthetic world's convention)."""
    path = Path(annotation_xml)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise ValueError(f"{path}: not a readable VOC annotation ({e})") from e
    rows = []
    for obj in root.findall("object"):
        c = _class_index(obj.findtext("name", ""), str(path))
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{path}: an <object> without <bndbox>")
        x0, y0, x1, y1 = (int(round(float(bb.findtext(k)))) - 1 for k in ("xmin", "ymin", "xmax", "ymax"))
        rows.append((x0, y0, x1, y1, c))
    return np.array(rows, np.int64).reshape(-1, 5)


def voc_points(object_png: str | Path, class_png: str | Path) -> np.ndarray:
    """One point per instance of ``SegmentationObject/<id>.png``, at its most interior pixel (largest
    distance to its outline), with the class read from ``SegmentationClass/<id>.png``: (K, 3) int64
    rows ``(y, x, class)``."""
    inst = np.asarray(Image.open(object_png))
    cls = np.asarray(Image.open(class_png))
    if inst.shape != cls.shape:
        raise ValueError(f"{object_png} is {inst.shape}, {class_png} is {cls.shape}: they must match")
    rows = []
    for k in sorted(set(np.unique(inst).tolist()) - {0, 255}):
        m = inst == k
        d = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]  # the image border is outside the object
        y, x = np.unravel_index(np.argmax(d), d.shape)
        rows.append((y, x, int(cls[y, x])))
    return np.array(rows, np.int64).reshape(-1, 3)
