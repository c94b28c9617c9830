"""/api/v1/auth: register, login, refresh, logout, me, change-password."""

from __future__ import annotations

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from creativeflow.http.auth import AuthServiceDep, ClientInfoDep, CurrentPrincipal
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import api_router
from creativeflow.identity.schemas import ChangePasswordRequest, LoginRequest, RefreshRequest
from creativeflow.shared.api.dtos.user import TokenResponse, UserCreate, UserResponse
from creativeflow.shared.core.exceptions import BaseAPIException

router = api_router(prefix="/auth", tags=["auth"])

_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "description": "Username or email"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            },
        },
    }
}


class UnsupportedMediaType(BaseAPIException):
    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported Media Type"


async def _read_login(request: Request) -> LoginRequest:
    """JSON `{login, password}` or the OAuth2 password form (Swagger's Authorize button)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            return LoginRequest.model_validate_json(await request.body())
        if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            form = await request.form()
            return LoginRequest.model_validate(
                {"login": form.get("username"), "password": form.get("password")}
            )
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        ) from exc
    raise UnsupportedMediaType(
        "Send JSON {login, password} or an application/x-www-form-urlencoded password form"
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserResponse,
    summary="Create an account",
    responses=error_responses(409, 422),
)
async def register(data: UserCreate, service: AuthServiceDep) -> UserResponse:
    return UserResponse.model_validate(await service.register(data))


@router.post(
    "/login",
    response_model=TokenResponse,
    summary="Exchange username/email and password for tokens",
    description="Accepts JSON `{login, password}` or the OAuth2 password form "
    "(`username`, `password`). Repeated failures for one account or address answer 429.",
    openapi_extra=_LOGIN_BODY,
    responses=error_responses(401, 415, 422, 429),
)
async def login(request: Request, service: AuthServiceDep, client: ClientInfoDep) -> TokenResponse:
    credentials = await _read_login(request)
    return await service.login(credentials.login, credentials.password, client)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    summary="Rotate a refresh token into a new token pair",
    description="Each refresh token works once. Presenting a used one revokes its session.",
    responses=error_responses(401, 422),
)
async def refresh(body: RefreshRequest, service: AuthServiceDep) -> TokenResponse:
    return await service.refresh(body.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End this session: its access and refresh tokens stop working",
    responses=error_responses(401),
)
async def logout(principal: CurrentPrincipal, service: AuthServiceDep) -> None:
    await service.logout(principal)


@router.get(
    "/me",
    response_model=UserResponse,
    summary="The authenticated user",
    responses=error_responses(401),
)
async def me(principal: CurrentPrincipal, service: AuthServiceDep) -> UserResponse:
    return UserResponse.model_validate(await service.current_user(principal))


@router.post(
    "/change-password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change the password; every other session is signed out",
    description="Wrong current passwords count as failed sign-ins: repeated ones answer 429.",
    responses=error_responses(401, 409, 422, 429),
)
async def change_password(
    body: ChangePasswordRequest,
    principal: CurrentPrincipal,
    service: AuthServiceDep,
    client: ClientInfoDep,
) -> None:
    await service.change_password(principal, body.current_password, body.new_password, client)
