"""A minimal client for OpenAI-compatible chat endpoints (vLLM, Ollama, llama.cpp server, cloud APIs), streamed.

Why hand-rolled on httpx rather than a vendor SDK: the protocol is one POST with server-sent events, httpx is already a
dependency, and the service must not pull a cloud SDK to talk to a local vLLM.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

__all__ = ["LLMConfig", "LLMUnavailable", "stream_chat", "chat"]

logger = logging.getLogger(__name__)


class LLMUnavailable(RuntimeError):
    """The endpoint could not be reached, refused the request or answered something that is not a chat stream."""


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    temperature: float = 0.1
    max_tokens: int = 600

    @classmethod
    def from_settings(cls) -> LLMConfig | None:
        """The configured endpoint (``VITALENS_LLM_BASE_URL``, ``VITALENS_LLM_MODEL``…), or None when unset."""
        from vitalens.config import get_settings

        s = get_settings()
        if not s.llm_base_url:
            return None
        return cls(base_url=s.llm_base_url, model=s.llm_model, api_key=s.llm_api_key, timeout_s=s.llm_timeout_s)


def stream_chat(config: LLMConfig, messages: list[dict[str, str]]) -> Iterator[str]:
    """Yield the answer's text deltas as the endpoint streams them.

    Raises:
        LLMUnavailable: connection error, timeout, non-2xx status, or a malformed stream.
    """
    url = config.base_url.rstrip("/") + "/chat/completions"
    headers = {"Accept": "text/event-stream"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    body = {
        "model": config.model,
        "messages": messages,
        "stream": True,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
    }
    try:
        with (
            httpx.Client(timeout=config.timeout_s) as client,
            client.stream("POST", url, json=body, headers=headers) as r,
        ):
            if r.status_code >= 400:
                raise LLMUnavailable(f"the language model endpoint answered HTTP {r.status_code}")
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    choice = json.loads(data)["choices"][0]
                except (ValueError, KeyError, IndexError) as exc:
                    raise LLMUnavailable("the language model endpoint sent a malformed stream") from exc
                delta = (choice.get("delta") or {}).get("content") or ""
                if delta:
                    yield delta
    except httpx.HTTPError as exc:
        raise LLMUnavailable(f"the language model endpoint could not be reached ({type(exc).__name__})") from exc


def chat(config: LLMConfig, messages: list[dict[str, str]]) -> str:
    """The whole streamed answer as one string."""
    return "".join(stream_chat(config, messages))
