"""Fakes shared by the engine's unit tests."""

from __future__ import annotations

from llama_nvim.render import RenderPlan


class FakeEditor:
    """Records what the engine asks the editor to do."""

    def __init__(self) -> None:
        self.shown: list[RenderPlan] = []
        self.hidden = 0
        self.messages: list[tuple[str, bool]] = []

    def show(self, plan: RenderPlan) -> None:
        self.shown.append(plan)

    def hide(self) -> None:
        self.hidden += 1

    def notify(self, message: str, *, error: bool) -> None:
        self.messages.append((message, error))


class Clock:
    """The engine's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
