"""The server's own OpenAPI 3.1 document (`GET /v2/openapi.json`).

FastAPI describes the routes it serves (health, metadata, repository, rollout, metrics and
extension routes such as the monitor's); `/infer` and `/predict` are served by the front door
without FastAPI, so their operations are written here by hand, following the Open Inference
Protocol's REST definition (KServe's `rest_predict_v2.yaml`). Every operation lists the error
answers the server gives, all as `{"error": "…"}`, and the API-key schemes it accepts.
"""

from __future__ import annotations

import copy
from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
ERRORS = {
    "400": "bad request: the message names the input and what would be valid",
    "401": "missing or invalid API key",
    "403": "the key lacks the scope this operation needs",
    "404": "unknown model, version or route",
    "408": "the request body did not arrive in time (--body-timeout)",
    "413": "body, JSON, image or sample count over its limit",
    "415": "unsupported Content-Type or Content-Encoding",
    "422": "a package failed verification",
    "429": "too many pending requests; retry after Retry-After",
    "503": "not ready, draining or too many connections",
    "504": "no answer within the request timeout",
}
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")

TENSOR_DATA: dict[str, Any] = {
    "description": "row-major elements, flat or nested; strings for BYTES, true/false for BOOL",
    "type": "array",
    "items": {},
}
PARAMETERS: dict[str, Any] = {"type": "object", "additionalProperties": True}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "RequestInput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {
                "type": "string",
                "enum": [
                    "BOOL",
                    "UINT8",
                    "UINT16",
                    "UINT32",
                    "UINT64",
                    "INT8",
                    "INT16",
                    "INT32",
                    "INT64",
                    "FP16",
                    "FP32",
                    "FP64",
                    "BYTES",
                ],
            },
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                "additionalProperties": True,
            },
            "data": TENSOR_DATA,
        },
    },
    "RequestOutput": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data": {"type": "boolean"}},
                "additionalProperties": True,
            },
        },
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string", "maxLength": 256, "description": "printable text"},
            "parameters": {
                "type": "object",
                "properties": {
                    "binary_data_output": {"type": "boolean"},
                    "timeout": {"type": "integer", "minimum": 1, "description": "µs"},
                },
                "additionalProperties": True,
            },
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/components/schemas/RequestInput"},
            },
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/RequestOutput"}},
        },
    },
    "ResponseOutput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": PARAMETERS,
            "data": TENSOR_DATA,
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/ResponseOutput"}},
        },
    },
    "PredictRows": {
        "description": "raw rows in the units the model was trained on",
        "oneOf": [
            {"type": "array", "minItems": 1, "items": {}},
            {
                "type": "object",
                "required": ["instances"],
                "properties": {"instances": {"type": "array", "minItems": 1, "items": {}}},
            },
        ],
    },
    "PredictResponse": {
        "type": "object",
        "required": ["model_name", "predictions"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "predictions": {"type": "array", "items": {"type": "object"}},
        },
    },
}


def _path_params(with_version: bool) -> list[dict[str, Any]]:
    params = [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]
    if with_version:
        params.append(
            {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    return params


def _infer_operation(with_version: bool) -> dict[str, Any]:
    return {
        "operationId": "infer_version" if with_version else "infer",
        "summary": "Run inference (Open Inference Protocol V2)",
        "description": (
            "JSON tensors, or the binary tensor data extension: the JSON request followed by "
            "raw little-endian tensors, with Inference-Header-Content-Length giving the JSON "
            "length. Bodies may be gzip/deflate encoded."
        ),
        "parameters": [
            *_path_params(with_version),
            {
                "name": "Inference-Header-Content-Length",
                "in": "header",
                "required": False,
                "schema": {"type": "integer", "minimum": 0},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": {
            "200": {
                "description": "the outputs (binary ones after the JSON header)",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/InferenceResponse"}
                    },
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    }


def _predict_operation(with_version: bool) -> dict[str, Any]:
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "operationId": "predict_version" if with_version else "predict",
        "summary": "Labels for an image or raw rows, with the package's own preprocessing",
        "parameters": [
            *_path_params(with_version),
            {
                "name": "top",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PredictRows"}},
                "image/png": image,
                "image/jpeg": image,
            },
        },
        "responses": {
            "200": {
                "description": "one prediction per row or image",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
                },
            }
        },
    }


def fast_path_operations() -> dict[str, dict[str, Any]]:
    return {
        "/v2/models/{model}/infer": {"post": _infer_operation(False)},
        "/v2/models/{model}/versions/{version}/infer": {"post": _infer_operation(True)},
        "/v2/models/{model}/predict": {"post": _predict_operation(False)},
        "/v2/models/{model}/versions/{version}/predict": {"post": _predict_operation(True)},
    }


def build_document(generated: dict[str, Any], auth: bool) -> dict[str, Any]:
    """FastAPI's generated document plus the front door's operations, errors and security."""
    doc = copy.deepcopy(generated)
    doc.setdefault("paths", {}).update(fast_path_operations())
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update(copy.deepcopy(SCHEMAS))
    if auth:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    error = {"application/json": {"schema": ERROR}}
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's validation answer; this server says 400
            for code, text in ERRORS.items():
                responses.setdefault(code, {"description": text, "content": error})
            if auth and path not in OPEN_PATHS:
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
    return doc
