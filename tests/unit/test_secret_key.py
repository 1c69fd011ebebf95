"""The generated secret key: made once, whole, even when many workers start together."""

from __future__ import annotations

import threading

import pytest

from imagify.settings import SettingsError, load_settings, secret_key


def test_workers_starting_together_all_get_the_same_whole_key(tmp_path):
    settings = load_settings({"IMAGIFY_DATA_DIR": str(tmp_path / "var")}, dotenv=None)
    start, keys = threading.Barrier(16), []

    def worker() -> None:
        start.wait()
        keys.append(secret_key(settings))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 16 and len(set(keys)) == 1 and len(keys[0]) >= 32
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["secret_key"]  # no temp files left
    assert secret_key(settings) == keys[0]


def test_an_empty_key_file_is_refused_instead_of_signing_with_an_empty_secret(tmp_path):
    (tmp_path / "secret_key").write_text("")
    settings = load_settings({"IMAGIFY_DATA_DIR": str(tmp_path)}, dotenv=None)
    with pytest.raises(SettingsError, match="shorter than 32"):
        secret_key(settings)
