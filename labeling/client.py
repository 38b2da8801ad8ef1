"""Talking to Label Studio through ``label-studio-sdk``: clear errors, one project per questionnaire.

Every SDK call goes through ``Studio.call`` so that a server that is down, a refused token and an
unknown project each become one clear ``CallQAError`` (CLI exit code, HTTP status) instead of an
SDK traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from callqa.errors import AuthFailed, BadInput, NotFound, ServiceUnavailable
from callqa.schemas import Questionnaire
from callqa.settings import Settings, get_settings
from labeling.config import label_config

log = logging.getLogger(__name__)
T = TypeVar("T")
UNCERTAINTY_SAMPLING = "Uncertainty sampling"


def project_title(questionnaire_name: str, settings: Settings | None = None) -> str:
    prefix = (settings or get_settings()).labelstudio.project_prefix
    return f"{prefix}: {questionnaire_name}"


class Studio:
    """An authenticated Label Studio client (legacy token or personal access token)."""

    def __init__(self, settings: Settings | None = None, *, url: str | None = None, api_key: str | None = None):
        from label_studio_sdk import LabelStudio

        self.settings = settings or get_settings()
        cfg = self.settings.labelstudio
        self.url = (url or cfg.url).rstrip("/")
        self.api_key = api_key or cfg.api_key
        if not self.api_key:
            raise AuthFailed("no Label Studio API key: set CALLQA_LABELSTUDIO__API_KEY")
        try:
            self.sdk = LabelStudio(base_url=self.url, api_key=self.api_key, timeout=cfg.timeout)
        except Exception as exc:  # the SDK validates a JWT's expiry in its constructor
            raise AuthFailed(f"Label Studio API key refused: {_reason(exc)}") from exc

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            if exc.status_code in (401, 403):
                raise AuthFailed(
                    f"Label Studio at {self.url} refused the API key ({exc.status_code}); "
                    "check CALLQA_LABELSTUDIO__API_KEY (a legacy token or a personal access token)"
                ) from exc
            if exc.status_code == 404:
                raise NotFound(f"{what}: not found on Label Studio at {self.url}") from exc
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise BadInput(f"{what}: Label Studio said {exc.status_code}: {_reason(exc)}") from exc
            raise ServiceUnavailable(f"{what}: Label Studio error {exc.status_code}: {_reason(exc)}") from exc
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"Label Studio at {self.url} does not answer ({type(exc).__name__}); start it with `make labelstudio`"
            ) from exc

    def check(self) -> dict[str, Any]:
        """Who we are on the server (fails clearly when it is down or refuses the token)."""
        user = self.call("whoami", self.sdk.users.whoami)
        return {"id": user.id, "email": user.email}

    # ---- projects -------------------------------------------------------------------------
    def find_project(self, title: str) -> Any | None:
        for project in self.call("list projects", self.sdk.projects.list, title=title):
            if project.title == title:
                return project
        return None

    def project(self, title: str) -> Any:
        """An existing project by title, or a clear error listing those that exist."""
        found = self.find_project(title)
        if found is None:
            titles = [p.title for p in self.call("list projects", self.sdk.projects.list)]
            known = ", ".join(repr(t) for t in titles) or "none"
            raise NotFound(f"no Label Studio project {title!r} (projects: {known}); `callqa label push` creates it")
        return found

    def ensure_project(self, questionnaire: Questionnaire) -> tuple[Any, str]:
        """The questionnaire's project, created or its config updated in place; returns (project, action)."""
        title = project_title(questionnaire.name, self.settings)
        config = label_config(questionnaire)
        existing = self.find_project(title)
        if existing is None:
            project = self.call(
                "create project",
                self.sdk.projects.create,
                title=title,
                description=f"callqa questionnaire {questionnaire.name!r}: answers, speakers, errors, call type",
                label_config=config,
                sampling=UNCERTAINTY_SAMPLING,
                show_collab_predictions=True,
            )
            return project, "created"
        if existing.label_config.strip() == config.strip():
            return existing, "unchanged"
        # the server validates the new config against the annotations it already holds
        project = self.call("update labelling config", self.sdk.projects.update, existing.id, label_config=config)
        return project, "updated"

    def tasks(self, project_id: int, *, annotated_only: bool = False) -> Iterator[Any]:
        yield from self.call(
            "list tasks",
            self.sdk.tasks.list,
            project=project_id,
            fields="all",
            only_annotated=annotated_only or None,
            resolve_uri=False,  # our own URIs (s3://...), not Label Studio's proxy links
            page_size=100,
        )


def field_of(obj: Any, key: str, default: Any = None) -> Any:
    """A field of an SDK object or of the plain dict the same endpoint returns elsewhere."""
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


def _reason(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("validation_errors") or body
        return str(detail)[:500]
    return str(body or exc)[:500]
