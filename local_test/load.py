"""Bounded closed-loop load over loopback: each client process sends one request after another
on one keep-alive connection for a number of seconds, then stops."""

import http.client
import multiprocessing
import time

import numpy as np


def _client(port, body, content_type, seconds, queue):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    latencies, statuses = [], {}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        connection.request("POST", "/invocations", body, headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    queue.put((latencies, statuses))


def load(port, body, content_type, concurrency, seconds):
    """p50 and p99 (ms), requests/s, request count, errors and the count by status of
    ``concurrency`` clients sending ``body`` for ``seconds``."""
    queue = multiprocessing.Queue()
    clients = [
        multiprocessing.Process(target=_client, args=(port, body, content_type, seconds, queue))
        for _ in range(concurrency)
    ]
    for c in clients:
        c.start()
    results = [queue.get() for _ in clients]
    for c in clients:
        c.join()
    latencies = np.concatenate([r[0] for r in results]) * 1000
    statuses = {}
    for _, counts in results:
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "rps": len(latencies) / seconds,
        "requests": len(latencies),
        "errors": len(latencies) - statuses.get(200, 0),
        "statuses": statuses,
    }
