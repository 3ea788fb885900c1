"""Chat sessions over a saved chat model: history window, generation presets, streaming, skills first.

May import every layer below it (core … publishing, skills); not serving.
"""

from chathuman_hf.chat.admission import EngineBusy
from chathuman_hf.chat.engine import ChatEngine
from chathuman_hf.chat.presets import DEFAULT_BANNED_WORDS, PRESETS, GenerationPreset, get_preset
from chathuman_hf.chat.replies import EMPTY_REPLY, Generation
from chathuman_hf.chat.session import ChatSession, Reply

__all__ = ["DEFAULT_BANNED_WORDS", "EMPTY_REPLY", "PRESETS", "ChatEngine", "ChatSession", "EngineBusy", "Generation",
           "GenerationPreset", "Reply", "get_preset"]
