"""`python -m evaluation.vot_offline ARGS`: the `vot` command (vot-toolkit) with no network.

Why: vot-toolkit 0.9.0 checks GitHub for a newer release at the start of every `vot test`,
`initialize`, `evaluate`, `analysis`, `report` and `pack` (`vot.check_updates`, a 5-second
HTTP request; no option or environment variable turns it off). The project promises that
nothing goes out, so the main job runs the toolkit through this module, which

- replaces the update check by one that reports "no update" without asking anyone, and
- refuses, in the toolkit's own process, any connection to an address outside this machine
  (loopback and Unix sockets, which TraX may use, stay allowed), so a check added by a later
  toolkit release fails at once and loudly instead of reaching out.

The trackers the toolkit starts are separate processes and open no connections of their own.
Everything else is the toolkit's CLI unchanged: same arguments, same exit status.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Sequence

MODULE = "evaluation.vot_offline"
"""What `python -m` runs in place of `vot` (the main job's command line names it)."""


class NetworkRefused(OSError):
    """A connection to another machine was attempted from the toolkit's process."""


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path, or another family's address
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name other than localhost: it would need DNS, i.e. the network
        return False


def refuse_remote_connections() -> None:
    """Make `socket.socket.connect` (and so `create_connection`, `requests`, urllib) raise
    `NetworkRefused` for any non-loopback address in this process."""
    original = socket.socket.connect
    if getattr(original, "_pixtrack_offline", False):
        return

    def connect(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            raise NetworkRefused(f"pixtrack runs vot offline: refused a connection to {address!r}")
        return original(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if not _is_local(address):
            raise NetworkRefused(f"pixtrack runs vot offline: refused a connection to {address!r}")
        return original_ex(self, address)

    original_ex = socket.socket.connect_ex
    connect._pixtrack_offline = True  # type: ignore[attr-defined]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


def disable_update_check() -> None:
    """Replace vot-toolkit's update check (in `vot` and where the CLI imported it) by "no update"."""
    import vot
    import vot.utilities.cli as cli

    def no_update() -> tuple[bool, None]:
        return False, None

    vot.check_updates = no_update
    cli.check_updates = no_update


def main(argv: Sequence[str] | None = None) -> None:
    """Run the toolkit's CLI on `argv` (default: this process's arguments) offline."""
    disable_update_check()
    refuse_remote_connections()
    import vot.utilities.cli as cli

    if argv is not None:
        sys.argv = ["vot", *argv]
    else:
        sys.argv[0] = "vot"
    cli.main()  # exits


if __name__ == "__main__":
    main()
