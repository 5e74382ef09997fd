"""The parts every request path shares, handed as one to speculation, priming and cycling."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config
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


class Stage:
    """Base of the parts that send through the pipeline (speculation, priming, cycling)."""

    def __init__(self, config: Config, pipeline: Pipeline) -> None:
        self._config = config
        self._scheduler = pipeline.scheduler
        self._builder = pipeline.builder
        self._sender = pipeline.sender
        self._counters = pipeline.counters
        self._projects = pipeline.projects
