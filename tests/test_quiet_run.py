"""A first run is quiet: the quickstart config, installed without the ``korean`` extra, says each warning once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

STAMP = re.compile(r"^\[?[\d:, -]+\]?\s*")


def test_quickstart_without_kiwipiepy_warns_once(tmp_path, repo_root):
    hidden = tmp_path / "no_kiwi" / "kiwipiepy"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("kiwipiepy is not installed here")\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hidden.parent), str(repo_root)]), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "recipes/train.py", "--config", "recipes/configs/quickstart.yaml",
           "--config_overrides", "n_layer=1,n_embd=32,n_head=2,n_positions=256", "--num_train_epochs", "3",
           "--output_dir", str(tmp_path / "out"), "--disable_tqdm", "true"]
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warnings = [STAMP.sub("", line) for line in (proc.stdout + proc.stderr).splitlines() if "warn" in line.lower()]
    kiwi = [line for line in warnings if "kiwipiepy is not installed" in line]
    assert len(kiwi) == 1 and 'pip install -e ".[korean]"' in kiwi[0]  # 3 evaluations + generation checks: once
    assert [line for line, n in Counter(warnings).items() if n > 1] == []
