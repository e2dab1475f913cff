#!/usr/bin/env python3
"""Kafka's promises, checked against the test-bed broker with librdkafka (confluent-kafka).

Usage: conformance.py BOOTSTRAP PHASE
  PHASE=before: create a topic, write 20 records in two batches of 10, commit offset 7
                for group conformance-g, then check:
                1. a fetch from any offset returns that record and the ones after it;
                2. the high watermark equals the number of records written;
                4. a group member that dies without leaving is replaced after the session
                   timeout, and its successor resumes at the committed offset;
                5. metadata hands host clients a host-reachable broker address;
                6. the partition of a member that dies without leaving goes to the
                   member that stays (and had none), once the dead one's session has
                   timed out.
  PHASE=after:  run after the broker container restarted:
                3. the topic, its records and the committed group offset survived;
                7. deleting one topic deletes that topic only (tansu 0.6.0 deleted every
                   topic: the test bed builds it with findemo's fix, README.md).
Exit 0 when every check holds; each failure is printed.
"""
import multiprocessing
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "conformance-t"
GROUP = "conformance-g"
RECORDS = 20
COMMITTED = 7
FAILURES = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        FAILURES.append(name)


def consumer(bootstrap, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": extra.pop("group", "conformance-reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 10000,
    }
    conf.update(extra)
    return Consumer(conf)


def read_from(bootstrap, offset, want):
    """Offsets of the records a fetch from `offset` returns (up to `want`, 10 s)."""
    c = consumer(bootstrap)
    c.assign([TopicPartition(TOPIC, 0, offset)])
    got, deadline = [], time.time() + 10
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.offset())
    c.close()
    return got


def write(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    for f in futures.values():
        try:
            f.result(15)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10})
    for batch in range(2):
        for i in range(10):
            p.produce(TOPIC, key=b"k", value=f"record-{batch * 10 + i}".encode())
        p.flush(15)  # one flush per batch of 10: two record batches


def member(bootstrap, ready, die_after_commit):
    """A group member that takes the partition, commits, then dies without leaving."""
    c = consumer(bootstrap, group=GROUP + "-m", **{"session.timeout.ms": 6000})
    c.subscribe([TOPIC])
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            c.commit(offsets=[TopicPartition(TOPIC, 0, 12)], asynchronous=False)
            ready.set()
            if die_after_commit:
                os._exit(0)  # no LeaveGroup, no close: a crash
    os._exit(1)


def replacement(bootstrap):
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    crash = ctx.Process(target=member, args=(bootstrap, ready, True))
    crash.start()
    crash.join(40)
    if not ready.is_set():
        check("4. a group member is replaced", False, "the first member never got the partition")
        return
    started = time.time()
    c = consumer(bootstrap, group=GROUP + "-m", **{"session.timeout.ms": 6000})
    c.subscribe([TOPIC])
    first = None
    while first is None and time.time() - started < 60:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            first = m.offset()
    c.close()
    check(
        "4. a group member that died is replaced and resumes at the committed offset",
        first == 12,
        f"successor's first offset {first} after {time.time() - started:.1f}s (committed 12)",
    )


SHARED = "conformance-t6"


def holder(bootstrap, holding, crash):
    """Takes the partition, keeps it through the survivor's join, then crashes."""
    # Range assignment orders members by id, which starts with the client id: "a-"
    # sorts first, so this member keeps the partition when the survivor joins.
    c = consumer(bootstrap, group=GROUP + "-s", **{"session.timeout.ms": 6000, "client.id": "a-holder"})
    c.subscribe([SHARED])
    deadline = time.time() + 60
    while time.time() < deadline:
        c.poll(0.2)
        holding.value = len(c.assignment())
        if crash.is_set():
            os._exit(0)  # no LeaveGroup, no close: a crash
    os._exit(1)


