"""obstore's failures against S3 as SourceErrors. obstore reports most failures as one class
with a long text: the S3 error document (`<Code>NoSuchBucket</Code>`) and the HTTP client's
debug report of the cause (`kind: ConnectionRefused`, `InvalidCertificate(UnknownIssuer)`).
Both are read for the reason; messages never carry that text, only the S3 error code and our
own words (the text names URLs, never credentials, but it is long and unreadable)."""

from __future__ import annotations

import re

from creativeflow.datasources.base import SourceError, SourceErrorCode, network_error

_ERROR_CODE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")
_STATUS = re.compile(r"status code: (\d{3})")
_NOT_HTTP = re.compile(r"hyper::Error\(\s*Parse\(")
# How the HTTP client (rustls under reqwest) reports TLS failures in obstore's text.
_CERTIFICATE = re.compile(r"InvalidCertificate\(\s*(\w+)")
# (Markers with their parenthesis: keys in the quoted URLs are percent-encoded, so an object
# named like one cannot pass for it.)
_TLS_MARKERS = ("AlertReceived(", "InvalidMessage(", "PeerIncompatible(", "PeerMisbehaved(")
_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
        "AuthFailure",
    }
)
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem"})
_REGION_CODES = frozenset(
    {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"}
)


def s3_error(
    exc: BaseException, *, target: str, bucket: str, region: str, missing: str
) -> SourceError:
    """`exc` from talking to `target` about `bucket`; `missing` is the message when the object
    asked for does not exist."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    text = str(exc)
    found = _ERROR_CODE.search(text)
    code = found.group(1) if found else None
    if code == "NoSuchBucket":
        return SourceError(SourceErrorCode.NOT_FOUND, f"there is no bucket {bucket}")
    if code == "NoSuchKey" or isinstance(exc, FileNotFoundError):
        return SourceError(SourceErrorCode.NOT_FOUND, missing)
    if code in _AUTH_CODES or isinstance(exc, UnauthenticatedError):
        return SourceError(
            SourceErrorCode.AUTH_FAILED,
            f"{target} did not accept the access key ({code or 'unauthenticated'})",
        )
    if code in _DENIED_CODES or isinstance(exc, PermissionDeniedError):
        return SourceError(
            SourceErrorCode.PERMISSION_DENIED,
            f"{target} denied access to the bucket {bucket} ({code or 'forbidden'})",
        )
    if code in _REGION_CODES or "incorrectly configured region" in text:
        return SourceError(
            SourceErrorCode.ERROR,
            f"the bucket {bucket} is not in the region {region}; "
            "set `region` to the bucket's region",
        )
    if "kind: ConnectionRefused" in text:
        return SourceError(SourceErrorCode.CONNECTION_REFUSED, f"{target} refused the connection")
    if "kind: Timeout" in text or "source: TimedOut" in text or isinstance(exc, TimeoutError):
        return SourceError(SourceErrorCode.TIMEOUT, f"{target} did not answer in time")
    if '"dns error"' in text:
        return SourceError(SourceErrorCode.HOST_NOT_FOUND, f"{target} does not resolve")
    certificate = _CERTIFICATE.search(text)
    if certificate is not None:
        return SourceError(
            SourceErrorCode.TLS_ERROR,
            f"{target}: certificate not trusted ({certificate.group(1)})",
        )
    if any(marker in text for marker in _TLS_MARKERS):
        return SourceError(SourceErrorCode.TLS_ERROR, f"{target}: TLS failed")
    status = _STATUS.search(text)
    if status is not None:
        return SourceError(
            SourceErrorCode.ERROR,
            f"{target} answered HTTP {status.group(1)}" + (f" ({code})" if code else ""),
        )
    if "IncompleteMessage" in text or "kind: ConnectionReset" in text:
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} closed the connection")
    if _NOT_HTTP.search(text):
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} does not speak HTTP")
    if isinstance(exc, OSError):
        return network_error(exc, target)
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")
