"""A throw-away Redis replica set for tests: a primary, a replica and a sentinel.

:func:`start_replica_set` runs three ``redis-server`` processes in a temporary
directory, on free ports picked at run time, without persistence: a primary,
a replica of it, and a sentinel (``--sentinel``) that monitors the primary as
``chirp`` with a quorum of one. The sentinel declares the primary down after
half a second, so a test that kills it sees the replica promoted within a few
seconds. :meth:`ReplicaSet.stop` kills what is left and removes the directory.

``tests.services.require_redis_server`` finds the binary.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tests.redis_cluster import (
    HOST,
    RedisServers,
    RedisStartError,
    free_ports,
    start_on_free_ports,
    wait_for_ping,
)

MASTER_NAME = "chirp"
DOWN_AFTER_MS = 500


@dataclass
class ReplicaSet(RedisServers):
    """The running servers: ``ports`` are the primary's, the replica's and the sentinel's."""

    @property
    def primary_port(self) -> int:
        return self.ports[0]

    @property
    def replica_port(self) -> int:
        return self.ports[1]

    @property
    def sentinel_url(self) -> str:
        """``REDIS_URL`` for Chirp: the sentinel, and the name it monitors."""
        return f"redis+sentinel://{HOST}:{self.ports[2]}/{MASTER_NAME}/0"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=HOST, port=port, socket_timeout=5)

    def kill_primary(self) -> None:
        """The primary dies at once, as a crashed machine would (no clean shutdown)."""
        process = self.processes[0]
        process.kill()
        process.wait(timeout=10)

    def wait_for_promotion(self, timeout: float = 30.0) -> None:
        """Poll the sentinel until it names the replica as the primary."""
        sentinel = self.client(self.ports[2])
        deadline = time.monotonic() + timeout
        try:
            while True:
                address = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
                # As redis-py's Sentinel sees it: the replica named, up, a master.
                state = sentinel.sentinel_master(MASTER_NAME)
                if (
                    isinstance(address, tuple)
                    and int(address[1]) == self.replica_port
                    and isinstance(state, dict)
                    and state.get("is_master")
                    and not state.get("is_sdown")
                    and not state.get("is_odown")
                ):
                    return
                if time.monotonic() > deadline:
                    raise RedisStartError(f"the sentinel did not promote the replica: {address}")
                time.sleep(0.05)
        finally:
            sentinel.close()


def start_replica_set(server: str, timeout: float = 30.0) -> ReplicaSet:
    """A primary with one synced replica, watched by a sentinel; RedisStartError
    if not up within ``timeout`` seconds."""
    return start_on_free_ports(
        ReplicaSet,
        lambda replica_set: _start(replica_set, server, time.monotonic() + timeout),
        "test replica set",
    )


def _start(replica_set: ReplicaSet, server: str, deadline: float) -> None:
    replica_set.ports = primary, replica, sentinel = free_ports(3)
    common = [
        "--bind",
        HOST,
        "--dir",
        str(replica_set.directory),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    replica_set.processes.append(_run(server, primary, common))
    replica_set.processes.append(
        _run(server, replica, [*common, "--replicaof", HOST, str(primary)])
    )
    conf = replica_set.directory / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nbind {HOST}\ndir {replica_set.directory}\n"
        f"logfile redis-{sentinel}.log\n"
        f"sentinel monitor {MASTER_NAME} {HOST} {primary} 1\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER_NAME} 5000\n"
    )
    replica_set.processes.append(
        subprocess.Popen(
            [server, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    )
    clients = [replica_set.client(port) for port in replica_set.ports]
    try:
        for client, process, port in zip(
            clients, replica_set.processes, replica_set.ports, strict=True
        ):
            wait_for_ping(client, process, replica_set.directory / f"redis-{port}.log", deadline)
        _wait_until(deadline, "the replica to sync", lambda: _synced(clients[1]))
        _wait_until(deadline, "the sentinel to see the replica", lambda: _sentinel_sees(clients[2]))
    finally:
        for client in clients:
            client.close()


def _run(server: str, port: int, options: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [server, "--port", str(port), "--logfile", f"redis-{port}.log", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _synced(replica: redis.Redis) -> bool:
    return replica.info("replication").get("master_link_status") == "up"


def _sentinel_sees(sentinel: redis.Redis) -> bool:
    state = sentinel.sentinel_master(MASTER_NAME)
    return isinstance(state, dict) and int(state.get("num-slaves", 0)) >= 1


def _wait_until(deadline: float, what: str, done: Callable[[], bool]) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise RedisStartError(f"timed out waiting for {what}")
        time.sleep(0.05)
