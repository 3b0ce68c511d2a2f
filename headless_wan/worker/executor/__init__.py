"""The executor process: generation runs in a child the worker can kill and replace."""

from headless_wan.worker.executor.parent import Executor
from headless_wan.worker.executor.watchdog import WatchdogLimits

__all__ = ["Executor", "WatchdogLimits"]
