"""``POST /api/search`` over real HTTP on 127.0.0.1, and the micro-batching under it.

The app runs in this process with the tiny untrained models (``service``; its drawings depend on
the noise: a batch that mixed up seeds would change the pictures, which
``test_a_batch_draws_what_each_plan_draws_alone`` compares) and the planted ones
(``planted_service``: it draws the class asked for).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from fashiongan.config import load_parameters, overridden
from fashiongan.search import app
from fashiongan.search.batching import BatchedSearch, MicroBatcher
from fashiongan.search.contract import check_request

TEXTS = ["a purse", "a dark coat", "black running trainers", "a light dress"]


@contextlib.contextmanager
def served(service, **settings):
    """The app with its JSON API on a free loopback port → the API's URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = app.build_app(service, overridden(load_parameters()["search_app"], **settings))
    app.launch(demo, port=port, block=False)
    try:
        yield demo, f"http://127.0.0.1:{port}{app.API_PATH}"
    finally:
        demo.close()


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def planted_api(planted_service):
    with served(planted_service) as (demo, url):
        yield url


@pytest.fixture(scope="module")
def tiny_api(service):
    with served(service, api_max_wait_ms=50) as (demo, url):  # a long wait: batches surely form
        yield demo, url


def test_a_good_request_is_the_turn_the_cli_prints(planted_api, planted_service):
    status, found = post(planted_api, {"text": "a purse", "k": 3, "seed": "7"})
    assert status == 200 and found["generator_text"] == "a bag"
    assert [hit["category"] for hit in found["results"]] == ["Bag"] * 3
    alone = planted_service.search("a purse", k=3, seed=7).to_dict()
    assert [h["id"] for h in found["results"]] == [h["id"] for h in alone["results"]]
    status, again = post(
        planted_api, {"text": "as a dress", "conversation_id": found["conversation"]["id"]}
    )
    assert status == 200 and again["conversation"]["decision"] == "modify"
    assert again["conversation"]["turn"] == 2 and again["generator_text"] == "a dress"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"text": "a purse", "k": "abc"}, "k", "k must be a whole number between 1 and 100"),
        (
            {"text": "a purse", "seed": 2**70},
            "seed",
            "seed must be a whole number between 0 and 9,223,372,036,854,775,807, got "
            "'11805916207174113034…'",  # 2**70 cut, and said to be
        ),
        ({"text": "a" * 100_000}, "text", "the text is 100,000 characters long; at most 2,000"),
        ({"text": " \t\x00\x07\n "}, "text", "Type what you are looking for"),
        ({"text": "👗🔥🔥"}, "text", "no words I can read in '👗🔥🔥'"),
        ({"text": "a purse", "conversation_id": "nope"}, "conversation", "unknown conversation"),
        ({"text": "a purse", "reference_id": "x-1"}, "reference_id", "no catalog item 'x-1'"),
        ({"txt": "a purse"}, "txt", "unknown field 'txt'; the fields: text, k, seed"),
        (["a purse"], None, "the body must be a JSON object"),
        (b"text=a purse", None, "the body is not JSON"),
    ],
)
def test_bad_input_is_a_400_with_the_contract_field(planted_api, body, field, says):
    status, reply = post(planted_api, body)
    assert status == 400 and set(reply) == {"error", "field"}
    assert reply["field"] == field and reply["error"].startswith(says), reply
    assert "\n" not in reply["error"]


def test_a_body_over_the_upload_limit_is_a_413_in_one_line(planted_service):
    with served(planted_service, upload_max_mb=0.001) as (demo, url):  # 1,048 bytes
        status, payload = post(url, {"text": "a coat " * 1000})
    assert status == 413 and payload["field"] is None
    assert payload["error"] == "the body is over 1,048 bytes: send a short JSON object"


def test_the_same_errors_as_the_input_contract(planted_api, planted_service):
    from fashiongan.search.contract import SearchInputError

    with pytest.raises(SearchInputError) as raised:
        check_request(planted_service.query, "a purse", k="abc")
    assert post(planted_api, {"text": "a purse", "k": "abc"})[1] == raised.value.to_dict()


def test_a_failure_on_our_side_is_a_500_in_one_line(planted_api, planted_service, monkeypatch):
    def broken(plan, vector):
        raise RuntimeError("secret /path in the message")

    monkeypatch.setattr(planted_service.path, "rank", broken)
    status, reply = post(planted_api, {"text": "a purse"})
    assert status == 500
    assert reply == {"error": "the search failed on our side (RuntimeError)", "field": None}


