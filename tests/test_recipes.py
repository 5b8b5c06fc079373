"""The cache policy: no artifact's output changes without a bump of its recipe version.

Cache keys hold recipe versions instead of source code (so refactoring retrains nothing); this
test is what makes that safe. It rebuilds every kind of artifact on the tiny preset and compares
it with ``tests/golden/recipes.json`` (see ``tests/golden_recipes.py``).
"""

from __future__ import annotations

import json

import pytest
from golden_recipes import GOLDEN, compare, compute, environment


def test_every_artifact_kind_matches_its_golden_output(tmp_path, monkeypatch):
    monkeypatch.setenv("S2D_CACHE_DIR", str(tmp_path))
    golden = json.loads(GOLDEN.read_text())
    failures, notes = compare(compute(), golden, env=environment())
    assert not failures, "\n".join(failures)
    assert len(golden["artifacts"]) >= 16  # splits, both worlds, 2 backbones, 5 networks, 7 map methods, segmenter, tiny SAM


def _golden(**versions):
    return {"artifacts": {"classifier/tags": {"versions": versions or {"classifier": 1}, "fingerprint": [1.0, 2.0],
                                              "sha256": "a"}}}


def test_the_comparison_fails_on_changed_output_without_a_version_bump():
    same = {"classifier/tags": {"versions": {"classifier": 1}, "fingerprint": [1.0, 2.0000001], "sha256": "b"}}
    failures, notes = compare(same, _golden())
    assert not failures and notes == ["classifier/tags: same output to rounding, not bit for bit (another CPU or torch build)"]
    changed = {"classifier/tags": {"versions": {"classifier": 1}, "fingerprint": [1.0, 2.5], "sha256": "c"}}
    (msg,), _ = compare(changed, _golden())
    assert "changed" in msg and "did not: bump the version" in msg
    bumped = {"classifier/tags": {"versions": {"classifier": 2}, "fingerprint": [1.0, 2.5], "sha256": "c"}}
    (msg,), _ = compare(bumped, _golden())
    assert "re-record" in msg
    (msg,), _ = compare({}, _golden())
    assert "no longer produced" in msg
    (msg,), _ = compare({**same, "segmenter": same["classifier/tags"]}, _golden())
    assert msg.startswith("segmenter: a new kind of artifact")
    # on the machine and torch build the golden file was recorded on, every bit counts
    env = {"torch": "x", "cpu": "y"}
    (msg,), _ = compare(same, {**_golden(), "environment": env}, env=env)
    assert "last bits" in msg
    assert compare(same, {**_golden(), "environment": env}, env={**env, "cpu": "z"})[0] == []


@pytest.mark.parametrize("kind", ["classifier", "vit-classifier", "segmenter", "cams", "tiny-sam", "synthetic-split",
                                  "object-world", "pretraining-world", "pretrained-backbone", "video-world",
                                  "video-saliency", "spml-embedding"])
def test_every_cached_kind_has_a_recipe_version(kind):
    from s2d_core.pipeline import RECIPES

    assert isinstance(RECIPES[kind], int) and RECIPES[kind] >= 1
