"""The text fields of a multipart upload (received by `assets.uploads`, never by FastAPI's own
form parser) validated into a model, and the OpenAPI request body of such an upload."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from creativeflow.shared.core.exceptions import ValidationException

FormT = TypeVar("FormT", bound=BaseModel)


def form_model(
    model: type[FormT], fields: dict[str, list[str]], *, repeatable: Collection[str] = ()
) -> FormT:
    """`fields` (each name with the values sent) as `model`: a field not in `repeatable` sent
    twice, or a value the model refuses, is a 422 naming the field, as a JSON body's would be."""
    values: dict[str, Any] = {}
    for name, given in fields.items():
        if name not in repeatable and len(given) > 1:
            raise ValidationException.for_field(name, "send this field once")
        values[name] = given if name in repeatable else given[0]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        ) from exc


def multipart_body(model: type[BaseModel], file_field: str, file_description: str) -> Any:
    """The `requestBody` of an upload route (`openapi_extra`): a required file part and the
    model's fields beside it."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [file_field],
                    "properties": {
                        file_field: {
                            "type": "string",
                            "format": "binary",
                            "description": file_description,
                        },
                        **model.model_json_schema()["properties"],
                    },
                }
            }
        },
    }
