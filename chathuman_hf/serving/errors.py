"""API errors as JSON ``{"error": {"message", "type", "param"}}`` (the OpenAI error shape) with clear messages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chathuman_hf.chat import EngineBusy


class ApiError(Exception):
    """An error answered to the client with ``status`` and a message saying what to fix."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 type: str = "invalid_request_error",  # noqa: A002 (OpenAI's field name)
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.param = param
        self.type = type
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.message, self.type, self.param, self.code), status_code=self.status,
                            headers=self.headers)


def busy_error(exc: EngineBusy) -> ApiError:
    """The engine is full: 503 with ``Retry-After`` (seconds), which clients and load balancers honour."""
    return ApiError(503, str(exc), type="server_busy", headers={"Retry-After": str(exc.retry_after)})


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,  # noqa: A002
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """One readable sentence for the first validation problem, and the field it concerns."""
    problems = exc.errors()
    if not problems:
        return "Invalid request body.", None
    first = problems[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    kind = first.get("type", "")
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        return f"Malformed JSON body: {ctx.get('error', first.get('msg'))}. Send a JSON object.", None
    if kind == "missing" and field is None:
        return "The request body is empty: send a JSON object.", None
    if kind == "missing":
        return f"Missing field '{field}' in the JSON body.", field
    if kind in {"model_attributes_type", "dict_type"} and not loc:
        return "The request body must be a JSON object.", None
    return f"Field '{field}': {first.get('msg')}.", field


def check_unicode(text: str, param: str) -> str:
    """``text`` when it encodes as UTF-8; a lone surrogate (JSON ``"\\ud800"``) is a 400 naming the position."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ApiError(400, f"{param} has an invalid character at position {err.start} (a lone UTF-16 surrogate); "
                       "send valid Unicode text.", param=param) from None
    return text


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(EngineBusy)
    async def engine_busy(_request: Request, exc: EngineBusy) -> JSONResponse:
        return busy_error(exc).response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = describe_validation(exc)
        return JSONResponse(error_body(message, param=field), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code)
