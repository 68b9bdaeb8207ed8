"""How `scripts/api.sh` serves the app: uvicorn's h11 HTTP protocol, with TCP_NODELAY on every connection.

With `--workers N` uvicorn binds the listening socket itself, leaving its `proto` at 0; asyncio then never turns
Nagle's algorithm off on the accepted connections, and on Linux every keep-alive response after the first waits
~40 ms for the client's delayed ACK (Kludex/uvicorn#3149, open for uvicorn 0.54; one worker is unaffected).
`--http helpers.serving.protocol:NoDelayH11Protocol` sets TCP_NODELAY itself, whatever the number of workers.
"""
from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that switches Nagle's algorithm off on its TCP connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
