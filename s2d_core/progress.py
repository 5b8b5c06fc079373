"""Progress bars that suit where the code runs, and leave built pages clean.

* a terminal (stderr is a TTY): a live ``tqdm`` text bar;
* interactive Jupyter (JupyterLab and Notebook start their kernels with ``JPY_SESSION_NAME``):
  a widget bar;
* anything else -- a Jupyter Book build, papermill, nbclient in the tests, a log file: no live
  bar, one summary line per finished loop (none for ``leave=False`` loops), so an executed
  notebook holds a line instead of hundreds of refreshes.

``S2D_PROGRESS=bar|widget|log|off`` forces one of them; ``make book``, the tests and the
benchmark runner set ``log`` (kernels started by nbclient inherit it, and a build started from
inside JupyterLab would otherwise inherit the session's widget mode).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Iterable, Literal

from tqdm.std import tqdm as _std_tqdm

__all__ = ["ENV_VAR", "LogBar", "progress", "progress_mode"]

Mode = Literal["bar", "widget", "log", "off"]
ENV_VAR = "S2D_PROGRESS"


def progress_mode() -> Mode:
    """The display :func:`progress` uses here and now (see the module docstring)."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("bar", "widget", "log", "off"):
        return forced  # type: ignore[return-value]
    if "ipykernel" in sys.modules:  # inside a Jupyter kernel
        interactive = bool(os.environ.get("JPY_SESSION_NAME"))  # set by jupyter_server, not by nbclient
        return "widget" if interactive and importlib.util.find_spec("ipywidgets") else "log"
    return "bar" if getattr(sys.stderr, "isatty", lambda: False)() else "log"


class LogBar(_std_tqdm):
    """A tqdm that draws nothing while running and writes one summary line when it closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("file", sys.stdout)
        kwargs["delay"] = float("inf")  # never draw the bar itself
        super().__init__(*args, **kwargs)

    def display(self, *args: Any, **kwargs: Any) -> bool:  # set_postfix and refresh draw nothing
        return True

    def close(self) -> None:
        if not self.disable and self.leave:
            n, total, dt = self.n, self.total, self._time() - self.start_t
            line = f"{self.desc or 'done'}: {n}{'' if total in (None, n) else f'/{total}'} {self.unit}"
            line += f" in {dt:.1f} s" + (f", {self.postfix}" if self.postfix else "")
            self.fp.write(line + "\n")
            self.fp.flush()
        super().close()


def progress(iterable: Iterable[Any] | None = None, desc: str | None = None, total: float | None = None,
             leave: bool = False, **kwargs: Any) -> _std_tqdm:
    """``tqdm(iterable, desc=..., total=..., leave=..., **kwargs)`` with the display of :func:`progress_mode`.

    Returns a tqdm instance (``update``, ``set_postfix``, ``close`` and ``disable=True`` work as
    usual). ``leave=False`` (the default here) loops leave nothing behind; long stages that a
    reader should see in a built page (training) pass ``leave=True``.
    """
    mode = progress_mode()
    if mode == "widget":
        from tqdm.notebook import tqdm as cls  # imported only where a widget front end exists
    else:
        cls = LogBar if mode == "log" else _std_tqdm
        if mode == "off":
            kwargs["disable"] = True
    return cls(iterable, desc=desc, total=total, leave=leave, **kwargs)