def takeover(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(SHARED, num_partitions=1, replication_factor=1)]).values():
        f.result(15)
    ctx = multiprocessing.get_context("fork")
    holding, crash = ctx.Value("i", 0), ctx.Event()
    dying = ctx.Process(target=holder, args=(bootstrap, holding, crash))
    dying.start()
    deadline = time.time() + 30
    while holding.value == 0 and time.time() < deadline:
        time.sleep(0.2)
    survivor = consumer(bootstrap, group=GROUP + "-s", **{"session.timeout.ms": 6000, "client.id": "b-survivor"})
    survivor.subscribe([SHARED])
    settle = time.time() + 10  # both members through the rebalance
    while time.time() < settle:
        survivor.poll(0.2)
    held = holding.value
    crash.set()
    dying.join(5)
    if held == 0 or survivor.assignment():
        survivor.close()
        check("6. a dead member's partition goes to the survivor", False,
              f"setup: the first member held {held} partition(s), the survivor {len(survivor.assignment())}")
        return
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(SHARED, value=b"after the crash", partition=0)
    p.flush(15)
    started, got = time.time(), None
    while got is None and time.time() - started < 45:
        m = survivor.poll(0.5)
        if m is not None and m.error() is None:
            got = m.offset()
    survivor.close()
    check(
        "6. a dead member's partition goes to the survivor",
        got is not None,
        f"the survivor read offset {got} {time.time() - started:.1f}s after the first member crashed",
    )


def before(bootstrap, host_port):
    write(bootstrap)
    for start, want in [(0, list(range(20))), (5, list(range(5, 20))), (15, list(range(15, 20)))]:
        got = read_from(bootstrap, start, len(want))
        check(f"1. a fetch from offset {start} returns {start}..19", got == want, f"got {got}")
    c = consumer(bootstrap)
    low, high = c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
    check("2. the high watermark is the number of records", high == RECORDS, f"low {low}, high {high}")
    c.close()
    g = consumer(bootstrap, group=GROUP)
    g.commit(offsets=[TopicPartition(TOPIC, 0, COMMITTED)], asynchronous=False)
    g.close()
    replacement(bootstrap)
    takeover(bootstrap)
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    brokers = [(b.host, b.port) for b in md.brokers.values()]
    check(
        "5. metadata names a host-reachable broker",
        all(h in ("localhost", "127.0.0.1") and p == host_port for h, p in brokers),
        f"brokers {brokers}",
    )


def after(bootstrap):
    c = consumer(bootstrap)
    md = c.list_topics(timeout=10)
    check("3. the topic survived the restart", TOPIC in md.topics)
    if TOPIC not in md.topics:
        c.close()
        return
    low, high = c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
    check("3. its records survived", high == RECORDS, f"high {high}")
    c.close()
    got = read_from(bootstrap, 10, 10)
    check("3. the records read back", got == list(range(10, 20)), f"got {got}")
    g = consumer(bootstrap, group=GROUP)
    committed = g.committed([TopicPartition(TOPIC, 0)], timeout=10)
    g.close()
    offset = committed[0].offset if committed else None
    check("3. the committed group offset survived", offset == COMMITTED, f"offset {offset}")
    delete_one(bootstrap)


def delete_one(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    gone, kept = "conformance-delete", "conformance-keep"
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in (gone, kept)]).values():
        try:
            f.result(15)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    for f in admin.delete_topics([gone], operation_timeout=15).values():
        f.result(15)
    topics = set(admin.list_topics(timeout=10).topics)
    check(
        "7. deleting one topic deletes that one only",
        gone not in topics and {kept, TOPIC} <= topics,
        f"topics after deleting {gone}: {sorted(topics)}",
    )


def main():
    bootstrap, phase = sys.argv[1], sys.argv[2]
    host_port = int(bootstrap.rsplit(":", 1)[1])
    {"before": lambda: before(bootstrap, host_port), "after": lambda: after(bootstrap)}[phase]()
    if FAILURES:
        print(f"conformance: {len(FAILURES)} check(s) failed", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
