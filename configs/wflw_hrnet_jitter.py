# MMPose's WFLW HRNetV2-W18, frozen, + a ConvLSTM refiner fine-tuned with the Jitter loss (Sun et al.).
_base_ = 'mmpose::face_2d_keypoint/topdown_heatmap/wflw/td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py'
custom_imports = dict(imports=['mmstable'], allow_failed_imports=False)
load_from = 'https://download.openmmlab.com/mmpose/face/hrnetv2/hrnetv2_w18_wflw_256x256-2bf032a6_20210125.pth'

train_cfg = dict(max_epochs=10, val_interval=1)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-4))  # paper §4.2
param_scheduler = [dict(type='MultiStepLR', begin=0, end=10, milestones=[8], gamma=0.1, by_epoch=True)]
default_hooks = dict(checkpoint=dict(save_best='MAV', rule='less'))

codec = dict(type='PDCCodec', input_size=(256, 256), heatmap_size=(64, 64), sigma=2, pdc_threshold=0.2)
model = dict(
    type='StableTopdownPoseEstimator',  # freezes backbone, neck and head.base_head
    backbone=dict(init_cfg=None),  # the image model comes from load_from
    head=dict(_delete_=True, type='ConvLSTMRefineHead', base_head={{_base_.model.head}},
              decoder=codec, loss=dict(type='JitterLoss', jitter_threshold=1.0)),
    test_cfg=dict(output_raw=True))

# pseudo-clips (§4.2): one augmentation per clip, a few pixels of shift per frame, video degradations
clip_level = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
train_pipeline = clip_level + [
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_prob=0, rotate_factor=60, scale_factor=(0.75, 1.25)),
    dict(type='MakeShiftedClip', max_shift=4.0),
    dict(type='ApplyToFrames', transforms=[
        dict(type='ShiftedTopdownAffine', input_size=codec['input_size']),
        dict(type='VideoDegradation'), dict(type='GenerateTarget', encoder=codec)]),
    dict(type='PackClipInputs')]
val_pipeline = clip_level + [
    dict(type='MakeShiftedClip', max_shift=4.0),
    dict(type='ApplyToFrames', transforms=[dict(type='ShiftedTopdownAffine', input_size=codec['input_size'])]),
    dict(type='PackClipInputs')]
train_dataloader = dict(batch_size=8, collate_fn=dict(type='clip_collate'), dataset=dict(
    _delete_=True, type='ImageSequenceDataset', dataset={{_base_.train_dataloader.dataset}}, pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, collate_fn=dict(type='clip_collate'), dataset=dict(
    _delete_=True, type='ImageSequenceDataset', dataset={{_base_.val_dataloader.dataset}}, pipeline=val_pipeline,
    clip_len=8, test_mode=True))
test_dataloader = val_dataloader
_stability = dict(filters=['mediapipe_face'], extra_pred_keys=dict(Raw='raw_keypoints'))
val_evaluator = [{{_base_.val_evaluator}}, dict(type='MCV', **_stability), dict(type='MAV', **_stability)]
test_evaluator = val_evaluator
