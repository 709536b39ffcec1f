"""One error hierarchy for the whole product, so callers catch by meaning, not by ``ValueError``.

* :class:`ConfigurationError` — the org cannot run as configured (a mapping file, a missing key or URL,
  an unusable data folder): the CLI exits 2 before any API call.
* :class:`ApiError` — an API answered with an error or could not be reached (subclasses in
  ``clients.http``). Its text never holds a key or token.
* :class:`DataError` — a record or a stored file cannot be used as it is (an unresolved reference, a
  busy or corrupt staging file): the record is failed or quarantined with the reason, the run goes on.
"""

from __future__ import annotations


class BloomPipelineError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigurationError(BloomPipelineError):
    """The configuration (org YAML, environment, data folder) cannot be used: exit status 2."""


class UnusableFileError(ConfigurationError):
    """A file or folder of the data folder cannot be used (corrupt, another kind of file, not writable).

    Its text is one line naming the file. The staging file, the journal and the rate-budget files are caches
    and crash records: moving a corrupt one aside is safe, because what was synced is found again in
    Bloomerang and the sources."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


MOVE_ASIDE = "move it aside and run again (what was synced is found again in Bloomerang and the sources)"


class ApiError(BloomPipelineError):
    """An API answered with an error (or could not be reached). Never holds a key or token."""

    def __init__(self, status: int | None, message: str, method: str, path: str, api: str = "api") -> None:
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.api = api
        super().__init__(self._text())

    def _text(self) -> str:
        status = self.status if self.status is not None else "no answer"
        return f"{self.api} {self.method} {self.path} -> {status}: {self.message}"


class DataError(BloomPipelineError):
    """A record or a stored file cannot be used as it is."""
