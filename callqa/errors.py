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
