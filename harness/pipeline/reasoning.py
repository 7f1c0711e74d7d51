"""A run's reasoning mode: decided when it samples, kept in the manifest, read when its samples are judged.

``--reasoning`` changes how samples are judged, never what is sampled, with one exception: ``on`` with a chat
template that does not open the thinking itself (or with text prompts, which no template renders) makes every
prompt end with the opening tag, ``response_prefix``, which the configuration hash then covers.

``auto`` is on when the model's chat template holds the closing tag (read before any engine starts; chat
prompts only), and otherwise when the samples show thinking: a completion that holds the closing tag or
starts with the opening one, which is also what a server's separate reasoning content is stored as. Where the
template is known and lacks the tags (in-process vLLM), ``auto`` is off for good; where it is not known (a
server, text prompts), the first sample that shows thinking turns it on. The manifest's ``reasoning`` record
says what was decided and why::

    {"requested": "auto", "mode": "on", "think_tags": ["<think>", "</think>"], "response_prefix": "",
     "decided_by": "the chat template holds </think>", "awaiting_evidence": false}

The verify step reads it (``judging_reasoning``): ``auto`` judges as the run was sampled, ``on`` or ``off``
override it. The mode and tags are part of the verdict set's identity (``verdict_description``), so a run
re-verified with another mode gets a verdict set of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.core.reasoning import ThinkTags, check_reasoning_mode
from harness.core.records import Problem
from harness.engines.base import Engine
from harness.engines.models import ModelRef


@dataclass(frozen=True)
class SamplingReasoning:
    """The reasoning mode of a sampling run, as decided so far (the manifest's ``reasoning`` record).

    Attributes:
        requested: ``auto``, ``on`` or ``off``, as given.
        mode: ``on`` or ``off``: how the run's samples are judged unless the verify step is told otherwise.
        tags: the think tags.
        response_prefix: what every prompt ends with ("" or the opening tag); hashed with the configuration.
        decided_by: why ``mode`` is what it is, in words.
        awaiting_evidence: ``auto`` not decided by a chat template: a sample that shows thinking turns it on.
    """

    requested: str
    mode: str
    tags: ThinkTags
    response_prefix: str
    decided_by: str
    awaiting_evidence: bool = False

    def record(self) -> dict[str, Any]:
        """The manifest's ``reasoning`` record."""
        return {
            "requested": self.requested,
            "mode": self.mode,
            "think_tags": self.tags.to_list(),
            "response_prefix": self.response_prefix,
            "decided_by": self.decided_by,
            "awaiting_evidence": self.awaiting_evidence,
        }

    def resumed_from(self, stored: Mapping[str, Any] | None) -> SamplingReasoning:
        """This decision, resuming a run whose manifest holds ``stored``: ``auto`` stays on once the run's
        samples showed thinking (with the same tags)."""
        if (
            not self.awaiting_evidence
            or not stored
            or stored.get("mode") != "on"
            or stored.get("think_tags") != self.tags.to_list()
        ):
            return self
        return replace(self, mode="on", decided_by=str(stored.get("decided_by")), awaiting_evidence=False)

    def after_samples(self, texts: Iterable[str]) -> SamplingReasoning:
        """This decision after the run stored ``texts``: ``auto`` turns on at the first that shows thinking."""
        if self.awaiting_evidence and any(shows_thinking(text, self.tags) for text in texts):
            decided_by = (
                f"samples hold the think tags {self.tags.open} {self.tags.close} (inline, or a server's reasoning)"
            )
            return replace(self, mode="on", decided_by=decided_by, awaiting_evidence=False)
        return self


def shows_thinking(text: str, tags: ThinkTags) -> bool:
    """Whether a completion shows a reasoning model's thinking: it holds the closing tag, or opens with the
    opening one."""
    return tags.close in text or text.lstrip().startswith(tags.open)


def resolve_sampling_reasoning(
    requested: str,
    tags: ThinkTags,
    engine_type: type[Engine],
    model: ModelRef,
    engine_options: Mapping[str, Any],
    problems: Sequence[Problem],
) -> SamplingReasoning:
    """Decide the reasoning mode of a run before it samples (see the module's rules); reads the model's chat
    template through the engine class (no engine starts)."""
    check_reasoning_mode(requested)
    if requested == "off":
        return SamplingReasoning("off", "off", tags, "", "--reasoning off")
    chat = any(not isinstance(problem.prompt, str) for problem in problems)
    template = engine_type.chat_template(model, engine_options) if chat else None
    if requested == "on":
        if not chat:
            reason = f"--reasoning on; text prompts, which no chat template opens, end with {tags.open}"
            return SamplingReasoning("on", "on", tags, tags.open, reason)
        if template is not None and tags.open not in template:
            reason = f"--reasoning on; the chat template lacks {tags.open}, so prompts end with it"
            return SamplingReasoning("on", "on", tags, tags.open, reason)
        known = "holds" if template is not None else "(not readable here: a server's) decides whether it opens with"
        return SamplingReasoning("on", "on", tags, "", f"--reasoning on; the chat template {known} {tags.open}")
    if template is not None and tags.close in template:
        return SamplingReasoning("auto", "on", tags, "", f"the chat template holds {tags.close}")
    if template is not None:
        return SamplingReasoning("auto", "off", tags, "", f"the chat template holds no {tags.close}")
    waiting = "text prompts" if not chat else "the chat template is not readable here"
    return SamplingReasoning("auto", "off", tags, "", f"no think tags seen ({waiting})", awaiting_evidence=True)


@dataclass(frozen=True)
class JudgingReasoning:
    """How a verify step splits completions: ``mode`` ``on`` (verifiers judge the answer segment) or ``off``."""

    mode: str
    tags: ThinkTags

    @property
    def splits(self) -> ThinkTags | None:
        """The tags to split at, None when completions are judged whole."""
        return self.tags if self.mode == "on" else None


def judging_reasoning(
    manifest: Mapping[str, Any], reasoning: str = "auto", think_tags: str | Sequence[str] | ThinkTags | None = None
) -> JudgingReasoning:
    """How to judge a run's samples: ``reasoning`` ``on`` or ``off`` as given; ``auto`` as the run was sampled
    (its manifest's record; off for a run made before ttc knew reasoning models). ``think_tags`` None: the run's."""
    check_reasoning_mode(reasoning)
    stored = manifest.get("reasoning") or {}
    tags = ThinkTags.parse(think_tags if think_tags is not None else stored.get("think_tags") or ThinkTags())
    mode = reasoning if reasoning != "auto" else str(stored.get("mode", "off"))
    return JudgingReasoning(mode, tags)


def verdict_description(verifier_description: Mapping[str, Any], judging: JudgingReasoning) -> dict[str, Any]:
    """The description a verdict set is keyed by: the verifier's, and with reasoning on the mode and tags (a
    verdict set judged whole keeps the verifier's own description, as before reasoning support)."""
    description = dict(verifier_description)
    if judging.mode == "on":
        description["reasoning"] = {"mode": "on", "think_tags": judging.tags.to_list()}
    return description
