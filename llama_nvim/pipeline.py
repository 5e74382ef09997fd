"""The parts every request path shares, handed as one to speculation, priming and cycling."""

from __future__ import annotations

from dataclasses import dataclass

from .counters import Counters
from .projects import Projects
from .request_builder import RequestBuilder
from .scheduler import Scheduler
from .sender import Sender


@dataclass(frozen=True)
class Pipeline:
    """Who may send (scheduler), what (builder), how (sender), counted, for which project."""

    scheduler: Scheduler
    builder: RequestBuilder
    sender: Sender
    counters: Counters
    projects: Projects
