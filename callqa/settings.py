"""All runtime configuration in one pydantic-settings object (env prefix ``CALLQA_``)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

RESOURCES = Path(__file__).parent / "resources"
NOISY_LOGGERS = ("pymorphy3", "matplotlib", "natasha", "navec", "urllib3", "filelock")


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``CALLQA_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CALLQA_", env_nested_delimiter="__", extra="ignore")

    home: Path = Path(".callqa")
    """Working directory for local artifacts (reports, stores, models)."""

    questionnaire: Path = RESOURCES / "questionnaire.yaml"
    lexicon: Path = RESOURCES / "lexicon.yaml"
    zero_shot_config: Path = RESOURCES / "zero_shot.yaml"

    dev_data: list[str] = ["../shared/data/dev_calls*.jsonl"]
    """Glob patterns of the hand-written labelled calls used by ``callqa demo``."""

    log_level: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()


def configure_logging(level: str | None = None) -> None:
    """Set up stderr logging for entry points; library code only calls ``logging.getLogger``."""
    logging.basicConfig(
        level=(level or get_settings().log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
