"""``recipes/train.py`` with a probe that records which rows each data-parallel rank trains on (for tests only).

    accelerate launch --config_file accelerate_configs/multi_cpu.yaml tests/shard_probe.py RECIPE_ARGS...

Each process writes ``OUTPUT_DIR/_shards/rank-R.json``: ``{"rank", "world_size", "rows"}`` with the crc32 of every
training row (its input ids without right padding) that went through the model's forward in training mode.
"""

from __future__ import annotations

import json
import runpy
import sys
import zlib
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from chathuman_hf.training.trainer import ChatTrainer

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "train.py"


class ShardLog(TrainerCallback):
    """Counts training rows through a forward pre-hook; writes them when training ends."""

    def __init__(self, pad_id: int | None) -> None:
        self.pad_id = pad_id
        self.rows: list[int] = []

    def hook(self, module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if not module.training or ids is None:
            return
        for row in ids.tolist():
            while self.pad_id is not None and row and row[-1] == self.pad_id:
                row.pop()
            self.rows.append(zlib.crc32(json.dumps(row).encode()))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = Path(args.output_dir) / "_shards"
        folder.mkdir(parents=True, exist_ok=True)
        info = {"rank": args.process_index, "world_size": args.world_size, "rows": self.rows}
        (folder / f"rank-{args.process_index}.json").write_text(json.dumps(info) + "\n", encoding="utf-8")


def probed_init(self: ChatTrainer, *args: Any, original: Any = ChatTrainer.__init__, **kwargs: Any) -> None:
    original(self, *args, **kwargs)
    probe = ShardLog(self.processing_class.pad_token_id if self.processing_class is not None else None)
    self.model.register_forward_pre_hook(probe.hook, with_kwargs=True)
    self.add_callback(probe)


if __name__ == "__main__":
    ChatTrainer.__init__ = probed_init
    sys.argv = [str(RECIPE), *sys.argv[1:]]
    runpy.run_path(str(RECIPE), run_name="__main__")
