"""Export a trained chat model as a standalone model: merge a LoRA adapter, or clean a full fine-tune.

    python recipes/export.py --model outputs/lora --output outputs/lora-merged
    python recipes/export.py --model outputs/lora --output outputs/lora-merged --push_to_hub --hub_model_id me/chat
    python recipes/export.py --model outputs/lora --output outputs/lora-gguf --gguf q8_0

An adapter directory (``adapter_config.json``) is merged into its base (local path or Hub id from the adapter
config) and saved as safetensors with the tokenizer, chat template, generation config, chat window, reports and
card; its greedy replies equal the adapter's. A full model is copied without optimizer state or checkpoints. The
result serves with ``pipeline("text-generation", model=OUTPUT)`` or ``vllm serve OUTPUT``. ``--gguf f16|q8_0`` also
writes ``OUTPUT/OUTPUT-TYPE.gguf`` with llama.cpp's converter and an Ollama ``Modelfile`` (the ``gguf`` extra).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from chathuman_hf.core.cli import SHORT_USAGE, run_cli
from chathuman_hf.publishing.export import export_model, push_export
from chathuman_hf.publishing.gguf_export import GGUF_TYPES, check_gguf_type, export_gguf

logger = logging.getLogger("chathuman_hf.publishing.export")


@dataclass
class ExportArguments:
    model: str = field(metadata={"help": "Output directory of recipes/train.py: a LoRA adapter or a full model."})
    output: str = field(metadata={"help": "New directory for the standalone model."})
    push_to_hub: bool = field(default=False, metadata={"help": "Upload the exported directory to the Hub."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Hub repository, e.g. me/korean-chat."})
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repository as private."})
    gguf: str | None = field(default=None, metadata={"help": f"Also write a GGUF ({'|'.join(GGUF_TYPES)}) and an "
                                                             "Ollama Modelfile for llama.cpp / Ollama / LM Studio."})
    llama_cpp_dir: str | None = field(default=None, metadata={
        "help": "A llama.cpp checkout whose converter to use (default: $LLAMA_CPP_DIR, else the cached one)."})


def main(argv: list[str] | None = None) -> str:
    (args,) = HfArgumentParser(ExportArguments, usage=SHORT_USAGE).parse_args_into_dataclasses(args=argv)
    if args.push_to_hub and not args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id NAME (e.g. me/korean-chat).")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.gguf is not None:
        check_gguf_type(args.gguf)
    out = export_model(args.model, args.output)
    print(f"Exported {args.model} to {out}", flush=True)
    if args.gguf:
        path = export_gguf(out, out, args.gguf, llama_cpp_dir=args.llama_cpp_dir)
        print(f"Wrote {path} and {path.parent / 'Modelfile'}", flush=True)
    if args.push_to_hub:
        repo = push_export(out, args.hub_model_id, private=args.hub_private_repo)
        print(f"Uploaded to https://huggingface.co/{repo}" if repo else "HF_HUB_OFFLINE: not uploaded", flush=True)
    return str(out)


if __name__ == "__main__":
    sys.exit(run_cli(main))  # neither a model nor an adapter, occupied output, missing hub id: one line, exit 2
