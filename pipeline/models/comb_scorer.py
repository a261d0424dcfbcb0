"""Fault location from the comb evidence of the bearing's own fault orders (pipeline.dsp.fault_orders), by one
judgement shared by every location.

The evidence of each location's comb sits on the same axis for every bearing, so "how much does this look like
a fault comb" is one question, asked of each location's evidence with the same weights: a location wins by its own
comb standing out, and nothing learned can say "this pattern of the inner-race comb means an outer-race fault",
a coincidence of one bearing's geometry (on CWRU's drive end, 3 BPFO lies on 2 BPFI) or of one data set's records
that would not carry over to another bearing. The rest of the network sees the locations' embeddings pooled over
locations (mean and max), which does not know which location is which: enough to tell a fault from normal and
sizes apart, not enough to move a decision between locations.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from pipeline.dsp.fault_orders import EVIDENCE_SHAPE, FAULT_LOCATIONS_READ

INITIAL_SHARPNESS = 4.0  # logits per neper: a comb 0.5 Np above another is ~7x as likely
INITIAL_THRESHOLD = 0.5  # nepers: a comb whose lines stand this far above the background names a fault


class CombScorer(nn.Module):
    """Evidence `[B, 3, H, S]` -> pooled features `[B, 2 * hidden_dim]` and class scores `[B, n_classes]`.

    `class_locations` (a fault location per class, normal included) routes each location's score to its classes;
    without it (classes that are not fault locations) there are no scores (None), and only the pooled features count.
    """

    def __init__(self, hidden_dim: int, class_locations: Optional[Sequence[str]], n_classes: int):
        super().__init__()
        self.embed = nn.Sequential(
            nn.Flatten(2), nn.Linear(math.prod(EVIDENCE_SHAPE[1:]), hidden_dim), nn.GELU(), nn.LayerNorm(hidden_dim)
        )
        routing = torch.zeros(n_classes, len(FAULT_LOCATIONS_READ))
        for k, location in enumerate(class_locations or ()):
            if location in FAULT_LOCATIONS_READ:
                routing[k, FAULT_LOCATIONS_READ.index(location)] = 1.0
        self.routes = bool(routing.any())
        if self.routes:
            # starts as the analyst's rule: a location's score is its comb's mean line height (nepers above the
            # background), normal's a threshold on it; the learned part starts at zero
            self.sharpness = nn.Parameter(torch.tensor(INITIAL_SHARPNESS))
            self.threshold = nn.Parameter(torch.tensor(INITIAL_THRESHOLD))
            self.score = nn.Linear(hidden_dim, 1)
            nn.init.zeros_(self.score.weight)
            nn.init.zeros_(self.score.bias)
            self.register_buffer("routing", routing, persistent=False)
            normal = torch.tensor([float(location == "normal") for location in class_locations])
            self.register_buffer("normal", normal, persistent=False)
            same_location = routing @ routing.T  # [C, C]: 1 where two fault classes share a location
            self.register_buffer(
                "centring",
                torch.eye(n_classes) - same_location / same_location.sum(1, keepdim=True).clamp_min(1),
                persistent=False,
            )
        self.out_dim = 2 * hidden_dim

    def combine(self, head_logits: torch.Tensor, scores: Optional[torch.Tensor], locations_free: bool) -> torch.Tensor:
        """The class logits: the head's plus the location scores. Unless `locations_free`, the head's logits of
        the classes of one location are centred first, so the head tells those classes apart (sizes) and a
        fault from normal, but only the combs choose between locations."""
        if scores is None:
            return head_logits
        if not locations_free:
            head_logits = head_logits @ self.centring.T
        return head_logits + scores

    def forward(self, evidence: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        embedded = self.embed(evidence)  # [B, 3, hidden]
        pooled = torch.cat([embedded.mean(dim=1), embedded.amax(dim=1)], dim=-1)
        if not self.routes:
            return pooled, None
        comb_height = evidence[..., 1].mean(dim=-1)  # [B, 3]: centre lines, mean over harmonics
        scores = self.sharpness * comb_height + self.score(embedded).squeeze(-1)  # [B, 3]
        return pooled, scores @ self.routing.T + self.sharpness * self.threshold * self.normal
