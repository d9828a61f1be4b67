"""What the HTTP API's handlers share (member_api, perk_redemption, admin_api, notifier): the
subject from the token (and its scope), the request's instant, JSON answers, the error answers
and their OpenAPI description.

Every error is ``{"error": {"code", "message", "field"?}}`` (``ErrorBody``): a domain error with
its status, a validation error as 422 naming the field (400 for a body that is not JSON), and a
transaction conflict that outlived its retries as 503 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, get_origin, get_type_hints
from urllib.parse import unquote

from shared.api_models.errors import ErrorBody, invalid_input_from
from shared.domain.errors import (
    DomainError,
    Forbidden,
    MalformedRequest,
    Unauthorized,
    UnsupportedMediaType,
)
from shared.logic.ports import TransientConflict
from shared.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from pydantic import TypeAdapter

    from shared.domain.program import Program

APPLICATION_JSON = "application/json"

ERROR_TEXTS: Mapping[int, str] = {
    400: "Malformed request",
    401: "No valid token",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict (quota, state)",
    415: "The body is not sent as application/json",
    422: "Invalid input (the field is named)",
    503: "Busy: retry",
}


def error_responses(
    statuses: tuple[int, ...], texts: Mapping[int, str] | None = None
) -> dict[int, OpenAPIResponse]:
    """OpenAPI descriptions of a route's error statuses (``texts`` overrides the defaults)."""
    wording = {**ERROR_TEXTS, **(texts or {})}
    return {
        status: {
            "description": wording[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
        for status in statuses
    }


class Param:
    """Where a handler's parameter comes from, with its constraints (pydantic ``Field``
    arguments: ``alias``, ``ge``, ``max_length``, ``pattern``, ``description``...), as in
    ``Annotated[int, Query(ge=1, description="...")]``."""

    location = ""

    def __init__(self, **arguments: Any) -> None:
        self.arguments = arguments

    @property
    def alias(self) -> str | None:
        alias = self.arguments.get("alias")
        return str(alias) if alias is not None else None


class Path(Param):
    location = "path"


class Query(Param):
    location = "query"


class Header(Param):
    location = "header"


class Body(Param):
    location = "body"


class RequestValidationError(Exception):
    """The request's parameters or body failed validation (pydantic's errors, ``loc`` prefixed
    with where: ``path``, ``query``, ``header`` or ``body``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return self._errors


class Response:
    """An answer: status, body (text) and headers; ``Content-Type`` is the body's media type.

    (Plain classes here rather than dataclasses: a dataclass costs about 0.6 ms to create at
    import on Python 3.11, a plain class next to nothing.)"""

    __slots__ = ("body", "content_type", "headers", "status_code")

    def __init__(
        self,
        status_code: int,
        body: str,
        content_type: str = APPLICATION_JSON,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.content_type = content_type
        self.headers = headers if headers is not None else {}


class Request:
    """The request being answered: the API Gateway HTTP API (payload 2.0) event, read."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        context = event.get("requestContext") or {}
        self.context: Mapping[str, Any] = context
        self.authorizer: Mapping[str, Any] = context.get("authorizer") or {}
        self.headers: dict[str, str] = {
            str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()
        }

    @property
    def jwt_claims(self) -> Mapping[str, Any]:
        return (self.authorizer.get("jwt") or {}).get("claims") or {}

    @property
    def jwt_scopes(self) -> list[str]:
        return list((self.authorizer.get("jwt") or {}).get("scopes") or [])

    @property
    def time_epoch(self) -> int | None:
        epoch = self.context.get("timeEpoch")
        return int(epoch) if epoch else None

    @property
    def method(self) -> str:
        return str((self.context.get("http") or {}).get("method", "")).upper()

    @property
    def path(self) -> str:
        raw = str(self.event.get("rawPath", ""))
        stage = str(self.context.get("stage", "$default"))
        return raw[len("/" + stage) :] if stage != "$default" else raw

    @property
    def text_body(self) -> str | None:
        body = self.event.get("body")
        if self.event.get("isBase64Encoded") and body:
            return base64.b64decode(str(body).encode()).decode()
        return str(body) if body is not None else None

    @property
    def json_body(self) -> Any:
        """The body as JSON; a document nested too deeply for the parser is a decode error too
        (Python's parser recurses: a few thousand ``[`` would otherwise end in a 500)."""
        text = self.text_body
        if not text:
            return None
        try:
            return json.loads(text)
        except RecursionError as exc:
            raise json.JSONDecodeError("the JSON is nested too deeply", text, 0) from exc


_PARAM_PATTERN = re.compile(r"<(\w+)>")
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
"""What a path parameter matches (the characters of a URI segment, decoded or not)."""


class _Parameter(NamedTuple):
    name: str
    location: str
    alias: str
    adapter: TypeAdapter[Any]
    required: bool
    default: Any


class Route:
    """A route: its method, path (``<name>`` for a path parameter), handler and the options
    that document it (``summary``, ``security``, ``tags``, ``responses``, ``status_code``)."""

    def __init__(
        self, method: str, path: str, function: Callable[..., Any], options: dict[str, Any]
    ) -> None:
        self.method = method
        self.path = path
        self.function = function
        self.options = options
        self._parameters: list[_Parameter] | None = None
        self._returns_model = False
        self.pattern = re.compile(
            "^" + _PARAM_PATTERN.sub(lambda match: f"(?P<{match[1]}>{_SEGMENT})", self.path) + "$"
        )

    def parameters(self) -> list[_Parameter]:
        """The handler's parameters and their validators, built on the route's first request
        (not at import: a cold start pays only for the routes it answers)."""
        if self._parameters is None:
            from pydantic import BaseModel, Field, TypeAdapter  # noqa: PLC0415 (first request)

            hints = get_type_hints(self.function, include_extras=True)
            built = []
            for name, parameter in inspect.signature(self.function).parameters.items():
                annotation = hints[name]
                marker = _marker(annotation)
                if marker is None:
                    marker = Body()  # a pydantic model without a marker is the body
                else:
                    kept = [meta for meta in annotation.__metadata__ if meta is not marker]
                    constraints = {
                        key: value
                        for key, value in marker.arguments.items()
                        if key not in {"alias", "description", "title", "examples"}
                    }
                    annotation = annotation.__origin__
                    if kept or constraints:
                        annotation = Annotated[(annotation, *kept, Field(**constraints))]
                empty = parameter.default is inspect.Parameter.empty
                built.append(
                    _Parameter(
                        name=name,
                        location=marker.location,
                        alias=marker.alias or name,
                        adapter=TypeAdapter(annotation),
                        required=empty,
                        default=None if empty else parameter.default,
                    )
                )
            returns = hints.get("return")
            self._returns_model = isinstance(returns, type) and issubclass(returns, BaseModel)
            self._parameters = built
        return self._parameters

    def arguments(self, request: Request, path_values: Mapping[str, str]) -> dict[str, Any]:
        """The handler's arguments, validated as Powertools' validation did (path, query and
        header parameters, then the body; every error kept, in that order)."""
        from pydantic import ValidationError  # noqa: PLC0415 (loaded by the models already)

        parameters = self.parameters()
        query = request.event.get("queryStringParameters") or {}
        sources: dict[str, Mapping[str, Any]] = {
            "path": path_values,
            "query": query,
            "header": request.headers,
        }
        values: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []

        def check(parameter: _Parameter, value: Any, loc: tuple[str, ...]) -> None:
            if value is None:
                if parameter.required:
                    errors.append(
                        {"type": "missing", "loc": loc, "msg": "Field required", "input": None}
                    )
                else:
                    values[parameter.name] = parameter.default
                return
            try:
                values[parameter.name] = parameter.adapter.validate_python(value)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    errors.append({**error, "loc": (*loc, *error["loc"])})

        for parameter in parameters:
            if parameter.location == "body":
                continue
            key = parameter.alias.lower() if parameter.location == "header" else parameter.alias
            value = sources[parameter.location].get(key)
            check(parameter, value, (parameter.location, key))
        bodies = [parameter for parameter in parameters if parameter.location == "body"]
        if bodies:
            try:
                body = request.json_body
            except json.JSONDecodeError as exc:
                raise RequestValidationError(
                    [
                        {
                            "type": "json_invalid",
                            "loc": ("body", exc.pos),
                            "msg": "JSON decode error",
                            "input": {},
                            "ctx": {"error": exc.msg},
                        }
                    ]
                ) from exc
            for parameter in bodies:
                if isinstance(body, list) and body:
                    body = body[0]  # as Powertools did: the handlers refuse arrays themselves
                check(parameter, body, ("body",))
        if errors:
            raise RequestValidationError(errors)
        return values

    def answer(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if self._returns_model:
            body = json.dumps(result.model_dump(mode="json", by_alias=True), separators=(",", ":"))
        else:
            body = json.dumps(result, separators=(",", ":"))
        return Response(int(self.options.get("status_code", 200)), body)


def _marker(annotation: Any) -> Param | None:
    if get_origin(annotation) is not Annotated:
        return None
    return next((meta for meta in annotation.__metadata__ if isinstance(meta, Param)), None)


class HttpApi:
    """The routes of an HTTP API function and their dispatch: a small router in place of
    Powertools' resolver at run time (whose package costs a cold start ~50 ms: AppSync,
    asyncio, every event class), validating requests the way Powertools' ``enable_validation``
    did. ``get_openapi_schema`` hands the same routes to a Powertools resolver, which documents
    them (``python -m infra.openapi``)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._handlers: dict[type[Exception], Callable[[Any], Response]] = {}
        self._request: Request | None = None

    def _route(self, method: str, path: str, options: dict[str, Any]) -> Callable[[Any], Any]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.routes.append(Route(method, path, function, options))
            return function

        return register

    def get(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("GET", path, options)

    def post(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("POST", path, options)

    def put(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("PUT", path, options)

    def delete(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("DELETE", path, options)

    def exception_handler(
        self, kind: type[Exception]
    ) -> Callable[[Callable[[Any], Response]], Callable[[Any], Response]]:
        def register(handler: Callable[[Any], Response]) -> Callable[[Any], Response]:
            self._handlers[kind] = handler
            return handler

        return register

    @property
    def request(self) -> Request:
        """The request being answered."""
        if self._request is None:
            raise RuntimeError("no request is being answered")
        return self._request

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Answer the event: its route's handler, or 404 (no such route)."""
        request = Request(event)
        self._request = request
        try:
            for route in self.routes:
                if route.method != request.method:
                    continue
                match = route.pattern.match(request.path)
                if match is None:
                    continue
                # A client percent-encodes the characters of an id that a path segment may not
                # carry as they are (``@``, ``+``, ``/``, ...), and ``rawPath`` may keep them
                # encoded: the handler gets the id the client meant. No id may contain ``%``,
                # so decoding a value that arrived decoded changes nothing valid.
                values = {name: unquote(value) for name, value in match.groupdict().items()}
                try:
                    response = route.answer(route.function(**route.arguments(request, values)))
                except Exception as exc:
                    handler = next(
                        (
                            self._handlers[kind]
                            for kind in type(exc).__mro__
                            if kind in self._handlers
                        ),
                        None,
                    )
                    if handler is None:
                        raise
                    response = handler(exc)
                return _proxy_response(response)
            body = json.dumps({"statusCode": 404, "message": "Not found"}, separators=(",", ":"))
            return _proxy_response(Response(404, body))
        finally:
            self._request = None

    def get_openapi_schema(self, **arguments: Any) -> Any:
        """The OpenAPI document of these routes, generated by Powertools (documentation only:
        never imported at run time)."""
        from aws_lambda_powertools.event_handler import (  # noqa: PLC0415 (documentation only)
            APIGatewayHttpResolver,
        )

        resolver = APIGatewayHttpResolver(enable_validation=True)
        for route in self.routes:
            register = getattr(resolver, route.method.lower())
            register(route.path, **route.options)(_documented(route.function))
        return resolver.get_openapi_schema(**arguments)


def _documented(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as Powertools documents it: the same signature with Powertools' markers
    (``Path``, ``Query``, ``Header``, ``Body``) in place of this module's, and its ``Response``
    for this module's."""
    from aws_lambda_powertools.event_handler import Response as PowertoolsResponse  # noqa: PLC0415
    from aws_lambda_powertools.event_handler.openapi import params  # noqa: PLC0415

    def converted(annotation: Any) -> Any:
        if annotation is Response:
            return PowertoolsResponse[str]
        if get_origin(annotation) is not Annotated:
            return annotation
        metadata = [
            getattr(params, type(meta).__name__)(**meta.arguments)
            if isinstance(meta, Param)
            else meta
            for meta in annotation.__metadata__
        ]
        return Annotated[(annotation.__origin__, *metadata)]

    hints = get_type_hints(function, include_extras=True)
    signature = inspect.signature(function)

    @wraps(function)
    def view(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    view.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            parameter.replace(annotation=converted(hints[name]))
            for name, parameter in signature.parameters.items()
        ],
        return_annotation=converted(hints.get("return", inspect.Signature.empty)),
    )
    return view


def _proxy_response(response: Response) -> dict[str, Any]:
    headers = dict(response.headers)
    headers.setdefault("Content-Type", response.content_type)
    return {
        "statusCode": response.status_code,
        "body": response.body,
        "isBase64Encoded": False,
        "headers": headers,
        "cookies": [],
    }


def token_subject(app: HttpApi) -> str:
    """The member: the JWT's subject, and nothing else (never a path, query or body)."""
    subject = app.request.jwt_claims.get("sub")
    if not subject:
        raise Unauthorized("the token carries no subject (sub)")
    return str(subject)


def require_service(app: HttpApi) -> None:
    """Service routes are IAM-authorised at the API; refuse anything else (a member's token)."""
    authorizer = app.request.authorizer
    if not authorizer.get("iam") or authorizer.get("jwt"):
        raise Forbidden("this route is for services (IAM-signed requests)")


def token_program(app: HttpApi, default: str) -> Program:
    """The program whose app the member's token was issued to (its ``aud``, or Cognito's
    ``client_id``); a token of an app no program names gets ``default`` (the shopper
    program), as before programs were told apart."""
    from shared.programs import load_program, program_for_audience  # noqa: PLC0415

    claims = app.request.jwt_claims
    audiences = claims.get("aud", claims.get("client_id"))
    for audience in audiences if isinstance(audiences, list) else [audiences]:
        program = program_for_audience(str(audience)) if audience else None
        if program is not None:
            return program
    return load_program(default)


def service_program(program_id: str | None, default: str) -> Program:
    """A service route's ``programId`` (query), default ``default``: 422 naming it when no
    program has that id."""
    from shared.domain.errors import InvalidInput, ProgramConfigError  # noqa: PLC0415
    from shared.programs import load_program, program_ids  # noqa: PLC0415

    if program_id is None:
        return load_program(default)
    if program_id not in program_ids():
        known = ", ".join(program_ids())
        raise InvalidInput(
            f"programId: no program {program_id!r} (known: {known})", field="programId"
        )
    try:
        return load_program(program_id)
    except ProgramConfigError as error:  # a file that does not validate: the operator's fault
        raise InvalidInput(f"programId: {error.message}", field="programId") from error


def scoped_subject(app: HttpApi, scope: str) -> str:
    """The token's subject, which must hold ``scope`` (the JWT's ``scope`` claim or the scopes
    API Gateway's authorizer lists): 401 without a subject, 403 without the scope."""
    claims = app.request.jwt_claims
    subject = claims.get("sub")
    if not subject:
        raise Unauthorized("the token carries no subject (sub)")
    scopes = set(app.request.jwt_scopes)
    scopes |= set(str(claims.get("scope", "")).split())
    if scope not in scopes:
        raise Forbidden(f"this route needs the {scope} scope")
    return str(subject)


def require_object_body(app: HttpApi) -> None:
    """Refuse a body that is not a JSON object (the validation takes a one-element array's
    element for the body, as Powertools' did)."""
    if not isinstance(app.request.json_body, dict):
        raise MalformedRequest("the request body must be a JSON object")


def request_time(app: HttpApi) -> datetime:
    """The request's instant as API Gateway stamped it ("now" for the rules)."""
    epoch = app.request.time_epoch
    return datetime.fromtimestamp(epoch / 1000, tz=UTC) if epoch else datetime.now(UTC)


def json_response(status: int, body: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, body=body, headers=headers or {})


def _error(error: DomainError) -> Response:
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return json_response(error.status, json.dumps({"error": error.to_dict()}), headers)


def _invalid(exc: RequestValidationError) -> Response:
    return _error(invalid_input_from(list(exc.errors())))


def _busy(exc: TransientConflict) -> Response:
    logger.warning("conflict persisted after retries", extra={"reason": str(exc)})
    body = json.dumps({"error": {"code": "busy", "message": str(exc)}})
    return json_response(503, body, {"Retry-After": "1"})


def _body_problem(event: Mapping[str, Any]) -> DomainError | None:
    """What makes a request's body unreadable before any route sees it: not UTF-8 text, or
    sent as another media type than JSON (Powertools' validation would fail on either with an
    exception of its own, a 500)."""
    body = event.get("body")
    if not body:
        return None
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            return MalformedRequest("the request body is not valid base64")
    else:
        raw = str(body).encode("utf-8", "surrogatepass")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return MalformedRequest("the request body is not UTF-8 text")
    headers = event.get("headers") or {}
    content_type = next(
        (str(value) for name, value in headers.items() if str(name).lower() == "content-type"),
        "",
    )
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        return UnsupportedMediaType(f"the body is sent as {media}: send it as application/json")
    return None


def resolve(app: HttpApi, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``app.resolve``, after refusing a body no route can read (400 or 415, the error body)."""
    problem = _body_problem(event)
    if problem is not None:
        return {
            "statusCode": problem.status,
            "headers": {"Content-Type": APPLICATION_JSON},
            "body": json.dumps({"error": problem.to_dict()}),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)


def answer_errors(app: HttpApi) -> None:
    """Install the error answers on a resolver."""
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(DomainError)(_error)
    app.exception_handler(TransientConflict)(_busy)
