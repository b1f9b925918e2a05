"""One client address holding thousands of slow connections to nginx (slowloris), run by test_edge.py in a
container on the stack's edge network, so that nginx sees one address that is not the test's own (Docker's
userland proxy makes every client on 127.0.0.1 one and the same address).

Usage: python slow_clients.py HOST PORT HEADERS BODIES HANDSHAKES

Opens, as fast as it can and all held (unfinished headers first):
- HEADERS TLS connections that send an unfinished request header and add a header line every 2 s;
- HANDSHAKES TCP connections that send the first bytes of a TLS ClientHello, then nothing;
- BODIES TLS connections that send a PATCH with Content-Length 100000, 10 bytes of its body, then nothing.

Prints one JSON object per line: {"holding": {...}} once 2,000 connections are open at the same time
(the test then checks that another client is served), and {"done": {...}} with, for each kind, how each
connection ended, after how many seconds the server answered and closed it, and one answer of each
outcome. Seconds count from the connect for unfinished headers and handshakes (nginx's timer runs from
the accept), from the last byte sent for bodies (nginx's timer runs between two reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import queue
import ssl
import sys
import time
from collections import Counter
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from typing import Any

HEADER_TRICKLE_SECONDS = 2.0
# Held at once when the attacker says "holding".
HOLD_TARGET = 2000
PROCESSES = 4
# Give up on a connection the server has not closed after this long (the limits close them in ~10 s).
GIVE_UP_SECONDS = 40.0
# A TLS record header announcing a ClientHello of 512 bytes, and the first bytes of it.
PARTIAL_CLIENT_HELLO = bytes.fromhex("1603010200") + bytes.fromhex("010001fc0303")


def say(**message: Any) -> None:
    print(json.dumps(message), flush=True)  # noqa: T201 (the test reads this output)


async def closed_by_server(reader: asyncio.StreamReader, started: float) -> dict[str, Any]:
    """Read until the server closes: the outcome ("closed", or "status NNN" for an HTTP answer), after
    how many seconds the connection was closed and the answer began, and the answer."""
    received, answered = b"", None
    while True:
        try:
            chunk = await reader.read(65536)
        except (ConnectionError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            outcome = "closed"
            if received.startswith(b"HTTP/1.1 "):
                outcome = f"status {received[9:12].decode()}"
            return {
                "outcome": outcome,
                "seconds": time.monotonic() - started,
                "answered": answered,
                "answer": received[:2000].decode("latin-1"),
            }
        if answered is None:
            answered = time.monotonic() - started
        received += chunk


GAVE_UP = {"outcome": "held", "seconds": GIVE_UP_SECONDS, "answered": None, "answer": ""}


async def slow_header(host: str, port: int, tls: ssl.SSLContext, opened: asyncio.Event) -> dict[str, Any]:
    # nginx's client_header_timeout runs from the moment it accepts the connection, through the TLS
    # handshake (which waits in line behind the others) to the end of the header.
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname="localhost")
    writer.write(b"GET /api/v1/auth/me HTTP/1.1\r\nHost: localhost\r\n")
    await writer.drain()
    opened.set()
    closing = asyncio.ensure_future(closed_by_server(reader, started))
    line = 0
    while not closing.done() and time.monotonic() - started < GIVE_UP_SECONDS:
        await asyncio.wait([closing], timeout=HEADER_TRICKLE_SECONDS)
        if not closing.done():
            line += 1
            try:
                writer.write(f"X-Slow-{line}: still coming\r\n".encode())
                await writer.drain()
            except (ConnectionError, ssl.SSLError, OSError):
                pass
    writer.close()
    return await closing if closing.done() else GAVE_UP


async def until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, started: float
) -> dict[str, Any]:
    """When and how the server closed the connection, or GAVE_UP; the client's side is closed after."""
    try:
        ended = await asyncio.wait_for(closed_by_server(reader, started), GIVE_UP_SECONDS)
    except TimeoutError:
        ended = GAVE_UP
    writer.close()
    return ended


async def slow_body(host: str, port: int, tls: ssl.SSLContext, opened: asyncio.Event) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname="localhost")
    writer.write(
        b"PATCH /api/v1/auth/me HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n" + b'{"first_n'
    )
    await writer.drain()
    started = time.monotonic()  # the last byte the server got from this client
    opened.set()
    return await until_closed(reader, writer, started)


