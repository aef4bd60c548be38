# configs/300w_hrnet_jitter.py (MMPose's 300W HRNetV2-W18 and zoo checkpoint: MMPose has no 300VW topdown model)
# fine-tuned on real clips of the 50 300VW training videos and tested on the 64 test videos, whole videos in
# frame order, with keys per scenario (S1/NME, S2/MCV, ...). Annotations: tools/dataset_converters/300vw_to_coco.py
# with --videos train / --videos test; broken frames: MMPose's list as JSON (dataset_converters/broken_frames_to_json.py).
_base_ = './300w_hrnet_jitter.py'

model = dict(head=dict(max_frame_gap=2))  # carry the state over a skipped broken frame
train_pipeline = [
    dict(type='ApplyToFrames', shared_random=True, transforms=[  # one flip / rotation / scale per clip
        *_base_.clip_level, *[t for t in _base_.train_pipeline if t.type.startswith('Random')]]),
    dict(type='ApplyToFrames', transforms=[
        # detector-like boxes: every frame's box centre and size jitter on their own (up to 3 % of the box)
        dict(type='RandomBBoxTransform', shift_factor=0.03, shift_prob=1., scale_factor=(0.97, 1.03),
             scale_prob=1., rotate_prob=0.),
        dict(type='ShiftedTopdownAffine', input_size=_base_.codec.input_size),  # + crop_affine for the refiner
        dict(type='VideoDegradation'), dict(type='GenerateTarget', encoder=_base_.codec)]),
    dict(type='PackClipInputs')]
test_pipeline = [*_base_.clip_level, dict(type='TopdownAffine', input_size=_base_.codec.input_size),
                 dict(type='PackClipInputs')]  # a single frame packs as PackPoseInputs + video_id/frame_id
_vw = dict(type='VideoClipDataset', data_root='data/300vw/', data_prefix=dict(img=''),
           broken_frames='data/300vw/broken_frames.json', _delete_=True)
train_dataloader = dict(dataset=dict(_vw, ann_file='annotations/train.json', scenario='train', clip_len=8,
                                     max_frame_gap=2, pipeline=train_pipeline))
test_dataloader = dict(sampler=dict(_delete_=True, type='VideoSampler'), dataset=dict(
    _vw, ann_file='annotations/test.json', scenario='test', test_mode=True, pipeline=test_pipeline))
# no validation split in 300VW: train for the schedule, keep the last epoch (no selection on the test videos)
val_dataloader, val_cfg, val_evaluator = None, None, None
default_hooks = dict(checkpoint=dict(save_best=None))
# each frame carries its video's `scenario` (VideoClipDataset): the metrics report S1/..., S2/..., S3/...
test_evaluator = [dict(type='VideoNME', **_base_._stability), dict(type='NMF', **_base_._stability),
                  dict(type='MCV', **_base_._stability), dict(type='MAV', **_base_._stability)]
