"""Rendering every error of a route in OpenAI's shape, `{"error": {"message", "type",
"param", "code"}}`, instead of Anthropic's: a route class, so that errors raised while FastAPI
resolves dependencies (authentication) are covered too. Statuses and headers (`retry-after`,
the rate-limit headers) are kept."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from api.errors import REQUEST_ID_HEADER, TollgateError, request_id_of
from api.openai.errors import (
    OpenAIRequestError,
    error_json,
    openai_error_shape,
    request_error_json,
)

ANTHROPIC_CLIENT_HEADER = "anthropic-version"


def json_response(status: int, body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, status, headers, media_type="application/json")


def openai_error_response(request: Request, exc: Exception, *, openai: bool) -> Response | None:
    """`exc` answered in OpenAI's shape, or None when it is not ours to render: a request the
    OpenAI translation refused is always a 400 in OpenAI's shape; any other TollgateError is
    rendered in OpenAI's shape when the caller speaks OpenAI (`openai`)."""
    if isinstance(exc, OpenAIRequestError):
        rid = request_id_of(request)
        return json_response(400, request_error_json(exc), {REQUEST_ID_HEADER: rid})
    if isinstance(exc, TollgateError) and openai:
        rid = request_id_of(request)
        shape = openai_error_shape(exc.status, exc.error_type)
        body = error_json(exc.message, shape.type, None, shape.code)
        return json_response(shape.status, body, {**exc.headers, REQUEST_ID_HEADER: rid})
    return None


class OpenAIRoute(APIRoute):
    """Renders every TollgateError (auth, 402/429 quotas with their headers, unknown model...)
    and every refusal in OpenAI's error shape."""

    def speaks_openai(self, request: Request) -> bool:
        return True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except (OpenAIRequestError, TollgateError) as exc:
                response = openai_error_response(request, exc, openai=self.speaks_openai(request))
                if response is None:
                    raise
                return response

        return openai_errors


class OpenAIUnlessAnthropicRoute(OpenAIRoute):
    """For routes both SDKs call (`/v1/models`): OpenAI's error shape unless the caller sent
    `anthropic-version`, as every Anthropic SDK does."""

    def speaks_openai(self, request: Request) -> bool:
        return ANTHROPIC_CLIENT_HEADER not in request.headers
