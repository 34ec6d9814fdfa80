"""A TCP proxy on 127.0.0.1 that delays what clients send by a fixed time: a far server, near by.

Every chunk a client sends reaches the server ``--delay-ms`` after it arrived here, in order, like a
network link of that one-way latency (a chunk that follows another closely is not delayed twice);
answers flow back at once. A client that waits for each answer before it asks again (an HTTP/1.1
request, a MySQL statement) so pays the delay once per request: the round trip of a far S3 endpoint
or database. It serves any TCP protocol, S3 and MySQL alike.

Run: ``python -m tools.bench.proxy --listen-port P --target-port Q --delay-ms 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

HOST = "127.0.0.1"
_CHUNK = 1 << 18


async def _delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Forward ``reader`` to ``writer``, each chunk ``delay_s`` after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        try:
            while chunk := await reader.read(_CHUNK):
                queue.put_nowait((loop.time() + delay_s, chunk))
        finally:
            queue.put_nowait((loop.time() + delay_s, b""))

    receiving = asyncio.ensure_future(receive())
    try:
        while True:
            due, chunk = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        receiving.cancel()
        with contextlib.suppress(Exception):
            writer.close()


async def _direct(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(listen_port: int, target_port: int, delay_s: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(HOST, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _delayed(client_reader, server_writer, delay_s),
            _direct(server_reader, client_writer),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, HOST, listen_port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.listen_port, args.target_port, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
