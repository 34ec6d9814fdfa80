"""A TCP proxy on 127.0.0.1 that adds a fixed delay to every request it forwards.

Each chunk a client sends (an HTTP request without a body fits in one) waits ``--delay-ms`` before it
goes on to the server; answers flow back at once. With one request in flight per connection, as
HTTP/1.1 clients do, every request pays the delay once: a stand-in for a far-away S3 endpoint.

Run: ``python -m tools.bench.proxy --listen-port P --target-port Q --delay-ms 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

HOST = "127.0.0.1"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            if delay_s:
                await asyncio.sleep(delay_s)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
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
            _pump(client_reader, server_writer, delay_s), _pump(server_reader, client_writer, 0.0)
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
