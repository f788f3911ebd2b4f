"""AWS Bedrock: the `bedrock-runtime` client and how its failures become domain
errors, shared by the Bedrock chat model and embedder.

Credentials come from boto3's usual chain (environment, profile, instance or
task role); nothing here reads, stores or prints them. boto3 is imported only
when a client is built, so a local-only install needs no AWS packages.
"""

from __future__ import annotations

from typing import Any

from mendkit.errors import FailedPrecondition, ResourceExhausted, Unavailable

MAX_STREAMS = 32  # answers generated at once per chat model (each holds a thread and a connection)

# Bedrock's error codes (the service model's, plus those of the AWS front door)
# by the status they become. Errors inside an event stream use the same names
# with a lower-case first letter ("throttlingException"); `_code` evens that out.
_EXHAUSTED = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}
_UNAVAILABLE = {"InternalServerException", "ServiceUnavailableException", "ModelTimeoutException",
                "ModelNotReadyException", "ModelStreamErrorException", "ModelErrorException"}
# AWS's text for these can quote the signed request, session token included: only the code is kept.
_CREDENTIAL_CODES = {"UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch",
                     "IncompleteSignature", "ExpiredTokenException", "InvalidClientTokenId",
                     "MissingAuthenticationTokenException"}


def bedrock_client(region: str | None, client: Any | None = None) -> Any:
    """A `bedrock-runtime` client: the one given (tests, shared clients), or a new one."""
    if client is not None:
        return client
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    # Standard retries back off on throttling and 5xx (3 attempts in all). They
    # only cover getting a stream started: a stream that fails midway is not retried.
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=60,
                    max_pool_connections=MAX_STREAMS)
    try:
        return boto3.client("bedrock-runtime", region_name=region or None, config=config)
    except NoRegionError:
        raise ValueError("no AWS region for Bedrock: set AWS_REGION") from None


def _code(raw: object) -> str:
    code = str(raw or "")
    return code[:1].upper() + code[1:]


def bedrock_error(error: Exception, model_id: str, region: str) -> Exception:
    """The domain error for a boto3 failure. The message names the model and the
    region (what an operator needs to fix access) and never the credentials."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    where = f"Bedrock model {model_id} in {region}"
    if isinstance(error, ClientError):  # also EventStreamError: a failure inside the stream
        details = error.response.get("Error", {})
        code = _code(details.get("Code"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        text = "" if code in _CREDENTIAL_CODES else str(details.get("Message") or "")[:300]
        message = f"{where} refused the request: {code}" + (f": {text}" if text else "")
        if code in _EXHAUSTED or status == 429:
            return ResourceExhausted(message)
        if code in _UNAVAILABLE or status >= 500:
            return Unavailable(message)
        # Access not granted, model not enabled in this region, a wrong model id, a
        # request the model rejects: retrying won't help, configuration will.
        return FailedPrecondition(message)
    if isinstance(error, (ConnectionError, HTTPClientError)):
        return Unavailable(f"{where} unreachable: {error}"[:400])
    if isinstance(error, BotoCoreError):
        # Missing or unloadable credentials, mostly. Their text can quote a
        # credential process's output, so only the class name is shown.
        return FailedPrecondition(f"{where}: {type(error).__name__} (check the AWS credentials and configuration)")
    return error
