"""A throw-away Redis Cluster for tests: three masters, and optionally replicas.

:func:`start_cluster` runs one ``redis-server`` per node in a temporary
directory, on free ports picked at run time (each with its cluster bus port
set explicitly, ``cluster-port``, so neither has to be ``port + 10000``),
without persistence (``--save "" --appendonly no``). It splits the 16,384
slots evenly with ``CLUSTER ADDSLOTSRANGE``, joins the nodes with
``CLUSTER MEET`` and polls ``CLUSTER INFO`` on every node until each says
``cluster_state:ok`` and knows all the others. With replicas, each master
gets its own (``CLUSTER REPLICATE``), in sync before it returns.
:meth:`RedisCluster.restart` starts a node again, empty;
:meth:`RedisCluster.stop` kills the servers and removes the directory.

Needs redis-server 7.0 or newer (``cluster-port``, ``ADDSLOTSRANGE``, the
bus port in ``MEET``); ``tests.services.require_redis_server`` finds it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis

SLOTS = 16384
HOST = "127.0.0.1"
# Ports a developer's own servers use: never take them, even when free.
_RESERVED_PORTS = frozenset({6379, 16379})
_START_ATTEMPTS = 3


class RedisStartError(RuntimeError):
    """Test servers did not come up; the message says where they stopped."""


@dataclass
class RedisServers:
    """Test ``redis-server`` processes, on ``ports``, in a directory of their own."""

    directory: Path
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        """Kill the servers (they hold nothing worth a clean shutdown) and
        remove the directory."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


S = TypeVar("S", bound=RedisServers)


def start_on_free_ports(make: Callable[[Path], S], start: Callable[[S], None], what: str) -> S:
    """``make`` servers in a new directory and ``start`` them. Ports are free
    when picked but may be taken before a server binds them (``start``
    raises PortTaken): then they start again on new ones."""
    failures: list[str] = []
    for _ in range(_START_ATTEMPTS):
        servers = make(Path(tempfile.mkdtemp(prefix=f"chirp-{what.replace(' ', '-')}-")))
        try:
            start(servers)
        except PortTaken as error:
            servers.stop()
            failures.append(str(error))
            continue
        except BaseException:
            servers.stop()
            raise
        return servers
    raise RedisStartError(f"no free ports for the {what}: {'; '.join(failures)}")


