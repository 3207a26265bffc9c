"""Diffusion Explorer web app: `python app.py` serves it at http://127.0.0.1:7860.

The code lives in `explorer/ui/server.py` (also the `diffusion-explorer` command); this file is
what `python app.py` and a Hugging Face Space (`app_file: app.py`) run. `python app.py --help`
lists the options. Importing it loads nothing; `build(...)` makes the Blocks, `main()` loads the
model and launches.
"""

from __future__ import annotations

import sys

from explorer.ui.server import build, log, main, parse_args, set_threads, warm_up

__all__ = ["build", "log", "main", "parse_args", "set_threads", "warm_up"]

if __name__ == "__main__":
    sys.exit(main())
