"""What schemathesis needs to know about Momentum to generate valid requests (``hooks``).

- ``iana-time-zone`` (the format of every ``timezone`` field) is the IANA database's names:
  JSON Schema has no such format, so schemathesis is taught it here.
- ``email`` addresses are refused at special-use domains (RFC 6761: ``.test``,
  ``.invalid``, ``.localhost`` …), which schemathesis's own generator favours; addresses
  are drawn from Hypothesis's ``emails()``, whose domains have real top-level domains.
- An ``Idempotency-Key`` is single-use: the same key with another body is a 422 by design
  (docs/spec/README.md §2.9). A generated valid key is made unique per request, so a
  valid request is never refused for a key an earlier, different request already used.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

from momentum_auth.schemas import TIMEZONE_FORMAT, iana_timezones

schemathesis.openapi.format(TIMEZONE_FORMAT, st.sampled_from(sorted(iana_timezones())))
schemathesis.openapi.format("email", st.emails().filter(lambda email: len(email) <= 320))


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers
    key = headers.get("Idempotency-Key") if headers else None
    if key is None or case.meta is None or case.meta.generation.mode.is_negative:
        return
    headers["Idempotency-Key"] = f"{key[:200]}-{uuid.uuid4().hex}"
