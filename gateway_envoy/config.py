"""The one source of Envoy's configuration, rendered for the local mesh and for
Kubernetes.

`build(params)` returns Envoy's bootstrap as a dict. For the local mesh the
parameters are real addresses and numbers; for Kubernetes they are Helm
template expressions (`{{ .Values.bot.port }}`), which `render()` leaves
unquoted so that the chart's `tpl` fills them in as plain YAML scalars.

Filter order matters: grpc_web first (it turns gRPC-web into gRPC and back,
including Envoy's own local replies), then cors (answers preflights before
anything counts them), then the local rate limit, then the request size cap,
then the router.

The page is served from the same origin as its API, so it needs no CORS: by
default no other origin is allowed, and only origins listed exactly
(`cors_allowed_origins`) get `Access-Control-Allow-Origin`. The tracer and
its collector's cluster exist only when tracing is on; for Kubernetes they are
wrapped in the chart's `{{- if .Values.telemetry.enabled }}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from gateway_envoy.routes import DENIED_MESSAGE, PUBLIC_ROUTES, PublicRoute
from mendkit.access import AUTHORIZATION
from mendkit.callers import CALLER_HEADER, PUBLIC

Number = int | str  # a number, or a template expression that becomes one

GRPC_WEB_HEADERS = "content-type,x-grpc-web,x-user-agent,grpc-timeout,traceparent,tracestate"
EXPOSED_HEADERS = "grpc-status,grpc-message,grpc-status-details-bin"
# Clients with a bucket of their own at once, per gateway: a flood of new
# addresses evicts the least recently seen, still capped by the ceiling.
MAX_CLIENTS_TRACKED = 20000
# A valid chat request is at most 4,000 characters of query (16 KB of UTF-8) plus
# ids; anything far bigger is refused before it reaches a service.
MAX_REQUEST_BYTES = 65536
MAX_CONNECTIONS = 10000


@dataclass(frozen=True)
class Upstream:
    host: str
    port: Number


@dataclass(frozen=True)
class Tracing:
    collector: Upstream  # OTLP/gRPC
    sampling_percent: float | str  # a percentage, or a template expression that becomes one
    # A Helm condition (Kubernetes): the tracer and the collector's cluster are
    # rendered inside `{{- if <condition> }}`, so they exist only with telemetry on.
    enabled_if: str | None = None


@dataclass(frozen=True)
class Params:
    listen_address: str
    port: Number
    admin_port: Number
    bot: Upstream
    interactions: Upstream
    web: Upstream
    # The gateway's ceiling: one bucket every public call takes a token from.
    rate_limit_max_tokens: Number
    rate_limit_tokens_per_fill: Number
    rate_limit_fill_interval: str
    # Each client's own bucket (same fill interval), so that one client cannot
    # spend the ceiling for everyone. A client is its address as Envoy trusts it.
    client_rate_limit_max_tokens: Number
    client_rate_limit_tokens_per_fill: Number
    # Origins allowed to call the API cross-origin, matched exactly (ignoring
    # case); none by default. Or a template expression that becomes the list of
    # Envoy string matchers (Kubernetes).
    cors_allowed_origins: tuple[str, ...] | str
    tracing: Tracing | None
    # Resolve upstream names through DNS (Kubernetes Services) instead of
    # taking them as IP addresses (the local mesh).
    dns: bool
    # Kubernetes probes reach Envoy's /ready through this port; the admin
    # interface itself stays on loopback.
    probe_port: Number | None = None
    # Proxies in front of Envoy whose X-Forwarded-For entries are believed (an
    # ingress: 1). With 0 the client is the connection's peer, and a header a
    # client forges changes nothing.
    trusted_proxy_hops: Number = 0


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _address(host: str, port: Number) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _cluster(name: str, upstream: Upstream, params: Params, *, http2: bool, health_check: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STRICT_DNS" if params.dns else "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(upstream.host, upstream.port)}}]}],
        },
    }
    if params.dns:
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if http2:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http2_protocol_options": {}},
            )
        }
    if health_check:
        # The services implement grpc.health.v1; an endpoint that stops serving
        # (a pod shutting down) leaves the rotation before calls fail.
        cluster["health_checks"] = [{
            "timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1,
            "grpc_health_check": {},
        }]
    return cluster


def _public_route(route: PublicRoute) -> dict[str, Any]:
    retry_on = "connect-failure,refused-stream"
    if route.idempotent:
        retry_on += ",unavailable,reset"
    action: dict[str, Any] = {
        "cluster": route.upstream,
        # A stream has no overall deadline (0s): only silence between messages ends it.
        "timeout": f"{route.timeout_s}s",
        # Honour the caller's grpc-timeout, capped at the route's own bound.
        "max_stream_duration": {"grpc_timeout_header_max": f"{route.timeout_s}s"},
        "retry_policy": {"retry_on": retry_on, "num_retries": 2},
    }
    if route.streaming:
        action["idle_timeout"] = "300s"
    return {"name": route.path.rsplit("/", 1)[1], "match": {"path": route.path}, "route": action}


def _denied(prefix: str) -> dict[str, Any]:
    # A local reply to a gRPC request becomes a trailers-only gRPC response;
    # Envoy maps 403 to PERMISSION_DENIED.
    # No buffering first: a streaming call (reflection) never ends its request
    # body, and would otherwise wait for it until the idle timeout.
    return {"match": {"prefix": prefix},
            "direct_response": {"status": 403, "body": {"inline_string": DENIED_MESSAGE}},
            "typed_per_filter_config": {"envoy.filters.http.buffer": _typed(
                "envoy.extensions.filters.http.buffer.v3.BufferPerRoute", disabled=True)}}


def origin_matchers(origins: tuple[str, ...]) -> list[dict[str, Any]]:
    """Envoy string matchers allowing exactly `origins` (browsers send them lowercase)."""
    return [{"exact": origin, "ignore_case": True} for origin in origins]


def _route_config(params: Params) -> dict[str, Any]:
    origins = params.cors_allowed_origins
    cors = _typed(
        "envoy.extensions.filters.http.cors.v3.CorsPolicy",
        # Empty (the default): no origin but the page's own, which needs no CORS.
        allow_origin_string_match=origins if isinstance(origins, str) else origin_matchers(origins),
        allow_methods="POST, GET, OPTIONS",
        allow_headers=GRPC_WEB_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age="86400",
        # A preflight from an origin not allowed is answered by Envoy without
        # Access-Control-Allow-Origin, never forwarded to a service.
        forward_not_matching_preflights=False,
    )
    page = {
        "name": "page",
        "match": {"prefix": "/"},
        "route": {"cluster": "web", "timeout": "10s"},
        # The page's files are not what the rate limit protects.
        "typed_per_filter_config": {
            "envoy.filters.http.local_ratelimit": _typed("envoy.config.route.v3.FilterConfig", disabled=True),
        },
    }
    return {
        "name": "public",
        # Every request forwarded from the public listener says so, whatever
        # the client sent under that name: services hold public callers to
        # the customer's own data (a vote needs its conversation's token).
        "request_headers_to_add": [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                    "header": {"key": CALLER_HEADER, "value": PUBLIC}}],
        # A public caller is never anyone else: a credential it sends goes no
        # further than Envoy (the services would ignore it on a marked call anyway).
        "request_headers_to_remove": [AUTHORIZATION],
        "virtual_hosts": [{
            "name": "mend",
            "domains": ["*"],
            "typed_per_filter_config": {"envoy.filters.http.cors": cors},
            "routes": [*map(_public_route, PUBLIC_ROUTES), _denied("/mend."), _denied("/grpc."), page],
        }],
    }


ACCESS_LOG_FIELDS = {
    "time": "%START_TIME%",
    "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "upstream": "%UPSTREAM_HOST%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
    "user_agent": "%REQ(USER-AGENT)%",
}


def _access_log(kind: str) -> list[dict[str, Any]]:
    # One JSON line per request, like the services' logs. No bodies and no
    # headers beyond those listed, so chat text and credentials stay out.
    return [{
        "name": "envoy.access_loggers.stdout",
        "typed_config": _typed("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                               log_format={"json_format": {"log": kind, **ACCESS_LOG_FIELDS}}),
    }]


def _local_replies() -> dict[str, Any]:
    # Envoy decides whether a request is gRPC from its original content type,
    # so a rate-limited gRPC-web call would get HTTP 429 and UNAVAILABLE, and an
    # oversized request (the buffer filter's 413) UNKNOWN, gRPC or gRPC-web.
    # Make both what the contract promises: a trailers-only RESOURCE_EXHAUSTED.
    grpc_request = {"header_filter": {"header": {"name": "content-type",
                                                 "string_match": {"prefix": "application/grpc"}}}}

    def resource_exhausted(http_status: int, runtime_key: str, message: str) -> dict[str, Any]:
        return {
            "filter": {"and_filter": {"filters": [
                {"status_code_filter": {"comparison": {
                    "op": "EQ", "value": {"default_value": http_status, "runtime_key": runtime_key}}}},
                grpc_request]}},
            "status_code": 200,
            "body": {"inline_string": ""},
            "headers_to_add": [
                {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "grpc-status", "value": "8"}},
                {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "grpc-message", "value": message}},
            ],
        }

    return {"mappers": [
        resource_exhausted(429, "public_rate_limit_status", "too many requests; try again in a moment"),
        resource_exhausted(413, "public_request_too_large_status",
                           f"the request is larger than {MAX_REQUEST_BYTES // 1024} KiB"),
    ]}


def _http_filters(params: Params) -> list[dict[str, Any]]:
    always = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    return [
        {"name": "envoy.filters.http.grpc_web",
         "typed_config": _typed("envoy.extensions.filters.http.grpc_web.v3.GrpcWeb")},
        {"name": "envoy.filters.http.cors",
         "typed_config": _typed("envoy.extensions.filters.http.cors.v3.Cors")},
        {"name": "envoy.filters.http.local_ratelimit",
         "typed_config": _typed(
             "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
             stat_prefix="public_rate_limit",
             token_bucket={"max_tokens": params.rate_limit_max_tokens,
                           "tokens_per_fill": params.rate_limit_tokens_per_fill,
                           "fill_interval": params.rate_limit_fill_interval},
             # One bucket per client address (a descriptor entry without a value
             # makes a bucket for each value seen); the ceiling above is taken
             # from on every call as well (always_consume_default_token_bucket).
             rate_limits=[{"actions": [{"remote_address": {}}]}],
             descriptors=[{"entries": [{"key": "remote_address"}],
                           "token_bucket": {"max_tokens": params.client_rate_limit_max_tokens,
                                            "tokens_per_fill": params.client_rate_limit_tokens_per_fill,
                                            "fill_interval": params.rate_limit_fill_interval}}],
             max_dynamic_descriptors=MAX_CLIENTS_TRACKED,
             always_consume_default_token_bucket=True,
             filter_enabled={"runtime_key": "public_rate_limit_enabled", **always},
             filter_enforced={"runtime_key": "public_rate_limit_enforced", **always},
             # gRPC callers see RESOURCE_EXHAUSTED, the canonical "slow down".
             rate_limited_as_resource_exhausted=True,
             response_headers_to_add=[{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                       "header": {"key": "x-local-rate-limit", "value": "true"}}],
         )},
        {"name": "envoy.filters.http.buffer",
         "typed_config": _typed("envoy.extensions.filters.http.buffer.v3.Buffer",
                                max_request_bytes=MAX_REQUEST_BYTES)},
        {"name": "envoy.filters.http.router",
         "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router",
                                upstream_log=_access_log("upstream"))},
    ]


def _public_listener(params: Params) -> dict[str, Any]:
    manager: dict[str, Any] = {
        "stat_prefix": "public",
        "codec_type": "AUTO",
        # The client is the connection's peer, or the address the trusted
        # proxies in front put in X-Forwarded-For: never what a client claims.
        "use_remote_address": True,
        "xff_num_trusted_hops": params.trusted_proxy_hops,
        "generate_request_id": True,
        # Streams may stay open while an answer is written; only silence ends them.
        "stream_idle_timeout": "300s",
        "request_headers_timeout": "10s",
        "max_request_headers_kb": 32,
        "common_http_protocol_options": {"idle_timeout": "600s",
                                         "headers_with_underscores_action": "REJECT_REQUEST"},
        "http2_protocol_options": {"max_concurrent_streams": 100},
        # "downstream": every request, Envoy's own answers included. For gRPC-web
        # its grpc_status reads Unknown on success, because the grpc_web filter
        # has moved the trailers into the body by then; the "upstream" line,
        # logged by the router, carries the service's real status.
        "access_log": _access_log("downstream"),
        "local_reply_config": _local_replies(),
        "route_config": _route_config(params),
        "http_filters": _http_filters(params),
    }
    if params.tracing is not None:
        manager["tracing"] = {
            "random_sampling": {"value": params.tracing.sampling_percent},
            "spawn_upstream_span": True,
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": _typed("envoy.config.trace.v3.OpenTelemetryConfig",
                                       grpc_service={"envoy_grpc": {"cluster_name": "otel_collector"},
                                                     "timeout": "1s"},
                                       service_name="mend-gateway"),
            },
        }
    return {
        "name": "public",
        "address": _address(params.listen_address, params.port),
        "per_connection_buffer_limit_bytes": 1048576,
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": _typed(
                "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", **manager),
        }]}],
    }


def _probe_listener(port: Number) -> dict[str, Any]:
    # Only GET /ready of the admin interface, which answers 503 while Envoy
    # starts or drains; the rest of the admin interface stays on loopback.
    routes = [{"match": {"path": "/ready"}, "route": {"cluster": "envoy_admin", "timeout": "2s"}}]
    manager = {
        "stat_prefix": "probes",
        "route_config": {"name": "probes", "virtual_hosts": [{"name": "probes", "domains": ["*"], "routes": routes}]},
        "http_filters": [{"name": "envoy.filters.http.router",
                          "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router")}],
    }
    return {
        "name": "probes",
        "address": _address("0.0.0.0", port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": _typed(
                "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", **manager),
        }]}],
    }


def build(params: Params) -> dict[str, Any]:
    """Envoy's bootstrap configuration."""
    clusters = [
        _cluster("bot", params.bot, params, http2=True, health_check=True),
        _cluster("interactions", params.interactions, params, http2=True, health_check=True),
        _cluster("web", params.web, params, http2=False, health_check=False),
    ]
    if params.tracing is not None:
        clusters.append(_cluster("otel_collector", params.tracing.collector, params, http2=True, health_check=False))
    listeners = [_public_listener(params)]
    admin_port = params.admin_port
    if params.probe_port is not None:
        listeners.append(_probe_listener(params.probe_port))
        clusters.append(_cluster("envoy_admin", Upstream("127.0.0.1", admin_port),
                                 Params(**{**params.__dict__, "dns": False}), http2=False, health_check=False))
    return {
        "admin": {"address": _address("127.0.0.1", admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # A bound on open connections, so a flood cannot exhaust file descriptors.
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": _typed(
                "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                max_active_downstream_connections=MAX_CONNECTIONS),
        }]},
    }


