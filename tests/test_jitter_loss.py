"""JitterLoss (§3.2, eq. 2-8)."""
import pytest
import torch
from mmpose.models.losses import KeypointMSELoss
from mmpose.registry import MODELS

from mmstable.models.losses import JitterLoss


def one_hot_clip():
    """B=1, T=2, K=1, 5x5. Prediction: 1.0 at (x=2, y=2) in frame 0 and at
    (x=3, y=2) in frame 1, so PDC gives u_0 = (2, 2), u_1 = (3, 2). Target:
    0.5 at the same pixels, so |s - s_hat| = 0.5 there and 0 elsewhere."""
    s = torch.zeros(1, 2, 1, 5, 5)
    s_hat = torch.zeros(1, 2, 1, 5, 5)
    s[0, 0, 0, 2, 2] = 1.0
    s[0, 1, 0, 2, 3] = 1.0
    s_hat[0, 0, 0, 2, 2] = 0.5
    s_hat[0, 1, 0, 2, 3] = 0.5
    return s, s_hat, torch.ones(1, 2, 1)


def smooth_clip():
    """Multi-pixel predictions so that PDC (and Psi) depend on the values."""
    yy, xx = torch.meshgrid(
        torch.arange(9.), torch.arange(9.), indexing='ij')

    def blob(x, y):
        return torch.exp(-((xx - x)**2 + (yy - y)**2) / 2.)

    s = torch.stack([blob(4.0, 4.0), blob(4.6, 4.2)])[None, :, None]
    s_hat = torch.stack([blob(4.1, 4.0), blob(4.3, 4.0)])[None, :, None]
    u_hat = torch.tensor([[[[4.1, 4.0]], [[4.3, 4.0]]]])
    return s, s_hat, torch.ones(1, 2, 1), u_hat


def test_build_from_config():
    loss = MODELS.build(
        dict(
            type='JitterLoss',
            jitter_threshold=2.0,
            xi=0.25,
            lambda_pixel=0.5,
            pdc_threshold=0.1,
            psi_grad=False,
            loss_weight=3.0))
    assert isinstance(loss, JitterLoss)
    assert (loss.jitter_threshold, loss.xi, loss.lambda_pixel,
            loss.pdc_threshold, loss.psi_grad,
            loss.loss_weight) == (2.0, 0.25, 0.5, 0.1, False, 3.0)
    d = JitterLoss()
    assert (d.jitter_threshold, d.xi, d.lambda_pixel, d.pdc_threshold,
            d.psi_grad, d.use_target_weight) == (1.0, 0.5, 1.0, 0.2, True,
                                                 True)


def test_two_frames_by_hand():
    s, s_hat, w = one_hot_clip()
    # GT u_hat_0 = (2, 2), u_hat_1 = (4, 2): c = 2, e_0 = (0, 0),
    # e_1 = (3, 2) - (4, 2) = (-1, 0).
    # Psi_1 = min(|e_1 - e_0| / (|c| + xi), Theta) = min(1 / 2.5, 1) = 0.4
    # GM at the one differing pixel: 0.25 / (0.25 + 1) = 0.2 (Theta = 1).
    # frame 0: (lambda + 0) * 0.2 = 0.2; frame 1: (1 + 0.4) * 0.2 = 0.28
    # mean over B*T*K*H*W = 50 elements: 0.48 / 50 = 0.0096
    u_hat = torch.tensor([[[[2., 2.]], [[4., 2.]]]])
    loss = JitterLoss()(s, s_hat, w, u_hat)
    assert loss.item() == pytest.approx(0.0096, rel=1e-6)
    # loss_weight and lambda: lambda = 0.5 -> (0.1 + 0.18) / 50 * 2
    loss = JitterLoss(lambda_pixel=0.5, loss_weight=2.)(s, s_hat, w, u_hat)
    assert loss.item() == pytest.approx(0.28 / 50 * 2, rel=1e-6)