async def slow_handshake(host: str, port: int, opened: asyncio.Event) -> dict[str, Any]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(PARTIAL_CLIENT_HELLO)
    await writer.drain()
    opened.set()
    return await until_closed(reader, writer, started)


async def attack(
    host: str, port: int, headers: int, bodies: int, handshakes: int, open_now: Synchronized[int]
) -> list[dict[str, Any]]:
    """One process's share of the connections; ``open_now`` counts the open ones of every process."""
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    tls.set_alpn_protocols(["http/1.1"])
    # Not all handshakes at once: a few hundred in flight keep the attack quick without timing out here.
    opening = asyncio.Semaphore(200)

    def count(change: int) -> None:
        with open_now.get_lock():
            open_now.value += change

    async def opened_one_by_one(kind: str, make: Any) -> dict[str, Any]:
        opened = asyncio.Event()
        async with opening:
            task = asyncio.ensure_future(make(opened))
            await asyncio.wait([task, asyncio.ensure_future(opened.wait())], return_when="FIRST_COMPLETED")
        if opened.is_set():
            count(+1)
        try:
            return {"kind": kind, **await task}
        except (ConnectionError, ssl.SSLError, OSError) as error:
            return {**GAVE_UP, "kind": kind, "outcome": f"refused: {error}", "seconds": 0.0}
        finally:
            if opened.is_set():
                count(-1)

    # Unfinished headers first: they are what must be held 2,000 at once.
    running = (
        [
            asyncio.ensure_future(opened_one_by_one("header", lambda e: slow_header(host, port, tls, e)))
            for _ in range(headers)
        ]
        + [
            asyncio.ensure_future(opened_one_by_one("handshake", lambda e: slow_handshake(host, port, e)))
            for _ in range(handshakes)
        ]
        + [
            asyncio.ensure_future(opened_one_by_one("body", lambda e: slow_body(host, port, tls, e)))
            for _ in range(bodies)
        ]
    )
    return list(await asyncio.gather(*running))


def attack_in_process(
    host: str, port: int, counts: tuple[int, int, int], open_now: Synchronized[int], results: Queue[Any]
) -> None:
    results.put(asyncio.run(attack(host, port, *counts, open_now)))


def main(host: str, port: int, headers: int, bodies: int, handshakes: int) -> None:
    """The connections shared out over a few processes (one client address all the same): one Python
    process alone cannot open TLS connections faster than nginx cuts them off on a busy machine."""
    context = multiprocessing.get_context("fork")
    open_now = context.Value("i", 0)
    results = context.Queue()
    shares = [
        tuple(
            total // PROCESSES + (1 if index < total % PROCESSES else 0)
            for total in (headers, bodies, handshakes)
        )
        for index in range(PROCESSES)
    ]
    processes = [
        context.Process(target=attack_in_process, args=(host, port, share, open_now, results))
        for share in shares
    ]
    started = time.monotonic()
    for process in processes:
        process.start()
    peak, announced, gathered = 0, False, []
    while len(gathered) < len(processes):
        with contextlib.suppress(queue.Empty):
            gathered.append(results.get(timeout=0.02))
        peak = max(peak, open_now.value)
        # The moment the test checks that another client is served: enough held at once. (Not all of
        # them: nginx cuts the first ones off while the last ones are being opened.)
        if not announced and peak >= min(HOLD_TARGET, headers + bodies + handshakes):
            say(holding={"connections": peak, "opened_in_seconds": round(time.monotonic() - started, 1)})
            announced = True
    for process in processes:
        process.join()
    results_of_all = [result for share in gathered for result in share]
    summary: dict[str, Any] = {}
    for kind in ("header", "body", "handshake"):
        of_kind = [result for result in results_of_all if result["kind"] == kind]
        summary[kind] = {
            "outcomes": dict(Counter(result["outcome"] for result in of_kind)),
            "closed_after": sorted(round(result["seconds"], 1) for result in of_kind),
            "answered_after": sorted(
                round(result["answered"], 1) for result in of_kind if result["answered"]
            ),
            # Closed by the server without an answer: cut off by a timeout.
            "cut_off_after": sorted(
                round(result["seconds"], 1) for result in of_kind if result["outcome"] == "closed"
            ),
            # One answer of each outcome, as the server sent it.
            "answers": {result["outcome"]: result["answer"] for result in of_kind},
        }
    say(done={"peak_open": peak, **summary})


if __name__ == "__main__":
    host, port, *counts = sys.argv[1:]
    main(host, int(port), *(int(count) for count in counts))
