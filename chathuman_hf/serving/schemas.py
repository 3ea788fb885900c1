"""Request and response bodies of the web chat API and the OpenAI-compatible chat completions API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatRequest(BaseModel):
    session_id: str | None = Field(default=None, description="The visitor's session; a new one when absent.")
    message: str
    speech_level: Literal["none", "plain", "polite", "mirror"] | None = Field(
        default=None, description="반말 (plain), 존댓말 (polite), the user's own level (mirror) or none; absent: the "
        "server's --speech_level. Needs a model trained with --speech_level_control.")


class ChatResponse(BaseModel):
    reply: str
    skill: str | None = None
    session_id: str


class ResetRequest(BaseModel):
    session_id: str


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class ChatCompletionRequest(BaseModel):
    """The official request shape; sampling fields map onto the generation preset, others are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[OpenAIMessage]
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int = 1
    stop: str | list[str] | None = None
    user: str | None = None
