"""Where each part of the mesh listens, defined once: the default ports, and the
variables that move them (`<PART>_HOST`/`<PART>_PORT` where a part listens,
`<PART>_ADDR` where its callers find it). The services, the gateway's settings
and the local launcher all read these, so a port changes in one place."""

from __future__ import annotations

from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Part:
    name: str
    prefix: str  # of its variables: INTERACTIONS_HOST, INTERACTIONS_PORT, INTERACTIONS_ADDR
    port: int

    @property
    def host_variable(self) -> str:
        return f"{self.prefix}_HOST"

    @property
    def port_variable(self) -> str:
        return f"{self.prefix}_PORT"

    @property
    def address_variable(self) -> str:
        return f"{self.prefix}_ADDR"

    @property
    def default_address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


INTERACTIONS = Part("interactions", "INTERACTIONS", 50051)
BOT = Part("bot", "BOT", 50052)
TRAINER = Part("trainer", "TRAINER", 50053)
WEB = Part("web", "WEB", 8081)
GATEWAY = Part("gateway", "GATEWAY", 8080)
GATEWAY_ADMIN = Part("gateway admin", "GATEWAY_ADMIN", 9901)
