"""``python -m hf_textgen.testing [--host H] [--port N] [--mapping-shape dict|list] [-v]``."""
import sys

from .cli import main

sys.exit(main())