def test_psi_capped_at_theta():
    s, s_hat, w = one_hot_clip()
    # GT static at (2, 2): c = 0, e_1 = (1, 0): ratio 1 / (0 + 0.5) = 2,
    # capped at Theta = 1 -> frame 1: 2 * 0.2 = 0.4; total 0.6 / 50 = 0.012
    u_hat = torch.tensor([[[[2., 2.]], [[2., 2.]]]])
    loss = JitterLoss()(s, s_hat, w, u_hat)
    assert loss.item() == pytest.approx(0.012, rel=1e-6)
    # Theta = 3: ratio 2 stays (uncapped); GM = 0.25 / 9.25 per pixel
    # total = (1 + (1 + 2)) * 0.25 / 9.25 / 50
    loss = JitterLoss(jitter_threshold=3.)(s, s_hat, w, u_hat)
    assert loss.item() == pytest.approx(4 * 0.25 / 9.25 / 50, rel=1e-6)


def test_invisible_landmarks_contribute_nothing():
    s, s_hat, w = one_hot_clip()
    u_hat = torch.tensor([[[[2., 2.]], [[4., 2.]]]])
    # add a landmark 1 with garbage maps / GT and weight 0 in both frames
    s2 = torch.cat([s, torch.rand(1, 2, 1, 5, 5) * 5], dim=2)
    s_hat2 = torch.cat([s_hat, torch.rand(1, 2, 1, 5, 5)], dim=2)
    u_hat2 = torch.cat([u_hat, torch.full((1, 2, 1, 2), -100.)], dim=2)
    w2 = torch.tensor([[[1., 0.], [1., 0.]]])
    s2.requires_grad_(True)
    loss = JitterLoss()(s2, s_hat2, w2, u_hat2)
    # same sum as the 1-landmark case over twice the elements
    assert loss.item() == pytest.approx(0.48 / 100, rel=1e-6)
    loss.backward()
    assert (s2.grad[:, :, 1] == 0).all()

    # landmark invisible in frame 0 only: its u_hat_0 is not a position, so
    # Psi_1 = 0 and frame 1 gives lambda * GM = 0.2; frame 0 gives 0.
    w_prev = torch.tensor([[[0.], [1.]]])
    loss = JitterLoss()(s, s_hat, w_prev, u_hat)
    assert loss.item() == pytest.approx(0.2 / 50, rel=1e-6)
    # use_target_weight=False ignores the weights
    loss = JitterLoss(use_target_weight=False)(s, s_hat, w_prev, u_hat)
    assert loss.item() == pytest.approx(0.0096, rel=1e-6)


def test_finite_gradients_at_zero_norms():
    s, s_hat, w, _ = smooth_clip()
    # identical prediction in both frames and a static GT: e_t == e_{t-1}
    # and c == 0, both L2 norms are at the sqrt kink.
    s = s[:, :1].repeat(1, 2, 1, 1, 1).requires_grad_(True)
    u_hat = torch.tensor([[[[4.1, 4.0]], [[4.1, 4.0]]]])
    loss = JitterLoss()(s, s_hat, w, u_hat)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    assert s.grad.abs().sum() > 0

    # empty prediction maps (PDC argmax fallback) stay finite too
    empty = torch.zeros(1, 2, 1, 9, 9, requires_grad=True)
    JitterLoss()(empty, s_hat, w, u_hat).backward()
    assert torch.isfinite(empty.grad).all()


def test_single_frame_is_lambda_gm_and_mse_like():
    torch.manual_seed(0)
    pred = torch.rand(3, 4, 8, 8)
    gt = torch.rand(3, 4, 8, 8)
    w = torch.tensor([[1., 0., 1., 1.]] * 3)
    loss = JitterLoss(lambda_pixel=0.7, jitter_threshold=0.5)
    d2 = (pred - gt)**2
    expected = 0.7 * (w[..., None, None] * d2 / (d2 + 0.25)).mean()
    assert loss(pred, gt, w).item() == pytest.approx(expected.item())
    # 5-D with T = 1 needs no keypoints and gives the same value
    assert loss(pred[:, None], gt[:, None], w[:, None]).item() == \
        pytest.approx(expected.item())
    # |d| << Theta: GM ~ d^2 / Theta^2, so JitterLoss ~ KeypointMSELoss
    small = gt + 0.01 * torch.randn_like(gt)
    mse = KeypointMSELoss(use_target_weight=True)(small, gt, w)
    jit = JitterLoss()(small, gt, w)
    assert jit.item() == pytest.approx(mse.item(), rel=1e-3)


