// Failures in plain words for the person chatting; the technical detail goes
// to the browser console for whoever debugs it.
import { Code, ConnectError } from "@connectrpc/connect";

export function plainWords(error: unknown): string {
  const failure = ConnectError.from(error);
  console.warn("mend: call failed", Code[failure.code], failure.rawMessage);
  switch (failure.code) {
    case Code.InvalidArgument:
      return "That message couldn't be sent. Please write a question of up to 4,000 characters.";
    case Code.ResourceExhausted:
      return "We're getting a lot of messages right now. Please wait a few seconds and try again.";
    case Code.Unavailable:
      return "The assistant can't be reached right now. Please try again in a minute.";
    case Code.DeadlineExceeded:
      return "The answer took too long. Please try again.";
    case Code.NotFound:
      return "We couldn't find that answer any more, so your rating wasn't saved.";
    case Code.PermissionDenied:
    case Code.Unimplemented:
      return "This chat isn't set up correctly. Please contact us another way.";
    default:
      return "Something went wrong on our side. Please try again.";
  }
}