def test_the_gradio_search_api_still_answers_beside_it(planted_api):
    from gradio_client import Client

    client = Client(planted_api.removesuffix(app.API_PATH) + "/", verbose=False)
    found = client.predict("a purse", 3, 0, api_name="/search")
    assert found["generator_text"] == "a bag" and len(found["results"]) == 3
    assert client.predict("", 3, 0, api_name="/search")["field"] == "text"
    # issue #32: these were Gradio's generic "upstream app has raised an exception"
    for k, seed, field in (("abc", 0, "k"), (3, str(2**70), "seed")):
        reply = client.predict("a purse", k, seed, api_name="/search")
        assert set(reply) == {"error", "field"} and reply["field"] == field, reply
        assert reply["error"].startswith(f"{field} must be a whole number between")
    chat = client.predict({"text": "👗🔥🔥", "files": []}, [], None, api_name="/chat")
    said = chat[0][-1]["content"]  # the Chat tab's reply, as the browser gets it
    assert "⚠️ no words I can read in '👗🔥🔥'" in str(said) and chat[4] == []


def requests_to_send() -> list[dict]:
    return [{"text": text, "k": 5, "seed": seed} for seed in range(4) for text in TEXTS]


def hits(reply: dict) -> list[tuple[str, float]]:
    return [(hit["id"], hit["score"]) for hit in reply["results"]]


def test_concurrent_requests_get_the_hits_sequential_ones_get(tiny_api, service):
    demo, url = tiny_api
    bodies = requests_to_send()
    sequential = [post(url, body) for body in bodies]
    batches_before, items_before = demo.search_api.batcher.batches, demo.search_api.batcher.items
    with ThreadPoolExecutor(len(bodies)) as pool:
        concurrent = list(pool.map(lambda body: post(url, body), bodies))
    assert all(status == 200 for status, _ in sequential + concurrent)
    for (_, alone), (_, together), body in zip(sequential, concurrent, bodies, strict=True):
        assert [i for i, _ in hits(together)] == [i for i, _ in hits(alone)], body
        assert [s for _, s in hits(together)] == pytest.approx(
            [s for _, s in hits(alone)], abs=2e-4
        )
        direct = service.search(body["text"], k=5, seed=body["seed"]).hits
        assert [h["id"] for h in direct] == [i for i, _ in hits(alone)]
    batches = demo.search_api.batcher.batches - batches_before
    items = demo.search_api.batcher.items - items_before
    assert items == len(bodies) and batches < items  # some requests shared a forward pass


def test_a_batch_draws_what_each_plan_draws_alone(service):
    path = service.path
    plans = [
        service.plan(check_request(service.query, text, seed=seed, n_images=n), None)
        for text, seed, n in (("a purse", 3, 2), ("a dark coat", 0, 4), ("a purse", 4, 1))
    ]
    together = path.draw_many(plans)
    for plan, images in zip(plans, together, strict=True):
        assert torch.allclose(images, path.draw(plan), atol=1e-6)
    vectors = path.embed_many(together)
    for images, vector in zip(together, vectors, strict=True):
        assert torch.allclose(
            torch.from_numpy(vector), torch.from_numpy(path.embed(images)), atol=1e-6
        )
    assert not torch.allclose(together[0], together[2][:1])  # another seed, another drawing


def test_a_batched_conversation_is_the_service_s_conversation(conversation_service):
    batched = BatchedSearch(conversation_service.with_query(), max_batch=8, max_wait_ms=20)
    plain = conversation_service.with_query()
    try:
        turns = []
        for service in (batched, plain):
            first = service.converse(None, "a coat")
            then = service.converse(first.conversation["id"], "darker")
            turns.append([(r.generator_text, [h["id"] for h in r.hits]) for r in (first, then)])
        assert then.conversation["turn"] == 2 and then.conversation["decision"] == "modify"
        assert turns[0] == turns[1] and "dark" in turns[0][1][0]
    finally:
        batched.close()


def test_the_batcher_gathers_concurrent_items_and_isolates_a_failure():
    seen: list[list[int]] = []
    started = threading.Barrier(9)

    def run(items: list[int]) -> list[int]:
        seen.append(items)
        if -1 in items:
            raise ValueError("no negatives")
        return [2 * i for i in items]

    batcher = MicroBatcher(run, max_size=4, max_wait_ms=200)

    def call(i: int):
        started.wait()
        try:
            return batcher(i)
        except ValueError as err:
            return str(err)

    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(call, [1, 2, 3, 4, 5, 6, 7, 8, -1]))
    batcher.close()
    assert answers == [2, 4, 6, 8, 10, 12, 14, 16, "no negatives"]
    assert max(len(batch) for batch in seen) == 4  # at most max_size together
    assert batcher.items == 9 and batcher.batches < 9
    with pytest.raises(RuntimeError, match="closed"):
        batcher(1)
