"""The AsyncAPI document of Momentum's events, generated from the typed event models.

The producers (which service publishes which stream) come from the caller: shared knows
the events, not the services. ``tests/test_asyncapi.py`` passes each producing service's
streams and fails when the committed ``docs/asyncapi.json`` differs
(``MOMENTUM_WRITE_SPECS=1`` rewrites it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from momentum_shared.events import EVENT_TYPES, CloudEvent


def build_document(producers: Mapping[str, str]) -> dict[str, Any]:
    """The document; ``producers`` maps each producing service to the stream it publishes."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    envelope = CloudEvent.model_json_schema(mode="serialization")
    envelope["properties"].pop("data", None)
    for event_type, model in sorted(EVENT_TYPES.items()):
        name = event_type.replace(".", "_")
        producer = event_type.split(".", 1)[0]
        data_schema = model.model_json_schema(mode="serialization")
        messages[name] = {
            "name": event_type,
            "contentType": "application/cloudevents+json",
            "headers": {
                "type": "object",
                "required": ["Nats-Msg-Id"],
                "properties": {
                    "Nats-Msg-Id": {"type": "string", "description": "the event id"},
                    "Content-Type": {"const": "application/cloudevents+json"},
                    "traceparent": {
                        "type": "string",
                        "description": "W3C Trace Context of the publishing span (tracing on)",
                    },
                    "tracestate": {
                        "type": "string",
                        "description": "W3C tracestate that goes with traceparent",
                    },
                },
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {
                        "type": "object",
                        "required": ["type", "data"],
                        "properties": {"type": {"const": event_type}, "data": data_schema},
                    },
                ]
            },
        }
        channels[name] = {
            "address": event_type,
            "description": f"JetStream stream {producers[producer]}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish_{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"{producer} publishes {event_type} through its transactional outbox",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Momentum events",
            "version": "1.0.0",
            "description": (
                "CloudEvents 1.0 in structured mode on NATS JetStream; the subject equals the "
                "event type. Consumers ignore types and fields they do not know."
            ),
        },
        "servers": {
            "nats": {
                "host": "nats:4222",
                "protocol": "nats",
                "description": (
                    "NATS JetStream over TLS in a cluster. Each program connects as its own "
                    "user: a producer may publish only its own subjects, a consumer reads "
                    "through its JetStream consumers only."
                ),
                "security": [{"$ref": "#/components/securitySchemes/userPassword"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"CloudEvent": envelope},
            "messages": messages,
            "securitySchemes": {
                "userPassword": {
                    "type": "userPassword",
                    "description": "a NATS user and password per program",
                }
            },
        },
    }


def render(producers: Mapping[str, str]) -> str:
    return json.dumps(build_document(producers), indent=2, sort_keys=True) + "\n"
