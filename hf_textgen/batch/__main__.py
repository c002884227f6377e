"""``python -m hf_textgen.batch IN.jsonl -o OUT.jsonl [...]``: see :mod:`hf_textgen.batch.command`."""
import sys

from .command import main

sys.exit(main())
