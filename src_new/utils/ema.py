"""Exponential moving average of a model's weights."""
from __future__ import annotations

import copy

import torch


class EMA:
    """Keeps ``self.model``, an averaged copy of ``model``.

    Call ``update()`` once per optimizer step of ``model``. Every ``update_every`` calls the
    copy moves toward the live weights with decay ``min(decay, (1 + n) / (10 + n))`` where n
    counts the averaging updates so far: the warm-up lets short runs get a useful average
    instead of a stale copy of the initial weights. Buffers are copied, not averaged.
    """

    def __init__(self, model, decay=0.9999, update_every=10, ema_model=None):
        self.source = model
        # ema_model: an existing copy to average into (e.g. a model's own ``ema_generator``).
        self.model = (ema_model if ema_model is not None else copy.deepcopy(model)).eval().requires_grad_(False)
        self.decay, self.update_every = decay, update_every
        self.step = 0          # calls to update()
        self.num_updates = 0   # averaging updates performed

    def current_decay(self):
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self):
        self.step += 1
        if self.step % self.update_every:
            return
        decay = self.current_decay()
        ema_params = list(self.model.parameters())
        src_params = [p.detach() for p in self.source.parameters()]
        torch._foreach_lerp_(ema_params, src_params, 1 - decay)
        for ema_buf, buf in zip(self.model.buffers(), self.source.buffers()):
            ema_buf.copy_(buf)
        self.num_updates += 1

    def state_dict(self):
        return {"model": self.model.state_dict(), "step": self.step, "num_updates": self.num_updates}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.step, self.num_updates = int(state["step"]), int(state["num_updates"])
