"""The routing table: which service owns a path, and what a caller needs to reach it.

This is the one place where routes, upstreams and scopes meet. The proxy, the scope checks,
the rate limits, the metrics labels, the merged OpenAPI document and the trace's span names
all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANY_METHOD: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table. ``pattern`` is an exact path, or ``/prefix/*`` for what is below."""

    pattern: str
    service: str
    # ``public``: no token needed. Otherwise a valid token, with ``scope`` when it is set.
    public: bool = False
    scope: str | None = None
    methods: frozenset[str] = ANY_METHOD
    # Public routes that create sessions or accounts are limited per client address.
    limit_by_address: bool = False
    # The OAuth token and revocation endpoints: the gateway's own refusals there carry the
    # RFC 6749 ``error`` member and ``Cache-Control: no-store``, as auth's do.
    oauth: bool = False

    @property
    def path(self) -> str:
        """The label metrics use (bounded cardinality: the pattern, never the real path)."""
        return self.pattern

    @property
    def prefix(self) -> str | None:
        return self.pattern[:-1] if self.pattern.endswith("/*") else None

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        prefix = self.prefix
        if prefix is None:
            return path == self.pattern
        return len(path) > len(prefix) and path.startswith(prefix)

    def requirement(self) -> str:
        if self.public:
            return "public"
        return f"scope {self.scope}" if self.scope else "a valid token"


POST = frozenset({"POST"})

# First match wins. Anything under a service prefix that no earlier row names still needs
# a valid token: a new upstream route is never public by accident.
TABLE: tuple[Rule, ...] = (
    Rule("/auth/register", "auth", public=True, methods=POST, limit_by_address=True),
    Rule("/auth/token", "auth", public=True, methods=POST, limit_by_address=True, oauth=True),
    Rule("/auth/revoke", "auth", public=True, methods=POST, limit_by_address=True, oauth=True),
    Rule("/.well-known/*", "auth", public=True),
    Rule("/auth/me", "auth", scope="profile"),
    Rule("/auth/me/*", "auth", scope="profile"),
    Rule("/auth/admin/*", "auth", scope="admin"),
    Rule("/auth/*", "auth"),
    Rule("/tasks", "tasks", scope="tasks:read", methods=SAFE_METHODS),
    Rule("/tasks/*", "tasks", scope="tasks:read", methods=SAFE_METHODS),
    Rule("/tasks", "tasks", scope="tasks:write"),
    Rule("/tasks/*", "tasks", scope="tasks:write"),
    Rule("/projects", "tasks", scope="tasks:read", methods=SAFE_METHODS),
    Rule("/projects/*", "tasks", scope="tasks:read", methods=SAFE_METHODS),
    Rule("/projects", "tasks", scope="tasks:write"),
    Rule("/projects/*", "tasks", scope="tasks:write"),
    Rule("/analytics/goals", "analytics", scope="analytics:read", methods=SAFE_METHODS),
    Rule("/analytics/goals", "analytics", scope="analytics:write"),
    Rule("/analytics", "analytics", scope="analytics:read"),
    Rule("/analytics/*", "analytics", scope="analytics:read"),
)


# The upstreams' route templates, as their OpenAPI documents spell them (the committed ones are
# compared by gateway/tests/test_tracing.py). A traced request's server span is named by its
# template, never by the real path; a path no template matches is named by its rule's pattern.
TEMPLATES: tuple[str, ...] = (
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/auth/admin/keys/rotate",
    "/auth/me",
    "/auth/me/password",
    "/auth/register",
    "/auth/revoke",
    "/auth/token",
    "/tasks",
    "/tasks/batch",
    "/tasks/changes",
    "/tasks/{task_id}",
    "/tasks/{task_id}/complete",
    "/tasks/{task_id}/reopen",
    "/projects",
    "/projects/{project_id}",
    "/analytics/calendar",
    "/analytics/goals",
    "/analytics/reports",
    "/analytics/reports/monthly",
    "/analytics/reports/weekly",
    "/analytics/streaks",
)


def _segments(template: str) -> tuple[str | None, ...]:
    """A template's segments, ``None`` for a parameter (which matches any one segment)."""
    return tuple(
        None if part.startswith("{") and part.endswith("}") else part
        for part in template.split("/")
    )


def _template_index(
    templates: tuple[str, ...],
) -> dict[int, list[tuple[tuple[str | None, ...], str]]]:
    """Templates by their number of segments, those with fewer parameters first."""
    index: dict[int, list[tuple[tuple[str | None, ...], str]]] = {}
    for template in templates:
        segments = _segments(template)
        index.setdefault(len(segments), []).append((segments, template))
    for candidates in index.values():
        candidates.sort(key=lambda entry: entry[0].count(None))
    return index


_TEMPLATE_INDEX = _template_index(TEMPLATES)


def route_template(rule: Rule, path: str) -> str:
    """The template of the upstream route ``path`` belongs to, else ``rule``'s pattern.

    Bounded like the metrics labels: whatever a client sends, the answer is one of
    ``TEMPLATES`` or a pattern of the table.
    """
    parts = path.split("/")
    for segments, template in _TEMPLATE_INDEX.get(len(parts), ()):
        if all(
            part == segment if segment is not None else part != ""
            for part, segment in zip(parts, segments, strict=True)
        ):
            return template
    return rule.pattern


def _first_segment(path: str) -> str:
    end = path.find("/", 1)
    return path[1:] if end < 0 else path[1:end]


def _index(table: tuple[Rule, ...]) -> dict[str, tuple[Rule, ...]]:
    """Rules by the first path segment, in table order (every pattern names one)."""
    index: dict[str, list[Rule]] = {}
    for rule in table:
        index.setdefault(_first_segment(rule.pattern), []).append(rule)
    return {segment: tuple(rules) for segment, rules in index.items()}


_INDEXES: dict[int, tuple[tuple[Rule, ...], dict[str, tuple[Rule, ...]]]] = {}


def match(method: str, path: str, table: tuple[Rule, ...] = TABLE) -> Rule | None:
    """The rule for a request, or ``None`` when the gateway itself (or nobody) answers it."""
    cached = _INDEXES.get(id(table))
    if cached is None or cached[0] is not table:
        cached = _INDEXES[id(table)] = (table, _index(table))
    for rule in cached[1].get(_first_segment(path), ()):
        if rule.matches(method, path):
            return rule
    return None


def has_dot_segments(path: str) -> bool:
    """True for ``/a/../b`` and friends, which an upstream or a client library might fold.

    Checked on the decoded path, so ``%2e%2e`` and ``%2F`` spellings are caught too; the
    scope decision and the upstream's routing then always see the same path.
    """
    if "/." not in path and "\\" not in path:
        return False
    return "\\" in path or any(part in (".", "..") for part in path.split("/"))
