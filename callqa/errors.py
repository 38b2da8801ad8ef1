"""One exception hierarchy: the API maps it to 4xx, the CLI to a message and an exit code."""


class CallQAError(Exception):
    """Base of every error callqa raises on purpose."""

    exit_code = 1
    http_status = 500


class BadInput(CallQAError):  # noqa: N818 - the name is the product vocabulary
    """The caller gave something we cannot use: a missing file, a malformed record, bad values."""

    exit_code = 2
    http_status = 422


class ConfigError(CallQAError):
    """A configuration file (questionnaire, lexicon, model config) is invalid."""

    exit_code = 3
    http_status = 500


class ModelNotFound(CallQAError):  # noqa: N818
    """A model name, path or registry reference does not resolve to a loadable model."""

    exit_code = 4
    http_status = 404


class NotFound(CallQAError):  # noqa: N818
    """Something named by the caller does not exist: a project, a task, a call id."""

    exit_code = 4
    http_status = 404


class ServiceUnavailable(CallQAError):  # noqa: N818
    """A server callqa needs (Label Studio, MLflow, S3, Triton) does not answer."""

    exit_code = 5
    http_status = 503


class AuthFailed(CallQAError):  # noqa: N818
    """A server refused our credentials (wrong or expired token, wrong keys)."""

    exit_code = 6
    http_status = 401


class Conflict(CallQAError):  # noqa: N818
    """The request contradicts what is already stored: the same call id sent with different audio."""

    exit_code = 2
    http_status = 409
