"""flask-smorest wiring for the house envelope: success bodies, 400 validation errors and their docs."""

from __future__ import annotations

import functools
import re
from typing import Any

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask import Flask, after_this_request, request
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.pagination import PaginationParameters
from webargs.flaskparser import FlaskParser

from .errors import ApiError, ValidationFailed


class ErrorSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = ma.fields.String(required=True)
    details = ma.fields.Raw(metadata={"description": "Per-field messages or other context"})


class ErrorEnvelopeSchema(ma.Schema):
    success = ma.fields.Boolean(required=True, metadata={"example": False})
    error = ma.fields.Nested(ErrorSchema, required=True)


class MessageDump(dict):
    """A dumped `MessageSchema`: the envelope puts its text in `message` rather than `data`."""


class MessageSchema(ma.Schema):
    message = ma.fields.String(required=True)

    @ma.post_dump
    def _mark(self, data: dict, **kwargs: Any) -> MessageDump:
        return MessageDump(data)


class MessageEnvelopeSchema(ma.Schema):
    success = ma.fields.Boolean(required=True, metadata={"example": True})
    message = ma.fields.String(required=True)


MAX_JSON_DEPTH = 32
_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPENING, _CLOSING = frozenset(b"[{"), frozenset(b"]}")


def json_depth(body: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not count).

    One pass, tracking "inside a string" and "after a backslash": this runs before authentication on
    every JSON body, so its cost must be linear in the body's size whatever the body holds (a regex
    that skipped strings backtracked quadratically on `"\\"\\"…`: 6 s for 32 kB). ~80 ms for 1 MB at worst.
    An unclosed string simply runs to the end (the parser then refuses the body)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENING:
            depth += 1
            if depth > deepest:
                deepest = depth
        elif byte in _CLOSING:
            depth -= 1
    return deepest


def refuse_deep_json(body: bytes) -> None:
    """Python's json parser recurses: a body nested a few thousand levels deep would end in a
    RecursionError (a 500). Nothing this API accepts nests more than a few levels."""
    if json_depth(body) > MAX_JSON_DEPTH:
        raise ValidationFailed("Request body is nested too deeply",
                               details={"body": [f"At most {MAX_JSON_DEPTH} levels of arrays and objects."]})


_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_METHODS = {"get", "put", "post", "delete", "patch"}


