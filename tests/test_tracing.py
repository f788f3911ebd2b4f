"""Traces across a hop: client -> interactions -> PostgreSQL share one trace,
the stored trace id is that trace, and chat text stays out of span attributes."""

from __future__ import annotations

from mend.interactions.v1 import interactions_service_pb2 as pb


async def test_create_is_one_trace_from_client_to_database(interactions, spans):
    secret_text = "my card number is 4111 1111 1111 1111"
    created = (await interactions.CreateInteraction(pb.CreateInteractionRequest(
        interaction=pb.Interaction(user_query=secret_text, bot_response="Please never share card numbers."))
    )).interaction

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.name == "/mend.interactions.v1.InteractionsService/CreateInteraction"
              and s.kind.name == "SERVER"]
    client = [s for s in finished if s.name == "/mend.interactions.v1.InteractionsService/CreateInteraction"
              and s.kind.name == "CLIENT"]
    assert len(server) == 1 and len(client) == 1
    trace_id = server[0].context.trace_id
    assert client[0].context.trace_id == trace_id
    assert server[0].parent.span_id == client[0].context.span_id

    database = [s for s in finished if s.attributes.get("db.system") == "postgresql"
                and s.context.trace_id == trace_id]
    assert database, [s.name for s in finished]
    assert all(s.parent is not None for s in database)
    assert created.trace_id == format(trace_id, "032x")

    for span in finished:
        for value in span.attributes.values():
            assert "4111" not in str(value), f"chat text leaked into span {span.name}"


async def test_a_service_process_exports_spans_over_otlp_continuing_the_callers_trace(database_url, spans):
    """The real process with OTEL_EXPORTER_OTLP_ENDPOINT set: the caller's trace
    continues in the server and down to PostgreSQL, and reaches the collector."""
    import grpc

    from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
    from tests.otlp_receiver import start_receiver
    from tests.test_interactions_process import start, stop

    collector, receiver, collector_port = await start_receiver()
    try:
        process, port = await start({
            "DATABASE_URL": database_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_SERVICE_NAME": "interactions-under-test",
        })
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                created = (await pb_grpc.InteractionsServiceStub(channel).CreateInteraction(
                    pb.CreateInteractionRequest(interaction=pb.Interaction(
                        user_query="secret question text", bot_response="answer")), timeout=10)).interaction
        finally:
            code, _ = await stop(process)  # shutdown flushes the batch exporter
        assert code == 0
    finally:
        await collector.stop(0)

    client = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"
              and s.name.endswith("/CreateInteraction")][0]
    trace_id = client.context.trace_id.to_bytes(16, "big")
    ours = [(service, span) for service, span in receiver.spans if span.trace_id == trace_id]
    names = {span.name for _, span in ours}
    assert {service for service, _ in ours} == {"interactions-under-test"}
    assert "/mend.interactions.v1.InteractionsService/CreateInteraction" in names
    assert any(name.startswith("INSERT") or "interactions" in name.lower() for name in names - {
        "/mend.interactions.v1.InteractionsService/CreateInteraction"}), names
    assert created.trace_id == trace_id.hex()
    for _, span in ours:
        assert "secret question text" not in str(span.attributes)
