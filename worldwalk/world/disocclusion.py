"""Holes a walk opens behind an object, filled from behind it.

When the camera moves round an object, the memory's render shows a gap beside it: ground or sky that no frame has
seen, hidden until now by the object. The guess the model starts from filled every gap with a smooth extension of the
colours round it (pull-push), the object's as much as the background's, so the model read a blurred copy of the object
there, drew it, and the lift kept it: a ghost that stands apart from the object from the next viewpoint
(benchmarks/RESULTS.md "Where the orbit's ghosts come from").

What is behind an object is the background beside it, not the object. `fill_behind` finds, along each row, the runs
of unseen pixels of at most `max_gap` pixels with a seen pixel at both ends whose depths differ by more than a share
`tol` (a depth edge: an object's side on one end, what lies behind it on the other), and fills each such pixel with the
colour of the farther end. Gaps at the frame's edge (one end only) and between two ends at the same depth (a crack in
one surface) are left as they are. Only rows: a walk moves the camera sideways, not up or down, so the holes it opens
behind objects run along rows; down a column, an unseen run between the ground and the sky is ground the walk has not
seen yet, not sky (filled with the sky's colour, it paled the horizon of long walks: benchmarks/RESULTS.md "Objects
without ghosts").

    rgb, filled = fill_behind(rgb (N, 3, H, W), depth (N, H, W) metres (inf where unseen), seen (N, H, W) bool,
                              max_gap, tol) -> (N, 3, H, W) the colours with the holes filled, (N, H, W) bool
"""

from __future__ import annotations

from worldwalk.kernels.behind import fill_behind

__all__ = ["fill_behind"]
