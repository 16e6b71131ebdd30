"""Contains all the data models used in inputs/outputs"""

from .analytics_range_report_group import AnalyticsRangeReportGroup
from .archived_filter import ArchivedFilter
from .auth_revoke_form import AuthRevokeForm
from .auth_token_form import AuthTokenForm
from .authorization_server_metadata import AuthorizationServerMetadata
from .batch_operation import BatchOperation
from .batch_operation_data_type_0 import BatchOperationDataType0
from .batch_operation_op import BatchOperationOp
from .batch_request import BatchRequest
from .batch_response import BatchResponse
from .batch_result import BatchResult
from .bucket import Bucket
from .calendar import Calendar
from .calendar_day import CalendarDay
from .changes_page import ChangesPage
from .completed_by_priority import CompletedByPriority
from .daily_goal_streak import DailyGoalStreak
from .day_report import DayReport
from .deleted_task import DeletedTask
from .goals_public import GoalsPublic
from .goals_update import GoalsUpdate
from .json_web_key_set import JsonWebKeySet
from .json_web_key_set_keys_item import JsonWebKeySetKeysItem
from .monthly_report import MonthlyReport
from .password_change import PasswordChange
from .previous_month import PreviousMonth
from .previous_week import PreviousWeek
from .problem import Problem
from .problem_field_error import ProblemFieldError
from .project_create import ProjectCreate
from .project_page import ProjectPage
from .project_public import ProjectPublic
from .project_update import ProjectUpdate
from .range_report import RangeReport
from .range_report_group import RangeReportGroup
from .signing_key_public import SigningKeyPublic
from .streak import Streak
from .streaks_public import StreaksPublic
from .task_change import TaskChange
from .task_create import TaskCreate
from .task_create_priority import TaskCreatePriority
from .task_deletion import TaskDeletion
from .task_page import TaskPage
from .task_public import TaskPublic
from .task_public_priority import TaskPublicPriority
from .task_public_status import TaskPublicStatus
from .task_sort import TaskSort
from .task_update import TaskUpdate
from .task_update_priority import TaskUpdatePriority
from .tasks_list_priority_type_0 import TasksListPriorityType0
from .tasks_list_status_type_0 import TasksListStatusType0
from .token_response import TokenResponse
from .user_create import UserCreate
from .user_public import UserPublic
from .user_update import UserUpdate
from .week_streaks import WeekStreaks
from .week_totals import WeekTotals
from .weekly_goal_streak import WeeklyGoalStreak
from .weekly_report import WeeklyReport

__all__ = (
    "AnalyticsRangeReportGroup",
    "ArchivedFilter",
    "AuthRevokeForm",
    "AuthTokenForm",
    "AuthorizationServerMetadata",
    "BatchOperation",
    "BatchOperationDataType0",
    "BatchOperationOp",
    "BatchRequest",
    "BatchResponse",
    "BatchResult",
    "Bucket",
    "Calendar",
    "CalendarDay",
    "ChangesPage",
    "CompletedByPriority",
    "DailyGoalStreak",
    "DayReport",
    "DeletedTask",
    "GoalsPublic",
    "GoalsUpdate",
    "JsonWebKeySet",
    "JsonWebKeySetKeysItem",
    "MonthlyReport",
    "PasswordChange",
    "PreviousMonth",
    "PreviousWeek",
    "Problem",
    "ProblemFieldError",
    "ProjectCreate",
    "ProjectPage",
    "ProjectPublic",
    "ProjectUpdate",
    "RangeReport",
    "RangeReportGroup",
    "SigningKeyPublic",
    "Streak",
    "StreaksPublic",
    "TaskChange",
    "TaskCreate",
    "TaskCreatePriority",
    "TaskDeletion",
    "TaskPage",
    "TaskPublic",
    "TaskPublicPriority",
    "TaskPublicStatus",
    "TaskSort",
    "TaskUpdate",
    "TaskUpdatePriority",
    "TasksListPriorityType0",
    "TasksListStatusType0",
    "TokenResponse",
    "UserCreate",
    "UserPublic",
    "UserUpdate",
    "WeekStreaks",
    "WeekTotals",
    "WeeklyGoalStreak",
    "WeeklyReport",
)
