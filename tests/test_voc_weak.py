"""ScribbleSup XML, VOC boxes and points: converters checked on fixture files made here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from s2d_core.data.labels import UNLABELLED
from s2d_core.data.voc_weak import scribblesup_to_labels, voc_boxes, voc_points

SCRIBBLE_XML = """<annotation><filename>2007_000032</filename>
<polygon><tag>aeroplane</tag><point><X>2</X><Y>5</Y></point><point><X>12</X><Y>5</Y></point></polygon>
<polygon><tag>background</tag><point><X>3</X><Y>15</Y></point><point><X>3</X><Y>18</Y></point></polygon>
</annotation>"""

VOC_XML = """<annotation><object><name>dog</name><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>10</xmax><ymax>8</ymax>
</bndbox></object><object><name>person</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox>
</object></annotation>"""


def test_scribblesup_strokes(tmp_path):
    p = tmp_path / "s.xml"
    p.write_text(SCRIBBLE_XML)
    lab = scribblesup_to_labels(p, (20, 16), width=3)
    assert lab.shape == (20, 16)
    assert lab[5, 7] == 1 and lab[16, 3] == 0            # aeroplane = 1; background = 0
    assert (lab == UNLABELLED).mean() > 0.7
    assert set(np.unique(lab)) == {0, 1, UNLABELLED}
    bad = tmp_path / "bad.xml"
    bad.write_text(SCRIBBLE_XML.replace("aeroplane", "spaceship"))
    with pytest.raises(ValueError, match="unknown class 'spaceship'"):
        scribblesup_to_labels(bad, (20, 16))
    (tmp_path / "broken.xml").write_text("<annotation>")
    with pytest.raises(ValueError, match="not a readable ScribbleSup XML"):
        scribblesup_to_labels(tmp_path / "broken.xml", (20, 16))


def test_voc_boxes_are_zero_based_inclusive(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(VOC_XML)
    b = voc_boxes(p)
    assert b.tolist() == [[1, 2, 9, 7, 12], [0, 0, 3, 3, 15]]    # dog = 12, person = 15


def test_voc_points_one_per_instance_inside_it(tmp_path):
    inst = np.zeros((12, 12), np.uint8)
    cls = np.zeros((12, 12), np.uint8)
    inst[1:6, 1:6], cls[1:6, 1:6] = 1, 12
    inst[6:11, 4:11], cls[6:11, 4:11] = 2, 15
    inst[0, :] = cls[0, :] = 255                                  # VOC's void border
    Image.fromarray(inst).save(tmp_path / "o.png")
    Image.fromarray(cls).save(tmp_path / "c.png")
    pts = voc_points(tmp_path / "o.png", tmp_path / "c.png")
    assert pts[:, 2].tolist() == [12, 15]
    for y, x, c in pts:
        assert cls[y, x] == c
