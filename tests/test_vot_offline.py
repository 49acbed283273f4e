"""`python -m evaluation.vot_offline` is the `vot` CLI without its network update check, and
refuses connections off this machine from the toolkit's process."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import evaluation.vot_offline as offline


@pytest.fixture
def requests_made(monkeypatch):
    """Every HTTP GET attempted, recorded instead of sent; the patched globals restored after."""
    import requests
    import vot
    import vot.utilities.cli as cli

    made = []
    monkeypatch.setattr(requests, "get", lambda url, **kwargs: made.append(url))
    for owner in (vot, cli):
        monkeypatch.setattr(owner, "check_updates", owner.check_updates)
    monkeypatch.setattr(socket.socket, "connect", socket.socket.connect)
    monkeypatch.setattr(socket.socket, "connect_ex", socket.socket.connect_ex)
    return made


def run_cli(entry, tmp_path, monkeypatch) -> int:
    # `initialize` on a missing folder: the update check runs, then the command fails at once.
    monkeypatch.setattr(sys, "argv", ["vot", "initialize", "custom", "--workspace", str(tmp_path / "none")])
    with pytest.raises(SystemExit) as stopped:
        entry()
    return stopped.value.code


def test_the_plain_toolkit_checks_for_updates(requests_made, tmp_path, monkeypatch):
    """The behaviour this module exists for (vot-toolkit 0.9.0); if this fails, the toolkit
    dropped its check and the module's first measure is moot."""
    import vot.utilities.cli as cli

    run_cli(cli.main, tmp_path, monkeypatch)
    assert requests_made and "github" in requests_made[0]


def test_the_offline_cli_makes_no_request(requests_made, tmp_path, monkeypatch):
    assert run_cli(offline.main, tmp_path, monkeypatch) == 1  # the toolkit's own failure, unchanged
    assert requests_made == []


def test_connections_off_this_machine_are_refused_loopback_is_not(requests_made):
    offline.refuse_remote_connections()
    with socket.socket() as outside, pytest.raises(offline.NetworkRefused, match="192.0.2.1"):
        outside.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())


def test_the_module_runs_as_vot(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "evaluation.vot_offline", "--help"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "usage: vot" in completed.stdout
