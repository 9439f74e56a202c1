"""Publishing into a big project, against Azurite: sixteen publishers at once into a 1,000-file
project lose nothing, and none of them reads the project's records."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.publish import seed_project
from devhost.wheels import build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.services.wiring import get_services
from tests.integration.test_publish import (
    counted,
    html_files,
    listings,
    page_files,
    root_projects,
    snapshot,
)
from tests.support.functions import blob_event, handler

pytestmark = pytest.mark.integration

PUBLISHERS = 16
FILES = 1000


def test_sixteen_publishers_into_a_thousand_file_project_lose_nothing(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    requests = counted()
    seed_project(get_services(), "crowded", FILES)
    assert get_services().manager.reindex() == []  # the seed is a correct index
    wheels = [build_wheel("crowded", f"9.{i}") for i in range(PUBLISHERS)]
    events = []
    for wheel in wheels:
        etag = store.put(layout.UPLOADS, wheel.filename, wheel.data, content_type="x/y")
        events.append(blob_event(layout.UPLOADS, wheel.filename, wheel.data, etag))
    gate = threading.Barrier(PUBLISHERS)

    def publish(event: object) -> None:
        gate.wait()  # all at once
        handler("publish_upload")(event)

    requests.take()
    with ThreadPoolExecutor(max_workers=PUBLISHERS) as pool:
        list(pool.map(publish, events))
    made = requests.take()

    seeded = {f"crowded-0.{i}-py3-none-any.whl" for i in range(FILES)}
    expected = sorted(seeded | {w.filename for w in wheels})
    assert sorted(page_files(store, "crowded")) == expected
    assert sorted(html_files(store, "crowded")) == expected
    assert root_projects(store) == ["crowded"]
    assert snapshot(store, layout.UPLOADS) == {}
    assert snapshot(store, layout.QUARANTINE) == {}
    # The cost that grew with the project: listing and reading its records. Neither happens.
    assert listings(made) == []
    assert [url for method, url in made if method == "GET" and "/records/" in url] == []
    assert get_services().manager.reindex() == []  # and the pages are exactly what records say
