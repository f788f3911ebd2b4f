// Random ids from crypto.getRandomValues, which (unlike crypto.randomUUID)
// also works on plain-http pages served from a LAN address.

function randomHex(bytes: number): string {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A version-4 UUID: the chat request's idempotency key, so that sending the
// same question again after a failure never answers (or logs) it twice.
export function newRequestId(): string {
  const hex = randomHex(16).split("");
  hex[12] = "4";
  hex[16] = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  const s = hex.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

export function newTraceparent(): string {
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}
