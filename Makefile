# Two commands do all set-up and work (see README):
#   make book   create the environment if needed, then build the book, executing every chapter
#   make test   create the environment if needed, then run the whole test suite
# and one for readers: make lab opens the chapters in JupyterLab (each book/*.md opens as a notebook).
# The environment is a virtual environment in $(VENV); it is (re)installed when
# pyproject.toml changes. Set PYTHON to choose the interpreter (Python >= 3.10).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.s2d-installed
# JupyterLab setting, inside the venv: Markdown files open as Jupytext notebooks
LAB_VIEWERS := $(VENV)/share/jupyter/lab/settings/overrides.d/s2d-jupytext.json

.PHONY: install book test lab clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision are resolved together, so pip picks a matching pair.
	$(PY) -m pip install --quiet --progress-bar off -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (s2d)" >/dev/null
	@touch $(STAMP)

book: $(STAMP)
	# --all: re-execute every chapter even when only s2d_core changed (Sphinx alone would skip it);
	# S2D_PROGRESS=log: long loops leave one summary line in the page instead of live progress bars
	S2D_PROGRESS=log $(VENV)/bin/jupyter-book build . --all --builder html
	@echo "Open _build/html/index.html"

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=10

$(LAB_VIEWERS): $(STAMP)
	$(VENV)/bin/jupytext-config --settings-file $@ set-default-viewer markdown myst

lab: $(LAB_VIEWERS)
	$(VENV)/bin/jupyter lab book/

clean:
	rm -rf _build .pytest_cache