def refuse_unknown_query_parameters(app: Flask, document: dict) -> None:
    """The authenticated API's operations refuse a query parameter they do not document (400), as their
    bodies refuse unknown fields: `?stauts=cancelled` must not quietly list everything. Unauthenticated
    routes keep ignoring extras: Google adds `scope`, `authuser` and more to the OAuth callback."""
    documented: dict[tuple[str, str], frozenset[str]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in _METHODS and operation.get("security"):
                parameters = operation.get("parameters", []) + item.get("parameters", [])
                documented[(path, method.upper())] = frozenset(
                    p["name"] for p in parameters if p.get("in") == "query")
    # Keyed by the Flask rule, converted to its OpenAPI path once here rather than on every request.
    by_rule = {(rule.rule, method): documented[key] for rule in app.url_map.iter_rules() for method in rule.methods
               if (key := (_RULE_ARGUMENT.sub(r"{\1}", rule.rule), method)) in documented}

    @app.before_request
    def refuse_unknown_query() -> None:
        if not request.args or request.url_rule is None:
            return
        names = by_rule.get((request.url_rule.rule, request.method))
        unknown = sorted(set(request.args) - names) if names is not None else None
        if unknown:
            raise ValidationFailed("Unknown query parameter", details={name: ["Unknown field."] for name in unknown})


def no_store(view: Any) -> Any:
    """View decorator for responses that hold a secret (an API key, a token): no cache may keep them."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        @after_this_request
        def _no_store(response):
            response.headers["Cache-Control"] = "no-store"
            return response

        return view(*args, **kwargs)

    return wrapper


def unstorable(value: Any, path: str = "") -> str | None:
    """The path of the first string PostgreSQL cannot store: a NUL character (text refuses it) or an
    unpaired surrogate (not UTF-8; JSON's `\\ud800` escapes make them). None when all are fine."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        key_path = f"{path}.{key}" if path else str(key)
        found = unstorable(key, key_path) if isinstance(key, str) else None
        found = found or unstorable(item, key_path)
        if found is not None:
            return found
    return None


def _refuse_unstorable(data: Any) -> Any:
    path = unstorable(data)
    if path is not None:
        raise ValidationFailed(details={path or "body": [
            "Must not contain NUL characters or unpaired surrogates."]})
    return data


class ArgumentsParser(FlaskParser):
    """webargs parser whose failures are our 400 envelope instead of smorest's 422 body."""

    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Any) -> Any:
        return _refuse_unstorable(super()._raw_load_json(req))

    def load_querystring(self, req: Any, schema: ma.Schema) -> Any:
        for name, value in req.args.items(multi=True):
            _refuse_unstorable({name: value})
        return super().load_querystring(req, schema)

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        raise ValidationFailed(details=_flatten_locations(error.messages))

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise ApiError("Request body is not valid JSON", code="MALFORMED_JSON")


def _flatten_locations(messages: Any) -> Any:
    # webargs nests messages under the location ("json", "query"); clients want the fields.
    if isinstance(messages, dict) and len(messages) == 1:
        (location, fields), = messages.items()
        if location in ("json", "query", "form", "headers", "view_args", "path", "querystring"):
            return fields
    return messages


# Beyond any table: a page number past it (`?page=807515902247111753728`) is simply past the end, an
# empty page, rather than an OFFSET PostgreSQL cannot hold.
MAX_OFFSET = 2**62


class BoundedPagination(PaginationParameters):
    @property
    def first_item(self) -> int:
        return min((self.page - 1) * self.page_size, MAX_OFFSET)


class PaginationArgumentsParser(ArgumentsParser):
    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parameters = super().parse(*args, **kwargs)
        return BoundedPagination(parameters.page, parameters.page_size)


_doc_envelopes: dict[tuple[type, bool], type[ma.Schema]] = {}


class Blueprint(SmorestBlueprint):
    """A smorest Blueprint that wraps every success body in `{"success": true, ...}`."""

    ARGUMENTS_PARSER = ArgumentsParser()
    PAGINATION_ARGUMENTS_PARSER = PaginationArgumentsParser()

    @staticmethod
    def _prepare_response_content(data: Any) -> Any:
        if isinstance(data, MessageDump):
            return {"success": True, "message": data["message"]}
        return {"success": True, "data": data}

    @staticmethod
    def _make_doc_response_schema(schema: Any) -> Any:
        if schema is None:
            return None
        schema_cls = schema if isinstance(schema, type) else type(schema)
        if issubclass(schema_cls, MessageSchema):
            return MessageEnvelopeSchema
        if issubclass(schema_cls, (ErrorEnvelopeSchema, MessageEnvelopeSchema)):
            return schema  # already a whole body
        many = bool(getattr(schema, "many", False))
        key = (schema_cls, many)
        if key not in _doc_envelopes:
            name = schema_cls.__name__.removesuffix("Schema") + ("List" if many else "") + "EnvelopeSchema"
            _doc_envelopes[key] = type(name, (ma.Schema,), {
                "success": ma.fields.Boolean(required=True, metadata={"example": True}),
                "data": ma.fields.Nested(schema_cls(many=many), required=True),
            })
        return _doc_envelopes[key]


    def login_required(self, view: Any) -> Any:
        """`auth.login_required` plus its documentation: bearer security and the 401 response."""
        from .auth import login_required

        view = self.alt_response(401, schema=ErrorEnvelopeSchema,
                                  description="Missing, invalid or expired token")(login_required(view))
        return self.doc(security=[{"bearerAuth": []}])(view)


class Converter(OpenAPIConverter):
    """Adds the schema-level keywords a schema states in `Meta.openapi` (e.g. `minProperties`), which
    marshmallow fields cannot express, so the document says what the schema's validators refuse."""

    def schema2jsonschema(self, schema: Any) -> dict:
        jsonschema = super().schema2jsonschema(schema)
        jsonschema.update(getattr(getattr(schema, "Meta", None), "openapi", {}))
        return jsonschema


class Plugin(MarshmallowPlugin):
    Converter = Converter


class Api(SmorestApi):
    """flask-smorest Api documenting the error envelope; errors.py handles the errors themselves."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def __init__(self, app: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("spec_kwargs", {}).setdefault("marshmallow_plugin", Plugin())
        super().__init__(app, **kwargs)

    def _register_pagination_header(self) -> None:
        """X-Pagination carries a JSON object. flask-smorest documents it with a bare `schema`, which
        OpenAPI reads as the `simple` style (`total,3,total_pages,1`); `content` says what is sent."""
        from flask_smorest.pagination import PaginationMetadataSchema

        self.spec.components.header("PAGINATION", {
            "description": "Pagination metadata, a JSON object",
            "content": {"application/json": {"schema": PaginationMetadataSchema}}}, lazy=True)

    def _register_error_handlers(self) -> None:
        """The app-wide handlers in errors.py own every error response."""
