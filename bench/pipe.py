"""The bare pipe `make bench` compares `adlens stream` with: consume every
record of a topic and produce it unchanged to another (confluent-kafka, no
processing), timed like adlens's summary: from the first record received to
the last delivery acknowledged.
Usage: pipe.py BROKERS IN_TOPIC OUT_TOPIC RECORDS
"""

import sys
import time

from confluent_kafka import Consumer, Producer

brokers, source, sink, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
consumer = Consumer({
    "bootstrap.servers": brokers,
    "group.id": "bench-pipe",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
producer = Producer({
    "bootstrap.servers": brokers,
    # adlens stream's producer settings (src/kafka.rs), for a fair comparison.
    "acks": "all",
    "linger.ms": 20,
    "batch.num.messages": 10000,
    "queue.buffering.max.messages": 500000,
})
acked = 0


def on_delivery(err, _msg):
    global acked
    if err is None:
        acked += 1


consumer.subscribe([source])
first = None
seen = 0
while seen < expected:
    batch = consumer.consume(num_messages=10000, timeout=1.0)
    for m in batch:
        if m.error():
            continue
        first = first or time.monotonic()
        seen += 1
        while True:
            try:
                producer.produce(sink, m.value(), m.key(), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
    producer.poll(0)
producer.flush()
secs = time.monotonic() - first
consumer.commit(asynchronous=False)
consumer.close()
print(f"bare pipe: {acked:,} records in {secs:.2f} s: {acked / secs:,.0f} records/s")