def sparse_clip():
    """B=1, T=2, K=1, 9x9, a few pixels so that PDC is computed by hand.
    Frame 0: 1.0 at (x=4, y=4) -> u_0 = (4, 4).
    Frame 1: 0.6 at (x=4, y=4), 0.4 at (x=5, y=4), 0.1 at (x=0, y=0) (below
    Theta_PDC = 0.2: no mass) -> u_1 = ((4*0.6 + 5*0.4) / 1.0, 4) = (4.4, 4).
    GT: u_hat_0 = (4, 4), u_hat_1 = (4.2, 4); target heatmaps: 0.5 at u_hat.
    e_0 = (0, 0), e_1 = (0.2, 0): Psi_1 = 0.2 / (0.2 + xi=0.5) = 2/7 < Theta
    (uncapped, so Psi carries a gradient when psi_grad=True); Psi_0 = 0."""
    s = torch.zeros(1, 2, 1, 9, 9)
    s[0, 0, 0, 4, 4] = 1.0
    s[0, 1, 0, 4, 4] = 0.6
    s[0, 1, 0, 4, 5] = 0.4
    s[0, 1, 0, 0, 0] = 0.1
    s_hat = torch.zeros(1, 2, 1, 9, 9)
    s_hat[0, 0, 0, 4, 4] = 0.5
    s_hat[0, 1, 0, 4, 4] = 0.5
    u_hat = torch.tensor([[[[4.0, 4.0]], [[4.2, 4.0]]]])
    return s, s_hat, torch.ones(1, 2, 1), u_hat


def test_psi_grad_switch():
    s, s_hat, w, u_hat = sparse_clip()
    grads = {}
    for psi_grad in (True, False):
        x = s.clone().requires_grad_(True)
        JitterLoss(psi_grad=psi_grad)(x, s_hat, w, u_hat).backward()
        grads[psi_grad] = x.grad
    assert not torch.allclose(grads[True], grads[False])
    # psi_grad=False: Psi is a constant weight, so the gradient is
    # (lambda + Psi) * dGM/ds / numel with dGM/ds = 2 d Theta^2 / (d^2+1)^2
    psi1 = 2 / 7  # sparse_clip's docstring
    d = s - s_hat
    dgm = 2 * d / (d**2 + 1)**2
    factor = torch.tensor([1., 1. + psi1]).view(1, 2, 1, 1, 1)
    torch.testing.assert_close(grads[False], factor * dgm / s.numel())
    # the loss itself: mean over 2*81 elements of (1 + Psi_t) GM(d), with
    # GM(d) = d^2 / (d^2 + 1) (Theta = 1). Frame 0: d = 0.5 at one pixel;
    # frame 1: d = 0.1, 0.4, 0.1 at three pixels.
    gm = [0.25 / 1.25, 0.01 / 1.01 + 0.16 / 1.16 + 0.01 / 1.01]
    expected = (gm[0] + (1 + psi1) * gm[1]) / 162
    loss = JitterLoss()(s, s_hat, w, u_hat)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # psi_grad=True adds GM_1 * dPsi_1/ds at the kept pixels of frame 1:
    # Psi_1 = |x_1 - 4.2| / 0.7 near x_1 = 4.4 (e_0 = 0), and
    # dx_1/ds_ij = (j - x_1) / mass, mass = 1.0; pixel (4, 4): -0.4,
    # pixel (4, 5): +0.6; below-threshold pixels get nothing.
    extra = grads[True] - grads[False]
    for (y, x), dx in (((4, 4), -0.4), ((4, 5), 0.6)):
        assert extra[0, 1, 0, y, x].item() == pytest.approx(
            gm[1] * dx / 0.7 / 162, rel=1e-4)
    assert extra[0, 1, 0, 0, 0].item() == 0
    assert (extra[0, 0] == 0).all()


