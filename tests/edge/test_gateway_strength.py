"""The gateway's public routes and upstream clusters as Envoy receives them, value
for value, and a configuration that names its upstreams through DNS (as the
chart's does) passing `envoy --mode validate`. Pinned where the mutation run
(scripts/mutate, docs/testing.md) found a change that no test noticed: a retry
condition misspelt, a retry or health-check count changed, a route's name or
idle timeout gone. The running-Envoy tests in test_gateway.py show what these
values do; these say which values the routes carry."""

from __future__ import annotations

from dataclasses import replace

from gateway_envoy import config, settings
from gateway_envoy.__main__ import validate
from gateway_envoy.config import Upstream

DENIED = {"status": 403, "body": {"inline_string": "this method is not served on the public listener"}}
UNBUFFERED = {"envoy.filters.http.buffer": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute", "disabled": True}}
HTTP2 = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "explicit_http_config": {"http2_protocol_options": {}}}}
HEALTH_CHECKED = [{"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1,
                   "grpc_health_check": {}}]


def routes_of(bootstrap: dict) -> list[dict]:
    manager = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return manager["route_config"]["virtual_hosts"][0]["routes"]


def clusters_of(bootstrap: dict) -> dict[str, dict]:
    return {cluster["name"]: cluster for cluster in bootstrap["static_resources"]["clusters"]}


def unary(name: str, path: str, cluster: str, timeout: str, retry_on: str) -> dict:
    return {"name": name, "match": {"path": path}, "route": {
        "cluster": cluster, "timeout": timeout, "max_stream_duration": {"grpc_timeout_header_max": timeout},
        "retry_policy": {"retry_on": retry_on, "num_retries": 2}}}


def test_the_public_routes_carry_their_bounds_and_retries():
    """Connection failures are retried on every route (the request never reached
    a service); UNAVAILABLE and resets only on the idempotent SubmitFeedback.
    A stream has no deadline, only 300 s of silence; everything else under
    /mend. and /grpc. is denied at once, without waiting for a request body."""
    stream = unary("ChatStream", "/mend.bot.v1.ChatService/ChatStream", "bot", "0s",
                   "connect-failure,refused-stream")
    stream["route"]["idle_timeout"] = "300s"
    assert routes_of(config.build(settings.local({}))) == [
        unary("Chat", "/mend.bot.v1.ChatService/Chat", "bot", "120s", "connect-failure,refused-stream"),
        stream,
        unary("SubmitFeedback", "/mend.interactions.v1.InteractionsService/SubmitFeedback", "interactions", "10s",
              "connect-failure,refused-stream,unavailable,reset"),
        {"match": {"prefix": "/mend."}, "direct_response": DENIED, "typed_per_filter_config": UNBUFFERED},
        {"match": {"prefix": "/grpc."}, "direct_response": DENIED, "typed_per_filter_config": UNBUFFERED},
        {"name": "page", "match": {"prefix": "/"}, "route": {"cluster": "web", "timeout": "10s"},
         "typed_per_filter_config": {"envoy.filters.http.local_ratelimit": {
             "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}},
    ]


def test_the_services_are_health_checked_over_http2_and_the_page_is_not():
    """A service endpoint that stops serving (a pod shutting down) leaves the
    rotation after two failed checks 5 s apart and returns after one good one."""
    clusters = clusters_of(config.build(settings.local({})))
    for name, port in (("bot", 50052), ("interactions", 50051)):
        assert clusters[name] == {
            "name": name, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
            "typed_extension_protocol_options": HTTP2, "health_checks": HEALTH_CHECKED}
    assert "health_checks" not in clusters["web"] and "typed_extension_protocol_options" not in clusters["web"]


def with_dns_names() -> config.Params:
    """The local parameters with the upstreams named as Kubernetes Services are."""
    return replace(settings.local({}), dns=True, bot=Upstream("bot.mend.svc.cluster.local", 50052),
                   interactions=Upstream("interactions.mend.svc.cluster.local", 50051),
                   web=Upstream("web.mend.svc.cluster.local", 8080), probe_port=9901)


def test_upstreams_named_through_dns_are_resolved_preferring_ipv4(tmp_path):
    clusters = clusters_of(config.build(with_dns_names()))
    for name in ("bot", "interactions", "web"):
        assert (clusters[name]["type"], clusters[name]["dns_lookup_family"]) == ("STRICT_DNS", "V4_PREFERRED")
    # Envoy's own admin interface, for the probes, is on loopback: an address, never a name to resolve.
    assert clusters["envoy_admin"]["type"] == "STATIC" and "dns_lookup_family" not in clusters["envoy_admin"]
    path = tmp_path / "envoy.yaml"
    path.write_text(config.render(with_dns_names()))
    result = validate(path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_the_public_host_allows_cors_only_for_the_listed_origins_and_marks_every_request():
    """One virtual host for every domain; the CORS policy the page's gRPC-web
    calls need (its headers, the grpc-status it must read, preflights cached a
    day), origins matched exactly but for case, a preflight from any other origin
    answered by Envoy itself; every request marked as the public caller's."""
    params = settings.local({"GATEWAY_CORS_ALLOWED_ORIGINS": "https://shop.example"})
    manager = config.build(params)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    route_config = manager["typed_config"]["route_config"]
    assert route_config["name"] == "public"
    assert route_config["request_headers_to_add"] == [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                                       "header": {"key": "x-mend-caller", "value": "public"}}]
    (host,) = route_config["virtual_hosts"]
    assert (host["name"], host["domains"]) == ("mend", ["*"])
    assert host["typed_per_filter_config"] == {"envoy.filters.http.cors": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": [{"exact": "https://shop.example", "ignore_case": True}],
        "allow_methods": "POST, GET, OPTIONS",
        "allow_headers": "content-type,x-grpc-web,x-user-agent,grpc-timeout,traceparent,tracestate",
        "expose_headers": "grpc-status,grpc-message,grpc-status-details-bin",
        "max_age": "86400",
        "forward_not_matching_preflights": False}}
    # Each listed origin is a matcher of its own.
    assert config.origin_matchers(("https://a.example", "http://localhost:3000")) == [
        {"exact": "https://a.example", "ignore_case": True}, {"exact": "http://localhost:3000", "ignore_case": True}]
