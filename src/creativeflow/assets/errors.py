"""The images API's failures, each a shared exception with a stable code."""

from __future__ import annotations

from creativeflow.shared.core.exceptions import (
    BaseAPIException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)


class ImageNotFound(NotFoundException):
    code = "IMAGE_NOT_FOUND"


class ImageNotChangeable(PermissionDeniedException):
    """The caller may read the image (through its subject) but not delete or derive from it."""

    code = "IMAGE_NOT_CHANGEABLE"


class UploadTooLarge(BaseAPIException):
    status_code = 413
    code = "UPLOAD_TOO_LARGE"
    title = "Content Too Large"


class ImageTooManyPixels(BaseAPIException):
    """Small on the wire, huge once decoded: a decompression bomb, or just too big to handle."""

    status_code = 413
    code = "IMAGE_TOO_MANY_PIXELS"
    title = "Content Too Large"


class UnsupportedImage(BaseAPIException):
    """Not a JPEG, PNG or WebP image, judged by its bytes (or one Pillow cannot read)."""

    status_code = 415
    code = "UNSUPPORTED_IMAGE_TYPE"
    title = "Unsupported Media Type"


class MultipartRequired(BaseAPIException):
    status_code = 415
    code = "MULTIPART_REQUIRED"
    title = "Unsupported Media Type"


class MalformedUpload(ValidationException):
    """The multipart body itself is broken (no boundary, cut off, a part without a name)."""

    code = "MALFORMED_MULTIPART"

    def __init__(self, message: str) -> None:
        super().__init__(f"body: {message}", errors=[{"field": "body", "message": message}])


class StorageUnavailableError(BaseAPIException):
    """The object storage could not be reached or refused the operation: try again later."""

    status_code = 503
    code = "STORAGE_UNAVAILABLE"
    title = "Service Unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "5"})
