"""A TCP hop between a process under test and PostgreSQL, for outages and slow replies.

It can be switched off (refusing connections and dropping the ones it carried) and on again
at the same port, and can hold back what PostgreSQL sends on one connection, named by its
port towards PostgreSQL (`client_port` in `pg_stat_activity`), whatever the protocol
carries (TLS included).
"""

import asyncio


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._delays: dict[int, float] = {}
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "TcpProxy":
        await self.on()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._server is not None:
            await self.off()

    async def on(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def off(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    def slow(self, upstream_port: int, seconds: float) -> None:
        """Deliver what PostgreSQL sends on that connection `seconds` late from now on."""
        self._delays[upstream_port] = seconds

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, upstream_writer}
        upstream_port: int = upstream_writer.get_extra_info("sockname")[1]
        await asyncio.gather(
            self._pipe(reader, upstream_writer, None),
            self._pipe(upstream_reader, writer, upstream_port),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: int | None
    ) -> None:
        try:
            while data := await reader.read(65536):
                if delayed is not None and (delay := self._delays.get(delayed, 0.0)):
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
