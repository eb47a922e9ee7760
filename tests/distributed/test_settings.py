"""The safe defaults a RayBackend starts Ray with, and its argument checks (no Ray started)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from truelabel.backend import get_backend
from truelabel.distributed import LOCAL_ENV, RayBackend, check_address, ray_backend, ray_settings
from truelabel.exceptions import ValidationError


def test_local_cluster_is_loopback_only_quiet_and_in_a_temp_folder() -> None:
    s = ray_settings(None, num_cpus=2, temp_dir=Path("/tmp/tl-x"))
    assert s.init_kwargs == {
        "include_dashboard": False,
        "_node_ip_address": "127.0.0.1",
        "_temp_dir": "/tmp/tl-x",
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "num_cpus": 2,
    }
    assert s.env == {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": "/tmp/tl-x/auth_token",
    }
    assert s.temp_dir == Path("/tmp/tl-x") and s.token_file == Path("/tmp/tl-x/auth_token")
    assert LOCAL_ENV.items() <= s.env.items()
    assert "num_cpus" not in ray_settings(None, num_cpus=None, temp_dir=Path("/t")).init_kwargs


def test_joining_a_cluster_sets_only_what_is_ours() -> None:
    s = ray_settings("10.1.2.3:6379", num_cpus=None, temp_dir=None)
    assert s.init_kwargs == {
        "address": "10.1.2.3:6379",
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    assert s.env == {"RAY_USAGE_STATS_ENABLED": "0"}
    assert s.temp_dir is None and s.token_file is None


def test_init_kwargs_win() -> None:
    s = ray_settings(
        None, num_cpus=1, temp_dir=Path("/t"), init_kwargs={"include_dashboard": True, "x": 1}
    )
    assert s.init_kwargs["include_dashboard"] is True and s.init_kwargs["x"] == 1


def test_backend_settings_pick_a_fresh_temp_folder(tmp_path: Path) -> None:
    import tempfile

    a, b = RayBackend().settings(), RayBackend().settings()
    assert a.temp_dir is not None and b.temp_dir is not None and a.temp_dir != b.temp_dir
    assert a.temp_dir.parent == Path(tempfile.gettempdir())
    assert a.temp_dir.name.startswith("truelabel-ray-") and not a.temp_dir.exists()
    assert RayBackend(temp_dir=tmp_path).settings().temp_dir == tmp_path
    assert RayBackend("auto").settings().init_kwargs["address"] == "auto"


@pytest.mark.parametrize(
    "address", ["auto", "127.0.0.1:6379", "head-node:6379", "ray://head:10001", "[::1]:6379"]
)
def test_good_addresses(address: str) -> None:
    assert check_address(address) == address
    assert check_address(f" {address} ") == address


@pytest.mark.parametrize("address", ["", "localhost", "http://x:1", "x:99999", "a b:1", 6379])
def test_bad_address_refused(address: object) -> None:
    with pytest.raises(ValidationError, match=r"^address: (is not a Ray address|port out of)"):
        RayBackend(address)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_cpus": 0}, r"^num_cpus: got 0; pass a positive int or None$"),
        ({"num_cpus": 1.5}, r"^num_cpus: got 1.5"),
        ({"num_cpus": True}, r"^num_cpus: got True"),
        ({"address": "auto", "num_cpus": 2}, r"^num_cpus: is for a local cluster, got it with"),
        ({"address": "auto", "temp_dir": "/tmp"}, r"^temp_dir: is for a local cluster"),
        ({"init_kwargs": [1]}, r"^init_kwargs: got \[1\]; pass a dict or None$"),
    ],
)
def test_bad_settings_refused_before_any_work(kwargs: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        RayBackend(**kwargs)


def test_get_backend_resolves_ray_once_per_address() -> None:
    a = get_backend("ray")
    assert isinstance(a, RayBackend) and a.address is None
    assert get_backend("ray") is a is ray_backend(None)
    b = get_backend("ray", address="auto")
    assert b.address == "auto" and b is not a and get_backend("ray", address="auto") is b
    with pytest.raises(ValidationError, match=r"^address: is for the Ray backend, got"):
        get_backend("local", address="auto")
    with pytest.raises(ValidationError, match=r"^address: is not a Ray address"):
        get_backend("ray", address="nowhere")


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from truelabel.distributed import _ray

    real_import = builtins.__import__

    def no_ray(name: str, *args: object, **kwargs: object) -> object:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ImportError, match=r"pip install 'truelabel\[distributed\]'"):
        _ray._import_ray()


def test_isolation_check_refuses_a_visible_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from . import conftest

    monkeypatch.setattr(conftest, "interfaces", lambda: ["eth0", "lo"])
    assert (
        conftest.isolation_problem()
        == "network interfaces ['eth0', 'lo'] are visible, not only 'lo'"
    )
    monkeypatch.setattr(conftest, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match=r"^TRUELABEL_REQUIRE_RAY=1 but no net$"):
        conftest.absent("no net")
    monkeypatch.setattr(conftest, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match=r"^no net$"):
        conftest.absent("no net")


def test_environment_set_only_where_the_user_has_not(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in (*LOCAL_ENV, "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")  # the user's own choice
    monkeypatch.setenv("RAY_AUTH_TOKEN", "t0k3n")
    b = RayBackend(temp_dir="/tmp/tl-env")
    b._apply_env(b.settings())
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert "RAY_AUTH_TOKEN_PATH" not in os.environ  # their token, not ours
    b.close()
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ
    assert "RAY_AUTH_MODE" not in os.environ and os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    b = RayBackend(temp_dir="/tmp/tl-env")
    b._apply_env(b.settings())
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == "/tmp/tl-env/auth_token"
    b.close()
    assert "RAY_AUTH_TOKEN_PATH" not in os.environ
