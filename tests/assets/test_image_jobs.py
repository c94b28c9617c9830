"""Images made by jobs: generated images recorded with their origin, colours and provenance, and
variations and style transfer of a stored image end to end through the in-process runner,
their outputs linked to the job and to the source."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from PIL import ImageChops

from creativeflow.platform import Platform
from tests.assets.images import FOLDER, UPLOAD, Folders, decode, encoded, two_colours
from tests.factories import UserFactory

if TYPE_CHECKING:
    from tests.factories import TestUser


@pytest.fixture
def folders() -> Iterator[Folders]:
    with Folders().registered() as registered:
        yield registered


async def uploaded(user: TestUser, **fields: Any) -> dict[str, Any]:
    data = encoded(two_colours((160, 120)), "PNG")
    response = await user.post(UPLOAD, files={"file": ("a.png", data, "image/png")}, data=fields)
    assert response.status_code == 201, response.text
    return response.json()


async def finished(user: TestUser, platform: Platform, job: dict[str, Any]) -> dict[str, Any]:
    await platform.jobs.drain()
    done = (await user.get(f"/api/v1/jobs/{job['id']}")).json()
    assert done["status"] == "succeeded", done["error"]
    return done


async def test_a_generated_image_records_its_origin_colours_and_provenance(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    job = (
        await user.post(
            "/api/v1/generate/image",
            json={"prompt": "a teal lighthouse", "width": 96, "height": 64, "seed": 7},
        )
    ).json()
    done = await finished(user, platform, job)
    image_id = done["result"]["image_ids"][0]

    metadata = (await user.get(f"/api/v1/images/{image_id}/metadata")).json()

    assert metadata["origin"] == "generated" and metadata["job_id"] == job["id"]
    assert (metadata["width"], metadata["height"]) == (96, 64)
    shares = [colour["share"] for colour in metadata["dominant_colors"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) > 0.5
    assert metadata["dominant_colors"] == done["result"]["images"][0]["dominant_colors"]
    provenance = metadata["provenance"]
    assert provenance["job_id"] == job["id"]
    assert provenance["job_kind"] == "providers.generate_image"
    assert (provenance["provider"], provenance["model"]) == ("local", "local-pillow-1")
    assert provenance["prompt"] == "a teal lighthouse" and provenance["seed"] == 7
    assert provenance["parameters"]["width"] == 96
    assert provenance["source_image_id"] is None and metadata["upload"] is None
    listed = (await user.get("/api/v1/images", params={"origin": "generated"})).json()
    assert [item["id"] for item in listed["items"]] == [image_id]


async def test_variations_are_stored_and_linked_to_the_job_and_the_source(
    users: UserFactory, platform: Platform, folders: Folders
) -> None:
    user = await users.create()
    folder = folders.create(user.id)
    source = await uploaded(user, subject_type=FOLDER, subject_id=str(folder))

    response = await user.post(
        f"{source['url']}/variations",
        json={"count": 2, "strength": 0.3, "seed": 5, "format": "jpeg"},
    )

    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert job["kind"] == "providers.image_variations" and job["status"] == "queued"
    assert (job["subject_type"], job["subject_id"]) == (FOLDER, str(folder))
    done = await finished(user, platform, job)
    result = done["result"]
    assert result["operation"] == "variation" and result["source_image_id"] == source["id"]
    assert result["seeds"] == [5, 6] and len(result["image_ids"]) == 2

    for image_id, seed in zip(result["image_ids"], [5, 6], strict=True):
        metadata = (await user.get(f"/api/v1/images/{image_id}/metadata")).json()
        assert metadata["source_image_id"] == source["id"] and metadata["job_id"] == job["id"]
        assert (metadata["subject_type"], metadata["subject_id"]) == (FOLDER, str(folder))
        assert (metadata["width"], metadata["height"]) == (160, 120)
        assert metadata["origin"] == "generated" and metadata["dominant_colors"]
        assert metadata["format"] == "jpeg"
        provenance = metadata["provenance"]
        assert provenance["operation"] == "variation" and provenance["seed"] == seed
        assert provenance["source_image_id"] == source["id"]
        assert provenance["source_sha256"] == source["sha256"]
        assert provenance["parameters"]["strength"] == 0.3
        picture = await user.get(metadata["url"])
        assert decode(picture.content).size == (160, 120)

    usage = (await user.get(source["metadata_url"])).json()["usage"]
    assert sorted(usage["derived_images"]["ids"]) == sorted(result["image_ids"])
    assert usage["derived_images"]["total"] == 2
    derived = (await user.get("/api/v1/images", params={"source_image_id": source["id"]})).json()
    assert derived["total"] == 2


async def test_a_style_transfer_restyles_the_source_and_links_it(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    source = await uploaded(user)

    response = await user.post(
        f"{source['url']}/style-transfer",
        json={"style": "Noir", "strength": 1.0, "seed": 3},
    )

    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "providers.style_transfer" and job["input"]["style"] == "noir"
    done = await finished(user, platform, job)
    image_id = done["result"]["image_ids"][0]
    metadata = (await user.get(f"/api/v1/images/{image_id}/metadata")).json()
    assert metadata["source_image_id"] == source["id"] and metadata["format"] == "png"
    assert metadata["provenance"]["operation"] == "style_transfer"
    assert done["result"]["metadata"]["style"] == "noir"
    # Noir at full strength is greyscale: the source's red and blue are gone.
    restyled = decode((await user.get(metadata["url"])).content).convert("RGB")
    red, green, blue = restyled.split()
    assert ImageChops.difference(red, green).getbbox() is None
    assert ImageChops.difference(red, blue).getbbox() is None


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("variations", {"count": 5}, "count"),
        ("variations", {"strength": 1.5}, "strength"),
        ("variations", {"format": "gif"}, "format"),
        ("variations", {"style": "noir"}, "style"),
        ("style-transfer", {}, "style"),
        ("style-transfer", {"style": "cubism"}, "style"),
        ("style-transfer", {"palette": ["red"]}, "palette.0"),
        ("style-transfer", {"palette": ["#000000"] * 9}, "palette"),
        ("style-transfer", {"prompt": "x" * 4001}, "prompt"),
    ],
)
async def test_image_job_requests_are_validated_field_by_field(
    users: UserFactory, route: str, body: dict[str, Any], field: str
) -> None:
    user = await users.create()
    source = await uploaded(user)

    response = await user.post(f"{source['url']}/{route}", json=body)

    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]], response.json()


async def test_an_idempotency_key_returns_the_same_job(users: UserFactory) -> None:
    user = await users.create()
    source = await uploaded(user)
    url = f"{source['url']}/variations"
    headers = {**user.headers, "Idempotency-Key": "vary-once"}

    first = await user.client.post(url, json={"count": 2}, headers=headers)
    again = await user.client.post(url, json={"count": 2}, headers=headers)
    changed = await user.client.post(url, json={"count": 3}, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert changed.status_code == 409 and changed.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_a_source_deleted_before_the_job_runs_fails_it_clearly(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    source = await uploaded(user)
    job = (await user.post(f"{source['url']}/variations", json={})).json()
    assert (await user.delete(source["url"])).status_code == 204

    await platform.jobs.drain()

    failed = (await user.get(f"/api/v1/jobs/{job['id']}")).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "SOURCE_IMAGE_NOT_FOUND"


async def test_deleting_the_source_keeps_what_was_made_from_it(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    source = await uploaded(user)
    job = (await user.post(f"{source['url']}/variations", json={})).json()
    variation_id = (await finished(user, platform, job))["result"]["image_ids"][0]

    assert (await user.delete(source["url"])).status_code == 204

    metadata = (await user.get(f"/api/v1/images/{variation_id}/metadata")).json()
    assert metadata["source_image_id"] is None
    assert metadata["provenance"]["source_image_id"] == source["id"]
    assert (await user.get(metadata["url"])).status_code == 200
