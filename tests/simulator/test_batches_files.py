"""The simulated Message Batches and Files APIs, driven by the official anthropic SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from api.simulator import RunningSimulator, SimConfig, start_simulator_thread
from tests.batches.helpers import batch_requests

MODEL = "claude-sonnet-4-6"
FILES_BETA = "files-api-2025-04-14"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator_thread(SimConfig())
    yield running
    running.stop()


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=sim.url, api_key="test", max_retries=0) as c:
        yield c


def _requests(n: int, prefix: str = "r") -> list[dict[str, object]]:
    return batch_requests(n, prefix=prefix)


def _wait_ended(client: anthropic.Anthropic, batch_id: str) -> anthropic.types.MessageBatch:
    deadline = time.monotonic() + 120  # generous: the poll waits for the state, not a time
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended" or time.monotonic() > deadline:
            return batch
        time.sleep(0.02)


def test_batch_is_in_progress_then_ended_with_counts_and_results(
    client: anthropic.Anthropic,
) -> None:
    batch = client.messages.batches.create(
        requests=_requests(5) + _requests(2, "bad"),  # type: ignore[arg-type]
        extra_headers={"x-sim-batch-duration-ms": "300", "x-sim-batch-errored": "^bad"},
    )
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 7 and batch.results_url is None
    ended = _wait_ended(client, batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 5, 2)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {f"r{i}" for i in range(5)} | {"bad0", "bad1"}
    ok = results["r0"]
    assert ok.type == "succeeded"
    assert ok.message.usage.input_tokens == 5 and ok.message.usage.output_tokens == 10
    bad = results["bad0"]
    assert bad.type == "errored" and bad.error.error.type == "api_error"


def test_cancel_goes_through_canceling_and_cancels_unfinished_requests(
    client: anthropic.Anthropic,
) -> None:
    batch = client.messages.batches.create(
        requests=_requests(4),  # type: ignore[arg-type]
        extra_headers={"x-sim-batch-duration-ms": "60000", "x-sim-batch-cancel-ms": "200"},
    )
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    ended = _wait_ended(client, batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 4
    assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"canceled"}
    deleted = client.messages.batches.delete(batch.id)
    assert deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_expired_knob_and_in_progress_batch_cannot_be_deleted(
    client: anthropic.Anthropic,
) -> None:
    batch = client.messages.batches.create(
        requests=_requests(3),  # type: ignore[arg-type]
        extra_headers={"x-sim-batch-expired": "^r2$", "x-sim-batch-duration-ms": "100000"},
    )
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.delete(batch.id)
    client.messages.batches.cancel(batch.id)
    ended = _wait_ended(client, batch.id)
    assert ended.processing_status == "ended"
    quick = client.messages.batches.create(
        requests=_requests(3),  # type: ignore[arg-type]
        extra_headers={"x-sim-batch-expired": "^r2$"},
    )
    results = {r.custom_id: r.result.type for r in client.messages.batches.results(quick.id)}
    assert results == {"r0": "succeeded", "r1": "succeeded", "r2": "expired"}


def test_batch_list_pages_newest_first_with_cursors(client: anthropic.Anthropic) -> None:
    created = [
        client.messages.batches.create(requests=_requests(1)).id  # type: ignore[arg-type]
        for _ in range(5)
    ]
    page = client.messages.batches.list(limit=2)
    assert page.has_more is True and len(page.data) == 2
    assert page.first_id == page.data[0].id and page.last_id == page.data[1].id
    everything = [b.id for b in client.messages.batches.list(limit=2)]  # follows after_id
    newest_first = list(reversed(created))
    assert everything[:5] == newest_first
    before = client.messages.batches.list(before_id=newest_first[2], limit=10)
    assert [b.id for b in before.data] == newest_first[:2] and before.has_more is False


def test_results_stall_after_n_lines_on_first_download_only(sim: RunningSimulator) -> None:
    headers = {"x-api-key": "t", "x-sim-results-stall-after": "3"}
    created = httpx.post(
        f"{sim.url}/v1/messages/batches", json={"requests": _requests(6)}, headers=headers
    ).json()
    url = f"{sim.url}/v1/messages/batches/{created['id']}/results"
    lines: list[bytes] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("GET", url, headers=headers, timeout=1) as response,
    ):
        for line in response.iter_lines():
            lines.append(line.encode())
    assert len(lines) == 3
    assert sim.app.resources.batches.get(created["id"]).lines_served == 3
    whole = httpx.get(url, headers=headers).text.splitlines()
    assert len(whole) == 6


def test_files_upload_list_metadata_download_delete(
    client: anthropic.Anthropic, sim: RunningSimulator
) -> None:
    uploaded = client.beta.files.upload(
        file=("notes.txt", b"hello file", "text/plain"),
        betas=[FILES_BETA],
        extra_headers={"x-sim-file-downloadable": "true"},
    )
    assert uploaded.type == "file" and uploaded.size_bytes == 10
    assert uploaded.filename == "notes.txt" and uploaded.mime_type == "text/plain"
    assert sim.app.calls[-1].beta == FILES_BETA
    meta = client.beta.files.retrieve_metadata(uploaded.id, betas=[FILES_BETA])
    assert meta.id == uploaded.id and meta.downloadable is True
    assert client.beta.files.download(uploaded.id).read() == b"hello file"
    assert uploaded.id in [f.id for f in client.beta.files.list(betas=[FILES_BETA])]
    hidden = client.files.upload(file=("x.pdf", b"%PDF-1.4", "application/pdf"))
    with pytest.raises(anthropic.BadRequestError):
        client.files.download(hidden.id)
    assert client.beta.files.delete(uploaded.id).id == uploaded.id
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.retrieve_metadata(uploaded.id)


def test_files_list_follows_next_page(client: anthropic.Anthropic) -> None:
    ids = [client.files.upload(file=(f"f{i}.txt", b"x", "text/plain")).id for i in range(5)]
    listed = [f.id for f in client.files.list(limit=2)]
    assert listed[:5] == list(reversed(ids))
