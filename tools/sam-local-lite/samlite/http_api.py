"""API Gateway HTTP API, locally: the template's routes as Lambda proxy integrations (payload 2.0).

Routing as the HTTP API does it: the most specific route wins (literal segments over
``{parameters}``, over a greedy ``{proxy+}``; a method over ``ANY``), then ``$default``; no route
answers 404 ``{"message":"Not Found"}``. Before the function runs, the route's authorisation:

- JWT authorizer (see :mod:`.auth`): no or invalid token 401 ``{"message":"Unauthorized"}``, a
  missing scope 403 ``{"message":"Forbidden"}``; the claims reach the function in
  ``requestContext.authorizer.jwt`` (claim values as strings, arrays as ``[a b]``, as the HTTP
  API passes them);
- ``AWS_IAM``: a request without a SigV4 signature gets 403 ``{"message":"Forbidden"}``; the
  caller's access key is in ``requestContext.authorizer.iam``.

The function's result is read as the HTTP API reads payload 2.0 responses: an object with
``statusCode`` is the response; anything else is a 200 JSON body. A function error answers 500
``{"message":"Internal Server Error"}``, a timeout 503 ``{"message":"Service Unavailable"}``, and
so does a malformed response (a ``statusCode`` that is not a number, a header name that is not
an HTTP token, a header or cookie value holding CR, LF or another control character): nothing a
function returns can add headers of its own to the response. Values taken from the request
(the token's header in ``www-authenticate``) lose their control characters.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from .auth import AuthError, KeyPair, parse_sigv4, verify_jwt
from .functions import InvokeResult
from .httpd import Request, Response, header_problem, json_response
from .template import RouteSpec, StackModel

__all__ = ["HttpApi"]

Invoke = Callable[[str, Any], InvokeResult]

_UNSAFE_IN_QUOTES = re.compile(r'[\x00-\x1f\x7f"\\]')


def _quoted(text: str) -> str:
    """``text`` for a quoted header parameter: control characters, quotes and backslashes
    (which may come from the request) become spaces or apostrophes."""
    return _UNSAFE_IN_QUOTES.sub(lambda m: "'" if m.group() in '"\\' else " ", text)


@dataclass(frozen=True)
class _Route:
    spec: RouteSpec
    regex: re.Pattern[str] | None
    names: tuple[str, ...]
    rank: tuple[int, int, int, int]


def _compile(spec: RouteSpec) -> _Route:
    if spec.path == "$default":
        return _Route(spec, None, (), (9, 0, 0, 0))
    parts, names = [], []
    literals = 0
    greedy = False
    for segment in spec.path.strip("/").split("/"):
        match = re.fullmatch(r"\{([^{}+]+)(\+?)\}", segment)
        if match is None:
            parts.append(re.escape(segment))
            literals += 1
        elif match.group(2):
            parts.append("(.+)")
            names.append(match.group(1))
            greedy = True
        else:
            parts.append("([^/]+)")
            names.append(match.group(1))
    regex = re.compile("/" + "/".join(parts))
    rank = (1 if greedy else 0, -literals, -len(parts), 1 if spec.method == "ANY" else 0)
    return _Route(spec, regex, tuple(names), rank)


def _claim(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return json.dumps(value)
    return str(value)


def _body(raw: bytes) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), True
    return text, False


class HttpApi:
    def __init__(
        self,
        model: StackModel,
        *,
        invoke: Invoke,
        keys: KeyPair,
        report: Callable[[str], None],
    ) -> None:
        self.model = model
        self.invoke = invoke
        self.keys = keys
        self.report = report
        self.routes = sorted((_compile(route) for route in model.routes), key=lambda r: r.rank)

    # -- routing ------------------------------------------------------------------------------

    def match(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        for route in self.routes:
            if route.spec.method not in ("ANY", method):
                continue
            if route.regex is None:
                return route.spec, {}
            found = route.regex.fullmatch(path.rstrip("/") or "/")
            if found:
                values = {
                    name: unquote(value)
                    for name, value in zip(route.names, found.groups(), strict=True)
                }
                return route.spec, values
        return None

    # -- authorisation ------------------------------------------------------------------------

    def _authorize(self, route: RouteSpec, request: Request) -> dict[str, Any] | None:
        if route.auth == "NONE":
            return None
        if route.auth == "AWS_IAM":
            caller = parse_sigv4(
                request.header("Authorization"), request.header("X-Amz-Date"), service="execute-api"
            )
            return {
                "iam": {
                    "accessKey": caller.access_key,
                    "accountId": self.model.account,
                    "callerId": caller.access_key,
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": f"arn:aws:iam::{self.model.account}:user/{caller.access_key}",
                    "userId": caller.access_key,
                }
            }
        authorizer = route.authorizer
        assert authorizer is not None
        source = authorizer.identity_source.split(",")[0].strip()
        if source.startswith("$request.querystring."):
            wanted = source.removeprefix("$request.querystring.")
            token = dict(parse_qsl(request.query)).get(wanted)
        else:
            token = request.header(source.removeprefix("$request.header."))
        claims, scopes = verify_jwt(
            self.keys,
            token,
            issuer=authorizer.issuer,
            audience=authorizer.audience,
            required_scopes=route.scopes,
        )
        return {
            "jwt": {
                "claims": {name: _claim(value) for name, value in claims.items()},
                "scopes": scopes or None,
            }
        }

    # -- the request --------------------------------------------------------------------------

    def event(
        self,
        route: RouteSpec,
        request: Request,
        path_parameters: Mapping[str, str],
        authorizer: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        now = time.time()
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in request.headers:
            key = name.lower()
            if key == "cookie":
                cookies += [part.strip() for part in value.split(";") if part.strip()]
                continue
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        headers.setdefault("x-forwarded-for", request.client)
        headers.setdefault("x-forwarded-proto", "http")
        query: dict[str, str] = {}
        for name, value in parse_qsl(request.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        body, is_base64 = _body(request.body)
        context: dict[str, Any] = {
            "accountId": self.model.account,
            "apiId": route.api,
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": headers.get("host", "127").split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.client,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("="),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        }
        if authorizer is not None:
            context["authorizer"] = authorizer
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": request.path,
            "rawQueryString": request.query,
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": is_base64,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if path_parameters:
            event["pathParameters"] = dict(path_parameters)
        if body is not None:
            event["body"] = body
        return event

    def handle(self, request: Request) -> Response:
        began = time.monotonic()
        response = self._handle(request)
        self.report(
            f"HTTP {request.method} {request.path} -> {response.status} "
            f"({(time.monotonic() - began) * 1000:.0f} ms)"
        )
        return response

    def _handle(self, request: Request) -> Response:
        found = self.match(request.method, request.path)
        if found is None:
            return json_response(404, {"message": "Not Found"})
        route, path_parameters = found
        try:
            authorizer = self._authorize(route, request)
        except AuthError as error:
            response = json_response(error.status, {"message": error.message})
            if route.auth == "JWT":
                kind = "insufficient_scope" if error.status == 403 else "invalid_token"
                scope = _quoted(" ".join(route.scopes))
                description = _quoted(error.description or error.message)
                response.headers.append(
                    (
                        "www-authenticate",
                        f'Bearer scope="{scope}" error="{kind}" error_description="{description}"',
                    )
                )
            return response
        event = self.event(route, request, path_parameters, authorizer)
        result = self.invoke(route.function, event)
        request_id = event["requestContext"]["requestId"]
        if not result.ok:
            timed_out = isinstance(result.payload, Mapping) and (
                result.payload.get("errorType") == "Sandbox.Timedout"
            )
            if timed_out:
                response = json_response(503, {"message": "Service Unavailable"})
            else:
                response = json_response(500, {"message": "Internal Server Error"})
        else:
            response = self.response(result.payload)
        response.headers.append(("apigw-requestid", request_id))
        return response

    @staticmethod
    def response(payload: Any) -> Response:
        """A payload 2.0 Lambda result as the HTTP API turns it into a response."""
        if not (isinstance(payload, Mapping) and "statusCode" in payload):
            return json_response(200, payload)
        try:
            status = int(payload["statusCode"])
        except (TypeError, ValueError):
            return json_response(500, {"message": "Internal Server Error"})
        headers: list[tuple[str, str]] = [
            (str(name), str(value)) for name, value in (payload.get("headers") or {}).items()
        ]
        multi: Mapping[str, Sequence[Any]] = payload.get("multiValueHeaders") or {}
        for name, values in multi.items():
            headers += [(str(name), str(value)) for value in values]
        headers += [("Set-Cookie", str(cookie)) for cookie in payload.get("cookies") or []]
        if any(header_problem(name, value) is not None for name, value in headers):
            return json_response(500, {"message": "Internal Server Error"})
        body = payload.get("body")
        if body is None:
            raw = b""
        elif payload.get("isBase64Encoded"):
            raw = base64.b64decode(str(body))
        else:
            raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return Response(status, raw, headers)
