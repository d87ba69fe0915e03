"""The service's settings: one frozen record, passed to every worker through the environment.

``uvicorn`` starts each worker process by importing the app, so settings cannot
be handed over as Python objects; :meth:`Settings.to_env` serialises them into
``DL2LLM_SERVE_SETTINGS`` and :func:`dl2llm.serve.app.create_app_from_env` reads
them back. The admin key is *not* part of the settings: it is read from
``DL2LLM_API_KEY`` by each worker, so it never lands in a log or a results file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from dl2llm.rag import DEFAULT_GENERATOR

SETTINGS_ENV = "DL2LLM_SERVE_SETTINGS"
API_KEY_ENV = "DL2LLM_API_KEY"


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to load models and serve."""

    data_dir: str
    docs: str | None = None  # a folder to index on first start (None: the Python docs)
    llm: str | None = None  # a model folder or hub name (None: offline SmolLM2)
    adapter: str | None = None  # a LoRA adapter file (dl2llm.finetune.lora.save_lora) for the LLM
    llm_url: str | None = None  # an OpenAI-compatible server running the LLM (dl2llm.rag.remote)
    encoder: str | None = None  # None: offline all-MiniLM-L6-v2
    vector_store: str | None = None  # a Milvus URI (see dl2llm.rag.milvus); None: in-process
    onnx_queries: bool = True  # embed questions with ONNX Runtime (same vectors, ~2x faster)
    generator: str = DEFAULT_GENERATOR  # evidence (no LLM), llm (SmolLM2 phrases it) or previous
    build_missing: bool = True  # build the index on first start when it is absent
    max_new_tokens: int = 128
    max_body_bytes: int = 256 * 1024
    max_concurrent: int = 8  # questions answered at once before 429 + Retry-After
    answer_timeout_s: float = 120.0  # an answer still generating after this is stopped

    def to_env(self) -> dict[str, str]:
        """``{SETTINGS_ENV: json}`` for a worker's environment."""
        return {SETTINGS_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings a launcher put in the environment."""
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise RuntimeError(
                f"{SETTINGS_ENV} is not set: start with capstone/deployment_script.py"
            )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in known})


def admin_key() -> str | None:
    """The admin API key from ``DL2LLM_API_KEY`` (``None`` when unset or empty)."""
    return os.environ.get(API_KEY_ENV) or None
