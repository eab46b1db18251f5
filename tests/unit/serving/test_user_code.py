"""Which user module serves a model."""

from container.serving.user_code import code_dir, module_path


def test_each_model_of_a_multi_model_endpoint_brings_its_own_inference_py(tmp_path):
    folder = tmp_path / "code"
    folder.mkdir()
    many = {"SAGEMAKER_MULTI_MODEL": "true"}
    assert module_path(str(folder), many) is None  # no module: the image's hooks
    (folder / "inference.py").write_text("")
    (folder / "mine.py").write_text("")
    assert module_path(str(folder), many) == str(folder / "inference.py")
    assert module_path(str(folder), {**many, "SAGEMAKER_PROGRAM": "mine.py"}) == str(
        folder / "mine.py"
    )
    assert module_path(str(folder), {}) is None  # one model: only SAGEMAKER_PROGRAM names one
    assert code_dir(str(tmp_path), many) == str(folder)
