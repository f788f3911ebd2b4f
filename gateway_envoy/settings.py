"""Envoy's parameters for the two places it runs: the local mesh (from the
environment, like every service's settings) and Kubernetes (Helm expressions,
filled in by the chart)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from gateway_envoy.config import Params, Tracing, Upstream
from mendkit import addresses
from mendkit.addresses import Part
from mendkit.settings import SettingsError, address_of, env_float, env_int, env_str


def _upstream(part: Part, environ: Mapping[str, str] | None) -> Upstream:
    variable, value = part.address_variable, address_of(part, environ)
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{variable} must be host:port, got {value!r}")
    return Upstream(host, int(port))


CORS_VARIABLE = "GATEWAY_CORS_ALLOWED_ORIGINS"
# scheme://host[:port], as a browser sends it in Origin: no path, no trailing slash, no wildcard.
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?")


def cors_allowed_origins(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The origins allowed to call the API from another site: none unless listed.
    The page is served from the API's own origin and needs no CORS."""
    if (os.environ if environ is None else environ).get("GATEWAY_CORS_ORIGIN_REGEX", "").strip():
        raise SettingsError(f"GATEWAY_CORS_ORIGIN_REGEX is no longer read: list the origins allowed cross-origin, "
                            f"exactly, in {CORS_VARIABLE} (comma-separated, e.g. https://shop.example)")
    origins = tuple(o.strip() for o in env_str(CORS_VARIABLE, "", environ=environ).split(",") if o.strip())
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise SettingsError(f"{CORS_VARIABLE} must list origins such as https://shop.example "
                                f"(scheme://host[:port], no path), got {origin!r}")
    return origins


def local(environ: Mapping[str, str] | None = None) -> Params:
    """The local mesh: everything on loopback, numbers from the environment."""
    tracing = None
    endpoint = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "", environ=environ)
    if endpoint:
        parts = urlsplit(endpoint if "//" in endpoint else f"http://{endpoint}")
        if not parts.hostname or not parts.port:
            raise SettingsError(f"OTEL_EXPORTER_OTLP_ENDPOINT must name a host and port, got {endpoint!r}")
        tracing = Tracing(Upstream(parts.hostname, parts.port),
                          env_float("GATEWAY_TRACE_SAMPLING_PERCENT", 100.0, minimum=0.0, maximum=100.0,
                                    environ=environ))
    per_second = env_int("GATEWAY_RATE_LIMIT_PER_SECOND", 20, minimum=1, environ=environ)
    # A person chatting sends a question every few seconds; a page reload is not counted.
    per_client = env_int("GATEWAY_RATE_LIMIT_PER_CLIENT_PER_SECOND", 5, minimum=1, environ=environ)
    return Params(
        listen_address=env_str("GATEWAY_HOST", "127.0.0.1", environ=environ),
        port=env_int(addresses.GATEWAY.port_variable, addresses.GATEWAY.port, minimum=1, maximum=65535,
                     environ=environ),
        admin_port=env_int(addresses.GATEWAY_ADMIN.port_variable, addresses.GATEWAY_ADMIN.port, minimum=1,
                           maximum=65535, environ=environ),
        bot=_upstream(addresses.BOT, environ),
        interactions=_upstream(addresses.INTERACTIONS, environ),
        web=_upstream(addresses.WEB, environ),
        rate_limit_max_tokens=env_int("GATEWAY_RATE_LIMIT_BURST", 2 * per_second, minimum=1, environ=environ),
        rate_limit_tokens_per_fill=per_second,
        rate_limit_fill_interval="1s",
        client_rate_limit_max_tokens=env_int("GATEWAY_RATE_LIMIT_PER_CLIENT_BURST", 2 * per_client, minimum=1,
                                             environ=environ),
        client_rate_limit_tokens_per_fill=per_client,
        trusted_proxy_hops=env_int("GATEWAY_TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=10, environ=environ),
        cors_allowed_origins=cors_allowed_origins(environ),
        tracing=tracing,
        dns=False,
    )


def _value(path: str) -> str:
    return f"{{{{ .Values.{path} }}}}"


def kubernetes() -> Params:
    """Helm expressions; the chart (helm/mend) defines every name used here."""
    return Params(
        listen_address="0.0.0.0",
        port=_value("gateway.port"),
        # Loopback only; probes reach /ready through `probe_port`.
        admin_port=9902,
        probe_port=_value("gateway.adminPort"),
        bot=Upstream('{{ include "mend.botHost" . }}', _value("bot.port")),
        interactions=Upstream('{{ include "mend.interactionsHost" . }}', _value("interactions.port")),
        web=Upstream('{{ include "mend.webHost" . }}', _value("web.port")),
        rate_limit_max_tokens=_value("gateway.rateLimit.maxTokens"),
        rate_limit_tokens_per_fill=_value("gateway.rateLimit.tokensPerFill"),
        rate_limit_fill_interval=_value("gateway.rateLimit.fillInterval"),
        client_rate_limit_max_tokens=_value("gateway.rateLimit.perClient.maxTokens"),
        client_rate_limit_tokens_per_fill=_value("gateway.rateLimit.perClient.tokensPerFill"),
        # Behind the chart's Ingress one proxy adds the client's address; otherwise none.
        trusted_proxy_hops=('{{ if kindIs "invalid" .Values.gateway.trustedProxyHops }}'
                            '{{ ternary 1 0 .Values.ingress.enabled }}'
                            '{{ else }}{{ .Values.gateway.trustedProxyHops }}{{ end }}'),
        cors_allowed_origins='{{ include "mend.corsOriginMatchers" . }}',
        # Rendered only with telemetry on: no collector cluster or tracer otherwise.
        tracing=Tracing(
            Upstream(_value("telemetry.collectorHost"), _value("telemetry.collectorPort")),
            _value("telemetry.gatewaySamplingPercent"),
            enabled_if=".Values.telemetry.enabled",
        ),
        dns=True,
    )
