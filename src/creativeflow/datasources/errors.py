"""The registry's failures as problems."""

from __future__ import annotations

from creativeflow.datasources.base import SourceError, SourceErrorCode
from creativeflow.shared.core.exceptions import (
    BaseAPIException,
    ConflictException,
    NotFoundException,
)


class DataSourceNotFound(NotFoundException):
    code = "DATASOURCE_NOT_FOUND"


class CredentialNotFound(NotFoundException):
    code = "CREDENTIAL_NOT_FOUND"


class DataSourceNameTaken(ConflictException):
    code = "DATASOURCE_NAME_TAKEN"


class CredentialNameTaken(ConflictException):
    code = "CREDENTIAL_NAME_TAKEN"


class CredentialInUse(ConflictException):
    code = "CREDENTIAL_IN_USE"


# How a source's failure is answered: its own code, with the status that says whose fault it
# is (the source's: 502/504; this installation's: 501; the request's: 4xx).
_STATUS = {
    SourceErrorCode.TIMEOUT: 504,
    SourceErrorCode.DRIVER_MISSING: 501,
    SourceErrorCode.NOT_SUPPORTED: 400,
    SourceErrorCode.NOT_FOUND: 404,
    SourceErrorCode.INVALID_OBJECT: 422,
    SourceErrorCode.HOST_REFUSED: 422,
}


class SourceUnavailable(BaseAPIException):
    """Discovery or preview could not be done; `code` is the source's error code."""

    status_code = 502
    title = "Data Source Error"

    def __init__(self, error: SourceError) -> None:
        super().__init__(error.message, code=error.code.value)
        self.status_code = _STATUS.get(error.code, 502)
        if error.code is SourceErrorCode.NOT_FOUND:
            self.title = "Not Found"
