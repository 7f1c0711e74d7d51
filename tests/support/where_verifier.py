"""A numeric verifier that notes where it ran: the Ray node's id inside a Ray worker, else "local"."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from verifiers.base import Verdict
from verifiers.numeric import NumericVerifier


def where() -> str:
    ray = sys.modules.get("ray")  # a local verification worker never imports Ray
    if ray is not None and ray.is_initialized():
        return "ray:" + ray.get_runtime_context().get_node_id()
    return "local"


class WhereVerifier(NumericVerifier):
    """``NumericVerifier``'s verdicts, each with ``detail`` naming where it was judged."""

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        here = where()
        return [dataclasses.replace(verdict, detail=here) for verdict in super().verify(reference, completions)]
