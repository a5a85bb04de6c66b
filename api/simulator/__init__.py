"""The simulated upstream ("fake Claude"): an Anthropic Messages API look-alike.

Used by `tollgate simulate-upstream`, in-process by `tollgate dev`, by tests and in benchmarks.
"""

from api.simulator.app import (
    COUNT_TOKENS_PATH,
    MESSAGES_PATH,
    create_simulator_app,
)
from api.simulator.config import HEADER_FIELDS, KnobError, SimConfig, apply_header_overrides
from api.simulator.request import count_input_tokens
from api.simulator.server import (
    RunningSimulator,
    RunningSimulatorTask,
    run_simulator,
    start_simulator_task,
    start_simulator_thread,
)

__all__ = [
    "COUNT_TOKENS_PATH",
    "HEADER_FIELDS",
    "MESSAGES_PATH",
    "KnobError",
    "RunningSimulator",
    "RunningSimulatorTask",
    "SimConfig",
    "apply_header_overrides",
    "count_input_tokens",
    "create_simulator_app",
    "run_simulator",
    "start_simulator_task",
    "start_simulator_thread",
]
