"""The key commands of the operator cookbook (clients/cookbook.md), run as written against the
real pipeline (fixture ``stockflight_pipeline``): kcat on the availability and dead-letter
topics, consumer-group lag through dev/stack's Kafka tools, and grpcurl's Flight handshake and
actions. (grpcurl list/describe/health and mTLS are covered by tests/tests/server_clients.rs.)
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

from conftest import REPO_ROOT, prometheus_sum, require_env


def kcat(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [require_env("STOCKFLIGHT_KCAT"), *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kcat {args}: {done.stderr}"
    return done.stdout


def grpcurl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [require_env("STOCKFLIGHT_GRPCURL"), *args], capture_output=True, text=True, timeout=60
    )


def wait_for(what: str, check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def partition_count(p) -> int:
    """Partitions of the availability topic, from `kcat -L -J` (the cookbook's metadata command)."""
    meta = json.loads(kcat("-L", "-J", "-b", p.brokers, "-t", p.topic))
    (topic,) = [t for t in meta["topics"] if t["topic"] == p.topic]
    return len(topic["partitions"])


def test_kcat_metadata_and_keys_of_the_availability_topic(stockflight_pipeline):
    p = stockflight_pipeline
    partitions = partition_count(p)
    assert partitions >= 1

    lines = kcat("-C", "-b", p.brokers, "-t", p.topic, "-o", "beginning", "-e", "-q", "-f", "%p %k %S\n").splitlines()
    loadgen = [line.split() for line in lines if not line.split()[1].startswith("cookbook-")]
    assert len(loadgen) == p.messages, "kcat reads every update loadgen produced"
    assert all(re.fullmatch(r"[a-z]+-\d+/sku-\d+", key) for _, key, _ in loadgen), loadgen[:5]
    # Keys are node/item: one pair always lands in one partition.
    assert {int(part) for part, _, _ in loadgen} == set(range(partitions)), "4,000 updates reach every partition"
    by_key: dict[str, set] = {}
    for part, key, _ in loadgen:
        by_key.setdefault(key, set()).add(part)
    assert all(len(parts) == 1 for parts in by_key.values())


def test_kcat_produce_and_dead_letter_reasons(stockflight_pipeline):
    p = stockflight_pipeline
    written0 = prometheus_sum(p.ingest_metrics, "stockflight_ingest_written_total")
    dead0 = prometheus_sum(p.ingest_metrics, "stockflight_ingest_dead_lettered_total")
    good = json.dumps(
        {"itemId": "sku-cookbook", "nodeId": "store-cookbook", "availableQty": "5", "reservedQty": "1",
         "status": "AVAILABILITY_STATUS_IN_STOCK", "eventTimeUs": "1764050400000000", "source": "ops",
         "sequence": "1"}
    )
    unspecified = json.dumps(
        {"itemId": "sku-cookbook", "nodeId": "store-cookbook", "availableQty": "5", "eventTimeUs": "1764050400000000",
         "source": "ops", "sequence": "2"}
    )
    truncated = '{"itemId": "sku-cookbook", "nodeId": '

    # As in the cookbook: -k key, -H content-type for JSON, one record per line.
    records = (("cookbook-good", good), ("cookbook-unspecified", unspecified), ("cookbook-truncated", truncated))
    for key, value in records:
        kcat("-P", "-b", p.brokers, "-t", p.topic, "-k", key, "-H", "content-type=application/json",
             stdin=value + "\n")

    wait_for(
        "ingest wrote the good update",
        lambda: prometheus_sum(p.ingest_metrics, "stockflight_ingest_written_total") >= written0 + 1,
    )
    wait_for(
        "ingest dead-lettered the two bad ones",
        lambda: prometheus_sum(p.ingest_metrics, "stockflight_ingest_dead_lettered_total") >= dead0 + 2,
    )
    lines = kcat(
        "-C", "-b", p.brokers, "-t", p.dlq_topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%h\t%s\n"
    ).splitlines()
    dead = {}
    for line in lines:
        key, headers, value = line.split("\t", 2)
        dead[key] = (dict(h.split("=", 1) for h in headers.split(",")), value)

    assert set(dead) == {"cookbook-unspecified", "cookbook-truncated"}, lines
    headers, value = dead["cookbook-unspecified"]
    assert value == unspecified, "the original value is kept"
    assert headers["stockflight-dlq-kind"] == "invalid", headers
    assert "status" in headers["stockflight-dlq-reason"], headers
    assert headers["stockflight-dlq-source-topic"] == p.topic
    assert headers["content-type"] == "application/json"
    headers, value = dead["cookbook-truncated"]
    assert value == truncated
    assert headers["stockflight-dlq-kind"] == "json", headers
    assert headers["stockflight-dlq-reason"], headers
    # Its source offset points at the record itself.
    part, off = headers["stockflight-dlq-source-partition"], headers["stockflight-dlq-source-offset"]
    original = kcat("-C", "-b", p.brokers, "-t", p.topic, "-p", part, "-o", off, "-c", "1", "-q", "-f", "%k")
    assert original == "cookbook-truncated"


def test_consumer_group_lag_through_dev_stack(stockflight_pipeline):
    p = stockflight_pipeline
    def lags():
        done = subprocess.run(
            [str(REPO_ROOT / "dev" / "stack"), "kafka-tool",
             "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
             "--bootstrap-server", p.brokers, "--describe", "--group", p.group_id],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        rows = [line.split() for line in done.stdout.splitlines() if line.startswith(p.group_id + " ")]
        return {int(r[2]): (int(r[3]), int(r[4]), int(r[5])) for r in rows if r[1] == p.topic}

    def caught_up():
        table = lags()
        return table if len(table) == partitions and all(lag == 0 for _, _, lag in table.values()) else None

    # The group commits every 200 ms here; once it has, every partition's lag is 0.
    partitions = partition_count(p)
    table = wait_for("every partition at lag 0", caught_up)
    assert sum(end for _, end, _ in table.values()) >= p.messages


def test_grpcurl_handshake_token_and_actions(stockflight_pipeline):
    p = stockflight_pipeline
    addr = p.server.uri.removeprefix("grpc://")
    basic = base64.b64encode(f"{p.server.username}:{p.server.password}".encode()).decode()

    hello = grpcurl("-plaintext", "-v", "-H", f"authorization: Basic {basic}", "-d", "{}", addr,
                    "arrow.flight.protocol.FlightService/Handshake")
    assert hello.returncode == 0, hello.stderr
    token = re.search(r"^authorization: Bearer (\S+)$", hello.stdout, re.M)
    assert token, hello.stdout

    options = grpcurl("-plaintext", "-H", f"authorization: Bearer {token[1]}", "-d", '{"type":"GetSessionOptions"}',
                      addr, "arrow.flight.protocol.FlightService/DoAction")
    assert options.returncode == 0, options.stderr
    body = base64.b64decode(json.loads(options.stdout)["body"])
    assert b"stockflight" in body and b"public" in body, body

    anonymous = grpcurl("-plaintext", "-d", '{"type":"GetSessionOptions"}', addr,
                        "arrow.flight.protocol.FlightService/DoAction")
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr, anonymous.stderr
    wrong = grpcurl("-plaintext", "-H", "authorization: Basic " + base64.b64encode(b"analyst:nope").decode(),
                    "-d", "{}", addr, "arrow.flight.protocol.FlightService/Handshake")
    assert wrong.returncode != 0 and "Unauthenticated" in wrong.stderr, wrong.stderr
