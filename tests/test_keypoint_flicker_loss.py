"""KeypointFlickerLoss: error + flicker of landmark clips, by hand."""
import pytest
import torch

from mmpose.registry import MODELS

import mmstable  # noqa: F401


def clip():
    # target: landmarks (0, 0) and (100, 100) in both frames: S = 100 px
    target = torch.tensor([[[0., 0.], [100., 100.]]] * 2)[None]
    pred = target.clone()
    pred[0, 0, 0] += torch.tensor([1., 0.])  # e_0 = ((1, 0), (0, 0)) %
    pred[0, 1, 0] += torch.tensor([1., 0.])  # e_1 = ((1, 0), (0, 3)) %
    pred[0, 1, 1] += torch.tensor([0., 3.])
    return pred, target


def test_by_hand_from_config():
    loss = MODELS.build(dict(type='KeypointFlickerLoss', jitter_weight=0.5,
                             loss_weight=2.))
    pred, target = clip()
    # error mean (1 + 0 + 1 + 3) / 4 = 1.25; flicker |e_1 - e_0| = (0, 3):
    # mean 1.5; 2 * (1.25 + 0.5 * 1.5) = 4
    assert loss(pred, target).item() == pytest.approx(4.)


def test_rms_flicker_by_hand():
    loss = MODELS.build(dict(type='KeypointFlickerLoss', jitter_weight=0.5,
                             flicker='rms'))
    pred, target = clip()
    # error mean 1.25 as above; flicker changes (0, 3) %: sqrt((0 + 9) / 2)
    assert loss(pred, target).item() == pytest.approx(1.25 + 0.5 * 4.5**0.5)
    # finite gradient where nothing changes between frames
    still = target.clone().requires_grad_()
    loss(still, target).backward()
    assert torch.isfinite(still.grad).all()


def test_weight_zero_frames_never_count():
    loss = MODELS.build(dict(type='KeypointFlickerLoss', jitter_weight=1.))
    pred, target = clip()
    weights = torch.tensor([[[1., 1.], [0., 0.]]])  # frame 1 is padding
    # error (1 + 0) / 2; no pair of real frames: flicker 0
    assert loss(pred, target, weights).item() == pytest.approx(0.5)
    # and a scaled face gives the same % values
    assert loss(pred * 3, target * 3, weights).item() == pytest.approx(0.5)


def test_gradient_is_finite_at_zero_error():
    loss = MODELS.build(dict(type='KeypointFlickerLoss'))
    _, target = clip()
    pred = target.clone().requires_grad_()
    loss(pred, target).backward()
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize('kwargs', [dict(jitter_weight=-1.),
                                    dict(loss_weight=-0.5)])
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match='>= 0'):
        MODELS.build(dict(type='KeypointFlickerLoss', **kwargs))


def test_bad_flicker_form():
    with pytest.raises(ValueError, match="'mean' or 'rms'"):
        MODELS.build(dict(type='KeypointFlickerLoss', flicker='max'))


def test_bad_shapes():
    loss = MODELS.build(dict(type='KeypointFlickerLoss'))
    pred, target = clip()
    with pytest.raises(ValueError, match=r'\(B, T, K, 2\)'):
        loss(pred[0], target[0])
    with pytest.raises(ValueError, match='weights'):
        loss(pred, target, torch.ones(1, 2, 3))
