# MMPose's WFLW HRNetV2-W18, frozen, + a ConvLSTM refiner fine-tuned with the Jitter loss (Sun et al.).
_base_ = 'mmpose::face_2d_keypoint/topdown_heatmap/wflw/td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py'
custom_imports = dict(imports=['mmstable'], allow_failed_imports=False)
load_from = 'https://download.openmmlab.com/mmpose/face/hrnetv2/hrnetv2_w18_wflw_256x256-2bf032a6_20210125.pth'

train_cfg = dict(max_epochs=10, val_interval=1)
# paper §4.2; the keypoint stage (AdaptiveKalmanFilter's 178-parameter MLP) at 1e-2. It learns from filmed clips
# only (300vw_hrnet_jitter.py): on the image datasets' pseudo-clips it stays a constant-velocity Kalman filter
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-4),
                     paramwise_cfg=dict(custom_keys={'keypoint_filter': dict(lr_mult=100.)}))
param_scheduler = [dict(type='MultiStepLR', begin=0, end=10, milestones=[8], gamma=0.1, by_epoch=True)]
# best = lowest NME x NMF on moving validation clips: NMF is the jitter of the error, so ignoring motion cannot win it
default_hooks = dict(checkpoint=dict(save_best='clips/NMExNMF', rule='less'))

# unbiased (sub-pixel) targets: the Jitter loss compares PDC centres with the sub-pixel GT
codec = dict(type='PDCCodec', input_size=(256, 256), heatmap_size=(64, 64), sigma=2, unbiased=True, pdc_threshold=0.2)
model = dict(
    type='StableTopdownPoseEstimator',  # freezes backbone, neck and head.base_head
    backbone=dict(init_cfg=None),  # the image model comes from load_from
    head=dict(_delete_=True, type='ConvLSTMRefineHead', base_head={{_base_.model.head}},
              decoder=codec, loss=dict(type='JitterLoss', jitter_threshold=1.0)),
    test_cfg=dict(output_raw=True))

# pseudo-clips (§4.2) with head motion: smooth trajectories of the face (untold) or of the crop (told by crop_affine),
# near-still clips, detector-like box jitter, motion blur tied to speed (MakeMotionClip)
clip_level = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
train_pipeline = clip_level + [
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_prob=0, rotate_factor=60, scale_factor=(0.75, 1.25)),
    dict(type='MakeMotionClip'),
    dict(type='ApplyToFrames', transforms=[
        dict(type='ShiftedTopdownAffine', input_size=codec['input_size']),
        dict(type='VideoDegradation', motion_blur=dict(prob=1.0, exposure=(0.2, 0.6))),
        dict(type='GenerateTarget', encoder=codec)]),
    dict(type='PackClipInputs')]
val_pipeline = clip_level + [
    dict(type='MakeMotionClip'),
    dict(type='ApplyToFrames', transforms=[dict(type='ShiftedTopdownAffine', input_size=codec['input_size'])]),
    dict(type='PackClipInputs')]
train_dataloader = dict(batch_size=8, collate_fn=dict(type='clip_collate'), dataset=dict(
    _delete_=True, type='ImageSequenceDataset', dataset={{_base_.train_dataloader.dataset}}, pipeline=train_pipeline))
# validation: seeded moving clips of the test images, stability keys under clips/ (clips/NMF, clips/Raw/MAV, ...)
val_dataloader = dict(batch_size=4, collate_fn=dict(type='clip_collate'), dataset=dict(
    _delete_=True, type='ImageSequenceDataset', dataset={{_base_.val_dataloader.dataset}}, pipeline=val_pipeline,
    clip_len=8, test_mode=True))
_stability = dict(filters=['mediapipe_face'], extra_pred_keys=dict(Raw='raw_keypoints'))
_clips = dict(_stability, prefix='clips')
val_evaluator = [dict(type='VideoNME', **_clips), dict(type='NMF', nme_product=True, **_clips),
                 dict(type='MCV', **_clips), dict(type='MAV', **_clips)]
# test: MMPose's own protocol (base test_dataloader and NME: one image, one prediction), comparable with its zoo
