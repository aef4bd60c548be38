"""A learnt, adaptive constant-velocity Kalman filter on landmarks, in image
space — the refiner's last step (:class:`~mmstable.models.heads.
ConvLSTMRefineHead` ``keypoint_filter``).

Why a keypoint stage after the heatmap recurrence: the ConvLSTM refines each
map at (reduced) heatmap resolution in the crop, and the current sharp map
keeps deciding the peak; a hand-tuned filter on the decoded landmarks, in
image space where the face (not the crop) moves, removes more flicker at
the same accuracy — but one fixed gain is either too slow for a fast head
or too fast for a still one. This filter has the filter's structure and
learns, per frame and landmark, how much to trust the motion model: its
process noise ``q`` (and a blend of the frozen model's own landmarks into
the measurement) come from a small MLP on what the track shows — the
innovation, the speed, their means over the face, and how far the refined
landmarks are from the raw ones. Trained with the rest of the refiner on
clips (:class:`~mmstable.models.losses.KeypointFlickerLoss`); with the
MLP's output layer at its initial zero weights it *is* a fixed
constant-velocity Kalman filter (:class:`~mmstable.evaluation.filters.
KalmanFilter` with ``process_noise = q_init`` in the units below).

Units: each frame's landmarks are measured in % of the face size
``s_t = sqrt(w_t · h_t) / 100`` (``w_t``, ``h_t``: extent of the measured
landmarks), so the noises do not depend on the image resolution; the
measurement noise is 1 (%²), the velocity is per frame.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from mmpose.registry import MODELS
from torch import Tensor, nn

__all__ = [
    'AdaptiveKalmanFilter', 'KalmanTrackState', 'fit_similarity',
    'similarity_inverse'
]

#: Inputs of the MLP per landmark (see :meth:`AdaptiveKalmanFilter.step`).
NUM_FEATURES = 8


@dataclass
class KalmanTrackState:
    """Filter state of N tracks, K landmarks.

    Attributes:
        position (Tensor): (N, K, 2) filtered landmarks of the last frame,
            image pixels.
        velocity (Tensor): (N, K, 2) pixels per frame.
        cov (Tensor): (N, K, 3) ``(P00, P01, P11)`` of the position /
            velocity covariance (shared by x and y), in face-size units.
        count (Tensor): (N,) frames seen (0: the next frame starts the
            track).
        innovation (Tensor): (N, K, 2) the last frame's innovation, image
            px (0 before two frames).
        offset (Tensor): (N, 2) the running mean of the crop centre's
            offset from the face's centre, image px
            (``AdaptiveKalmanFilter(crop_offset=True)``; 0 without).
    """
    position: Tensor
    velocity: Tensor
    cov: Tensor
    count: Tensor
    innovation: Tensor
    offset: Tensor

    @classmethod
    def zeros(cls, num: int, num_keypoints: int,
              like: Tensor) -> 'KalmanTrackState':
        zero = like.new_zeros(num, num_keypoints, 2)
        return cls(zero, zero, like.new_zeros(num, num_keypoints, 3),
                   torch.zeros(num, dtype=torch.long, device=like.device),
                   zero, like.new_zeros(num, 2))

    @classmethod
    def cat(cls, states: Sequence['KalmanTrackState']) -> 'KalmanTrackState':
        return cls(*(torch.cat([getattr(s, f) for s in states])
                     for f in _FIELDS))

    def select(self, index: int) -> 'KalmanTrackState':
        """Track ``index`` as a stored (detached) one-track state."""
        sl = slice(index, index + 1)
        return KalmanTrackState(*(getattr(self, f)[sl].detach()
                                  for f in _FIELDS))

    def fits(self, num_rows: int) -> bool:
        """Whether the state has ``num_rows`` rows
        (:meth:`AdaptiveKalmanFilter.num_rows`)."""
        return self.position.shape[1] == num_rows


_FIELDS = ('position', 'velocity', 'cov', 'count', 'innovation',
           'offset')


def face_units(keypoints: Tensor) -> Tensor:
    """``s = sqrt(w · h) / 100`` of (..., K, 2) landmarks (w, h their
    extent), shape (...): one unit = 1 % of the face size."""
    extent = keypoints.amax(-2) - keypoints.amin(-2)
    return (extent[..., 0] * extent[..., 1]).clamp_min(1e-6).sqrt() / 100.


def complex_mul(a: Tensor, x: Tensor) -> Tensor:
    """``a · x`` with points as complex numbers: a (N, 2), x (N, R, 2)."""
    ar, ai = a[:, None, 0], a[:, None, 1]
    return torch.stack([ar * x[..., 0] - ai * x[..., 1],
                        ar * x[..., 1] + ai * x[..., 0]], -1)


def fit_similarity(source: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
    """Least-squares similarity ``target ≈ a · source + b`` of (N, K, 2)
    point sets, points as complex numbers: ``a = Σ conj(s̃) t̃ / Σ |s̃|²``
    (s̃, t̃ centred), ``b = mean(t) − a · mean(s)``. Returns a (N, 2) and
    b (N, 2)."""
    sm, tm = source.mean(1), target.mean(1)
    sc, tc = source - sm[:, None], target - tm[:, None]
    den = sc.pow(2).sum((1, 2)).clamp_min(1e-12)
    a = torch.stack([
        (sc * tc).sum((1, 2)),
        (sc[..., 0] * tc[..., 1] - sc[..., 1] * tc[..., 0]).sum(1)
    ], -1) / den[:, None]
    return a, tm - complex_mul(a, sm[:, None])[:, 0]


def similarity_inverse(a: Tensor, b: Tensor, points: Tensor) -> Tensor:
    """``(points − b) / a`` of (N, R, 2) points, a and b (N, 2)."""
    conj = torch.stack([a[:, 0], -a[:, 1]], -1) / a.pow(2).sum(
        -1, keepdim=True).clamp_min(1e-12)
    return complex_mul(conj, points - b[:, None])


@MODELS.register_module()
class AdaptiveKalmanFilter(nn.Module):
    """Constant-velocity Kalman filter per landmark whose process noise and
    measurement blend are predicted per frame by a small MLP.

    Per landmark (x and y share the covariance), in face units (module
    docstring), frame t with measured (refined) landmarks ``z`` and the
    frozen model's raw ones ``a``:

    - predict: ``p⁻ = p + v``, ``P⁻ = F P Fᵀ`` (F = [[1, 1], [0, 1]]);
    - features: ``ν = z − p⁻`` (innovation), ``|ν| / sqrt(P⁻₀₀ + 1)``,
      its mean over the face, ``|v|``, its mean, ``|mean_k ν|`` (common
      motion) and ``|a − z|`` (refined vs raw), each as ``log(1 + ·)``,
      and the cosine between ``ν`` and the previous frame's innovation
      (noise flips its sign, unmodelled motion keeps it) and its mean;
    - ``(log q, logit w) = MLP(features)``;
    - ``P⁻ += q G Gᵀ`` (G = (1/2, 1)), measurement ``z + w (a − z)`` with
      noise 1: gain ``k = P⁻[:, 0] / (P⁻₀₀ + 1)``, ``p = p⁻ + k₀ ν'``,
      ``v = v + k₁ ν'``, ``P = P⁻ − k P⁻[0, :]`` (ν' the blended
      innovation).

    The first frame of a track sets ``p = z``, ``v = 0``, ``P = I``.

    With ``velocity_damping=True`` the MLP has a third output ``u`` and the
    velocity is kept with the retention ``ρ = 1 − sigmoid(u)`` ∈ [0, 1]
    per frame and landmark: F = [[1, 1], [0, ρ]], i.e. ``p⁻ = p + v``,
    ``v⁻ = ρ v``, ``P⁻₀₀ = P₀₀ + 2 P₀₁ + P₁₁``, ``P⁻₀₁ = ρ (P₀₁ + P₁₁)``,
    ``P⁻₁₁ = ρ² P₁₁``, then ``q G Gᵀ`` and the update with ``v⁻``. ρ = 1
    is the constant-velocity filter; ρ → 0 forgets the velocity, towards a
    constant-position filter (an EMA-like smoother that does not overshoot
    on a still face). The features do not depend on ρ (they use ``p + v``
    with the previous velocity), so one MLP call gives q, w and ρ.

    With ``frame='face'`` the filter follows the face, not single points:
    each frame's landmarks are fitted by a similarity ``z ≈ A · r + B``
    (points as complex numbers, :func:`fit_similarity`) to the track's
    predicted shape ``r⁻`` (its first frame, centred, at the start); the
    measurement is then the shape ``(z − B) / A`` in the track's face frame
    (K rows, face units of ``r⁻``) and the pose as two points ``B ± A ρ``
    (ρ the shape's RMS radius; 2 rows, face units of ``z``), the raw
    landmarks likewise; the same update runs on the K + 2 rows (the means
    over the face are per part, and the MLP has a 9th input, 1 on the pose
    rows); the output is ``Â · r̂ + B̂`` with ``Â = (P̂₊ − P̂₋) / 2ρ``,
    ``B̂ = (P̂₊ + P̂₋) / 2``. A head turning or moving is then a motion of
    the pose alone, estimated from all K landmarks at once, while the shape
    (expression) changes slowly and can be smoothed without lag. Its state
    has K + 2 rows (:meth:`num_rows`): the shape in the face frame's px,
    then the pose points in image px.

    With ``crop_offset=True`` the filter knows where each frame was cropped
    (the crop's centre ``c``, image px): a heatmap model's landmarks lean
    towards the centre of its crop (measured on the demo's real-textured
    training clips with jittered boxes: within a clip, the raw landmarks'
    vertical error follows the crop's offset from the face with slope
    0.33, R² 0.84). The measurement model: the landmarks' mean is ``(1 −
    g) m + g (c − ō)`` plus noise, ``m`` the face's centre, ``ō`` the
    running mean over the track of the offset ``c − m`` (px; the first
    frame's offset, then an EMA over ``crop_offset_window`` frames) and
    ``g`` learnt per axis (zero at init: the plain filter; |g| ≤ 0.9).
    The predicted measurement is ``p⁻ + g ⊙ (c − m⁻ − ō) / s`` (``m⁻``
    the predicted centre, ``s`` the face unit), and the innovation's
    common part (its mean over the landmarks) is divided by ``1 − g``:
    the update sees the measured centre without the lean, ``(mean z −
    g (c − ō)) / (1 − g)``, against the predicted one. Only the crop's
    movement relative to the face is corrected, never the track's mean
    offset (which depends on the box convention and the person, not on
    the jitter); a track's first frame is kept as measured. With
    ``frame='face'`` the correction applies to the pose rows (their mean
    is the face's centre).

    Args:
        q_init (float): the process noise at init (the MLP's output layer
            has zero weights and bias ``log q_init``).
        blend_init (float): the weight of the raw landmarks in the
            measurement at init, in [0, 1).
        hidden_channels (int): width of the MLP's hidden layer.
        velocity_damping (bool): learn the velocity's retention ρ per frame
            and landmark (above). ``False`` (default): the constant-velocity
            filter, with the two-output MLP of earlier checkpoints.
        retention_init (float): ρ at init, in (0, 1], with
            ``velocity_damping=True`` only. 1.0 (u's bias −30): exactly the
            constant-velocity filter at init, but then dρ/du ≈ 1e-13 and
            gradient training barely moves ρ; e.g. 0.95 starts near it with
            dρ/du ≈ 0.05.
        frame (str): ``'image'`` (default): a filter per landmark, the
            layout of earlier checkpoints; ``'face'``: pose and shape
            (above).
        crop_offset (bool): learn the landmarks' lean towards the crop's
            centre (above); :meth:`step` / :meth:`forward` then need the
            crops' centres. ``False`` (default): no such parameters, the
            layout of earlier checkpoints.
        crop_offset_window (int): frames of the running mean ``ō`` of the
            crop's offset, with ``crop_offset=True``.
    """

    def __init__(self,
                 q_init: float = 0.3,
                 blend_init: float = 0.02,
                 hidden_channels: int = 16,
                 velocity_damping: bool = False,
                 retention_init: float = 1.0,
                 frame: str = 'image',
                 crop_offset: bool = False,
                 crop_offset_window: int = 30):
        super().__init__()
        if not q_init > 0:
            raise ValueError('AdaptiveKalmanFilter: q_init must be > 0, got '
                             f'{q_init!r}')
        if not 0. <= blend_init < 1.:
            raise ValueError('AdaptiveKalmanFilter: blend_init must be in '
                             f'[0, 1), got {blend_init!r}')
        if not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValueError('AdaptiveKalmanFilter: hidden_channels must be '
                             f'an integer >= 1, got {hidden_channels!r}')
        if not isinstance(velocity_damping, bool):
            raise ValueError('AdaptiveKalmanFilter: velocity_damping must be '
                             f'True or False, got {velocity_damping!r} (the '
                             'keypoint_filter config)')
        if not (isinstance(retention_init, (int, float))
                and 0. < retention_init <= 1.):
            raise ValueError('AdaptiveKalmanFilter: retention_init must be '
                             f'in (0, 1], got {retention_init!r}')
        if retention_init != 1. and not velocity_damping:
            raise ValueError('AdaptiveKalmanFilter: retention_init='
                             f'{retention_init!r} needs velocity_damping='
                             'True (the keypoint_filter config)')
        if frame not in ('image', 'face'):
            raise ValueError("AdaptiveKalmanFilter: frame must be 'image' or "
                             f"'face', got {frame!r} (the keypoint_filter "
                             'config)')
        if not isinstance(crop_offset, bool):
            raise ValueError('AdaptiveKalmanFilter: crop_offset must be True '
                             f'or False, got {crop_offset!r} (the '
                             'keypoint_filter config)')
        self.velocity_damping = velocity_damping
        self.frame = frame
        if not (isinstance(crop_offset_window, int)
                and crop_offset_window >= 1):
            raise ValueError('AdaptiveKalmanFilter: crop_offset_window must '
                             f'be an integer >= 1, got {crop_offset_window!r}')
        self.crop_offset = crop_offset
        self.crop_offset_window = crop_offset_window
        if crop_offset:
            # g (x, y); 0: the plain filter
            self.crop_gain = nn.Parameter(torch.zeros(2))
        # frame='face': one more input, 1 on the two pose rows
        self.mlp = nn.Sequential(
            nn.Linear(NUM_FEATURES + (frame == 'face'), hidden_channels),
            nn.Tanh(),
            nn.Linear(hidden_channels, 3 if velocity_damping else 2))
        with torch.no_grad():
            self.mlp[2].weight.zero_()
            blend = (float(np.log(blend_init / (1. - blend_init)))
                     if blend_init > 0 else -30.)
            bias = [float(np.log(q_init)), blend]
            if velocity_damping:
                # ρ = 1 − sigmoid(u): sigmoid(−30) ≈ 9e-14 rounds ρ to
                # exactly 1.0 in float32 (the constant-velocity filter)
                bias.append(
                    float(np.log((1. - retention_init) / retention_init))
                    if retention_init < 1. else -30.)
            self.mlp[2].bias.copy_(torch.tensor(bias))

    def num_rows(self, num_keypoints: int) -> int:
        """Rows of the filter state for ``num_keypoints`` landmarks: K, or
        K + 2 with ``frame='face'`` (the shape, then the two pose
        points)."""
        return num_keypoints + 2 * (self.frame == 'face')

    def zero_state(self, num: int, num_keypoints: int,
                   like: Tensor) -> KalmanTrackState:
        """The state of ``num`` tracks that start at their next frame."""
        return KalmanTrackState.zeros(num, self.num_rows(num_keypoints),
                                      like)

    def step(self,
             measured: Tensor,
             reference: Tensor,
             state: KalmanTrackState,
             crop_centre: Optional[Tensor] = None
             ) -> Tuple[Tensor, KalmanTrackState]:
        """One frame of N tracks.

        Args:
            measured (Tensor): (N, K, 2) the refined landmarks, image px.
            reference (Tensor): (N, K, 2) the raw landmarks, image px.
            state (KalmanTrackState): before this frame
                (:meth:`zero_state` to start).
            crop_centre (Tensor, optional): (N, 2) the centre of the crop
                the landmarks were found in, image px; needed with
                ``crop_offset=True`` (ignored without).

        Returns:
            tuple: filtered landmarks (N, K, 2), image px, and the state.
        """
        if self.crop_offset:
            if crop_centre is None:
                raise ValueError(
                    'AdaptiveKalmanFilter(crop_offset=True) needs the crop '
                    'centres of the frames (crop_centre / crop_centres)')
            if not torch.jit.is_tracing() and \
                    crop_centre.shape != (measured.shape[0], 2):
                raise ValueError(
                    'AdaptiveKalmanFilter: crop_centre must be (N, 2) = '
                    f'{(measured.shape[0], 2)}, got '
                    f'{tuple(crop_centre.shape)}')
            crop_centre = crop_centre[:, None].to(measured)
        else:
            crop_centre = None
        if self.frame == 'face':
            return self._step_face(measured, reference, state, crop_centre)
        s = face_units(measured)[:, None, None]
        return self._update(measured, reference, s, state,
                            crop_centre=crop_centre)

    def _step_face(self, measured: Tensor, reference: Tensor,
                   state: KalmanTrackState,
                   crop_centre: Optional[Tensor] = None
                   ) -> Tuple[Tensor, KalmanTrackState]:
        """``frame='face'``: the landmarks as a similarity (the pose) of a
        shape in the track's own face frame, each filtered with its own
        rows (class docstring)."""
        k = measured.shape[1]
        first = (state.count == 0)[:, None, None]
        # the predicted shape; a new track's face frame is its first
        # frame, centred
        template = torch.where(
            first, measured - measured.mean(1, keepdim=True),
            state.position[:, :k] + state.velocity[:, :k])
        radius = (template - template.mean(1, keepdim=True)).pow(2).sum(
            -1).mean(1).clamp_min(1e-12).sqrt()  # (N,)
        axis = torch.stack([radius, torch.zeros_like(radius)], -1)[:, None]

        def rows(points: Tensor) -> Tensor:
            scale, shift = fit_similarity(template, points)
            shape = similarity_inverse(scale, shift, points)
            pose = shift[:, None] + complex_mul(
                scale, torch.cat([axis, -axis], 1))
            return torch.cat([shape, pose], 1)

        units = torch.cat([
            face_units(template)[:, None].expand(-1, k),
            face_units(measured)[:, None].expand(-1, 2)
        ], 1)[..., None]
        filtered, new = self._update(rows(measured), rows(reference), units,
                                     state, num_shape=k,
                                     crop_centre=crop_centre)
        pose = filtered[:, k:]
        scale = (pose[:, 0] - pose[:, 1]) / (2. * radius[:, None])
        out = complex_mul(scale, filtered[:, :k]) + pose.mean(1,
                                                               keepdim=True)
        return out, new

    def _update(self, measured: Tensor, reference: Tensor, s: Tensor,
                state: KalmanTrackState,
                num_shape: Optional[int] = None,
                crop_centre: Optional[Tensor] = None
                ) -> Tuple[Tensor, KalmanTrackState]:
        """The filter on (N, R, 2) rows in px, ``s`` (N, R, 1) their face
        units; ``num_shape``: the first rows are the shape, the rest the
        pose (``frame='face'``; the means over the face are per part);
        ``crop_centre`` (N, 1, 2) px: the crop-offset correction on the
        rows whose mean is the face's centre (all, or the pose rows).
        Returns the filtered rows, px, and the state."""
        z, a = measured / s, reference / s
        p, v = state.position / s, state.velocity / s
        p00, p01, p11 = state.cov.unbind(-1)
        # predict (F P Fᵀ); q is added once it is known
        pp = p + v
        p00, p01 = p00 + 2 * p01 + p11, p01 + p11
        lean = centre_rows = None
        if crop_centre is not None:
            centre_rows = (slice(None) if num_shape is None else slice(
                num_shape, None))
            # offsets in px (a difference of px, not of face units: no
            # cancellation when the face units are small), the lean in
            # face units (the centre rows share them)
            unit = s[:, centre_rows][:, :1]
            # the running mean of the offset; a track's first frame: its
            # own offset from the measured centre (no correction)
            mean_offset = torch.where(
                (state.count == 0)[:, None, None],
                crop_centre - measured[:, centre_rows].mean(1, keepdim=True),
                state.offset[:, None])
            predicted = (state.position + state.velocity)[:, centre_rows]
            # |g| < 1: the centre stays observable
            gain = self.crop_gain.clamp(-0.9, 0.9)
            def on_centre_rows(x: Tensor) -> Tensor:
                """(N, 1, 2) -> added to every row (image frame) or to
                the pose rows only (face frame)."""
                if num_shape is None:
                    return x
                return torch.cat([
                    torch.zeros_like(pp[:, :num_shape]),
                    x.expand(-1, pp.shape[1] - num_shape, -1)
                ], 1)

            lean = on_centre_rows(
                gain * (crop_centre - predicted.mean(1, keepdim=True) -
                        mean_offset) / unit)
            pp = pp + lean
        innov = z - pp
        if lean is not None:
            # the common motion is seen through (1 − g): mean z = (1 − g) m
            # + g (c − ō) + noise; the innovation of the centre rows' mean
            # is that of (mean z − g (c − ō)) / (1 − g), the measured centre
            # without the lean, against the predicted one
            innov = innov + on_centre_rows(
                innov[:, centre_rows].mean(1, keepdim=True) * (gain /
                                                              (1. - gain)))
        nin = innov.norm(dim=-1) / (p00 + 1.).sqrt()
        speed = v.norm(dim=-1)
        k = z.shape[1]
        parts = ([(slice(None), k)] if num_shape is None else
                 [(slice(0, num_shape), num_shape),
                  (slice(num_shape, None), k - num_shape)])

        def per_part(x: Tensor, fn) -> Tensor:
            """``fn`` of each part's rows of x (N, n[, 2]) -> (N, 1), spread
            over the part's rows. One part: exactly the ops of the
            per-landmark filter before ``frame='face'`` (the same float
            rounding, so its training is bit-identical)."""
            if num_shape is None:
                return fn(x).expand(-1, k)
            return torch.cat(
                [fn(x[:, part]).expand(-1, n) for part, n in parts], 1)

        def mean(x: Tensor) -> Tensor:
            return per_part(x, lambda y: y.mean(1, keepdim=True))

        feats = torch.stack([
            nin, mean(nin), speed, mean(speed),
            per_part(innov, lambda y: y.mean(1, keepdim=True).norm(dim=-1)),
            (a - z).norm(dim=-1)
        ], -1)
        # noise flips the innovation's sign from frame to frame, unmodelled
        # motion keeps it: the cosine of successive innovations
        prev = state.innovation / s
        cos = (innov * prev).sum(-1) / (innov.norm(dim=-1) *
                                        prev.norm(dim=-1) + 1e-6)
        feats = [torch.log1p(feats), torch.stack([cos, mean(cos)], -1)]
        if num_shape is not None:
            pose_row = torch.zeros_like(cos)
            pose_row[:, num_shape:] = 1.
            feats.append(pose_row[..., None])
        out = self.mlp(torch.cat(feats, -1))
        q = out[..., 0].exp()
        blend = torch.sigmoid(out[..., 1])
        if self.velocity_damping:
            # F = [[1, 1], [0, ρ]]: p⁻ = p + v used the old v above
            rho = 1. - torch.sigmoid(out[..., 2])
            v = rho[..., None] * v
            p01, p11 = rho * p01, rho * rho * p11
        innov = innov + blend[..., None] * (a - z)
        p00, p01, p11 = p00 + q / 4., p01 + q / 2., p11 + q
        k0, k1 = p00 / (p00 + 1.), p01 / (p00 + 1.)
        p = pp + k0[..., None] * innov
        if lean is not None:
            # the state is the face's landmarks, without the lean
            p = p - lean
        v = v + k1[..., None] * innov
        cov = torch.stack([p00 - k0 * p00, p01 - k0 * p01, p11 - k1 * p01],
                          -1)
        # a track's first frame: p = z, v = 0, P = I
        first = (state.count == 0)[:, None, None]
        p = torch.where(first, z, p)
        v = torch.where(first, torch.zeros_like(v), v)
        cov = torch.where(first, cov.new_tensor([1., 0., 1.]), cov)
        offset = state.offset
        if lean is not None:
            # ō += α (o − ō), o from the new face centre, α = 1 / (frames
            # seen) up to 1 / window
            rate = 1. / (state.count + 1).clamp_max(
                self.crop_offset_window).to(p)[:, None, None]
            offset = (mean_offset + rate * (
                crop_centre - (p * s)[:, centre_rows].mean(1, keepdim=True) -
                mean_offset))[:, 0]
        new = KalmanTrackState(p * s, v * s, cov, state.count + 1,
                               torch.where(first, torch.zeros_like(innov),
                                           innov) * s, offset)
        return new.position, new

    def forward(self,
                measured: Tensor,
                reference: Optional[Tensor] = None,
                state: Optional[KalmanTrackState] = None,
                lengths: Optional[Sequence[int]] = None,
                crop_centres: Optional[Tensor] = None
                ) -> Tuple[Tensor, KalmanTrackState]:
        """Filter B clips of T frames.

        Args:
            measured (Tensor): (B, T, K, 2) the refined landmarks, image px.
            reference (Tensor, optional): (B, T, K, 2) the raw landmarks;
                ``None``: ``measured`` (no blend).
            state (KalmanTrackState, optional): before the first frame;
                ``None`` starts every track.
            lengths (Sequence[int], optional): true length of each clip
                when padded at the end; the state is that after each clip's
                last real frame. ``None``: all T.
            crop_centres (Tensor, optional): (B, T, 2) each frame's crop
                centre, image px; needed with ``crop_offset=True``.

        Returns:
            tuple: filtered landmarks (B, T, K, 2) and the state.
        """
        if measured.ndim != 4 or measured.shape[-1] != 2:
            raise ValueError('AdaptiveKalmanFilter: measured landmarks must '
                             'be (B, T, K, 2), got '
                             f'{tuple(measured.shape)}')
        if reference is None:
            reference = measured
        if reference.shape != measured.shape:
            raise ValueError('AdaptiveKalmanFilter: reference landmarks '
                             f'{tuple(reference.shape)} must match measured '
                             f'{tuple(measured.shape)}')
        b, t, k = measured.shape[:3]
        if crop_centres is not None and crop_centres.shape != (b, t, 2):
            raise ValueError('AdaptiveKalmanFilter: crop centres must be '
                             f'(B, T, 2) = {(b, t, 2)}, got '
                             f'{tuple(crop_centres.shape)}')
        if state is None:
            state = self.zero_state(b, k, measured)
        if lengths is None:
            lengths = [t] * b
        lengths = torch.as_tensor(list(lengths), device=measured.device)
        outputs = []
        for i in range(t):
            out, new = self.step(
                measured[:, i], reference[:, i], state,
                None if crop_centres is None else crop_centres[:, i])
            # padded frames (i >= length) leave the state unchanged
            real = (i < lengths)
            state = KalmanTrackState(*(torch.where(
                real.view(-1, *([1] * (getattr(new, f).ndim - 1))),
                getattr(new, f), getattr(state, f))
                for f in _FIELDS))
            outputs.append(out)
        return torch.stack(outputs, 1), state

    def extra_repr(self) -> str:
        q, w = self.mlp[2].bias.tolist()[:2]
        text = (f'q_init={np.exp(q):.3g}, '
                f'blend_init={1 / (1 + np.exp(-w)):.3g}')
        if self.frame == 'face':
            text += ", frame='face'"
        if self.velocity_damping:
            u = self.mlp[2].bias[2].item()
            text += (', velocity_damping=True, '
                     f'retention_init={1 - 1 / (1 + np.exp(-u)):.3g}')
        if self.crop_offset:
            text += ', crop_offset=True'
        return text

