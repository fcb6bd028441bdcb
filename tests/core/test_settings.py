"""Config layers: defaults -> config file -> LMSD_* environment; bad values refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmsd.errors import Invalid
from lmsd.settings import load_settings, read_config_file, set_config_value, write_config_file


def test_defaults_then_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("LMSD_"):
            monkeypatch.delenv(name)
    assert load_settings(tmp_path).api.workers == 2
    write_config_file(tmp_path, {"api": {"workers": 3}, "campus": {"name": "From File"}})
    settings = load_settings(tmp_path)
    assert (settings.api.workers, settings.campus.name) == (3, "From File")
    monkeypatch.setenv("LMSD_API__WORKERS", "5")
    settings = load_settings(tmp_path)
    assert settings.api.workers == 5
    assert settings.campus.name == "From File"
    assert settings.data_dir == tmp_path.resolve()


def test_environment_list_values_are_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSD_POSTGRES__EXTRA_MIGRATIONS", '["/a", "/b"]')
    assert load_settings(tmp_path).postgres.extra_migrations == ["/a", "/b"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"api": {"workers": 0}}, "api.workers"),
        ({"gateway": {"port": 70000}}, "outside 1..65535"),
        ({"campus": {"admin_email": "not-an-email"}}, "not an e-mail"),
        ({"campus": {"host": "bad host!"}}, "not a host name"),
        ({"api": {"port": 9000}, "gateway": {"port": 9000}}, "given to both"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_invalid_values_are_refused_in_one_line(tmp_path: Path, values: dict, message: str) -> None:
    write_config_file(tmp_path, values)
    with pytest.raises(Invalid) as err:
        load_settings(tmp_path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_broken_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("api = [unclosed")
    with pytest.raises(Invalid, match="not valid TOML"):
        load_settings(tmp_path)


def test_set_validates_before_writing(tmp_path: Path) -> None:
    set_config_value(tmp_path, "api.workers", "4")
    assert read_config_file(tmp_path) == {"api": {"workers": 4}}
    for key, value, message in [
        ("api.workers", "many", "not a whole number"),
        ("api.workers", "0", "api.workers"),
        ("api.nope", "1", "unknown setting"),
        ("api", "1", "is a section"),
        ("data_dir", "/x", "not a setting"),
    ]:
        with pytest.raises(Invalid, match=message):
            set_config_value(tmp_path, key, value)
    assert read_config_file(tmp_path) == {"api": {"workers": 4}}  # nothing half-written
