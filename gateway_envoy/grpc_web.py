"""A minimal gRPC-web client codec (unary calls), for the tests and the
benchmark to speak to Envoy exactly as a browser does, from Python.

Wire format (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md):
each frame is one flag byte (0x00 data, 0x80 trailers), a 4-byte big-endian
length, then the payload; trailers are `name:value` lines.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import httpx
from google.protobuf.message import Message

CONTENT_TYPE = "application/grpc-web+proto"


def frame(payload: bytes, trailers: bool = False) -> bytes:
    return struct.pack(">BI", 0x80 if trailers else 0x00, len(payload)) + payload


@dataclass
class Reply:
    http_status: int
    headers: httpx.Headers
    messages: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def grpc_status(self) -> int:
        # A trailers-only reply (an error before any message) carries the
        # status in the headers instead of a trailer frame.
        return int(self.trailers.get("grpc-status", self.headers.get("grpc-status", "2")))

    @property
    def grpc_message(self) -> str:
        return self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))


def parse(body: bytes, http_status: int, headers: httpx.Headers) -> Reply:
    reply = Reply(http_status, headers)
    offset = 0
    while offset + 5 <= len(body):
        flags, length = struct.unpack_from(">BI", body, offset)
        payload = body[offset + 5: offset + 5 + length]
        offset += 5 + length
        if flags & 0x80:
            for line in payload.decode().split("\r\n"):
                if ":" in line:
                    name, value = line.split(":", 1)
                    reply.trailers[name.strip().lower()] = value.strip()
        else:
            reply.messages.append(payload)
    return reply


async def call(client: httpx.AsyncClient, base_url: str, method: str, request: Message,
               headers: dict[str, str] | None = None) -> Reply:
    """POSTs one unary gRPC-web call, e.g. method='/mend.bot.v1.ChatService/Chat'."""
    response = await client.post(
        base_url.rstrip("/") + method,
        content=frame(request.SerializeToString()),
        headers={"content-type": CONTENT_TYPE, "x-grpc-web": "1", "accept": CONTENT_TYPE, **(headers or {})},
    )
    return parse(response.content, response.status_code, response.headers)