@pytest.mark.parametrize('shapes,match', [
    (((1, 2, 1, 5, 5), (1, 2, 1, 5, 4), None, None), 'target heatmaps'),
    (((2, 5, 5), (2, 5, 5), None, None), r'\(N, K, H, W\), found \(2, 5, 5\)'),
    (((1, 2, 1, 5, 5), (1, 2, 1, 5, 5), (1, 2), (1, 2, 1, 2)),
     r'target_weights \(B, T, K\) = \(1, 2, 1\).*found \(1, 2\)'),
    (((1, 2, 1, 5, 5), (1, 2, 1, 5, 5), (1, 2, 1), (1, 2, 2)),
     r'target_keypoints \(B, T, K, 2\) = \(1, 2, 1, 2\).*found \(1, 2, 2\)'),
    (((1, 2, 1, 5, 5), (1, 2, 1, 5, 5), (1, 2, 1), None), 'required'),
    (((3, 1, 5, 5), (3, 1, 5, 5), (3, 1), (3, 2)),
     r'\(N, K, 2\) = \(3, 1, 2\).*found \(3, 2\)'),
])
def test_bad_shapes(shapes, match):
    out, tgt, w, kp = shapes
    args = [torch.zeros(out), torch.zeros(tgt)]
    args.append(None if w is None else torch.ones(w))
    args.append(None if kp is None else torch.zeros(kp))
    with pytest.raises(ValueError, match=match):
        JitterLoss()(*args)


@pytest.mark.parametrize('kwargs', [
    dict(jitter_threshold=0.), dict(xi=0.), dict(lambda_pixel=-1.),
    dict(pdc_threshold=-0.2), dict(pdc_threshold_mode='max')
])
def test_bad_args(kwargs):
    with pytest.raises(ValueError, match='JitterLoss'):
        JitterLoss(**kwargs)


def test_mean_over_real_frames_only():
    """Clip 0 has 2 real frames, clip 1 one real frame and one padded frame
    (mask 0, garbage values). K=1, 2x2 maps, target 1 at one pixel of each
    real frame, prediction 0: GM = 1 / (1 + 1) = 0.5 at one pixel of 4, Psi
    = 0 (both real frames of clip 0 equal), so the loss is 0.5 / 4 = 0.125
    averaged over the 3 real frames, whatever the padded frame holds (the
    mean over all 4 frames would be 0.09375)."""
    s = torch.zeros(2, 2, 1, 2, 2)
    s_hat = torch.zeros(2, 2, 1, 2, 2)
    s_hat[:, :, 0, 0, 0] = 1.
    s[1, 1] = 123.  # padding
    s_hat[1, 1] = -7.
    keypoints = torch.zeros(2, 2, 1, 2)
    mask = torch.tensor([[True, True], [True, False]])[..., None, None, None]
    loss = JitterLoss()(s, s_hat, torch.ones(2, 2, 1), keypoints, mask=mask)
    assert loss.item() == pytest.approx(0.125, abs=1e-6)
    # the same frames without the padded one: the same value
    single = JitterLoss()(s[1, :1], s_hat[1, :1], torch.ones(1, 1))
    assert single.item() == pytest.approx(0.125, abs=1e-6)
    # a pixel mask that keeps some pixel of every frame: still the plain mean
    # over all B*T*K*H*W elements, as KeypointMSELoss
    pixel = torch.ones(1, 1, 1, 2, 2)
    pixel[..., 1, 1] = 0.
    loss = JitterLoss()(s[:1], s_hat[:1], None, keypoints[:1], mask=pixel)
    assert loss.item() == pytest.approx(0.125, abs=1e-6)
