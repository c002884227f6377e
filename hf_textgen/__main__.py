"""``python -m hf_textgen``: the ``hf-textgen`` command (see :mod:`hf_textgen.cli`)."""
from hf_textgen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
