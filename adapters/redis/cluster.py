"""The Redis Cluster client that Chirp's Redis adapters are built on.

redis-py's cluster pipeline finds the keys of a command it has no routing
rule for by asking the client's default node (the one the URL named),
``COMMAND GETKEYS``, once per queued command. ``EVALSHA`` is such a command,
and Chirp's pages and fan-outs pipeline script calls: each call cost an extra
round trip to that one node, and when that node died, every pipeline failed
with it, long after its replica had taken over. A script call names its keys
itself (``numkeys``, then the keys), so this client reads them from the call,
as redis-py already does outside a pipeline.
"""

from __future__ import annotations

from typing import Any

from redis._parsers.commands import CommandsParser
from redis.cluster import RedisCluster


class ScriptKeysParser(CommandsParser):
    """redis-py's command parser, reading a script call's keys from the call."""

    def __init__(self, parser: CommandsParser) -> None:
        # What the parser learnt from the cluster's COMMAND, not asked again.
        self.commands = parser.commands
        self.redis_connection = parser.redis_connection

    def get_keys(self, redis_conn: Any, *args: Any) -> Any:
        if len(args) > 2 and str(args[0]).upper() in ("EVAL", "EVALSHA"):
            return list(args[3 : 3 + int(args[2])]) or None
        return super().get_keys(redis_conn, *args)  # type: ignore[no-untyped-call]


def cluster_client(url: str) -> RedisCluster:
    """A client of the cluster that the node at ``url`` belongs to."""
    client = RedisCluster.from_url(url)
    client.commands_parser = ScriptKeysParser(client.commands_parser)
    return client
