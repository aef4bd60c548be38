"""The refiner's recurrent state of a track, and how it follows the face.

The state ``(h, c)`` of :class:`~mmstable.models.ConvLSTMRefineHead` lives
in the heatmap pixels of the frame it was computed in (docs/conventions.md
§2, possibly at a reduced resolution, ``stride``). Before the cell steps at
frame t, the state is warped into frame t's heatmap pixels by::

    W_t = A_t · S_t · A_{t-1}^{-1}          (3×3, homogeneous)

``A`` = image → heatmap-pixel affine of each frame's crop
(:func:`mmstable.structures.crop.heatmap_affine`), ``S_t`` = the face's own
motion in image space: a weighted least-squares similarity (Umeyama,
weights = the frozen model's scores) from the previous frame's raw
keypoints to the current frame's, both in image space. So the state follows
the face, not the crop: a crop that jitters moves the state with it, and a
face that moves drags its memory along instead of leaving a trail.

:class:`TrackState` is the one owner of that state (STYLE.md: "one owner for
recurrent state"): the head uses it in training (B clips in parallel) and
in test / streaming mode (one per ``video_id``).
"""
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

MOTION_MODES = ('similarity', 'translation', 'none', 'predicted')
_FIELDS = ('h', 'c', 'affine', 'keypoints', 'scores', 'refined',
           'refined_scores', 'refined_count', 'memory', 'memory_count',
           'refined_velocity', 'velocity_stats')


def fit_similarity(src: Tensor,
                   dst: Tensor,
                   weights: Optional[Tensor] = None,
                   eps: float = 1e-8,
                   max_scale_change: Optional[float] = None) -> Tensor:
    """Weighted least-squares similarity (rotation, uniform scale,
    translation; no reflection) taking ``src`` to ``dst`` — Umeyama's
    closed form, which in 2-D needs no SVD.

    Args:
        src, dst (Tensor): points, (N, K, 2).
        weights (Tensor, optional): (N, K), >= 0 (negatives count as 0);
            ``None`` = uniform. A row whose weights sum to 0 gets uniform
            weights; a row whose ``src`` points coincide gets a
            translation.
        max_scale_change (float, optional): clamp the fitted scale to
            [1/m, m] (a face does not halve its size between frames; guards
            against garbage keypoints).

    Returns:
        Tensor: (N, 3, 3) homogeneous matrices ``M`` with
        ``dst ≈ M · [src, 1]``.
    """
    w = _normalised_weights(src, weights, eps)
    mu_s = (w[..., None] * src).sum(1)
    mu_d = (w[..., None] * dst).sum(1)
    xs, xd = src - mu_s[:, None], dst - mu_d[:, None]
    var = (w * (xs**2).sum(-1)).sum(1)
    a = (w * (xs * xd).sum(-1)).sum(1)
    b = (w * (xs[..., 0] * xd[..., 1] - xs[..., 1] * xd[..., 0])).sum(1)
    # coinciding src points, or no correlation at all (scale 0): translation
    ok = (var > eps) & (a.abs() + b.abs() > eps * var)
    var = torch.where(ok, var, torch.ones_like(var))
    a = torch.where(ok, a / var, torch.ones_like(a))
    b = torch.where(ok, b / var, torch.zeros_like(b))
    if max_scale_change is not None:
        scale = torch.hypot(a, b)
        factor = scale.clamp(1 / max_scale_change, max_scale_change) / scale
        a, b = a * factor, b * factor
    mat = src.new_zeros(src.shape[0], 3, 3)
    mat[:, 0, 0], mat[:, 0, 1] = a, -b
    mat[:, 1, 0], mat[:, 1, 1] = b, a
    mat[:, :2, 2] = mu_d - torch.einsum('nij,nj->ni', mat[:, :2, :2], mu_s)
    mat[:, 2, 2] = 1.
    return mat


