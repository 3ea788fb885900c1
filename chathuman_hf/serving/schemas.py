"""Request and response bodies of the web chat API and the OpenAI-compatible chat completions API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    index: int | None = Field(default=None, description="The model's reply number (for /page/api/rate, edit, 다시); "
                              "null for a skill's answer.")


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
        """The text parts joined; a part that is not text (an image, audio, a file) is ``ValueError``."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        other = [part.type for part in self.content if part.type != "text"]
        if other:
            raise ValueError(f"a '{other[0]}' content part cannot be read by this text-only model; send text parts")
        return "".join(part.text or "" for part in self.content)


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
    n: int = Field(default=1, ge=1, le=16)
    stop: str | list[str] | None = None
    user: str | None = None
    # sampling fields honoured per request (serving/sampling_params.py); vLLM's extensions after seed
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)  # what torch generators take
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    top_k: int | None = Field(default=None, ge=-1)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    min_tokens: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    speech_level: Literal["none", "plain", "polite", "mirror"] | None = Field(
        default=None, description="반말/존댓말 as on the page; absent: the server's --speech_level.")

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, bias: dict[str, float] | None) -> dict[str, float] | None:
        if bias and any(not -100 <= v <= 100 for v in bias.values()):
            raise ValueError("logit_bias values must be between -100 and 100")
        return bias
