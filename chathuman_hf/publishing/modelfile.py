"""An Ollama ``Modelfile`` for an exported GGUF: ``FROM``, a Go ``TEMPLATE`` that renders the prompt the model's Jinja
chat template renders, a ``PARAMETER stop`` per end-of-turn string, ``num_ctx`` and the sampling defaults.

Ollama cannot run Jinja, and a hand-kept table of Go templates per model name (what Unsloth ships) misses every
family it does not name. The Go template is instead read off the Jinja template itself: it is rendered with marker
contents, and the text between consecutive contents (which depends only on the two roles around it) becomes the
literal text of the Go template. A template whose text between turns changes along the conversation is refused
(no TEMPLATE; a warning says so). Limits: contents are inserted as given (Go templates cannot ``trim``, so a
template that trims contents matches only for contents without outer whitespace), roles are system (first only),
user and assistant.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_MARK = "\u2063C{}\u2063"  # marker content (an invisible separator around an index): no template alters it
OLLAMA_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
                   "repetition_penalty": "repeat_penalty", "max_new_tokens": "num_predict"}


class IrregularTemplateError(ValueError):
    """A chat template whose text between turns is not fixed by the two roles around it."""


def _pieces(tokenizer: Any, roles: list[str], gen: bool) -> list[str]:
    messages = [{"role": r, "content": _MARK.format(i)} for i, r in enumerate(roles)]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    pieces = []
    for i in range(len(roles)):
        before, found, text = text.partition(_MARK.format(i))
        if not found:
            raise IrregularTemplateError(f"the template does not insert message {i} ({roles[i]}) as given")
        pieces.append(before)
    return [*pieces, text]


def template_frames(tokenizer: Any) -> dict[str, str]:
    """The text before, between and after contents, keyed by where it stands (see ``go_template``)."""
    u, a, s = "user", "assistant", "system"
    with_sys = _pieces(tokenizer, [s, u, a, u, a, u], True)
    no_sys = _pieces(tokenizer, [u, a, u, a, u], True)
    ends_assistant = _pieces(tokenizer, [u, a, u, a], False)
    frames = {"start_system": with_sys[0], "system_user": with_sys[1], "start_user": no_sys[0],
              "user_assistant": with_sys[2], "assistant_user": with_sys[3], "user_end": with_sys[6],
              "assistant_end": ends_assistant[4]}
    same = [(with_sys[2], with_sys[4]), (with_sys[3], with_sys[5]), (no_sys[1], with_sys[2]), (no_sys[2], with_sys[3]),
            (no_sys[3], with_sys[4]), (no_sys[4], with_sys[5]), (no_sys[5], with_sys[6]),
            (ends_assistant[1], with_sys[2]), (ends_assistant[2], with_sys[3])]
    if any(x != y for x, y in same):
        raise IrregularTemplateError("the text between turns changes along the conversation")
    return frames


def _lit(text: str) -> str:
    """Go template text for a literal (as is, unless it holds template delimiters)."""
    return text if "{{" not in text and "}}" not in text else "{{ " + json.dumps(text, ensure_ascii=False) + " }}"


def go_template(tokenizer: Any) -> str:
    """Ollama's Go TEMPLATE rendering ``.Messages`` exactly as ``tokenizer``'s chat template (generation prompt on)."""
    f = {k: _lit(v) for k, v in template_frames(tokenizer).items()}
    return (  # no trim markers: a literal's own whitespace (Gemma's "\n\n") must survive
        '{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}'
        f'{{{{ if eq $i 0 }}}}{{{{ if eq .Role "system" }}}}{f["start_system"]}{{{{ else }}}}{f["start_user"]}'
        '{{ end }}{{ end }}{{ .Content }}'
        f'{{{{ if eq .Role "system" }}}}{f["system_user"]}'
        f'{{{{ else if eq .Role "user" }}}}{{{{ if $last }}}}{f["user_end"]}{{{{ else }}}}{f["user_assistant"]}'
        '{{ end }}'
        f'{{{{ else }}}}{{{{ if $last }}}}{f["assistant_end"]}{{{{ else }}}}{f["assistant_user"]}{{{{ end }}}}'
        '{{ end }}{{ end }}'
    )


def stop_strings(tokenizer: Any) -> list[str]:
    """Every string generation stops on: the end-of-turn token, eos and the token opening a user turn."""
    from chathuman_hf.tokens.turn_end import end_of_turn_ids

    ids = end_of_turn_ids(tokenizer) if tokenizer.chat_template else [tokenizer.eos_token_id]
    return [t for t in dict.fromkeys(tokenizer.convert_ids_to_tokens(ids)) if t]


def context_length(model_dir: Path) -> int | None:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config = config.get("text_config", config)
    return next((int(config[k]) for k in ("max_position_embeddings", "n_positions", "n_ctx") if config.get(k)), None)


def sampling_parameters(model_dir: Path) -> dict[str, Any]:
    """Ollama parameters from ``generation_config.json`` (greedy when it does not sample; ``no_repeat_ngram_size``
    has no Ollama counterpart and is left out)."""
    path = model_dir / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    params = {ours: config[hf] for hf, ours in OLLAMA_SAMPLING.items() if config.get(hf) is not None}
    if not config.get("do_sample", False):
        params = {k: v for k, v in params.items() if k in ("repeat_penalty", "num_predict")} | {"temperature": 0}
    return params


def modelfile_text(model_dir: str | Path, gguf_name: str, tokenizer: Any = None) -> str:
    """The Modelfile for ``gguf_name`` (a path relative to the Modelfile) exported from ``model_dir``."""
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
    lines = [f"# Ollama Modelfile for {model_dir.name} (written by chathuman_hf's GGUF export)",
             f"#   ollama create {model_dir.name.lower()} -f Modelfile", f"FROM ./{gguf_name}", ""]
    if tokenizer.chat_template:
        try:
            lines += ['TEMPLATE """' + go_template(tokenizer) + '"""', ""]
        except IrregularTemplateError as err:
            logger.warning("No Ollama TEMPLATE for %s: %s; write one by hand.", model_dir, err)
            lines += [f"# No TEMPLATE: the chat template could not be read as a Go template ({err}).", ""]
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stop_strings(tokenizer)]
    if (n_ctx := context_length(model_dir)) is not None:
        lines.append(f"PARAMETER num_ctx {n_ctx}")
    lines += [f"PARAMETER {k} {v}" for k, v in sampling_parameters(model_dir).items()]
    return "\n".join(lines) + "\n"


def run_locally_lines(name: str, gguf_name: str | None = None) -> list[str]:
    """The model card's section on running the model with llama.cpp or Ollama (before or after the GGUF export)."""
    gguf = gguf_name or f"{name}-gguf/{name}-gguf-q8_0.gguf"
    lines = ["## Run it locally (llama.cpp, Ollama, LM Studio)", ""]
    if gguf_name is None:
        lines += ["Export a GGUF and an Ollama `Modelfile` with chathuman_hf (`pip install -e \".[gguf]\"`):", "",
                  "```bash", f"python recipes/export.py --model {name} --output {name}-gguf --gguf q8_0", "```", ""]
    else:
        lines += [f"`{gguf_name}` holds the weights, the tokenizer, the chat template and the end-of-turn token; "
                  "`Modelfile` is its Ollama recipe.", ""]
    folder = str(Path(gguf).parent) if gguf_name is None else "."
    return lines + [
        "```bash",
        f'llama-cli -m {gguf} -cnv   # chat in the terminal with the GGUF\'s own template',
        f"llama-server -m {gguf} --jinja --port 8080   # OpenAI-compatible API on /v1/chat/completions",
        f"ollama create {name.lower()} -f {folder}/Modelfile && ollama run {name.lower()}",
        "```",
        "",
    ]


def write_modelfile(model_dir: str | Path, path: str | Path, gguf_name: str) -> Path:
    path = Path(path)
    path.write_text(modelfile_text(model_dir, gguf_name), encoding="utf-8")
    return path
