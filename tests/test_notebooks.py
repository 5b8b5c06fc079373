"""Every chapter of the book executes without error.

The MyST sources under book/ are converted with jupytext into a temporary notebook and run
with papermill, as the book build does. Chapters may take small "smoke" parameters here
(see SMOKE) through their `parameters` cell; chapters without one run as they are.
"""

from pathlib import Path

import jupytext
import papermill
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return [ROOT / f"{f}.md" for f in files]


# Smaller settings for the tests; the book build uses each chapter's defaults.
SMOKE = {
    "synthetic_world": {"n_stats": 300},
    "pretraining": {"preset": "tiny", "scratch_preset": "tiny", "n_eval": 16},
    "cam": {"preset": "tiny", "n_show": 2},
    "prototypes": {"preset": "tiny", "n_eval": 16, "n_show": 2},
    "optimal_transport": {"preset": "tiny", "n_eval": 16, "n_cells": 32, "n_show": 2},
    "transformers": {"preset": "tiny", "n_eval": 16, "n_show": 2},
    "foundation_prompts": {"preset": "tiny", "n_eval": 12, "n_objects": 4, "n_show": 2},
    "video_world": {"preset": "video_tiny", "clip": 1},
    # the committed records of the video_smoke suite, on the tiny world they were made on
    "saliency_from_scribbles": {"preset": "video_tiny", "suite": "video_smoke", "clip": 1, "n_worst": 1},
}


def test_every_book_source_is_in_the_toc():
    in_toc = {p.resolve() for p in toc_chapters()}
    on_disk = {p.resolve() for p in (ROOT / "book").glob("*.md")}
    assert on_disk == in_toc, f"not in _toc.yml: {on_disk - in_toc}; missing files: {in_toc - on_disk}"


@pytest.mark.parametrize("chapter", toc_chapters(), ids=lambda p: p.stem)
def test_chapter_executes(chapter, tmp_path):
    nb = jupytext.read(chapter)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) <= 1, f"{chapter.name}: more than one cell tagged 'parameters'"
    src = tmp_path / f"{chapter.stem}.ipynb"
    jupytext.write(nb, src)
    papermill.execute_notebook(
        str(src), str(tmp_path / f"{chapter.stem}.out.ipynb"),
        parameters=SMOKE.get(chapter.stem, {}), kernel_name="python3",
        cwd=str(ROOT / "book"), progress_bar=False, execution_timeout=900)


def test_parameters_tag_survives_round_trip():
    # A jupytext header with cell_metadata_filter: -all would silently drop papermill's tag.
    nb = jupytext.read(ROOT / "book" / "synthetic_world.md")
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
