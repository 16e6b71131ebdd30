"""Contains all the data models used in inputs/outputs"""

from .authorization_server_metadata import AuthorizationServerMetadata
from .body_revoke_auth_revoke_post import BodyRevokeAuthRevokePost
from .body_token_auth_token_post import BodyTokenAuthTokenPost
from .day_report import DayReport
from .http_validation_error import HTTPValidationError
from .json_web_key_set import JsonWebKeySet
from .json_web_key_set_keys_item import JsonWebKeySetKeysItem
from .list_tasks_tasks_get_priority_type_0 import ListTasksTasksGetPriorityType0
from .list_tasks_tasks_get_status_type_0 import ListTasksTasksGetStatusType0
from .password_change import PasswordChange
from .previous_week import PreviousWeek
from .signing_key_public import SigningKeyPublic
from .streak import Streak
from .streaks_public import StreaksPublic
from .task_create import TaskCreate
from .task_create_priority import TaskCreatePriority
from .task_page import TaskPage
from .task_public import TaskPublic
from .task_public_priority import TaskPublicPriority
from .task_public_status import TaskPublicStatus
from .task_sort import TaskSort
from .task_update import TaskUpdate
from .task_update_priority_type_0 import TaskUpdatePriorityType0
from .token_response import TokenResponse
from .user_create import UserCreate
from .user_public import UserPublic
from .user_update import UserUpdate
from .validation_error import ValidationError
from .validation_error_context import ValidationErrorContext
from .week_streaks import WeekStreaks
from .week_totals import WeekTotals
from .weekly_report import WeeklyReport

__all__ = (
    "AuthorizationServerMetadata",
    "BodyRevokeAuthRevokePost",
    "BodyTokenAuthTokenPost",
    "DayReport",
    "HTTPValidationError",
    "JsonWebKeySet",
    "JsonWebKeySetKeysItem",
    "ListTasksTasksGetPriorityType0",
    "ListTasksTasksGetStatusType0",
    "PasswordChange",
    "PreviousWeek",
    "SigningKeyPublic",
    "Streak",
    "StreaksPublic",
    "TaskCreate",
    "TaskCreatePriority",
    "TaskPage",
    "TaskPublic",
    "TaskPublicPriority",
    "TaskPublicStatus",
    "TaskSort",
    "TaskUpdate",
    "TaskUpdatePriorityType0",
    "TokenResponse",
    "UserCreate",
    "UserPublic",
    "UserUpdate",
    "ValidationError",
    "ValidationErrorContext",
    "WeekStreaks",
    "WeekTotals",
    "WeeklyReport",
)