def fit_translation(src: Tensor,
                    dst: Tensor,
                    weights: Optional[Tensor] = None,
                    eps: float = 1e-8) -> Tensor:
    """Weighted mean displacement as a (N, 3, 3) translation matrix."""
    w = _normalised_weights(src, weights, eps)
    mat = torch.eye(3, dtype=src.dtype, device=src.device).repeat(
        src.shape[0], 1, 1)
    mat[:, :2, 2] = (w[..., None] * (dst - src)).sum(1)
    return mat


def _normalised_weights(src: Tensor, weights: Optional[Tensor],
                        eps: float) -> Tensor:
    if weights is None:
        weights = src.new_ones(src.shape[:2])
    w = weights.clamp(min=0)
    total = w.sum(1, keepdim=True)
    w = torch.where(total > eps, w, torch.ones_like(w))
    return w / w.sum(1, keepdim=True)


def apply_affine(mat: Tensor, points: Tensor) -> Tensor:
    """``mat`` (N, 3, 3) applied to ``points`` (N, K, 2)."""
    return points @ mat[:, :2, :2].transpose(1, 2) + mat[:, None, :2, 2]


def warp_maps(maps: Tensor, matrix: Tensor, stride: int = 1) -> Tensor:
    """Resample maps so that what was at pixel p is at ``matrix · p``.

    Args:
        maps (Tensor): (N, C, h, w) in the source frame's heatmap pixels,
            at resolution ``stride`` (pixel i of a map pooled by ``stride``
            covers heatmap pixels ``s·i … s·i + s−1``, its centre is
            ``s·i + (s−1)/2``); pixel centres at integer coordinates
            (docs/conventions.md §2), hence ``align_corners=True``.
        matrix (Tensor): (N, 3, 3) source → target heatmap pixels.
        stride (int): resolution of ``maps`` relative to the heatmap.

    Returns:
        Tensor: (N, C, h, w) in the target frame's pixels; what comes from
        outside the source map is 0 (the initial state).
    """
    n, _, h, w = maps.shape
    mat = matrix.to(maps.dtype)
    if stride != 1:
        up = maps.new_tensor([[stride, 0., (stride - 1) / 2],
                              [0., stride, (stride - 1) / 2], [0., 0., 1.]])
        mat = torch.linalg.inv(up) @ mat @ up
    norm = maps.new_tensor([[2. / max(w - 1, 1), 0., -1.],
                            [0., 2. / max(h - 1, 1), -1.], [0., 0., 1.]])
    # affine_grid maps each *output* location to where it samples the input
    theta = norm @ torch.linalg.inv(mat) @ torch.linalg.inv(norm)
    grid = F.affine_grid(theta[:, :2], list(maps.shape), align_corners=True)
    return F.grid_sample(
        maps, grid, mode='bilinear', padding_mode='zeros',
        align_corners=True)


def shift_maps(maps: Tensor, shift: Tensor) -> Tensor:
    """Move each group of maps by its own sub-pixel shift: what was at pixel
    p is at ``p + shift`` (bilinear, 0 from outside the map), the same as
    :func:`warp_maps` with that translation for shifts of at most one pixel
    per axis, computed per axis as ``(1 − |s|) · m(p) + s⁺ · m(p − 1) + s⁻
    · m(p + 1)`` (the bilinear weights are separable): no sampling grid
    (one grid per landmark cost ONNX Runtime 5× the state warp).

    Args:
        maps (Tensor): (N, G, C, h, w), G groups of C channels.
        shift (Tensor): (N, G, 2) pixels (x, y), |shift| ≤ 1 per axis
            (larger shifts are clamped to ±1).

    Returns:
        Tensor: (N, G, C, h, w).
    """
    shift = shift.clamp(-1., 1.)[..., None, None, None, :]
    out = maps
    for axis, pad in ((0, (1, 1)), (1, (0, 0, 1, 1))):  # x (w), then y (h)
        s = shift[..., axis]
        dim = out.ndim - 1 - axis
        size = out.shape[dim]
        padded = F.pad(out, pad)  # one zero pixel on both sides
        before = padded.narrow(dim, 0, size)  # m(p - 1)
        after = padded.narrow(dim, 2, size)  # m(p + 1)
        out = (1. - s.abs()) * out + s.clamp(min=0.) * before + \
            (-s).clamp(min=0.) * after
    return out


