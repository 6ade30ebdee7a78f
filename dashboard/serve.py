"""The dashboard server process: ``streamlit run dashboard/app.py``, warmed as it starts (:mod:`dashboard.warmup`).

    python -m dashboard.serve [options of streamlit run, e.g. --server.port 8501]

``yuqing dashboard`` and ``yuqing up`` start it (:func:`dashboard.cli.streamlit_command`). ``streamlit run
dashboard/app.py`` serves the same app, without the warm-up (the first page runs then pay for it).
"""

from __future__ import annotations

import sys

from dashboard import warmup
from dashboard.cli import APP_PATH


def main(argv: list[str] | None = None) -> None:
    """Start the warm-up thread, then hand the process to Streamlit's own command line (it exits when done)."""
    from streamlit.web import cli as streamlit_cli

    warmup.start()
    args = sys.argv[1:] if argv is None else argv
    streamlit_cli.main(["run", str(APP_PATH), *args], prog_name="streamlit")


if __name__ == "__main__":
    main()
