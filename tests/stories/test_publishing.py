"""Comic exports: `export?format=pdf|cbz` answered at once for a small project, as a
`stories.export` job for a large one (or when asked), the file downloaded from
`/projects/{id}/exports/{job_id}` and deleted with its job."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import timedelta
from typing import Any

import pypdf
import pytest
from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.types import utcnow
from creativeflow.jobs.models import Job
from creativeflow.platform import Platform
from tests.factories import TestUser as SignedInUser
from tests.factories import UserFactory
from tests.jobs.live import submit
from tests.stories.helpers import chapter, panel, project, scene

BASE = "/api/v1/projects"
RED = (220, 20, 30)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Projects of up to four panels are exported in the request, larger ones by a job."""
    return {"story_export_inline_panels": 4}


async def red_image(user: SignedInUser, project_id: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), RED).save(buffer, "PNG")
    response = await user.post(
        "/api/v1/images/upload",
        files={"file": ("red.png", buffer.getvalue(), "image/png")},
        data={"subject_type": "project", "subject_id": project_id},
    )
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


async def comic(user: SignedInUser, *, panels: int = 3) -> dict[str, Any]:
    """A one-chapter comic: the first panel full width with a red image, the others
    placeholders, with Korean and English lettering."""
    book = await project(user, "Neon Rain")
    await user.patch(f"{BASE}/{book['id']}", json={"logline": "A courier in a drowned city"})
    one = await chapter(user, book["id"], "First Light")
    opening = await scene(user, one["id"], "The docks")
    red = await red_image(user, book["id"])
    for n in range(panels):
        made = await panel(
            user,
            opening["id"],
            f"Mina at the docks, take {n + 1}",
            layout_size="full_width" if n == 0 else "third",
            dialogue=[
                {"kind": "caption", "text": "Seoul, 2049."},
                {"kind": "speech", "text": f"안녕하세요, panel {n + 1}!"},
            ],
        )
        if n == 0:
            changed = await user.patch(
                f"/api/v1/panels/{made['id']}", json={"selected_image_id": red}
            )
            assert changed.status_code == 200, changed.text
    return book


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