def motion_matrix(prev_affine: Tensor,
                  prev_keypoints: Tensor,
                  prev_scores: Tensor,
                  affine: Tensor,
                  keypoints: Tensor,
                  scores: Tensor,
                  mode: str = 'similarity') -> Tensor:
    """``W_t = A_t · S_t · A_{t-1}^{-1}``: previous → current heatmap pixels.

    Args:
        prev_affine, affine (Tensor): (N, 3, 3) image → heatmap pixels of
            the previous / current frame.
        prev_keypoints, keypoints (Tensor): (N, K, 2) raw keypoints in image
            space of the previous / current frame.
        prev_scores, scores (Tensor): (N, K) their scores; the fit weights
            are their product.
        mode (str): ``S_t``: ``'similarity'``, ``'translation'`` or
            ``'none'`` (identity: only the crops' difference is undone).
    """
    if mode == 'predicted':
        raise ValueError("motion_matrix: mode 'predicted' needs the refined "
                         'history; use predicted_motion (TrackState.'
                         'carried_to does)')
    if mode == 'none':
        motion = torch.eye(3, dtype=affine.dtype, device=affine.device)
    else:
        weights = prev_scores.clamp(min=0) * scores.clamp(min=0)
        args = (prev_keypoints.to(affine.dtype), keypoints.to(affine.dtype),
                weights.to(affine.dtype))
        motion = fit_similarity(
            *args, max_scale_change=2.) if mode == 'similarity' else \
            fit_translation(*args)
    return affine @ motion @ torch.linalg.inv(prev_affine)


def predicted_motion(refined: Tensor,
                     refined_scores: Tensor,
                     refined_count: Tensor,
                     damping: float = 0.) -> Tensor:
    """Constant-velocity prediction of the face motion from frame t-1 to t,
    from the *refined* (output) keypoints of frames t-2 and t-1: the
    similarity fitted from refined_{t-2} to refined_{t-1} (Umeyama, weights =
    score products, scale change clamped to [1/2, 2]), shrunk towards the
    identity by ``damping`` (0: full prediction, 1: identity). Tracks with
    fewer than 2 refined frames get the identity.

    Args:
        refined (Tensor): (N, 2, K, 2) refined keypoints of frames t-2, t-1
            in image space.
        refined_scores (Tensor): (N, 2, K) their scores.
        refined_count (Tensor): (N,) how many of the two are real (0..2).
        damping (float): in [0, 1].

    Returns:
        Tensor: (N, 3, 3) image-space motion ``S_t``.
    """
    weights = refined_scores[:, 0].clamp(min=0) * refined_scores[:, 1].clamp(
        min=0)
    motion = fit_similarity(refined[:, 0], refined[:, 1], weights,
                            max_scale_change=2.)
    eye = torch.eye(3, dtype=motion.dtype, device=motion.device)
    if damping:
        motion = (1. - damping) * motion + damping * eye
    known = (refined_count >= 2)[:, None, None]
    return torch.where(known, motion, eye)


