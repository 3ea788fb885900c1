"""``python -m chathuman_hf.korean speech-level``: the speech level of each line on stdin."""

from chathuman_hf.korean.analysis import main

raise SystemExit(main())
