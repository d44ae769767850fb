"""The local Kafka's layouts, without starting it: where each node lives and listens, what its
server.properties asks of the cluster, and a state directory keeping the layout it was made
with (`ledger.stack.kafka`). The cluster itself is tested running, in the chaos test of one
node of three killed (`tests/integration/test_chaos.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import StackError
from ledger.stack import kafka


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


def test_the_default_is_one_node_where_it_always_was(tmp_path: Path) -> None:
    [node] = kafka.nodes(tmp_path)
    assert node.directory == tmp_path / "kafka"
    assert (node.client_port, node.controller_port) == (9092, 9093)
    assert kafka.bootstrap_servers(tmp_path) == "127.0.0.1:9092"
    settings = _properties(kafka._server_properties(node, [node]))
    assert settings["offsets.topic.replication.factor"] == "1"
    assert "controller.quorum.voters" not in settings
    assert "min.insync.replicas" not in settings


def test_a_state_directory_from_before_clusters_is_read_as_one_node(tmp_path: Path) -> None:
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    assert kafka.recorded_brokers(tmp_path) == 1
    assert kafka.recorded_brokers(tmp_path / "elsewhere") is None


def test_three_nodes_each_a_voter_replicating_three_times_two_in_sync(tmp_path: Path) -> None:
    cluster = kafka.nodes(tmp_path, 3)
    assert [(n.node_id, n.client_port, n.controller_port) for n in cluster] == [
        (1, 9092, 9093),
        (2, 9094, 9095),
        (3, 9096, 9097),
    ]
    assert len({n.directory for n in cluster}) == 3
    assert all(n.directory.parent == tmp_path / "kafka" for n in cluster)
    for node in cluster:
        settings = _properties(kafka._server_properties(node, cluster))
        assert settings["node.id"] == str(node.node_id)
        assert settings["controller.quorum.voters"] == (
            "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
        )
        assert settings["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{node.client_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}"
        )
        assert settings["log.dirs"] == str(node.directory / "data")
        assert settings["default.replication.factor"] == "3"
        assert settings["min.insync.replicas"] == "2"
        assert settings["offsets.topic.replication.factor"] == "3"
        assert settings["transaction.state.log.min.isr"] == "2"
        assert settings["unclean.leader.election.enable"] == "false"
        assert "controller.quorum.bootstrap.servers" not in settings  # static voters only


def test_the_recorded_layout_decides_where_clients_connect(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "brokers").write_text("3\n")
    assert kafka.bootstrap_servers(tmp_path) == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert kafka.running_pids(tmp_path) == {1: None, 2: None, 3: None}


def test_a_state_directory_keeps_the_layout_it_was_made_with(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "brokers").write_text("1\n")
    with pytest.raises(StackError, match="made with 1 broker"):
        kafka.start(tmp_path, brokers=3)
    with pytest.raises(StackError, match="1 or 3 nodes"):
        kafka.start(tmp_path / "fresh", brokers=2)