async def test_a_small_project_exports_as_a_pdf_with_its_lettering_in_an_embedded_font(
    users: UserFactory,
) -> None:
    user = await users.create()
    book = await comic(user)

    response = await user.get(f"{BASE}/{book['id']}/export", params={"format": "pdf"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="neon-rain.pdf"' in response.headers["content-disposition"]
    pages, text = pdf_text(response.content)
    # Title page, chapter page, one page of panels (a full-width tier and two thirds).
    assert pages == 3
    for words in ("Neon Rain", "First Light", "Seoul, 2049.", "안녕하세요, panel 1!", "panel 3!"):
        assert words in text
    # The image-less panels are labelled placeholders; the one with an image is not.
    assert "Chapter 1 · Scene 1 · Panel 2" in text and "Panel 1\n" not in text
    assert "Mina at the docks, take 3" in text
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    fonts = [font.get_object() for font in reader.pages[2]["/Resources"]["/Font"].values()]
    assert fonts and all(
        "NanumGothic" in font["/BaseFont"] and "/FontFile2" in font["/FontDescriptor"]
        for font in fonts
    )
    images = reader.pages[2].images
    assert len(images) == 1
    assert images[0].image.convert("RGB").getpixel((5, 5)) == pytest.approx(RED, abs=12)


async def test_a_cbz_has_one_image_per_page_and_comic_info(users: UserFactory) -> None:
    user = await users.create()
    book = await comic(user)
    await user.patch(f"{BASE}/{book['id']}", json={"reading_direction": "rtl"})

    response = await user.get(f"{BASE}/{book['id']}/export", params={"format": "cbz"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.comicbook+zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert names == ["page-0001.jpg", "page-0002.jpg", "page-0003.jpg", "ComicInfo.xml"]
    info = archive.read("ComicInfo.xml").decode()
    assert "<Title>Neon Rain</Title>" in info and "<PageCount>3</PageCount>" in info
    assert "<Manga>YesAndRightToLeft</Manga>" in info
    page = Image.open(io.BytesIO(archive.read("page-0003.jpg"))).convert("RGB")
    width, height = page.size
    # The red panel fills the top tier; its middle is red, the margin white.
    assert page.getpixel((width // 2, height // 5)) == pytest.approx(RED, abs=20)
    assert page.getpixel((3, 3)) == pytest.approx((255, 255, 255), abs=5)


async def test_right_to_left_puts_a_tiers_first_panel_on_the_right(users: UserFactory) -> None:
    user = await users.create()
    book = await project(user, "Manga")
    one = await chapter(user, book["id"], "One")
    opening = await scene(user, one["id"], "Opening")
    red = await red_image(user, book["id"])
    first = await panel(user, opening["id"], "first", layout_size="quarter")
    await panel(user, opening["id"], "second", layout_size="quarter")
    await user.patch(f"/api/v1/panels/{first['id']}", json={"selected_image_id": red})

    async def first_panel_side() -> str:
        archive = zipfile.ZipFile(
            io.BytesIO((await user.get(f"{BASE}/{book['id']}/export?format=cbz")).content)
        )
        page = Image.open(io.BytesIO(archive.read("page-0003.jpg"))).convert("RGB")
        width, height = page.size
        left = page.getpixel((width // 4, height // 4))
        return "left" if left == pytest.approx(RED, abs=20) else "right"

    assert await first_panel_side() == "left"
    changed = await user.patch(f"{BASE}/{book['id']}", json={"reading_direction": "rtl"})
    assert changed.status_code == 200, changed.text
    assert await first_panel_side() == "right"


async def test_a_large_export_runs_as_a_job_and_its_file_is_downloaded(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    book = await comic(user)

    queued = await user.get(
        f"{BASE}/{book['id']}/export", params={"format": "pdf", "background": "true"}
    )

    assert queued.status_code == 202, queued.text
    body = queued.json()
    job_id = body["job"]["id"]
    assert body["job"]["kind"] == "stories.export" and body["job"]["subject_id"] == book["id"]
    assert queued.headers["location"] == f"/api/v1/jobs/{job_id}"
    download = body["download_url"]
    assert download == f"{BASE}/{book['id']}/exports/{job_id}"
    early = await user.get(download)
    assert early.status_code == 409 and early.json()["code"] == "JOB_NOT_FINISHED"

    await platform.jobs.drain()
    job = (await user.get(f"/api/v1/jobs/{job_id}")).json()
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["pages"] == 3 and job["result"]["warnings"] == []
    fetched = await user.get(download)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "application/pdf"
    assert pdf_text(fetched.content)[0] == 3
    assert len(fetched.content) == job["result"]["size_bytes"]


async def test_more_panels_than_the_inline_limit_make_a_job(users: UserFactory) -> None:
    user = await users.create()
    small, large = await comic(user, panels=4), await comic(user, panels=5)

    assert (await user.get(f"{BASE}/{small['id']}/export?format=cbz")).status_code == 200
    assert (await user.get(f"{BASE}/{large['id']}/export?format=cbz")).status_code == 202


async def test_members_export_and_others_get_404(users: UserFactory, platform: Platform) -> None:
    owner, viewer, stranger = await users.create(), await users.create(), await users.create()
    book = await comic(owner, panels=1)
    shared = await owner.post(
        f"{BASE}/{book['id']}/members", json={"user": viewer.username, "role": "viewer"}
    )
    assert shared.status_code == 201
    url = f"{BASE}/{book['id']}/export"

    assert (await viewer.get(url, params={"format": "pdf"})).status_code == 200
    queued = await viewer.get(url, params={"format": "cbz", "background": "true"})
    assert queued.status_code == 202, queued.text
    await platform.jobs.drain()
    download = queued.json()["download_url"]
    assert (await viewer.get(download)).status_code == 200
    assert (await owner.get(download)).status_code == 200  # the project's job, its file

    for attempt in (
        await stranger.get(url, params={"format": "pdf"}),
        await stranger.get(download),
    ):
        assert attempt.status_code == 404
    # Another project's route with this job: 404 too.
    other = await project(stranger, "Other")
    elsewhere = await stranger.get(f"{BASE}/{other['id']}/exports/{queued.json()['job']['id']}")
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "JOB_NOT_FOUND"
    mine = await owner.get(f"{BASE}/{(await project(owner, 'Mine'))['id']}/exports/{uuid.uuid4()}")
    assert mine.status_code == 404


async def test_bad_formats_and_unknown_projects(users: UserFactory) -> None:
    user = await users.create()
    book = await comic(user, panels=1)

    bad = await user.get(f"{BASE}/{book['id']}/export", params={"format": "docx"})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["format"]
    missing = await user.get(f"{BASE}/{uuid.uuid4()}/export", params={"format": "pdf"})
    assert missing.status_code == 404 and missing.json()["code"] == "PROJECT_NOT_FOUND"


async def test_dialogue_too_long_for_its_panel_is_cut_and_reported(
    users: UserFactory, platform: Platform
) -> None:
    user = await users.create()
    book = await project(user, "Talky")
    one = await chapter(user, book["id"], "One")
    opening = await scene(user, one["id"], "Opening")
    speech = {"kind": "speech", "text": "so many words " * 60}
    await panel(user, opening["id"], "a small panel", layout_size="inset", dialogue=[speech] * 8)

    queued = await user.get(f"{BASE}/{book['id']}/export?format=pdf&background=true")
    await platform.jobs.drain()
    job = (await user.get(f"/api/v1/jobs/{queued.json()['job']['id']}")).json()

    assert job["status"] == "succeeded", job["error"]
    [warning] = job["result"]["warnings"]
    assert warning.startswith("Chapter 1 · Scene 1 · Panel 1: the dialogue was cut")
    _, text = pdf_text((await user.get(queued.json()["download_url"])).content)
    assert "…" in text


async def test_pruning_an_export_job_deletes_its_file(
    users: UserFactory, platform: Platform, session: AsyncSession
) -> None:
    user = await users.create()
    book = await comic(user, panels=1)
    queued = (await user.get(f"{BASE}/{book['id']}/export?format=pdf&background=true")).json()
    await platform.jobs.drain()
    job = (await user.get(f"/api/v1/jobs/{queued['job']['id']}")).json()
    key = job["result"]["file_key"]
    assert await platform.storage.exists(key)

    old = utcnow() - timedelta(days=40)
    await session.execute(update(Job).where(Job.id == uuid.UUID(job["id"])).values(finished_at=old))
    await session.commit()
    await submit(platform, "jobs.prune", {"older_than_days": 30})
    await platform.jobs.drain()

    assert not await platform.storage.exists(key)
    assert (await user.get(queued["download_url"])).status_code == 404


async def test_a_file_gone_from_storage_is_410(users: UserFactory, platform: Platform) -> None:
    user = await users.create()
    book = await comic(user, panels=1)
    queued = (await user.get(f"{BASE}/{book['id']}/export?format=cbz&background=true")).json()
    await platform.jobs.drain()
    job = (await user.get(f"/api/v1/jobs/{queued['job']['id']}")).json()
    await platform.storage.delete(job["result"]["file_key"])

    gone = await user.get(queued["download_url"])

    assert gone.status_code == 410 and gone.json()["code"] == "EXPORT_EXPIRED"
