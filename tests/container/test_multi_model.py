"""Multi-model endpoints: the image in SAGEMAKER_MULTI_MODEL mode under a real Docker engine,
driven with SageMaker's own calls (load, list, describe, invoke, unload)."""

import json
import os
import shutil
import threading

import pytest

from local_test.multi_model import Container, model_url
from local_test.server import npy
from tests.container.helpers import DOCKER, docker
from tests.digits import draw_digit, encode

OWN_CODE = """
import json


def output_fn(prediction, accept):
    return json.dumps({"answered_by": "second", "labels": prediction.argmax(1).tolist()}), accept
"""


@pytest.fixture(scope="module")
def models_dir(trained, tmp_path_factory):
    """SageMaker's /opt/ml/models: two copies of the trained model, the second with an
    inference.py of its own, and a model whose checkpoint is not one."""
    base, _ = trained
    folder = tmp_path_factory.mktemp("models")
    for name in ("first", "second"):
        shutil.copytree(os.path.join(base, "model"), folder / name / "model")
    (folder / "second" / "model" / "code").mkdir(exist_ok=True)
    (folder / "second" / "model" / "code" / "inference.py").write_text(OWN_CODE)
    (folder / "broken" / "model").mkdir(parents=True)
    (folder / "broken" / "model" / "model.pth").write_bytes(b"not a checkpoint")
    return folder


@pytest.fixture(scope="module")
def container(image, models_dir):
    server = Container(image, models_dir, docker=DOCKER)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.close()


def seven():
    return encode(draw_digit(7), "PNG")


def test_the_image_carries_the_labels_sagemaker_checks(image):
    labels = json.loads(docker("inspect", "--format", "{{json .Config.Labels}}", image).stdout)
    assert labels["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"
    assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"


def test_models_load_list_and_answer_each_with_its_own_code(container, mnist):
    endpoint = container.endpoint
    assert endpoint.ping() == 200  # healthy with no model
    assert endpoint.models() == []
    for name in ("first", "second"):
        status, answer = endpoint.load(name)
        assert status == 200, answer
    assert endpoint.models() == ["first", "second"]
    assert endpoint.models(limit=1) == ["first", "second"]  # one page at a time
    status, described = endpoint.describe("second")
    assert status == 200 and described["modelUrl"] == model_url("second")

    status, _, body = endpoint.invoke("first", seven(), "image/png")
    assert status == 200 and json.loads(body)["predictions"][0]["label"] == 7
    images = npy(mnist["x_test"][:20])
    status, _, body = endpoint.invoke("first", images, "application/x-npy")
    assert status == 200
    labels = [p["label"] for p in json.loads(body)["predictions"]]
    status, _, body = endpoint.invoke("second", images, "application/x-npy")
    assert status == 200 and json.loads(body) == {"answered_by": "second", "labels": labels}
    # The same limits and errors as the single-model endpoint, per model.
    status, _, body = endpoint.invoke("first", b"[[1, 2]", "application/json")
    assert status == 400 and "error" in json.loads(body)

    status, answer = endpoint.load("first")
    assert status == 409 and "loaded already" in answer["error"]
    status, _, body = endpoint.invoke("nobody", seven(), "image/png")
    assert status == 404 and "nobody" in json.loads(body)["message"]


def test_unload_frees_the_name_and_the_memory(container):
    endpoint = container.endpoint
    for name in ("first", "second"):
        if name not in endpoint.models():
            assert endpoint.load(name)[0] == 200
    before = container.memory_mb()
    status, answer = endpoint.unload("second")
    assert status == 200, answer
    after = container.memory_mb()
    assert endpoint.models() == ["first"]
    assert endpoint.invoke("second", seven(), "image/png")[0] == 404
    assert endpoint.unload("second")[0] == 404
    print(f"\nunloading one model: {before:.0f} MB -> {after:.0f} MB in the container")
    assert before - after > 50, (before, after)
    assert endpoint.load("second")[0] == 200  # the name is free again


def test_a_model_that_cannot_load_answers_why_and_the_others_serve_on(container):
    endpoint = container.endpoint
    if "first" not in endpoint.models():
        assert endpoint.load("first")[0] == 200
    status, answer = endpoint.load("broken")
    assert status == 500 and "not a weights-only PyTorch checkpoint" in answer["error"], answer
    assert "broken" not in endpoint.models()
    status, answer = endpoint.load("missing")
    assert status == 404 and model_url("missing") in answer["error"]
    status, answer = endpoint.load("elsewhere", "https://example.com/model.tar.gz")
    assert status == 400 and "folder in this container" in answer["error"]
    assert endpoint.ping() == 200
    status, _, body = endpoint.invoke("first", seven(), "image/png")
    assert status == 200 and json.loads(body)["predictions"][0]["label"] == 7


def test_a_load_is_refused_with_507_before_memory_runs_short(image, models_dir):
    server = Container(
        image, models_dir, docker=DOCKER, SAGEMAKER_MODEL_MEMORY_HEADROOM_MB=str(10**7)
    )
    try:
        server.wait_healthy()
        status, answer = server.endpoint.load("first")
        assert status == 507, answer
        assert "SAGEMAKER_MODEL_MEMORY_HEADROOM_MB" in answer["error"]
        assert server.endpoint.models() == []
    finally:
        server.close()


def test_a_storm_against_two_models_gives_no_5xx(container, mnist):
    endpoint = container.endpoint
    for name in ("first", "second"):
        if name not in endpoint.models():
            assert endpoint.load(name)[0] == 200
    requests = [
        (seven(), "image/png"),
        (json.dumps(mnist["x_test"][0].tolist()).encode(), "application/json"),
        (npy(mnist["x_test"][:10]), "application/x-npy"),
        (b"\x93NUMPY garbage", "application/x-npy"),
        (b"not,a,digit", "text/csv"),
        (seven(), "application/x-npz"),
    ]
    statuses, lock = {}, threading.Lock()

    def client(index):
        for i in range(60):
            body, content_type = requests[(index + i) % len(requests)]
            status = endpoint.invoke(("first", "second")[i % 2], body, content_type)[0]
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"\n{sum(statuses.values())} requests to two models at once: {statuses}")
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses.get(200, 0) >= 200
