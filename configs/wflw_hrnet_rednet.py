# MMPose's WFLW HRNetV2-W18, frozen, + seed 003's REDnet refiner (DecoupledRecurrentRefineHead, issue 14) in place of
# the ConvLSTM of configs/wflw_hrnet_jitter.py: same checkpoint, pipelines, schedule, Jitter loss and metrics.
# The frozen neck's 270×64×64 features are split into variant / invariant parts; a ConvLSTM steps the variant part
# (state per track, warped like the ConvLSTM head's); the recombined features go through the frozen base head
# n_iters times (spatial feedback). WFLW has no identity labels: identity loss off, the invariance term on
# (a pseudo-clip of one image is one face).
_base_ = './wflw_hrnet_jitter.py'

model = dict(
    head=dict(_delete_=True, type='DecoupledRecurrentRefineHead', base_head={{_base_.model.head.base_head}},
              variant_channels=16, invariant_channels=16, hidden_channels=16, n_iters=2, temporal=True,
              num_identities=None, identity_loss_weight=0., invariance_loss_weight=1.0,
              decoder={{_base_.codec}}, loss=dict(type='JitterLoss', jitter_threshold=1.0)),
    # one recurrent state follows the unflipped features
    test_cfg=dict(flip_test=False))
