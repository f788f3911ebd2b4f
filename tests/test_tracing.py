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