_QUOTED_TEMPLATE = re.compile(r"'(\{\{[^'\n]*\}\})'")
# The first lines of the tracer (in the connection manager) and of its cluster.
TRACING_BLOCKS = (re.compile(r"( *)tracing:"), re.compile(r"( *)- name: otel_collector"))


def _only_if(text: str, first_line: re.Pattern[str], condition: str) -> str:
    """Wraps the YAML block starting at the one line matching `first_line` (it
    ends before the next line indented no deeper) in a Helm `if`."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if first_line.fullmatch(line)]
    if len(starts) != 1:
        raise ValueError(f"expected one line matching {first_line.pattern!r}, found {len(starts)}")
    start = starts[0]
    indent = len(lines[start]) - len(lines[start].lstrip(" "))
    end = start + 1
    while end < len(lines) and lines[end] and len(lines[end]) - len(lines[end].lstrip(" ")) > indent:
        end += 1
    margin = " " * indent
    return "\n".join([*lines[:start], f"{margin}{{{{- if {condition} }}}}", *lines[start:end],
                      f"{margin}{{{{- end }}}}", *lines[end:]])


def render(params: Params, header: str = "") -> str:
    """The configuration as YAML; quoted Helm expressions are unquoted so that
    `tpl` turns them into plain numbers, names and lists, and the tracer is
    wrapped in its Helm condition."""
    text = yaml.safe_dump(build(params), sort_keys=False, width=1000)
    if params.tracing is not None and params.tracing.enabled_if is not None:
        for block in TRACING_BLOCKS:
            text = _only_if(text, block, params.tracing.enabled_if)
    return header + _QUOTED_TEMPLATE.sub(r"\1", text)
