"""Discriminators: patch discriminators over decoded video for the VAE decoder's adversarial fine-tune
(train decoder-adv), and a latent-space one over generated chunks for the generator's (train world-adv,
LatentDiscriminator at the end of this file).

A decoder trained for pixel error alone returns the average of what could be there: fog. A discriminator that judges
small patches (PatchGAN) asks it for detail that looks real at the scale of a patch, without asking it to guess exact
pixels. Two of them look at the decoded video:
- a frame discriminator judges every frame on its own (texture, edges);
- a clip discriminator judges k consecutive frames stacked on channels, so detail that flickers from frame to frame
  (a hallucinated texture that moves) looks fake to it.

    d = VideoDiscriminator()
    logits, feats = d(video)   # video (B, 3, F, H, W) in [-1, 1]; logits: [frame (B·F, 1, h, w), clip (B·(F−k+1), 1, h, w)]

No normalisation layers: the training loop regularises with R1 (a gradient penalty on real inputs) instead.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchDiscriminator(nn.Module):
    """x (N, c_in, H, W) -> logits (N, 1, H/8, W/8), one per ~46-px patch, and the hidden features (for feature
    matching)."""

    def __init__(self, c_in: int, width: int = 32):
        super().__init__()
        w = width
        self.blocks = nn.ModuleList([
            nn.Conv2d(c_in, w, 4, stride=2, padding=1),      # H/2
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),     # H/4
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1),  # H/8
            nn.Conv2d(4 * w, 4 * w, 3, padding=1),
        ])
        self.head = nn.Conv2d(4 * w, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for conv in self.blocks:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        return self.head(x), feats


class VideoDiscriminator(nn.Module):
    """A frame discriminator and a clip discriminator (clip_frames consecutive frames) over decoded video."""

    def __init__(self, width: int = 32, clip_frames: int = 3):
        super().__init__()
        self.clip_frames = clip_frames
        self.frame = PatchDiscriminator(3, width)
        self.clip = PatchDiscriminator(3 * clip_frames, width)

    def forward(self, video: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """video (B, 3, F, H, W), F >= clip_frames -> ([frame logits, clip logits], features of both)."""
        B, _, Fr, H, W = video.shape
        k = self.clip_frames
        frames = video.transpose(1, 2).reshape(B * Fr, 3, H, W)  # (B·F, 3, H, W)
        clips = video.unfold(2, k, 1)  # (B, 3, F−k+1, H, W, k)
        clips = clips.permute(0, 2, 5, 1, 3, 4).reshape(B * (Fr - k + 1), 3 * k, H, W)  # frames in order on channels
        lf, ff = self.frame(frames)
        lc, fc = self.clip(clips)
        return [lf, lc], ff + fc


def hinge_d_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))


def generator_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    return sum(-f.mean() for f in fake_logits)


def feature_matching(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between the discriminator's features of the decoded and the exact video (real ones detached)."""
    return sum((f - r.detach()).abs().mean() for f, r in zip(fake_feats, real_feats)) / len(fake_feats)


def r1_penalty(d: VideoDiscriminator, real: torch.Tensor) -> torch.Tensor:
    """R1: the squared gradient norm, at real inputs, of each sample's mean patch logit (frame and clip), per clip.
    real (B, 3, F, H, W)."""
    real = real.detach().requires_grad_(True)
    logits, _ = d(real)
    (g,) = torch.autograd.grad(sum(lg.flatten(1).mean(1).sum() for lg in logits), real, create_graph=True)
    return g.pow(2).flatten(1).sum(1).mean()


class LatentDiscriminator(nn.Module):
    """Judges a generated chunk of latents against the camera that asked for it (world-adv, world/train/world_adv.py).

    Input per latent frame of the chunk: its latents, the start latent (the same scene), and its Plücker rays (where
    each cell looks from), all at the latent grid; 3-D convolutions over (frames, h, w). Fog (latents smoother than
    real ones) and content that does not follow the camera both look fake to it.

        d = LatentDiscriminator(latent_channels=16, plucker_channels=24)
        logits = d(x, z0, pl)   # x (B, C, k, h, w), z0 (B, C, 1, h, w), pl (B, P, k, h, w) -> (B, 1, k, h/4, w/4)
    """

    def __init__(self, latent_channels: int, plucker_channels: int, width: int = 64):
        super().__init__()
        w, c_in = width, 2 * latent_channels + plucker_channels
        self.blocks = nn.ModuleList([
            nn.Conv3d(c_in, w, 3, padding=1),
            nn.Conv3d(w, 2 * w, (3, 4, 4), stride=(1, 2, 2), padding=1),      # h/2
            nn.Conv3d(2 * w, 2 * w, (3, 4, 4), stride=(1, 2, 2), padding=1),  # h/4
            nn.Conv3d(2 * w, 2 * w, 3, padding=1),
        ])
        self.head = nn.Conv3d(2 * w, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, z0: torch.Tensor, pl: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, z0.expand(-1, -1, x.shape[2], -1, -1), pl], 1)
        for conv in self.blocks:
            h = F.leaky_relu(conv(h), 0.2)
        return self.head(h)


def latent_r1(d: LatentDiscriminator, x: torch.Tensor, z0: torch.Tensor, pl: torch.Tensor) -> torch.Tensor:
    """R1 on real chunks: the squared gradient norm of each sample's mean logit with respect to its latents."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x, z0, pl).flatten(1).mean(1).sum(), x, create_graph=True)
    return g.pow(2).flatten(1).sum(1).mean()
