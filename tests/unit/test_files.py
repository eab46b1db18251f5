"""Unpacking archives the way the image's older Python does too."""

import io
import tarfile

import pytest

from container.files import extract_tar


def archive(path, members):
    """A tar at ``path`` of (name, bytes) files, and (name, target) symbolic links."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


@pytest.mark.parametrize("filter_in_tarfile", [True, False])
def test_an_archive_unpacks_and_one_reaching_outside_its_folder_is_refused(
    tmp_path, monkeypatch, filter_in_tarfile
):
    if not filter_in_tarfile:  # as on Debian's Python 3.11.2, the image's
        monkeypatch.delattr(tarfile, "data_filter")
    good = archive(tmp_path / "good.tar.gz", [("model.pth", b"weights"), ("code/a.py", b"x")])
    extract_tar(good, tmp_path / "out")
    assert (tmp_path / "out" / "code" / "a.py").read_bytes() == b"x"
    for members in ([("../escaped", b"x")], [("link", "/etc/passwd")]):
        bad = archive(tmp_path / "bad.tar.gz", members)
        with pytest.raises(tarfile.TarError):
            extract_tar(bad, tmp_path / "bad")
        assert not (tmp_path / "escaped").exists()
        assert not (tmp_path / "bad" / "link").exists()