def nonrigid_velocity(refined: Tensor, refined_scores: Tensor,
                      refined_count: Tensor) -> Tensor:
    """Each landmark's motion beyond the face's similarity between the two
    refined frames of a track: ``refined_{t-1} − S(refined_{t-2})``, ``S``
    the similarity fitted from frame t-2 to t-1 (as :func:`predicted_motion`,
    undamped). Zeros for tracks with fewer than 2 refined frames.

    Args:
        refined (Tensor): (N, 2, K, 2) refined keypoints of frames t-2, t-1
            in image space.
        refined_scores (Tensor): (N, 2, K) their scores.
        refined_count (Tensor): (N,) how many of the two are real (0..2).

    Returns:
        Tensor: (N, K, 2) image-space displacement per frame.
    """
    weights = refined_scores[:, 0].clamp(min=0) * refined_scores[:, 1].clamp(
        min=0)
    motion = fit_similarity(refined[:, 0], refined[:, 1], weights,
                            max_scale_change=2.)
    residual = refined[:, 1] - apply_affine(motion, refined[:, 0])
    known = (refined_count >= 2)[:, None, None]
    return torch.where(known, residual, torch.zeros_like(residual))


@dataclass
class TrackState:
    """Recurrent state of N tracks (N = 1 for one stored track, B inside a
    batched step) and the frame it lives in.

    Attributes:
        h, c (Tensor): cell state, (N, C, h, w), in the heatmap pixels of
            the frame below (at the head's state resolution).
        affine (Tensor): (N, 3, 3) image → heatmap pixels of that frame.
        keypoints (Tensor): (N, K, 2) the frozen model's raw keypoints of
            that frame, image space.
        scores (Tensor): (N, K) their scores.
        refined (Tensor, optional): (N, 2, K, 2) the refiner's output
            keypoints (image space) of the two frames before the next one
            (``motion_compensation='predicted'``; zeros otherwise).
        refined_scores (Tensor, optional): (N, 2, K) their scores.
        refined_count (Tensor, optional): (N,) how many of the two exist.
        memory (Tensor, optional): (N, K, H, W) the refiner's previous
            output heatmaps at full resolution, in the frame below
            (``memory='gated'``; (N, 0, 1, 1) otherwise). Warped with
            ``h, c`` by :meth:`carried_to`.
        memory_count (Tensor, optional): (N,) 1 once ``memory`` holds a real
            frame, else 0 (frame 0 of a track: no memory).
        refined_velocity (Tensor, optional): (N, K, 2) a running mean of
            each landmark's refined motion beyond the similarity
            (:func:`nonrigid_velocity`, image px per frame; kept by
            :meth:`with_refined` with ``smoothing``), what
            :meth:`carried_to` moves the state by with ``nonrigid``.
        velocity_stats (Tensor, optional): (N, K, 3) running means (decay
            ``consistency`` of :meth:`with_refined`) of that motion (x, y)
            and of its length: their ratio ``|mean v| / mean |v|`` ∈ [0, 1]
            is how consistent each landmark's motion has been (1: steady
            motion, or no running mean; near 0: noise that flips
            direction), the factor :meth:`carried_to` scales the motion by.
        video_id: the track (stored tracks only).
        frame_id (int, optional): that frame's ``frame_id`` (stored tracks).
    """
    h: Tensor
    c: Tensor
    affine: Tensor
    keypoints: Tensor
    scores: Tensor
    refined: Optional[Tensor] = None
    refined_scores: Optional[Tensor] = None
    refined_count: Optional[Tensor] = None
    memory: Optional[Tensor] = None
    memory_count: Optional[Tensor] = None
    refined_velocity: Optional[Tensor] = None
    velocity_stats: Optional[Tensor] = None
    video_id: object = None
    frame_id: Optional[int] = None

    def __post_init__(self):
        n, k = self.keypoints.shape[:2]
        if self.refined is None:
            self.refined = self.keypoints.new_zeros(n, 2, k, 2)
        if self.refined_scores is None:
            self.refined_scores = self.keypoints.new_zeros(n, 2, k)
        if self.refined_count is None:
            self.refined_count = torch.zeros(
                n, dtype=torch.long, device=self.keypoints.device)
        if self.memory is None:
            self.memory = self.keypoints.new_zeros(n, 0, 1, 1)
        if self.memory_count is None:
            self.memory_count = torch.zeros(
                n, dtype=torch.long, device=self.keypoints.device)
        if self.refined_velocity is None:
            self.refined_velocity = self.keypoints.new_zeros(n, k, 2)
        if self.velocity_stats is None:
            self.velocity_stats = self.keypoints.new_zeros(n, k, 3)

    def with_memory(self, heatmaps: Tensor) -> 'TrackState':
        """The state after its frame's output heatmaps (N, K, H, W) (full
        resolution, this frame's pixels) became the memory."""
        return replace(self, memory=heatmaps,
                       memory_count=torch.ones_like(self.memory_count))

    def with_refined(self, keypoints: Tensor, scores: Tensor,
                     smoothing: float = 0.,
                     consistency: float = 0.) -> 'TrackState':
        """The state after its frame's output: refined keypoints (N, K, 2)
        in image space and scores (N, K) become the newest of the two,
        ``refined_velocity`` ← ``smoothing`` · itself + (1 − ``smoothing``)
        · v, v = :func:`nonrigid_velocity` of the new pair (0 while a track
        has fewer than two frames), and ``velocity_stats`` ←
        ``consistency`` · itself + (1 − ``consistency``) · (v, |v|)."""
        state = replace(
            self,
            refined=torch.stack([self.refined[:, 1], keypoints.to(
                self.refined)], 1),
            refined_scores=torch.stack(
                [self.refined_scores[:, 1],
                 scores.to(self.refined_scores)], 1),
            refined_count=(self.refined_count + 1).clamp(max=2))
        velocity = nonrigid_velocity(state.refined, state.refined_scores,
                                     state.refined_count)
        state.refined_velocity = smoothing * self.refined_velocity.to(
            velocity) + (1. - smoothing) * velocity
        stats = torch.cat([velocity, velocity.norm(dim=-1, keepdim=True)],
                          -1)
        state.velocity_stats = consistency * self.velocity_stats.to(
            stats) + (1. - consistency) * stats
        return state

    def velocity_consistency(self) -> Tensor:
        """(N, K) ``|mean v| / mean |v|`` of ``velocity_stats`` (0 where
        no motion was seen)."""
        norm = self.velocity_stats[..., 2]
        mean = self.velocity_stats[..., :2].norm(dim=-1)
        return torch.where(norm > 0, mean / norm.clamp(min=1e-12),
                           torch.zeros_like(norm))

    @classmethod
    def zeros(cls, num: int, channels: int, size: Sequence[int],
              num_keypoints: int, like: Tensor,
              memory_shape: Optional[Sequence[int]] = None) -> 'TrackState':
        """The initial state of ``num`` tracks (h = c = 0, so any warp of it
        is the initial state again; identity affine, keypoints at 0; an
        empty output memory of ``memory_shape`` (K, H, W), or none)."""
        zero = like.new_zeros(num, channels, *size)
        memory = None if memory_shape is None else like.new_zeros(
            num, *memory_shape)
        return cls(
            h=zero, c=zero,
            affine=torch.eye(3, dtype=like.dtype,
                             device=like.device).repeat(num, 1, 1),
            keypoints=like.new_zeros(num, num_keypoints, 2),
            scores=like.new_zeros(num, num_keypoints), memory=memory)

    @classmethod
    def cat(cls, states: Sequence['TrackState']) -> 'TrackState':
        return cls(*(torch.cat([getattr(s, f) for s in states])
                     for f in _FIELDS))

    def rows(self, index: int) -> 'TrackState':
        """Track ``index`` (gradients kept)."""
        return TrackState(*(getattr(self, f)[index:index + 1]
                            for f in _FIELDS))

    def select(self, index: int, video_id=None,
               frame_id: Optional[int] = None) -> 'TrackState':
        """Track ``index`` as a stored (detached) one-track state."""
        sl = slice(index, index + 1)
        return TrackState(self.h[sl].detach(), self.c[sl].detach(),
                          self.affine[sl], self.keypoints[sl],
                          self.scores[sl], self.refined[sl],
                          self.refined_scores[sl], self.refined_count[sl],
                          self.memory[sl].detach(), self.memory_count[sl],
                          self.refined_velocity[sl], self.velocity_stats[sl],
                          video_id, frame_id)

    def fits(self, other: 'TrackState') -> bool:
        """Same state and keypoint shapes (per track) as ``other``."""
        return (self.h.shape[1:] == other.h.shape[1:]
                and self.keypoints.shape[1:] == other.keypoints.shape[1:]
                and self.memory.shape[1:] == other.memory.shape[1:])

    def carried_to(self,
                   affine: Tensor,
                   keypoints: Tensor,
                   scores: Tensor,
                   motion: str = 'similarity',
                   stride: int = 1,
                   damping: float = 0.,
                   nonrigid: Union[float, Tensor] = 0.) -> 'TrackState':
        """The state warped into a new frame (see the module docstring),
        which it then lives in. Args as :func:`motion_matrix`; ``motion=
        'predicted'`` uses :func:`predicted_motion` of the refined history
        (``damping`` as there) instead of the raw keypoints.

        ``nonrigid`` > 0: after that warp, each landmark's channels (``h`` /
        ``c`` hold K equal groups, ``memory`` K maps) are also moved
        (:func:`shift_maps`) by ``nonrigid`` × its own refined motion beyond
        the face's similarity (``refined_velocity``, a constant-velocity
        prediction of a turning head's parallax or of expression) times how
        consistent it has been (:meth:`velocity_consistency`), at most one
        heatmap pixel: the memory of a landmark that moves on the face is
        where the landmark is expected, not where it was. Smooth refined
        history on a still face predicts ~0. A (K,) tensor gives each
        landmark its own ``nonrigid``."""
        if motion == 'predicted':
            face = predicted_motion(self.refined, self.refined_scores,
                                    self.refined_count, damping)
            matrix = affine @ face.to(affine) @ torch.linalg.inv(self.affine)
        else:
            matrix = motion_matrix(self.affine, self.keypoints, self.scores,
                                   affine, keypoints, scores, motion)
        hc = warp_maps(torch.cat([self.h, self.c], 1), matrix, stride)
        h, c = hc.split(self.h.shape[1], 1)
        memory = self.memory
        if memory.shape[1]:
            # full-resolution output memory: same W_t, stride 1
            memory = warp_maps(memory, matrix, 1)
        if isinstance(nonrigid, Tensor) or nonrigid:
            k = keypoints.shape[1]
            if self.h.shape[1] % k:
                raise ValueError(
                    'TrackState.carried_to: nonrigid needs K equal channel '
                    f'groups; {self.h.shape[1]} channels, K = {k}')
            gain = torch.as_tensor(nonrigid).to(affine)
            if gain.ndim == 1:  # one gain per landmark
                gain = gain[:, None]
            shift = gain * (self.velocity_consistency()[..., None] *
                            self.refined_velocity).to(affine)
            # image-space displacement -> this frame's heatmap pixels, at
            # most one pixel
            shift = shift @ affine[:, :2, :2].transpose(1, 2)
            shift = shift / shift.norm(dim=-1, keepdim=True).clamp(min=1.)
            hid = self.h.shape[1] // k
            size = self.h.shape[-2:]
            # batch dimensions as -1: an exported step's shapes do not
            # depend on the number of tracks
            grouped = shift_maps(torch.cat([
                h.view(-1, k, hid, *size), c.view(-1, k, hid, *size)
            ], 2), shift / stride)
            h = grouped[:, :, :hid].reshape(-1, k * hid, *size)
            c = grouped[:, :, hid:].reshape(-1, k * hid, *size)
            if memory.shape[1]:
                memory = shift_maps(memory[:, :, None], shift)[:, :, 0]
        return replace(self, h=h, c=c, affine=affine, keypoints=keypoints,
                       scores=scores, memory=memory)
