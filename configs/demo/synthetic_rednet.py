# The demo's second refiner (issue 14): seed 003's REDnet (DecoupledRecurrentRefineHead) on the same frozen image
# model, data, schedule and test harness as configs/demo/synthetic_jitter.py (the ConvLSTM refiner); only the head
# differs. The frozen ResNet-18/2's last features (256×4×4) are split into variant / invariant parts, a ConvLSTM
# steps the variant part, the recombined features go through the frozen base head twice (spatial feedback).
_base_ = './synthetic_jitter.py'

model = dict(
    head=dict(_delete_=True, type='DecoupledRecurrentRefineHead', base_head={{_base_.model.head.base_head}},
              variant_channels=32, invariant_channels=16, hidden_channels=32, n_iters=2, temporal=True,
              # 40 faces in the synthetic train split; a pseudo-clip of one image is one face
              num_identities=40, identity_loss_weight=0.1, invariance_loss_weight=1.0,
              decoder={{_base_.codec}}, loss=dict(type='JitterLoss')))
