// Clients for the two public services, over gRPC-web through Envoy. The API
// lives on the same origin as the page (Envoy routes both), so the endpoint
// comes from window.location and no host is written into the code.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ChatService } from "./gen/mend/bot/v1/bot_service_pb";
import { InteractionsService } from "./gen/mend/interactions/v1/interactions_service_pb";
import { newTraceparent } from "./ids";

// Each call starts a W3C trace in the browser; Envoy continues it, so one
// trace runs browser -> Envoy -> bot -> interactions -> PostgreSQL. The trace
// id is kept on the page's element for support questions ("which request?").
export let lastTraceId = "";
const tracing: Interceptor = (next) => async (request) => {
  const traceparent = newTraceparent();
  lastTraceId = traceparent.split("-")[1];
  request.header.set("traceparent", traceparent);
  return next(request);
};

const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [tracing],
});

export const chat = createClient(ChatService, transport);
export const interactions = createClient(InteractionsService, transport);
