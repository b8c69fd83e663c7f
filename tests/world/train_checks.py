"""Checks the training tests share (imported by test modules; not collected itself)."""
import torch


def params_without_grad(model) -> list[str]:
    """Parameters with no finite gradient after a backward, leaving out the GDN gate parameters that softmax blocks
    carry unused in the shared attention layout."""
    cfg = model.cfg
    gdn_only = ("A_log", "dt_bias", "beta_proj", "gate_proj")
    unused = {n for n, _ in model.named_parameters()
              if any(g in n for g in gdn_only) and cfg.is_softmax(int(n.split(".")[1]))}
    return [n for n, p in model.named_parameters()
            if n not in unused and (p.grad is None or not torch.isfinite(p.grad).all())]
