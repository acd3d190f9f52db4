"""A worker's name on its claims is unique to its process, whatever --owner says."""

from __future__ import annotations

import os
import socket

from postscheduler.dispatcher import worker_id


def test_two_processes_given_the_same_owner_hold_different_leases() -> None:
    first, second = worker_id("web1"), worker_id("web1")
    assert first != second
    assert first.startswith("web1#")
    assert second.startswith("web1#")


def test_the_default_name_is_host_and_pid() -> None:
    assert worker_id().startswith(f"{socket.gethostname()}:{os.getpid()}#")