@dataclass
class RedisCluster(RedisServers):
    """The running servers of a test cluster: the masters' ports first, then
    their replicas' (``replica_of`` maps a replica's port to its master's)."""

    replica_of: dict[int, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """A URL of one node: ``redis.cluster.RedisCluster.from_url`` finds the others."""
        return f"redis://{HOST}:{self.ports[0]}/0"

    def process(self, port: int) -> subprocess.Popen[bytes]:
        return self.processes[self.ports.index(port)]

    def restart(self, port: int, timeout: float = 30.0) -> None:
        """Kill the node on ``port`` and start it again as it was: the same
        node id and slots (its ``nodes.conf``) and no data, or the snapshot
        it last saved if it was told to (``SAVE``). Returns once every node
        sees the cluster ok again."""
        deadline = time.monotonic() + timeout
        index = self.ports.index(port)
        old = self.processes[index]
        old.kill()
        old.wait(timeout=10)
        self.processes[index] = subprocess.Popen(
            old.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        clients = [redis.Redis(host=HOST, port=p, socket_timeout=5) for p in self.ports]
        try:
            log = self.directory / f"redis-{port}.log"
            wait_for_ping(clients[index], self.processes[index], log, deadline)
            _wait_for_state_ok(clients, len(self.ports), deadline)
        finally:
            for client in clients:
                client.close()


def start_cluster(
    server: str, masters: int = 3, replicas: int = 0, timeout: float = 30.0
) -> RedisCluster:
    """A running cluster of ``masters`` nodes of the ``redis-server`` at
    ``server``, each with ``replicas`` replicas in sync, its slots assigned
    and its state ok; RedisStartError if not within ``timeout`` seconds."""
    return start_on_free_ports(
        RedisCluster,
        lambda cluster: _start(cluster, server, masters, replicas, time.monotonic() + timeout),
        "test cluster",
    )


class PortTaken(Exception):
    pass


def _start(
    cluster: RedisCluster, server: str, masters: int, replicas: int, deadline: float
) -> None:
    nodes = masters * (1 + replicas)
    ports = free_ports(2 * nodes)
    buses = ports[nodes:]
    cluster.ports = ports[:nodes]
    for port, bus in zip(cluster.ports, buses, strict=True):
        # redis-server writes its own log; its stdout and stderr stay empty.
        cluster.processes.append(
            subprocess.Popen(
                [
                    server,
                    "--port", str(port),
                    "--cluster-port", str(bus),
                    "--bind", HOST,
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", "5000",
                    "--dir", str(cluster.directory),
                    "--logfile", f"redis-{port}.log",
                    "--save", "",
                    "--appendonly", "no",
                    "--dbfilename", f"dump-{port}.rdb",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    clients = [redis.Redis(host=HOST, port=port, socket_timeout=5) for port in cluster.ports]
    try:
        for client, process, port in zip(clients, cluster.processes, cluster.ports, strict=True):
            wait_for_ping(client, process, cluster.directory / f"redis-{port}.log", deadline)
        step = SLOTS // masters
        for n, client in enumerate(clients[:masters]):
            last = SLOTS - 1 if n == masters - 1 else (n + 1) * step - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", n * step, last)  # type: ignore[no-untyped-call]
        for port, bus in zip(cluster.ports[1:], buses[1:], strict=True):
            clients[0].execute_command("CLUSTER", "MEET", HOST, port, bus)  # type: ignore[no-untyped-call]
        _wait_for_state_ok(clients, nodes, deadline)
        for n, client in enumerate(clients[masters:]):
            master = n % masters
            master_id = clients[master].execute_command("CLUSTER", "MYID")  # type: ignore[no-untyped-call]
            _replicate(client, master_id, deadline)
            cluster.replica_of[cluster.ports[masters + n]] = cluster.ports[master]
        for client in clients[masters:]:
            _wait_until_synced(client, deadline)
        _wait_for_state_ok(clients, nodes, deadline)
    finally:
        for client in clients:
            client.close()


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now (held open together while picked)."""
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            if sock.getsockname()[1] in _RESERVED_PORTS:
                sock.close()
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_ping(
    client: redis.Redis, process: subprocess.Popen[bytes], log: Path, deadline: float
) -> None:
    while True:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            if "Address already in use" in text:
                raise PortTaken(f"a port of {log.name} was taken")
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise RedisStartError(f"redis-server exited with {process.returncode}: {tail}")
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RedisStartError(f"redis-server did not answer PING ({log})")
        time.sleep(0.02)


def _replicate(replica: redis.Redis, master_id: bytes, deadline: float) -> None:
    """``CLUSTER REPLICATE``, again until the replica's node table knows the
    master (a node met a moment ago may not be in it yet)."""
    while True:
        try:
            replica.execute_command("CLUSTER", "REPLICATE", master_id)  # type: ignore[no-untyped-call]
            return
        except redis.ResponseError as error:
            if time.monotonic() > deadline:
                raise RedisStartError(f"a replica could not follow its master: {error}") from None
        time.sleep(0.05)


def _wait_until_synced(replica: redis.Redis, deadline: float) -> None:
    while replica.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RedisStartError("a replica of the test cluster did not sync with its master")
        time.sleep(0.05)


def _wait_for_state_ok(clients: list[redis.Redis], nodes: int, deadline: float) -> None:
    """Poll until every node sees the cluster ok, all slots assigned, all nodes known."""
    while True:
        infos = [_cluster_info(client) for client in clients]
        if all(
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_assigned") == str(SLOTS)
            and info.get("cluster_known_nodes") == str(nodes)
            for info in infos
        ):
            return
        if time.monotonic() > deadline:
            raise RedisStartError(f"the test cluster did not reach cluster_state:ok: {infos}")
        time.sleep(0.05)


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    raw = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    fields = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {name: value for name, _, value in fields}
