# Stage 1 of the demo: an ordinary MMPose image face model (the stock 300W HRNetV2
# recipe: TopdownPoseEstimator + HeatmapHead + MSRAHeatmap + KeypointMSELoss + Adam),
# made small enough to train on 2 CPU cores (ResNet-18/2 at 128x128), on the synthetic faces as images.
_base_ = 'mmpose::face_2d_keypoint/topdown_heatmap/300w/td-hm_hrnetv2-w18_8xb64-60e_300w-256x256.py'
custom_imports = dict(imports=['mmstable'], allow_failed_imports=False)
randomness = dict(seed=0)

train_cfg = dict(max_epochs=6, val_interval=6)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=50, start_factor=0.01, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=6, milestones=[5], gamma=0.1, by_epoch=True)]
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=6, save_best=None))

codec = dict(type='MSRAHeatmap', input_size=(128, 128), heatmap_size=(32, 32), sigma=1.5, unbiased=True)
model = dict(
    # ResNet-18 at half width: trains in minutes on 2 CPU cores
    backbone=dict(_delete_=True, type='ResNet', depth=18, base_channels=32, stem_channels=32),
    neck=None,
    head=dict(in_channels=256, out_channels=68, deconv_out_channels=(64, 64, 64),
              deconv_kernel_sizes=(4, 4, 4), conv_out_channels=None, conv_kernel_sizes=None,
              decoder=codec),
    test_cfg=dict(flip_test=False))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_prob=0, rotate_factor=30, scale_factor=(0.75, 1.25)),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')]
_data = dict(type='SyntheticFaceVideoDataset', data_root='data/synthetic', as_images=True, data_mode='topdown')
train_dataloader = dict(batch_size=32, num_workers=2, persistent_workers=True,
                        dataset=dict(_data, _delete_=True, split='train', pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, num_workers=2, persistent_workers=True,
                      dataset=dict(_data, _delete_=True, split='val', test_mode=True, pipeline=val_pipeline))
test_dataloader = val_dataloader
