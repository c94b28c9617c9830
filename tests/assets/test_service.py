"""Storage rules of the images service that no single request can show: bytes put back after a
concurrent delete, and cleanup that tolerates missing objects."""

from __future__ import annotations

import uuid
from pathlib import Path

from creativeflow.assets.imaging import DominantColour
from creativeflow.assets.service import delete_unused_objects, ensure_still_stored, store_bytes
from creativeflow.assets.storage import LocalStorage
from tests.assets.images import png


async def test_bytes_removed_between_put_and_commit_are_put_back(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = png()
    await storage.put(data, content_type="image/png")  # another image's bytes, the same
    stored = await store_bytes(
        storage,
        uuid.uuid4(),
        data,
        width=64,
        height=48,
        image_format="png",
        dominant_colors=[DominantColour("#dc143c", 1.0)],
    )
    assert stored.created is False
    # The other image is deleted, and its bytes with it, before this row commits.
    await storage.delete(stored.storage_key)

    await ensure_still_stored(storage, stored, data)

    assert await storage.get(stored.storage_key) == data


async def test_cleanup_deletes_unused_objects_and_tolerates_missing_ones(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    kept = await storage.put(b"kept", content_type="text/plain")
    gone = await storage.put(b"gone", content_type="text/plain")
    await storage.delete(gone.key)

    await delete_unused_objects(storage, [gone.key, kept.key])

    assert not await storage.exists(kept.key)
