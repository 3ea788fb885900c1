"""The models one server answers with (``serve.py --model A --model B``): each with its engine, its request
preparation and its feedback log, picked per request by the ``model`` field; the first is the default (and the
page's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chathuman_hf.chat import ChatEngine
from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.serving.chat_request import ChatApi
from chathuman_hf.serving.errors import ApiError


@dataclass
class ServedModel:
    engine: ChatEngine
    chat_api: ChatApi
    feedback: FeedbackLog | None = None  # this model's lines (its name and revision) in the server's feedback log

    @property
    def name(self) -> str:
        return self.engine.name


class ServedModels:
    """Models by name (``name`` or Ollama's ``name:latest``); an absent or empty ``model`` is the first one."""

    def __init__(self, models: Sequence[ServedModel]) -> None:
        if not models:
            raise ValueError("a server needs at least one model.")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"two served models have the same name ({', '.join(names)}): give them distinct names.")
        self.all = list(models)
        self.default = self.all[0]
        self.by_name = {m.name: m for m in self.all}

    def __iter__(self):
        return iter(self.all)

    def listed(self) -> str:
        return ", ".join(f"'{m.name}'" for m in self.all)

    def get(self, name: str | None) -> ServedModel | None:
        """The model ``name`` asks for (``None`` for one not served here)."""
        if name in (None, ""):
            return self.default
        if not isinstance(name, str):
            return None
        return self.by_name.get(name) or self.by_name.get(name.removesuffix(":latest"))

    def pick(self, name: str | None, listing: str = "GET /v1/models") -> ServedModel:
        """The model ``name`` asks for; one not served here is a 404 ``model_not_found``, as OpenAI answers (no silent
        stand-in)."""
        model = self.get(name)
        if model is None:
            raise ApiError(404, f"The model '{str(name)[:100]}' does not exist here; this server serves "
                           f"{self.listed()} ({listing}).", param="model", type="not_found_error",
                           code="model_not_found")
        return model


def distinct_names(dirs: Sequence[str | Path]) -> list[str]:
    """A name per model directory: its folder name, with as many parent folders as it takes to tell them apart
    (``runs/sft/final`` and ``runs/kto/final``: ``sft/final`` and ``kto/final``)."""
    parts = [Path(d).absolute().parts for d in dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    raise ValueError(f"the same model directory is given twice ({', '.join(map(str, dirs))}).")


def open_engines(first: str | Path | ChatEngine, more: Sequence[str | Path | ChatEngine] = (),
                 **load: Any) -> list[ChatEngine]:
    """The engines of ``first`` and ``more`` (loaded engines kept, directories loaded with ``load``), directories
    named apart by ``distinct_names``."""
    sources = [first, *more]
    dirs = [s for s in sources if not isinstance(s, ChatEngine)]
    names = iter(distinct_names(dirs) if dirs else [])
    engines = []
    for source in sources:
        if not isinstance(source, ChatEngine):
            source = ChatEngine.from_pretrained(source, **load)
            source.name = next(names)
        engines.append(source)
    return engines
