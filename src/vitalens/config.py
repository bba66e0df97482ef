"""One settings object for every entry point (CLI, API, workers), read from ``VITALENS_*`` variables.

Why one class: the same deployment knobs (database, blob folder, model folder, memory budget, secrets) are read
by the web app, the Celery workers and the CLI; a single validated source stops them drifting apart.
"""

from __future__ import annotations

import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, computed_field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "DEFAULT_SECRET", "SECRET_FILE", "ensure_secret_key", "MIN_SECRET_CHARS"]

logger = logging.getLogger(__name__)

#: The placeholder older versions shipped as the default signing key: refused in every environment, because anyone
#: who has read the source could forge tokens with it.
DEFAULT_SECRET = "change-me-dev-only-secret"  # noqa: S105 - refused by the validator below
#: File under ``data_dir`` holding the signing key generated on first start when ``VITALENS_SECRET_KEY`` is unset.
SECRET_FILE = "secret_key"
MIN_SECRET_CHARS = 32


def _default_models_dir() -> Path:
    """The bundled ``models/`` folder of a source checkout, else ``./models``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "models").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "models"
    return Path.cwd() / "models"


class Settings(BaseSettings):
    """Deployment configuration; every field maps to ``VITALENS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="VITALENS_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "prod"] = "dev"
    secret_key: str | None = Field(
        default=None,
        description="HS256 signing key (≥ 32 characters); unset: generated into data_dir/secret_key on first start.",
    )
    data_dir: Path = Field(default=Path("var"), description="Root for the SQLite file and local blobs.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite under data_dir if unset.")
    blob_dir: Path | None = None
    blob_url: str | None = Field(
        default=None,
        description="Blob store location overriding blob_dir: s3://bucket/prefix for S3-compatible object storage.",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible server, e.g. http://minio:9000.")
    models_dir: Path = Field(default_factory=_default_models_dir)
    model_cache_mb: int = Field(default=1024, ge=16, description="Memory budget of the model LRU cache.")
    max_upload_mb: float = Field(default=25.0, gt=0, le=512)
    max_image_pixels: int = Field(default=40_000_000, ge=4096, description="Decompression-bomb guard.")
    broker_url: str | None = Field(default=None, description="Celery broker (Redis); in-process jobs if unset.")
    access_token_minutes: int = Field(default=15, ge=1, le=240)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    cors_origins: list[str] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = Field(default="cpu", description="torch device for inference: cpu, cuda, cuda:0, auto.")
    # The study assistant's optional language model: any OpenAI-compatible endpoint (vLLM, Ollama, a cloud API).
    # Unset: answers are assembled from the retrieved sources by templates, and say so.
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible base URL, e.g. http://gpu:8000/v1.")
    llm_model: str = Field(default="", description="Model name sent to the endpoint.")
    llm_api_key: str | None = Field(default=None, description="Bearer token for the endpoint, if it needs one.")
    llm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    # Dictation: uploaded recordings transcribed by faster-whisper tiny.en.
    max_audio_mb: float = Field(default=10.0, gt=0, le=100)
    max_audio_seconds: float = Field(default=180.0, gt=0, le=1800)
    job_lease_seconds: float = Field(
        default=60.0, ge=0.5, le=3600, description="A running job's claim lapses unless its heartbeat renews it."
    )
    job_sweep_seconds: float | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="Seconds between sweeps re-queuing analyses whose lease lapsed (the API and every Celery worker "
        "sweep); unset: one lease; 0: only at start-up.",
    )
    warm_models: bool | None = Field(
        default=None,
        description="Load the bundled models in the background at start-up so the first analyses do not wait for "
        "them; unset: on, except in the test environment.",
    )
    job_memory_mb: float | None = Field(
        default=4096.0,
        gt=0,
        description="Growth of a worker's resident memory (MB) during a job that quarantines it; unset: no guard.",
    )
    # State shared by API replicas: rate-limit windows and login-lockout counters. Unset: each process keeps its
    # own rate-limit windows in memory and the lockout counters live in the database (one process, one machine).
    redis_url: str | None = Field(
        default=None,
        description="Redis for rate limits and login lockout shared by API replicas, e.g. redis://redis:6379/0.",
    )
    redis_prefix: str = Field(
        default="vitalens",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every key vitalens writes in that Redis (installations sharing one Redis differ).",
    )
    # Single sign-on: OpenID Connect (authorization code + PKCE) beside local accounts. Unset issuer: local only.
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Provider issuer URL (its /.well-known/openid-configuration is read)."
    )
    oidc_client_id: str | None = Field(default=None, description="Client id registered at the provider.")
    oidc_client_secret: str | None = Field(default=None, description="Client secret (confidential client).")
    oidc_scopes: str = Field(default="openid email profile", description="Scopes asked for; must include openid.")
    oidc_display_name: str = Field(default="single sign-on", max_length=80, description="Shown on the login button.")
    oidc_redirect_url: str | None = Field(
        default=None,
        description="Callback URL registered at the provider; unset: derived from the request (set it behind a "
        "proxy), e.g. https://vitalens.example.org/api/v1/auth/oidc/callback.",
    )
    oidc_site_claim: str = Field(default="vitalens_site", description="ID-token claim naming the user's site.")
    oidc_role_claim: str = Field(
        default="vitalens_role", description="ID-token claim (a string or a list, e.g. groups) giving the role."
    )
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict,
        description="Role-claim values to vitalens roles (clinician, reviewer, admin), e.g. "
        '{"eye-clinic-doctors": "clinician"}; the role names themselves always map to themselves.',
    )
    oidc_provision: bool = Field(
        default=False,
        description="Create an account on first sign-in from the site and role claims; off: a site administrator "
        "creates the account (same e-mail) and its site and role are the administrator's mapping.",
    )
    # Stateless predictions (POST /api/v1/predict/...): signed-in users only unless opened for a local demo,
    # rate-limited per client, and bounded per process so they never queue in front of clinical jobs.
    public_predict: bool = Field(
        default=False,
        description="Let anyone call the predict routes without signing in (a local demo); off: a signed-in user.",
    )
    predict_rate_limit: str = Field(
        default="30/minute",
        pattern=r"^\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?$",
        description="Predictions per client IP, in `limits` notation (10/minute, 1000 per day).",
    )
    predict_concurrency: int = Field(
        default=2, ge=1, le=64, description="Predictions run at once per API process; more are answered 503."
    )
    predict_retry_after_s: int = Field(default=5, ge=1, le=3600, description="Retry-After of a 503 'busy' answer.")
    signoff_require_positive_review: bool = Field(
        default=False,
        description="Refuse sign-off while any positive finding is unreviewed (otherwise the signer confirms "
        "signing with unreviewed findings, and the report records how many were reviewed).",
    )
    job_memory_hard_kill: bool = Field(
        default=True, description="Stop the worker past 1.5 × job_memory_mb (the quarantined job is never retried)."
    )

    @model_validator(mode="after")
    def _enforce_non_default_secret(self) -> Settings:
        if self.secret_key is None:
            return self
        if self.secret_key.strip() == DEFAULT_SECRET:
            raise ValueError(
                "VITALENS_SECRET_KEY is the built-in placeholder, which is public; unset it (a random key is then "
                "generated into the data directory) or set your own "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if len(self.secret_key) < MIN_SECRET_CHARS:
            raise ValueError(f"VITALENS_SECRET_KEY must be at least {MIN_SECRET_CHARS} characters")
        return self

    @property
    def signing_key(self) -> str:
        """The token signing key; :func:`ensure_secret_key` must have resolved it (the app factory does)."""
        if self.secret_key is None:
            raise RuntimeError("no signing key: call vitalens.config.ensure_secret_key(settings) first")
        return self.secret_key

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'vitalens.db').resolve()}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blob_root(self) -> Path:
        return self.blob_dir if self.blob_dir is not None else self.data_dir / "blobs"

    @property
    def blob_location(self) -> str:
        """Where blobs live: ``blob_url`` (``s3://...``) when set, else the local blob folder."""
        return self.blob_url or str(self.blob_root)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def ensure_secret_key(settings: Settings) -> Settings:
    """``settings`` with a signing key: its own, else the one in ``data_dir/secret_key`` (created on first start).

    Why generate rather than default: a built-in key is public, so tokens signed with it can be forged by anyone
    (Django's ``startproject`` and Grafana's first start generate one for the same reason). The file is created
    with mode 0600 and exclusively (two processes starting together end up with the same key); replicas behind a
    load balancer must share the data directory or set ``VITALENS_SECRET_KEY``.

    Raises:
        ValueError: the file exists but holds a key that is too short or the built-in placeholder.
    """
    if settings.secret_key is not None:
        return settings
    path = Path(settings.data_dir) / SECRET_FILE
    created = False
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race: read its key below
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(48) + "\n")
            created = True
    key = path.read_text(encoding="ascii").strip()
    if key.strip() == DEFAULT_SECRET or len(key) < MIN_SECRET_CHARS:
        raise ValueError(f"{path} holds an unusable signing key (too short or the public placeholder); delete it")
    resolved = settings.model_copy(update={"secret_key": key})
    if created:
        logger.warning(
            "VITALENS_SECRET_KEY is not set: generated a random signing key in %s (keep the file private; replicas "
            "must share it or set VITALENS_SECRET_KEY)",
            path.resolve(),
        )
    else:
        logger.info("VITALENS_SECRET_KEY is not set: using the signing key in %s", path.resolve())
    return resolved


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process (cached); tests build their own ``Settings(...)`` instead."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Settings()
