"""A variable with a program's prefix that names none of its settings is reported, not lost."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import MomentumSettings, unknown_variables


class DemoSettings(MomentumSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_DEMO_", extra="ignore")

    poll_interval_seconds: float = 0.2


def test_a_renamed_or_misspelt_setting_is_reported() -> None:
    environ = {
        "MOMENTUM_DEMO_POLL_INTERVAL": "0.5",  # the name before it carried its unit
        "MOMENTUM_DEMO_LOG_LEVL": "DEBUG",
        "MOMENTUM_DEMO_POLL_INTERVAL_SECONDS": "0.5",
        "momentum_demo_log_level": "DEBUG",  # settings are read case-insensitively
    }
    assert unknown_variables(DemoSettings(), environ) == [
        "MOMENTUM_DEMO_LOG_LEVL",
        "MOMENTUM_DEMO_POLL_INTERVAL",
    ]


def test_other_programs_and_kubernetes_service_links_are_not_reported() -> None:
    environ = {
        "MOMENTUM_OTHER_POLL_INTERVAL": "1",
        "MOMENTUM_DATA_DIR": "/tmp/x",
        "MOMENTUM_DEMO_SERVICE_HOST": "10.0.0.1",
        "MOMENTUM_DEMO_SERVICE_PORT": "8001",
        "MOMENTUM_DEMO_SERVICE_PORT_HTTP": "8001",
        "MOMENTUM_DEMO_PORT": "tcp://10.0.0.1:8001",
        "MOMENTUM_DEMO_PORT_8001_TCP": "tcp://10.0.0.1:8001",
        "MOMENTUM_DEMO_PORT_8001_TCP_PROTO": "tcp",
        "MOMENTUM_DEMO_PORT_8001_TCP_PORT": "8001",
        "MOMENTUM_DEMO_PORT_8001_TCP_ADDR": "10.0.0.1",
    }
    assert unknown_variables(DemoSettings(), environ) == []


def test_settings_without_a_prefix_report_nothing() -> None:
    assert unknown_variables(MomentumSettings(), {"ANYTHING": "1"}) == []
