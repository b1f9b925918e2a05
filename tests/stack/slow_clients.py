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

import asyncio
import json
import ssl
import sys
import time
from collections import Counter
from typing import Any

HEADER_TRICKLE_SECONDS = 2.0
# Held at once when the attacker says "holding".
HOLD_TARGET = 2000
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


async def slow_body(host: str, port: int, tls: ssl.SSLContext, opened: asyncio.Event) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname="localhost")
    writer.write(
        b"PATCH /api/v1/auth/me HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n" + b'{"first_n'
    )
    await writer.drain()
    started = time.monotonic()  # the last byte the server got from this client
    opened.set()
    try:
        ended = await asyncio.wait_for(closed_by_server(reader, started), GIVE_UP_SECONDS)
    except TimeoutError:
        ended = GAVE_UP
    writer.close()
    return ended


async def slow_handshake(host: str, port: int, opened: asyncio.Event) -> dict[str, Any]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(PARTIAL_CLIENT_HELLO)
    await writer.drain()
    opened.set()
    try:
        ended = await asyncio.wait_for(closed_by_server(reader, started), GIVE_UP_SECONDS)
    except TimeoutError:
        ended = GAVE_UP
    writer.close()
    return ended


async def main(host: str, port: int, headers: int, bodies: int, handshakes: int) -> None:
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    tls.set_alpn_protocols(["http/1.1"])
    # Not all handshakes at once: a few hundred in flight keep the attack quick without timing out here.
    opening = asyncio.Semaphore(400)
    total = headers + bodies + handshakes
    open_now = peak = 0
    started = time.monotonic()

    def opened_one() -> None:
        nonlocal open_now, peak
        open_now += 1
        if open_now > peak:
            peak = open_now
            # The moment the test checks that another client is served: enough held at once. (They
            # cannot all be: nginx cuts the first ones off while the last ones are being opened.)
            if peak == min(HOLD_TARGET, total):
                say(holding={"connections": peak, "opened_in_seconds": round(time.monotonic() - started, 1)})

    async def opened_one_by_one(kind: str, make: Any) -> dict[str, Any]:
        nonlocal open_now
        opened = asyncio.Event()
        async with opening:
            task = asyncio.ensure_future(make(opened))
            await asyncio.wait([task, asyncio.ensure_future(opened.wait())], return_when="FIRST_COMPLETED")
        if opened.is_set():
            opened_one()
        try:
            return {"kind": kind, **await task}
        except (ConnectionError, ssl.SSLError, OSError) as error:
            return {**GAVE_UP, "kind": kind, "outcome": f"refused: {error}", "seconds": 0.0}
        finally:
            if opened.is_set():
                open_now -= 1

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
    results = await asyncio.gather(*running)
    summary: dict[str, Any] = {}
    for kind in ("header", "body", "handshake"):
        of_kind = [result for result in results if result["kind"] == kind]
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
    asyncio.run(main(host, int(port), *(int(count) for count in counts)))
