"""The AsyncAPI document of Momentum's events, generated from the typed event models.

``python -m momentum_shared.asyncapi > docs/asyncapi.json`` rewrites the committed copy;
a test fails when the models and the committed document disagree.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from momentum_shared.events import AUTH_STREAM, EVENT_TYPES, TASK_STREAM, CloudEvent

PRODUCERS = {"auth": AUTH_STREAM, "tasks": TASK_STREAM}


def build_document() -> dict[str, Any]:
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
            "description": f"JetStream stream {PRODUCERS[producer]}",
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


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
